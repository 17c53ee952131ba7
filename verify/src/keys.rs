//! The key layout of the chaincode (`yrd_chaincode::keys`) a verifier needs: history entries,
//! and which keys are proven through their history. Re-stated here so a verifier does not
//! depend on the chaincode; tests pin both to the chaincode's.

/// `h/v/<key><index as u32 big-endian>`: version `index` of the key, an encoded `HistoryEntry`.
#[must_use]
pub fn history_entry(key: &[u8], index: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + key.len());
    out.extend_from_slice(b"h/v/");
    out.extend_from_slice(key);
    out.extend_from_slice(&index.to_be_bytes());
    out
}

/// Prefixes of the keys that keep no history, as the chaincode's `keys::UNVERSIONED_PREFIXES`:
/// the history itself, replay entries, sequences and write-once indexes.
pub const UNVERSIONED_PREFIXES: [&[u8]; 5] = [b"h/", b"x/", b"s/", b"c/s/", b"r/i/"];

/// Prefix of the validator-set keys, which are written without a transaction (when a new set
/// takes over) and so keep a leaf of their own.
pub const VALIDATORS_PREFIX: &[u8] = b"v/";

/// Whether the value of `key` is proven through its history, as the chaincode's
/// `keys::is_proven_by_history`: a versioned key outside `v/`. Blocks put only such a key's
/// history entries in the state tree, so its value at a height is its latest entry's; its own
/// leaf holds its genesis value, which counts only while it has no version. A verifier must
/// never take that leaf for the value of a key with versions.
#[must_use]
pub fn is_proven_by_history(key: &[u8]) -> bool {
    !UNVERSIONED_PREFIXES
        .iter()
        .any(|prefix| key.starts_with(prefix))
        && !key.starts_with(VALIDATORS_PREFIX)
}
