//! Placeholder: the consensus core (issue 3).
