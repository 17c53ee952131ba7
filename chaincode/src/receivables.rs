//! Placeholder of the receivables registry.

use crate::exec::{Outcome, TxContext};
use crate::transaction::Action;

/// Applies an action of this registry.
pub(crate) fn apply(_context: &mut TxContext<'_>, _action: Action) -> Outcome<()> {
    Ok(())
}
