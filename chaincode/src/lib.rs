//! The chaincode of the yrd ledger: deterministic state machines of the member registry and
//! roles, credit information, supply-chain receivables and private-fund shares.
//!
//! Execution takes a block's verified transactions and the block time and yields receipts and
//! state writes ([`exec::execute_block`]). It uses no clock, no randomness, no floats and no
//! hash-map iteration order: the same state, block and transactions give byte-identical
//! receipts and writes on every node.

pub mod credit;
pub mod date;
pub mod exec;
pub mod funds;
pub mod keys;
pub mod members;
pub mod receivables;
pub mod state;
pub mod testkit;
pub mod transaction;
pub mod uscc;

pub use exec::{dry_run, execute_block, BlockContext, BlockOutcome, ChaincodeError, Rejection};
pub use state::{MemoryState, StateRead, StateScan, WriteSet};
pub use transaction::{Action, Transaction};
pub use uscc::Uscc;
