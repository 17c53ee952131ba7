//! The commit certificate: more than two thirds of the precommit signatures for one block at one
//! height and round. Invariant: [`CommitCertificate::verify`] needs nothing but the validator set
//! and the chain id, so a light client can check a decided block on its own.

use crate::error::Error;
use crate::signing::{vote_signing_message, Ed25519, SignatureScheme};
use crate::types::{BlockHash, Height, Round, Signature, ValidatorIndex, Vote, VoteKind};
use crate::validators::ValidatorSet;

/// Proof that `block_hash` was decided at `height`: precommits `<PRECOMMIT, height, round,
/// block_hash>` from a quorum of the validator set, listed by strictly ascending validator index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitCertificate {
    /// The decided height.
    pub height: Height,
    /// The round whose precommits decided it.
    pub round: Round,
    /// The decided block.
    pub block_hash: BlockHash,
    /// `(validator index, signature of the precommit)`, strictly ascending by index.
    pub signatures: Vec<(ValidatorIndex, Signature)>,
}

impl CommitCertificate {
    /// Verifies with Ed25519 (`verify_strict`) against `validators` on `chain_id`.
    pub fn verify(&self, validators: &ValidatorSet, chain_id: &str) -> Result<(), Error> {
        self.verify_with(&Ed25519, validators, chain_id)
    }

    /// Verifies with `scheme`: rejects more signatures than validators, indices not strictly
    /// ascending (so no duplicate signer), unknown indices, any invalid signature, and fewer
    /// than `validators.quorum()` signers.
    pub fn verify_with<S: SignatureScheme>(
        &self,
        scheme: &S,
        validators: &ValidatorSet,
        chain_id: &str,
    ) -> Result<(), Error> {
        // Bound the work before doing any: at most one signature per validator.
        if self.signatures.len() > validators.len() {
            return Err(Error::TooManySignatures {
                count: self.signatures.len(),
                max: validators.len(),
            });
        }
        let mut previous: Option<ValidatorIndex> = None;
        for (index, _) in &self.signatures {
            if let Some(previous) = previous {
                if *index == previous {
                    return Err(Error::DuplicateSigner { index: *index });
                }
                if *index < previous {
                    return Err(Error::UnorderedSigners {
                        previous,
                        index: *index,
                    });
                }
            }
            previous = Some(*index);
        }
        if self.signatures.len() < validators.quorum() {
            return Err(Error::InsufficientQuorum {
                count: self.signatures.len(),
                quorum: validators.quorum(),
            });
        }
        for (index, signature) in &self.signatures {
            let key = validators.key(*index).ok_or(Error::UnknownValidator {
                index: *index,
                count: validators.len(),
            })?;
            let vote = Vote {
                kind: VoteKind::Precommit,
                height: self.height,
                round: self.round,
                block_hash: Some(self.block_hash),
                validator: *index,
            };
            let message = vote_signing_message(chain_id, &vote);
            if !scheme.verify(key, &message, signature) {
                return Err(Error::InvalidSignature { index: *index });
            }
        }
        Ok(())
    }
}
