//! Hashing of blocks: the block hash (a header hash under its own domain) and the RFC 6962 style
//! Merkle root, with audit paths, over transaction and receipt hashes.
//!
//! Layouts (all hashes SHA-256):
//!
//! ```text
//! block_hash   = SHA-256("yrd/header/v1\0" || u8 len(chain_id) || chain_id || encode(BlockHeader))
//! leaf(x)      = SHA-256(0x00 || x)           node(l, r) = SHA-256(0x01 || l || r)
//! merkle([])   = SHA-256("")                  merkle([x]) = leaf(x)
//! merkle(xs)   = node(merkle(xs[..k]), merkle(xs[k..])), k the largest power of two < len(xs)
//! audit path   = the sibling subtree roots from the item's leaf up to the root (RFC 9162
//!                section 2.1.3), checked by the algorithm of section 2.1.3.2
//! receipt_hash = SHA-256(encode(Receipt))
//! ```
//!
//! The state root is the root of the node's Jellyfish Merkle Tree over the state, less the
//! replay-protection index under `x/` (see
//! `yrd-node`'s `storage::tree` and docs/PROOFS.md).

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
            let split = split_point(n);
            node(&merkle_root(&items[..split]), &merkle_root(&items[split..]))
        }
    }
}

fn split_point(n: usize) -> usize {
    (n - 1).checked_ilog2().map_or(1, |bits| 1usize << bits)
}

/// The RFC 6962 audit path of `items[index]`: the roots of the sibling subtrees met from its
/// leaf up to the root, the leaf level first. `None` when `index` is out of range.
#[must_use]
pub fn audit_path(items: &[Hash], index: usize) -> Option<Vec<Hash>> {
    if index >= items.len() {
        return None;
    }
    let mut path = Vec::new();
    let (mut items, mut index) = (items, index);
    // Walk down from the root, recording the sibling of each subtree taken; reverse at the end
    // so the leaf level comes first.
    while items.len() > 1 {
        let split = split_point(items.len());
        if index < split {
            path.push(merkle_root(&items[split..]));
            items = &items[..split];
        } else {
            path.push(merkle_root(&items[..split]));
            items = &items[split..];
            index -= split;
        }
    }
    path.reverse();
    Some(path)
}

/// Whether `path` proves `item` at `index` of a list of `count` items whose RFC 6962 root is
/// `root` (RFC 9162 section 2.1.3.2).
#[must_use]
pub fn verify_audit_path(root: &Hash, item: &Hash, index: u64, count: u64, path: &[Hash]) -> bool {
    if index >= count {
        return false;
    }
    let (mut fn_, mut sn) = (index, count - 1);
    let mut r = leaf(item);
    for p in path {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node(p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && r == *root
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
    fn audit_paths_verify_for_every_index_of_sizes_1_to_33() {
        let items: Vec<Hash> = (0..33u8).map(|i| Sha256::digest([i]).into()).collect();
        for count in 1..=items.len() {
            let items = &items[..count];
            let root = merkle_root(items);
            let n = count as u64;
            for (index, item) in items.iter().enumerate() {
                let path = audit_path(items, index).expect("index in range");
                let i = index as u64;
                assert!(
                    verify_audit_path(&root, item, i, n, &path),
                    "{index} of {count}"
                );
                // Each of these must fail: another item, index, count, root or path.
                assert!(!verify_audit_path(&root, &[0xee; 32], i, n, &path));
                // (Another count may accept the same path: a path does not bind the count, which
                // is why the count must come from the certified header.)
                assert!(!verify_audit_path(&root, item, n, n, &path));
                if count > 1 {
                    assert!(!verify_audit_path(&root, item, (i + 1) % n, n, &path));
                    assert!(!verify_audit_path(&root, item, i, n, &path[1..]));
                }
                let mut longer = path.clone();
                longer.push([0; 32]);
                assert!(!verify_audit_path(&root, item, i, n, &longer));
                for level in 0..path.len() {
                    let mut bad = path.clone();
                    bad[level][0] ^= 1;
                    assert!(!verify_audit_path(&root, item, i, n, &bad));
                }
                let mut bad_root = root;
                bad_root[31] ^= 1;
                assert!(!verify_audit_path(&bad_root, item, i, n, &path));
            }
            assert_eq!(audit_path(items, count), None);
        }
    }

    #[test]
    fn audit_path_of_a_single_item_is_empty_and_of_three_is_rfc_shaped() {
        let (a, b, c) = ([1u8; 32], [2u8; 32], [3u8; 32]);
        assert_eq!(audit_path(&[a], 0), Some(vec![]));
        assert_eq!(audit_path(&[a, b, c], 0), Some(vec![leaf(&b), leaf(&c)]));
        assert_eq!(
            audit_path(&[a, b, c], 2),
            Some(vec![node(&leaf(&a), &leaf(&b))])
        );
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
