//! Plain renderings for messages and `Display`: hex, short hashes, keys as text where printable.

use std::fmt::Write;

/// Lower-case hex of some bytes.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// The first four bytes of a hash in hex, followed by `..`.
#[must_use]
pub fn short(hash: &[u8]) -> String {
    format!("{}..", hex(&hash[..hash.len().min(4)]))
}

/// A key as text when every byte is printable ASCII, else as `0x` and hex. History keys
/// (`h/v/<key><u32>`) print their four-byte index as `#<n>`.
#[must_use]
pub fn key(bytes: &[u8]) -> String {
    let printable = |b: &[u8]| !b.is_empty() && b.iter().all(|c| (0x20..0x7f).contains(c));
    if printable(bytes) {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    if bytes.starts_with(b"h/v/") && bytes.len() > 8 {
        let (inner, index) = bytes.split_at(bytes.len() - 4);
        if printable(inner) {
            let mut array = [0u8; 4];
            array.copy_from_slice(index);
            return format!(
                "{}#{}",
                String::from_utf8_lossy(inner),
                u32::from_be_bytes(array)
            );
        }
    }
    format!("0x{}", hex(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_render_as_text_or_hex() {
        assert_eq!(key(b"c/r/R1"), "c/r/R1");
        assert_eq!(key(&[0x6b, 0x2f, 0x00, 0xff]), "0x6b2f00ff");
        assert_eq!(
            key(&crate::keys::history_entry(b"c/r/R1", 2)),
            "h/v/c/r/R1#2"
        );
        assert_eq!(short(&[0x5e, 0x3a, 0x01, 0x02, 0x03]), "5e3a0102..");
    }
}
