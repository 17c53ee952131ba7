//! Limits on everything that crosses a wire or a disk. Every length an untrusted party
//! controls is checked against one of these before it is decoded or used.

/// Longest chain id, in bytes.
pub const CHAIN_ID_BYTES_MAX: usize = 64;
/// Largest encoded `SignedTransaction`, in bytes.
pub const TRANSACTION_BYTES_MAX: usize = 64 * 1024;
/// Largest encoded `TransactionBody`, in bytes.
pub const TRANSACTION_BODY_BYTES_MAX: usize = 48 * 1024;
/// Most signatures on one transaction.
pub const TRANSACTION_SIGNATURES_MAX: usize = 16;
/// Longest time a transaction may stay valid ahead of the block time, in milliseconds.
/// This bounds the replay-protection set: a hash is remembered until its `valid_until_ms`.
pub const TRANSACTION_VALIDITY_MS_MAX: u64 = 60 * 60 * 1000;

/// Longest identifier chosen by a member (report, receivable, fund ids), in bytes.
pub const IDENTIFIER_BYTES_MAX: usize = 64;
/// Longest organisation name, in bytes.
pub const NAME_BYTES_MAX: usize = 128;
/// Longest report summary, in bytes.
pub const SUMMARY_BYTES_MAX: usize = 512;
/// Longest free text (objection reason, resolution note), in bytes.
pub const NOTE_BYTES_MAX: usize = 512;
/// Longest court reference of a freeze, in bytes.
pub const COURT_REFERENCE_BYTES_MAX: usize = 128;
/// Longest fund filing number, in bytes.
pub const FILING_NUMBER_BYTES_MAX: usize = 64;
/// Most invoices backing one receivable.
pub const INVOICES_PER_RECEIVABLE_MAX: usize = 64;
/// Most keys per member organisation.
pub const KEYS_PER_MEMBER_MAX: usize = 16;
/// Most roles on one key (there are six roles).
pub const ROLES_PER_KEY_MAX: usize = 6;
/// Most parts split off one receivable.
pub const PARTS_PER_RECEIVABLE_MAX: u32 = 1_000;
/// Most versions of one credit report.
pub const VERSIONS_PER_REPORT_MAX: u32 = 1_000;

/// Fewest validators the chain may have (n = 3f + 1 with f = 1).
pub const VALIDATORS_MIN: usize = 4;
/// Most validators the chain may have.
pub const VALIDATORS_MAX: usize = 128;
/// Heights between the block that changes the validator set and the first block it decides.
pub const VALIDATOR_CHANGE_DELAY_HEIGHTS: u64 = 2;

/// Most transactions in one block.
pub const BLOCK_TRANSACTIONS_MAX: usize = 20_000;
/// Largest encoded block, in bytes.
pub const BLOCK_BYTES_MAX: usize = 24 * 1024 * 1024;
/// Largest message a peer or a client may send, in bytes.
pub const MESSAGE_BYTES_MAX: usize = 32 * 1024 * 1024;
/// Most transactions in one `SubmitBatch` call.
pub const SUBMIT_BATCH_TRANSACTIONS_MAX: usize = 256;
/// Largest encoded `SubmitBatchRequest`, in bytes: the transactions and their framing.
pub const SUBMIT_BATCH_BYTES_MAX: usize = 256 * 1024;

const _: () = assert!(TRANSACTION_BODY_BYTES_MAX < TRANSACTION_BYTES_MAX);
const _: () = assert!(TRANSACTION_BYTES_MAX <= BLOCK_BYTES_MAX);
const _: () = assert!(BLOCK_BYTES_MAX < MESSAGE_BYTES_MAX);
const _: () = assert!(TRANSACTION_BYTES_MAX < SUBMIT_BATCH_BYTES_MAX);
const _: () = assert!(VALIDATORS_MIN <= VALIDATORS_MAX);
const _: () = assert!(VALIDATORS_MAX <= TRANSACTION_SIGNATURES_MAX * 8);
const _: () = assert!(CHAIN_ID_BYTES_MAX <= u8::MAX as usize);
