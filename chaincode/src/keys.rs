//! The layout of state keys. Every record lives under a short ASCII prefix; variable parts are
//! identifiers (which never contain `/`), USCCs, raw 32-byte keys or hashes, or big-endian
//! integers, so that byte order is the natural order.
//!
//! | key | value |
//! | --- | --- |
//! | `m/<uscc>` | `MemberRecord` |
//! | `k/<public key, 32 bytes>` | `KeyRecord` |
//! | `v/current` | `ValidatorSetRecord` in force |
//! | `v/pending` | `PendingValidatorSet` |
//! | `c/r/<report id>` | `CreditReportRecord` |
//! | `c/v/<report id>/<version u32 BE>` | `CreditReportVersion` |
//! | `c/s/<subject uscc>/<report id>` | empty: reports by subject |
//! | `c/a/<subject uscc>/<grantee uscc>/<purpose u8>` | `AuthorizationRecord` |
//! | `c/q/<tx hash>` | `QueryLogRecord` |
//! | `r/r/<receivable id>` | `ReceivableRecord` |
//! | `r/u/<receivable id>/<part u32 BE>` | `ReceivableUnitRecord` (part 0 is the root unit) |
//! | `r/i/<invoice hash>` | receivable id that the invoice backs |
//! | `f/f/<fund id>` | `FundRecord` |
//! | `f/h/<fund id>/<holder uscc>` | `HoldingRecord` |
//! | `f/p/<pledge id u64 BE>` | `FundPledgeRecord` |
//! | `f/z/<freeze id u64 BE>` | `FreezeRecord` |
//! | `s/<sequence name>` | last number issued, u64 BE |
//! | `x/e/<valid_until_ms u64 BE><tx hash>` | empty: an applied transaction, for replay protection, ordered by expiry for pruning |
//! | `h/c/<key>` | number of versions of `<key>`, u32 BE |
//! | `h/v/<key><index u32 BE>` | `HistoryEntry`: version `index` (from 0) of `<key>` |
//!
//! Every key except the replay-protection index (`x/`) and the history counts (`h/c/`) is
//! authenticated: a versioned record through its history entries ([`is_proven_by_history`]),
//! every other key by a leaf of its own in the state tree ([`is_tree_key`]).
//!
//! Every key a transaction writes gets a version in the history (`h/`), except the history
//! itself, the replay entries (`x/`), the sequences (`s/`) and the write-once indexes (`c/s/`,
//! `r/i/`). The version index is the count before the write, so a key's versions are exactly
//! `0 .. count` and a proof of the count proves that no version is missing or hidden. The fixed
//! four-byte suffix keeps `h/v/` keys unambiguous. Genesis writes have no versions.

use yrd_proto::signing::{Hash, PublicKeyBytes};

fn join(parts: &[&[u8]]) -> Vec<u8> {
    let mut key = Vec::with_capacity(parts.iter().map(|part| part.len()).sum());
    for part in parts {
        key.extend_from_slice(part);
    }
    key
}

/// `m/<uscc>`
#[must_use]
pub fn member(uscc: &str) -> Vec<u8> {
    join(&[b"m/", uscc.as_bytes()])
}

/// `k/<public key>`
#[must_use]
pub fn member_key(public_key: &PublicKeyBytes) -> Vec<u8> {
    join(&[b"k/", public_key])
}

/// The validator set in force.
pub const VALIDATORS_CURRENT: &[u8] = b"v/current";
/// The validator set waiting for its height.
pub const VALIDATORS_PENDING: &[u8] = b"v/pending";

/// `c/r/<report id>`
#[must_use]
pub fn credit_report(report_id: &str) -> Vec<u8> {
    join(&[b"c/r/", report_id.as_bytes()])
}

/// `c/v/<report id>/<version>`
#[must_use]
pub fn credit_report_version(report_id: &str, version: u32) -> Vec<u8> {
    join(&[b"c/v/", report_id.as_bytes(), b"/", &version.to_be_bytes()])
}

/// Prefix of every version of a report.
#[must_use]
pub fn credit_report_versions(report_id: &str) -> Vec<u8> {
    join(&[b"c/v/", report_id.as_bytes(), b"/"])
}

/// `c/s/<subject>/<report id>`
#[must_use]
pub fn credit_report_by_subject(subject: &str, report_id: &str) -> Vec<u8> {
    join(&[b"c/s/", subject.as_bytes(), b"/", report_id.as_bytes()])
}

