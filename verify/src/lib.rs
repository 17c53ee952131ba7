//! Offline verification of yrd answers (stub; being written).
