//! Hashing of blocks: the block hash (a header hash under its own domain), the RFC 6962 style
//! Merkle root over transaction and receipt hashes, and the interim state commitment.
//!
//! Layouts (all hashes SHA-256):
//!
//! ```text
//! block_hash   = SHA-256("yrd/header/v1\0" || u8 len(chain_id) || chain_id || encode(BlockHeader))
//! leaf(x)      = SHA-256(0x00 || x)           node(l, r) = SHA-256(0x01 || l || r)
//! merkle([])   = SHA-256("")                  merkle([x]) = leaf(x)
//! merkle(xs)   = node(merkle(xs[..k]), merkle(xs[k..])), k the largest power of two < len(xs)
//! receipt_hash = SHA-256(encode(Receipt))
//! state_root_h = SHA-256("yrd/state/v1\0" || state_root_{h-1} || write_set_hash_h)
//! write_set_hash = SHA-256 over, for each (key, value) in key order:
//!                  u32 BE len(key) || key || (0x00 for a delete | 0x01 || u32 BE len(value) || value)
//! ```
//!
//! The state root is an interim commitment to the whole history of state changes, equal on
//! every node that executed the same blocks; the authenticated state tree with proofs replaces
//! it in a later version.

use prost::Message;
use sha2::{Digest, Sha256};

use crate::signing::{signing_digest, Domain, Hash, SigningError};
use crate::v1;

/// The hash of a block: its header's digest under the block-header domain.
pub fn block_hash(header: &v1::BlockHeader) -> Result<Hash, SigningError> {
    signing_digest(
        Domain::BlockHeader,
        &header.chain_id,
        &header.encode_to_vec(),
    )
}

fn leaf(item: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0u8]);
    hasher.update(item);
    hasher.finalize().into()
}

fn node(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([1u8]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The RFC 6962 Merkle tree hash of a list of items.
#[must_use]
pub fn merkle_root(items: &[Hash]) -> Hash {
    match items.len() {
        0 => Sha256::digest([]).into(),
        1 => leaf(&items[0]),
        n => {
            let split = (n - 1).checked_ilog2().map_or(1, |bits| 1usize << bits);
            node(&merkle_root(&items[..split]), &merkle_root(&items[split..]))
        }
    }
}

/// The hash of a receipt.
#[must_use]
pub fn receipt_hash(receipt: &v1::Receipt) -> Hash {
    Sha256::digest(receipt.encode_to_vec()).into()
}

/// The Merkle root over the receipts' hashes.
#[must_use]
pub fn receipts_root(receipts: &[v1::Receipt]) -> Hash {
    let hashes: Vec<Hash> = receipts.iter().map(receipt_hash).collect();
    merkle_root(&hashes)
}

/// The hash of a write set given as ordered `(key, Option<value>)` pairs.
pub fn write_set_hash<'a>(
    writes: impl IntoIterator<Item = (&'a Vec<u8>, &'a Option<Vec<u8>>)>,
) -> Hash {
    let mut hasher = Sha256::new();
    for (key, value) in writes {
        hasher.update((key.len() as u32).to_be_bytes());
        hasher.update(key);
        match value {
            None => hasher.update([0u8]),
            Some(value) => {
                hasher.update([1u8]);
                hasher.update((value.len() as u32).to_be_bytes());
                hasher.update(value);
            }
        }
    }
    hasher.finalize().into()
}

/// The state root after a block, from the previous root and the block's write-set hash.
#[must_use]
pub fn next_state_root(previous: &Hash, write_set_hash: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(b"yrd/state/v1\0");
    hasher.update(previous);
    hasher.update(write_set_hash);
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merkle_root_follows_rfc_6962_shape() {
        let a = [1u8; 32];
        let b = [2u8; 32];
        let c = [3u8; 32];
        assert_eq!(merkle_root(&[a]), leaf(&a));
        assert_eq!(merkle_root(&[a, b]), node(&leaf(&a), &leaf(&b)));
        assert_eq!(
            merkle_root(&[a, b, c]),
            node(&node(&leaf(&a), &leaf(&b)), &leaf(&c))
        );
        assert_ne!(merkle_root(&[a, b]), merkle_root(&[b, a]));
        // A leaf never collides with an inner node of the same bytes.
        let mut joined = Vec::new();
        joined.extend_from_slice(&leaf(&a));
        joined.extend_from_slice(&leaf(&b));
        let flat: Hash = Sha256::digest(&joined).into();
        assert_ne!(merkle_root(&[a, b]), flat);
    }

    #[test]
    fn block_hash_depends_on_every_header_field() {
        let header = v1::BlockHeader {
            chain_id: "c".into(),
            height: 1,
            ..Default::default()
        };
        let mut other = header.clone();
        other.height = 2;
        assert_ne!(
            block_hash(&header).expect("hash"),
            block_hash(&other).expect("hash")
        );
    }
}
