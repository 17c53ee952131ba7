//! The history entry key layout of the chaincode (`yrd_chaincode::keys`), re-stated here so a
//! verifier does not depend on the chaincode. A test pins it to the chaincode's.

/// `h/v/<key><index as u32 big-endian>`: version `index` of the key, an encoded `HistoryEntry`.
#[must_use]
pub fn history_entry(key: &[u8], index: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + key.len());
    out.extend_from_slice(b"h/v/");
    out.extend_from_slice(key);
    out.extend_from_slice(&index.to_be_bytes());
    out
}
