//! The two history key layouts of the chaincode (`yrd_chaincode::keys`), re-stated here so a
//! verifier does not depend on the chaincode. A test pins them to the chaincode's.

/// `h/c/<key>`: the key's version count, a u32 big-endian.
#[must_use]
pub fn history_count(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + key.len());
    out.extend_from_slice(b"h/c/");
    out.extend_from_slice(key);
    out
}

/// `h/v/<key><index as u32 big-endian>`: version `index` of the key, an encoded `HistoryEntry`.
#[must_use]
pub fn history_entry(key: &[u8], index: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + key.len());
    out.extend_from_slice(b"h/v/");
    out.extend_from_slice(key);
    out.extend_from_slice(&index.to_be_bytes());
    out
}