/// Prefix of the reports on a subject.
#[must_use]
pub fn credit_reports_of_subject(subject: &str) -> Vec<u8> {
    join(&[b"c/s/", subject.as_bytes(), b"/"])
}

/// `c/a/<subject>/<grantee>/<purpose>`
#[must_use]
pub fn authorization(subject: &str, grantee: &str, purpose: u8) -> Vec<u8> {
    join(&[
        b"c/a/",
        subject.as_bytes(),
        b"/",
        grantee.as_bytes(),
        b"/",
        &[purpose],
    ])
}

/// `c/q/<tx hash>`
#[must_use]
pub fn query_log(tx_hash: &Hash) -> Vec<u8> {
    join(&[b"c/q/", tx_hash])
}

/// `r/r/<receivable id>`
#[must_use]
pub fn receivable(receivable_id: &str) -> Vec<u8> {
    join(&[b"r/r/", receivable_id.as_bytes()])
}

/// `r/u/<receivable id>/<part>`
#[must_use]
pub fn receivable_unit(receivable_id: &str, part: u32) -> Vec<u8> {
    join(&[b"r/u/", receivable_id.as_bytes(), b"/", &part.to_be_bytes()])
}

/// `r/i/<invoice hash>`
#[must_use]
pub fn invoice(invoice_hash: &Hash) -> Vec<u8> {
    join(&[b"r/i/", invoice_hash])
}

/// `f/f/<fund id>`
#[must_use]
pub fn fund(fund_id: &str) -> Vec<u8> {
    join(&[b"f/f/", fund_id.as_bytes()])
}

/// `f/h/<fund id>/<holder>`
#[must_use]
pub fn holding(fund_id: &str, holder: &str) -> Vec<u8> {
    join(&[b"f/h/", fund_id.as_bytes(), b"/", holder.as_bytes()])
}

/// Prefix of the holdings of a fund.
#[must_use]
pub fn holdings_of_fund(fund_id: &str) -> Vec<u8> {
    join(&[b"f/h/", fund_id.as_bytes(), b"/"])
}

/// `f/p/<pledge id>`
#[must_use]
pub fn fund_pledge(pledge_id: u64) -> Vec<u8> {
    join(&[b"f/p/", &pledge_id.to_be_bytes()])
}

/// `f/z/<freeze id>`
#[must_use]
pub fn freeze(freeze_id: u64) -> Vec<u8> {
    join(&[b"f/z/", &freeze_id.to_be_bytes()])
}

/// `s/<name>`
#[must_use]
pub fn sequence(name: &str) -> Vec<u8> {
    join(&[b"s/", name.as_bytes()])
}

/// Prefix of the replay index of the storage format before 6 (`x/h/<tx hash>`), which repeated
/// [`applied_by_expiry`]: nothing writes or reads it any more, and the node's storage upgrade
/// drops what is left of it.
pub const APPLIED_BY_HASH_PREFIX: &[u8] = b"x/h/";

/// Prefix of the expiry index of applied transactions.
pub const APPLIED_BY_EXPIRY_PREFIX: &[u8] = b"x/e/";

/// `x/e/<valid until><tx hash>`: the replay entry of an applied transaction. A replay carries
/// the same body, so the same `valid_until_ms` and hash, and finds this key; ordered by expiry,
/// so that pruning reads only expired entries.
#[must_use]
pub fn applied_by_expiry(valid_until_ms: u64, tx_hash: &Hash) -> Vec<u8> {
    join(&[
        APPLIED_BY_EXPIRY_PREFIX,
        &valid_until_ms.to_be_bytes(),
        tx_hash,
    ])
}

/// Names of the chain-wide sequences.
pub mod sequences {
    /// Fund-share pledge ids.
    pub const FUND_PLEDGE: &str = "fund-pledge";
    /// Freeze ids.
    pub const FREEZE: &str = "freeze";
    /// Registration order of every financing (receivable pledges and factorings, fund pledges):
    /// the priority among financiers.
    pub const FINANCING_PRIORITY: &str = "financing-priority";
}

/// Prefix of every `ReceivableRecord` (`r/r/`), for scans by the receivables audit.
pub const RECEIVABLES_PREFIX: &[u8] = b"r/r/";
/// Prefix of every `ReceivableUnitRecord` (`r/u/`), for scans by the receivables audit.
pub const RECEIVABLE_UNITS_PREFIX: &[u8] = b"r/u/";
/// Prefix of every invoice index entry (`r/i/`), for scans by the receivables audit.
pub const INVOICES_PREFIX: &[u8] = b"r/i/";

