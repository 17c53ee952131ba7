//! The signed-message byte layouts and the signature-scheme seam. Invariant: every signature the
//! protocol checks is over a 32-byte message computed here, domain-separated by message type and
//! chain id, so a vote can never be replayed as a proposal, as the other vote kind, or on another
//! chain.
//!
//! # Byte layouts (normative; other implementations must match them byte for byte)
//!
//! All integers are unsigned big-endian. `chain_id` is UTF-8, at most 64 bytes. The message that
//! is signed is the 32-byte SHA-256 digest of the concatenation below.
//!
//! **Vote** (`vote_signing_message`):
//!
//! | bytes | field |
//! |---|---|
//! | 12 | ASCII `yrd/vote/v1` followed by one `0x00` byte |
//! | 1 | `len(chain_id)` |
//! | `len` | `chain_id` |
//! | 1 | kind: `0x01` prevote, `0x02` precommit |
//! | 8 | height (u64) |
//! | 4 | round (u32) |
//! | 1 | `0x01` if the vote is for a block, `0x00` if nil |
//! | 32 | block hash, or 32 zero bytes if nil |
//!
//! **Proposal** (`proposal_signing_message`):
//!
//! | bytes | field |
//! |---|---|
//! | 16 | ASCII `yrd/proposal/v1` followed by one `0x00` byte |
//! | 1 | `len(chain_id)` |
//! | `len` | `chain_id` |
//! | 8 | height (u64) |
//! | 4 | round (u32) |
//! | 1 | `0x01` if there is a proof-of-lock round, `0x00` if it is `-1` |
//! | 4 | proof-of-lock round (u32), or 0 if none |
//! | 32 | block hash |
//!
//! The validator index is not signed: the key that verifies the signature identifies the signer.
//! With Ed25519 the signature is the 64-byte RFC 8032 signature of the 32-byte digest, verified
//! with `verify_strict`.

use sha2::{Digest, Sha256};

use crate::types::{Proposal, PublicKey, Signature, Vote, VoteKind};

/// Domain prefix of vote messages: `b"yrd/vote/v1\0"`.
pub const VOTE_DOMAIN: &[u8; 12] = b"yrd/vote/v1\0";
/// Domain prefix of proposal messages: `b"yrd/proposal/v1\0"`.
pub const PROPOSAL_DOMAIN: &[u8; 16] = b"yrd/proposal/v1\0";

/// The signature scheme the core verifies peers' messages with. Production uses [`Ed25519`]; a
/// simulator may plug in something cheaper. Implementations must be deterministic and must not
/// panic on any input.
pub trait SignatureScheme {
    /// Whether `signature` is `public_key`'s signature of the 32-byte `message`.
    fn verify(&self, public_key: &PublicKey, message: &[u8; 32], signature: &Signature) -> bool;
}

/// Ed25519 (RFC 8032) with `verify_strict`: rejects small-order keys and non-canonical signatures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ed25519;

impl SignatureScheme for Ed25519 {
    fn verify(&self, public_key: &PublicKey, message: &[u8; 32], signature: &Signature) -> bool {
        let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&public_key.0) else {
            return false;
        };
        let signature = ed25519_dalek::Signature::from_bytes(&signature.0);
        key.verify_strict(message, &signature).is_ok()
    }
}

fn chain_id_prefix(hasher: &mut Sha256, chain_id: &str) {
    // Config validation keeps chain ids within CHAIN_ID_BYTES_MAX (< 256); truncating here keeps
    // this function total without a panic path.
    let bytes = chain_id.as_bytes();
    let len = bytes.len().min(u8::MAX as usize);
    hasher.update([len as u8]);
    hasher.update(&bytes[..len]);
}

/// The 32-byte message a validator signs for `vote` on `chain_id` (layout in the module docs).
#[must_use]
pub fn vote_signing_message(chain_id: &str, vote: &Vote) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(VOTE_DOMAIN);
    chain_id_prefix(&mut hasher, chain_id);
    hasher.update([match vote.kind {
        VoteKind::Prevote => 1u8,
        VoteKind::Precommit => 2u8,
    }]);
    hasher.update(vote.height.0.to_be_bytes());
    hasher.update(vote.round.0.to_be_bytes());
    match vote.block_hash {
        Some(hash) => {
            hasher.update([1u8]);
            hasher.update(hash.0);
        }
        None => {
            hasher.update([0u8]);
            hasher.update([0u8; 32]);
        }
    }
    hasher.finalize().into()
}

/// The 32-byte message a proposer signs for `proposal` on `chain_id` (layout in the module docs).
#[must_use]
pub fn proposal_signing_message(chain_id: &str, proposal: &Proposal) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(PROPOSAL_DOMAIN);
    chain_id_prefix(&mut hasher, chain_id);
    hasher.update(proposal.height.0.to_be_bytes());
    hasher.update(proposal.round.0.to_be_bytes());
    match proposal.pol_round {
        Some(round) => {
            hasher.update([1u8]);
            hasher.update(round.0.to_be_bytes());
        }
        None => {
            hasher.update([0u8]);
            hasher.update(0u32.to_be_bytes());
        }
    }
    hasher.update(proposal.block_hash.0);
    hasher.finalize().into()
}
