//! Bounds on every length an answer controls. Each is checked before the field is used, so a
//! hostile answer costs at most a bounded amount of work per item.

use yrd_proto::limits::{BLOCK_TRANSACTIONS_MAX, TRANSACTION_BYTES_MAX, VALIDATORS_MAX};

/// Most siblings of a state proof: one per bit of a 256-bit key hash.
pub const PROOF_SIBLINGS_MAX: usize = 256;
/// Largest encoded `BlockHeader`, in bytes. A real header is about 300 bytes.
pub const HEADER_BYTES_MAX: usize = 64 * 1024;
/// Largest encoded `HistoryEntry`, in bytes. An entry holds one record value written by one
/// transaction, and records are bounded far below this by the chaincode's limits.
pub const HISTORY_ENTRY_BYTES_MAX: usize = 1024 * 1024;
/// Longest state key, in bytes.
pub const KEY_BYTES_MAX: usize = 4096;
/// Largest state value, in bytes.
pub const VALUE_BYTES_MAX: usize = yrd_proto::limits::MESSAGE_BYTES_MAX;
/// Most versions in one history answer.
pub const VERSIONS_MAX: usize = 4096;
/// Most validator-set changes in one answer.
pub const VALIDATOR_CHANGES_MAX: usize = 4096;
/// Most headers in one headers answer.
pub const HEADERS_MAX: usize = 4096;
/// Most hashes in an RFC 6962 audit path: a block's transaction tree is never deeper.
pub const AUDIT_PATH_MAX: usize = 64;
/// Most signatures of a commit certificate.
pub const CERTIFICATE_SIGNATURES_MAX: usize = VALIDATORS_MAX;

// A tree of BLOCK_TRANSACTIONS_MAX leaves is at most 15 levels deep.
const _: () = assert!(BLOCK_TRANSACTIONS_MAX <= 1 << 15 && 15 <= AUDIT_PATH_MAX);
const _: () = assert!(TRANSACTION_BYTES_MAX <= HISTORY_ENTRY_BYTES_MAX);
const _: () = assert!(KEY_BYTES_MAX + 8 <= HISTORY_ENTRY_BYTES_MAX);
