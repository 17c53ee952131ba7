//! Jellyfish Merkle Tree proofs (the `jmt` crate's sparse Merkle tree over SHA-256), checked
//! exactly as `jmt::proof::SparseMerkleProof::verify` checks them, from the wire form alone.
//!
//! ```text
//! key_hash      = SHA-256(key)                value_hash = SHA-256(value)
//! leaf          = SHA-256("JMT::LeafNode" || key_hash || value_hash)
//! internal(l,r) = SHA-256("JMT::IntrnalNode" || l || r)
//! empty subtree = "SPARSE_MERKLE_PLACEHOLDER_HASH__" (32 ASCII bytes, not hashed)
//! ```
//!
//! Sibling `i` (0 nearest the leaf) of a proof with `n` siblings sits at depth `n - 1 - i`; the
//! bit of the key hash at that depth (bit 0 is the most significant bit of byte 0) says whether
//! the running hash is the right (1) or left (0) child.

use sha2::{Digest, Sha256};
use yrd_proto::signing::{sha256, Hash};
use yrd_proto::v1;

use crate::error::VerifyError;
use crate::limits::PROOF_SIBLINGS_MAX;
use crate::render::hex;

/// The hash of an empty subtree, and the root of an empty tree.
pub const SPARSE_MERKLE_PLACEHOLDER_HASH: Hash = *b"SPARSE_MERKLE_PLACEHOLDER_HASH__";
/// Domain prefix of a leaf hash.
pub const LEAF_DOMAIN: &[u8] = b"JMT::LeafNode";
/// Domain prefix of an internal node hash (sic: 16 bytes, "Intrnal").
pub const INTERNAL_DOMAIN: &[u8] = b"JMT::IntrnalNode";

/// The hash of a leaf: `SHA-256("JMT::LeafNode" || key_hash || value_hash)`.
#[must_use]
pub fn leaf_hash(key_hash: &Hash, value_hash: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(LEAF_DOMAIN);
    hasher.update(key_hash);
    hasher.update(value_hash);
    hasher.finalize().into()
}

/// The hash of an internal node: `SHA-256("JMT::IntrnalNode" || left || right)`.
#[must_use]
pub fn internal_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(INTERNAL_DOMAIN);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// Bit `depth` of a hash, counting from the most significant bit of byte 0.
fn bit(hash: &Hash, depth: usize) -> bool {
    hash[depth / 8] & (0x80 >> (depth % 8)) != 0
}

/// Leading bits two hashes share.
fn common_prefix_bits(a: &Hash, b: &Hash) -> usize {
    for (index, (x, y)) in a.iter().zip(b).enumerate() {
        let differ = x ^ y;
        if differ != 0 {
            return index * 8 + differ.leading_zeros() as usize;
        }
    }
    256
}

pub(crate) fn hash32(what: &'static str, bytes: &[u8]) -> Result<Hash, VerifyError> {
    bytes.try_into().map_err(|_| VerifyError::Malformed {
        what,
        reason: format!("must be 32 bytes, found {}", bytes.len()),
    })
}