/// Prefix of the replay-protection index (`x/e/`).
pub const REPLAY_PREFIX: &[u8] = b"x/";

/// Prefix of the history counts (`h/c/`).
pub const HISTORY_COUNT_PREFIX: &[u8] = b"h/c/";

/// Whether `key` is authenticated by the state root each header carries, by a leaf of its own
/// or through its history ([`is_proven_by_history`]).
///
/// Two kinds of key are not:
/// - the replay-protection index (`x/`): it is derived from the blocks of the last
///   `TRANSACTION_VALIDITY_MS_MAX`, nobody asks for a proof of it, and an entry that went wrong
///   would show in the receipts root, which every header commits to. Keeping it out saves four
///   tree updates per transaction (insert and prune of two entries);
/// - the history counts (`h/c/`): versions are numbered from 0 without gaps, so "entry `n - 1`
///   present and entry `n` absent" proves a count of `n` from the entries alone. A count that
///   went wrong would put the next entry at a wrong index, which changes the state root. Keeping
///   it out saves one tree update per record write.
#[must_use]
pub fn is_authenticated(key: &[u8]) -> bool {
    !key.starts_with(REPLAY_PREFIX) && !key.starts_with(HISTORY_COUNT_PREFIX)
}

/// Prefixes of the keys that keep no history: the history itself, replay entries, sequences and
/// write-once indexes.
pub const UNVERSIONED_PREFIXES: [&[u8]; 5] = [b"h/", b"x/", b"s/", b"c/s/", b"r/i/"];

/// Whether writes to `key` are recorded in the history.
#[must_use]
pub fn is_versioned(key: &[u8]) -> bool {
    !UNVERSIONED_PREFIXES
        .iter()
        .any(|prefix| key.starts_with(prefix))
}

/// Prefix of the validator-set keys (`v/current`, `v/pending`).
pub const VALIDATORS_PREFIX: &[u8] = b"v/";

/// Whether the value of `key` is proven through its history rather than by a tree leaf of its
/// own: every versioned key except the validator-set keys (`v/`), which block execution writes
/// without a transaction and so without a version.
///
/// Every write of such a key by a transaction records a version, so its value after a block is
/// the one its latest history entry holds. A block therefore puts only the entry in the tree,
/// one tree update per record write instead of two; a proof of the value is the latest entry
/// `h/v/<key><n - 1>` present and `h/v/<key><n>` absent. While a key has no version (count 0),
/// its value is the one genesis gave it, proven by its own leaf: the genesis state puts every
/// authenticated key in the tree, since genesis keeps no history.
#[must_use]
pub fn is_proven_by_history(key: &[u8]) -> bool {
    is_versioned(key) && !key.starts_with(VALIDATORS_PREFIX)
}

/// Whether a block's write of `key` goes into the state tree under the key itself:
/// authenticated keys ([`is_authenticated`]) that are not proven through their history
/// ([`is_proven_by_history`]). Those are the history entries, the sequences, the write-once
/// indexes and the validator-set keys. (The genesis state puts every authenticated key in.)
#[must_use]
pub fn is_tree_key(key: &[u8]) -> bool {
    is_authenticated(key) && !is_proven_by_history(key)
}

/// `h/c/<key>`: how many versions `key` has (u32 big-endian), outside the state tree.
#[must_use]
pub fn history_count(key: &[u8]) -> Vec<u8> {
    join(&[HISTORY_COUNT_PREFIX, key])
}

/// Prefix of the history entries (`h/v/`).
pub const HISTORY_ENTRY_PREFIX: &[u8] = b"h/v/";

/// Whether `key` is a history entry (`h/v/`). Entries are written once and never changed or
/// removed; the node keeps them in the state tree only, not in its plain state as well.
#[must_use]
pub fn is_history_entry(key: &[u8]) -> bool {
    key.starts_with(HISTORY_ENTRY_PREFIX)
}

/// `h/v/<key><index>`: version `index` of `key`.
#[must_use]
pub fn history_entry(key: &[u8], index: u32) -> Vec<u8> {
    join(&[HISTORY_ENTRY_PREFIX, key, &index.to_be_bytes()])
}
