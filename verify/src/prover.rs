//! The prover side: a `jmt` proof turned into its wire form. `jmt` keeps a proof's siblings
//! private, so they are read from its borsh encoding, whose layout is:
//!
//! ```text
//! leaf:     u8 0 (none) | u8 1, key_hash[32], value_hash[32]
//! siblings: u32 LE count, then per sibling a u8 tag:
//!           0 Null (hash = placeholder)
//!           1 Internal(left[32], right[32]) (hash = internal(left, right))
//!           2 Leaf(key_hash[32], value_hash[32]) (hash = leaf(key_hash, value_hash))
//! ```

use yrd_proto::signing::Hash;
use yrd_proto::v1;

use crate::error::VerifyError;
use crate::limits::PROOF_SIBLINGS_MAX;
use crate::state::{internal_hash, leaf_hash, SPARSE_MERKLE_PLACEHOLDER_HASH};

struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], VerifyError> {
        if self.bytes.len() < N {
            return Err(malformed(format!(
                "ends early: {N} more bytes needed, {} left",
                self.bytes.len()
            )));
        }
        let (head, rest) = self.bytes.split_at(N);
        self.bytes = rest;
        head.try_into()
            .map_err(|_| malformed("slice length".to_owned()))
    }

    fn byte(&mut self) -> Result<u8, VerifyError> {
        Ok(self.take::<1>()?[0])
    }
}

fn malformed(reason: String) -> VerifyError {
    VerifyError::Malformed {
        what: "jmt proof encoding",
        reason,
    }
}

/// The wire form of a `jmt` proof over SHA-256.
pub fn state_proof_from_jmt(
    proof: &jmt::proof::SparseMerkleProof<sha2::Sha256>,
) -> Result<v1::StateProof, VerifyError> {
    let bytes = borsh::to_vec(proof).map_err(|error| malformed(error.to_string()))?;
    let mut reader = Reader { bytes: &bytes };
    let leaf = match reader.byte()? {
        0 => None,
        1 => {
            let key_hash: Hash = reader.take()?;
            let value_hash: Hash = reader.take()?;
            Some(v1::ProofLeaf {
                key_hash: key_hash.to_vec(),
                value_hash: value_hash.to_vec(),
            })
        }
        tag => return Err(malformed(format!("leaf option tag {tag}"))),
    };
    let count = u32::from_le_bytes(reader.take()?) as usize;
    if count > PROOF_SIBLINGS_MAX {
        return Err(malformed(format!(
            "{count} siblings, more than {PROOF_SIBLINGS_MAX}"
        )));
    }
    let mut siblings = Vec::with_capacity(count);
    for _ in 0..count {
        let hash = match reader.byte()? {
            0 => SPARSE_MERKLE_PLACEHOLDER_HASH,
            1 => {
                let left: Hash = reader.take()?;
                let right: Hash = reader.take()?;
                internal_hash(&left, &right)
            }
            2 => {
                let key_hash: Hash = reader.take()?;
                let value_hash: Hash = reader.take()?;
                leaf_hash(&key_hash, &value_hash)
            }
            tag => return Err(malformed(format!("sibling tag {tag}"))),
        };
        siblings.push(hash.to_vec());
    }
    if !reader.bytes.is_empty() {
        return Err(malformed(format!(
            "{} bytes left after the proof",
            reader.bytes.len()
        )));
    }
    Ok(v1::StateProof { leaf, siblings })
}