/// Checks that `proof` shows `key` holding `value` (or, for `None`, holding nothing) in the tree
/// whose root is `root`.
pub fn verify_state_proof(
    root: &Hash,
    key: &[u8],
    value: Option<&[u8]>,
    proof: &v1::StateProof,
) -> Result<(), VerifyError> {
    if proof.siblings.len() > PROOF_SIBLINGS_MAX {
        return Err(VerifyError::TooMany {
            what: "state proof siblings",
            found: proof.siblings.len(),
            max: PROOF_SIBLINGS_MAX,
        });
    }
    let siblings = proof
        .siblings
        .iter()
        .map(|sibling| hash32("state proof sibling", sibling))
        .collect::<Result<Vec<Hash>, _>>()?;
    let leaf = match &proof.leaf {
        None => None,
        Some(leaf) => Some((
            hash32("state proof leaf key hash", &leaf.key_hash)?,
            hash32("state proof leaf value hash", &leaf.value_hash)?,
        )),
    };
    let key_hash = sha256(key);
    match (value, leaf) {
        (Some(value), Some((leaf_key, leaf_value))) => {
            if leaf_key != key_hash {
                return Err(VerifyError::ProofKeyMismatch {
                    expected: hex(&key_hash),
                    found: hex(&leaf_key),
                });
            }
            let value_hash = sha256(value);
            if leaf_value != value_hash {
                return Err(VerifyError::ProofValueMismatch {
                    expected: hex(&value_hash),
                    found: hex(&leaf_value),
                });
            }
        }
        (Some(_), None) => return Err(VerifyError::ProofNotInclusion),
        (None, Some((leaf_key, _))) => {
            if leaf_key == key_hash {
                return Err(VerifyError::ProofKeyPresent);
            }
            let common = common_prefix_bits(&key_hash, &leaf_key);
            if common < siblings.len() {
                return Err(VerifyError::ProofLeafOffPath {
                    common,
                    depth: siblings.len(),
                });
            }
        }
        (None, None) => {}
    }
    let mut current = leaf.map_or(SPARSE_MERKLE_PLACEHOLDER_HASH, |(k, v)| leaf_hash(&k, &v));
    let depth = siblings.len();
    for (i, sibling) in siblings.iter().enumerate() {
        current = if bit(&key_hash, depth - 1 - i) {
            internal_hash(sibling, &current)
        } else {
            internal_hash(&current, sibling)
        };
    }
    if current != *root {
        return Err(VerifyError::ProofRootMismatch {
            expected: hex(root),
            found: hex(&current),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_count_from_the_most_significant_bit_of_byte_zero() {
        let mut hash = [0u8; 32];
        hash[0] = 0b1000_0001;
        hash[31] = 1;
        assert!(bit(&hash, 0));
        assert!(!bit(&hash, 1));
        assert!(bit(&hash, 7));
        assert!(bit(&hash, 255));
        assert_eq!(common_prefix_bits(&hash, &hash), 256);
        let mut other = hash;
        other[1] = 0b0010_0000;
        assert_eq!(common_prefix_bits(&hash, &other), 10);
    }

    #[test]
    fn hashes_match_the_worked_examples_of_the_proofs_document() {
        let leaf = leaf_hash(&sha256(b"k"), &sha256(b"v"));
        assert_eq!(
            crate::render::hex(&leaf),
            "a5c0d7057fad512fa1b91b0fb4428572cf64f5175ebeb64bbf0fec26e92082cb"
        );
        assert_eq!(
            crate::render::hex(&SPARSE_MERKLE_PLACEHOLDER_HASH),
            "5350415253455f4d45524b4c455f504c414345484f4c4445525f484153485f5f"
        );
        assert_eq!(INTERNAL_DOMAIN.len(), 16);
    }

    #[test]
    fn empty_tree_proves_every_absence_and_nothing_else() {
        let proof = v1::StateProof::default();
        let root = SPARSE_MERKLE_PLACEHOLDER_HASH;
        assert_eq!(verify_state_proof(&root, b"k", None, &proof), Ok(()));
        assert_eq!(
            verify_state_proof(&root, b"k", Some(b"v"), &proof),
            Err(VerifyError::ProofNotInclusion)
        );
    }

    #[test]
    fn single_leaf_tree_is_its_leaf() {
        let (key, value) = (b"key".as_slice(), b"value".as_slice());
        let root = leaf_hash(&sha256(key), &sha256(value));
        let proof = v1::StateProof {
            leaf: Some(v1::ProofLeaf {
                key_hash: sha256(key).to_vec(),
                value_hash: sha256(value).to_vec(),
            }),
            siblings: vec![],
        };
        assert_eq!(verify_state_proof(&root, key, Some(value), &proof), Ok(()));
        assert!(verify_state_proof(&root, key, Some(b"other"), &proof).is_err());
        assert!(verify_state_proof(&root, key, None, &proof).is_err());
        assert_eq!(verify_state_proof(&root, b"absent", None, &proof), Ok(()));
    }
}
