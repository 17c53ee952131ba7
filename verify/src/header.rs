//! Certified headers and the validator sets that decide them. Invariant: a [`ProvenHeader`]
//! exists only for header bytes that are the canonical encoding of a header of the trusted
//! chain, whose block hash a quorum of the validator set deciding its height precommitted.
//!
//! The set of a height is derived from the genesis set by following a [`v1::ValidatorSetProof`]:
//! each change is a header, certified by the set in force at its height, whose
//! `next_validator_set_hash` names a new set that decides every later height until the next
//! change.

use prost::Message;
use yrd_consensus::{
    BlockHash, CommitCertificate, Height, PublicKey, Round, Signature, ValidatorSet,
};
use yrd_proto::signing::{check_chain_id, signing_digest, Domain, Hash};
use yrd_proto::v1;

use crate::error::{Context, VerifyError};
use crate::limits::{CERTIFICATE_SIGNATURES_MAX, HEADER_BYTES_MAX, VALIDATOR_CHANGES_MAX};
use crate::render::hex;
use crate::state::hash32;

/// What a verifier trusts: the chain id and the validator set of the genesis, which decides
/// height 1 and every height until the first change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trust {
    chain_id: String,
    validators: ValidatorSet,
}

impl Trust {
    /// The trust root of a chain, from its genesis.
    pub fn from_genesis(genesis: &v1::Genesis) -> Result<Self, VerifyError> {
        let keys: Vec<&[u8]> = genesis
            .validators
            .iter()
            .map(|record| record.public_key.as_slice())
            .collect();
        let validators = validator_set(&keys).context("genesis validators")?;
        Self::new(genesis.chain_id.clone(), validators)
    }

    /// A trust root from a chain id and the validator set that decides height 1.
    pub fn new(chain_id: String, validators: ValidatorSet) -> Result<Self, VerifyError> {
        check_chain_id(&chain_id).map_err(VerifyError::ChainId)?;
        Ok(Self {
            chain_id,
            validators,
        })
    }

    /// The trusted chain id.
    #[must_use]
    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// The genesis validator set.
    #[must_use]
    pub fn genesis_validators(&self) -> &ValidatorSet {
        &self.validators
    }
}

/// A header whose bytes, chain and commit certificate were verified.
#[derive(Debug, Clone, PartialEq)]
pub struct ProvenHeader {
    /// The decoded header.
    pub header: v1::BlockHeader,
    /// Its block hash: the digest of the header bytes under the block-header domain.
    pub block_hash: Hash,
    /// Validators whose precommits the certificate carries.
    pub signers: usize,
    /// Size of the validator set that decided the height.
    pub validators: usize,
}

impl ProvenHeader {
    /// The proven height.
    #[must_use]
    pub fn height(&self) -> u64 {
        self.header.height
    }

    /// The proven state root.
    pub fn state_root(&self) -> Result<Hash, VerifyError> {
        hash32("header state_root", &self.header.state_root)
    }
}

/// A validator set from 32-byte keys in canonical order.
pub fn validator_set(keys: &[&[u8]]) -> Result<ValidatorSet, VerifyError> {
    if keys.len() > yrd_proto::limits::VALIDATORS_MAX {
        return Err(VerifyError::TooMany {
            what: "validators",
            found: keys.len(),
            max: yrd_proto::limits::VALIDATORS_MAX,
        });
    }
    let keys = keys
        .iter()
        .map(|key| hash32("validator public key", key).map(PublicKey))
        .collect::<Result<Vec<_>, _>>()?;
    ValidatorSet::new(keys).map_err(VerifyError::ValidatorSet)
}

/// A commit certificate from its wire form, with every size checked (signatures are not
/// verified here).
pub fn certificate_from_wire(
    wire: &v1::CommitCertificate,
) -> Result<CommitCertificate, VerifyError> {
    if wire.signatures.len() > CERTIFICATE_SIGNATURES_MAX {
        return Err(VerifyError::TooMany {
            what: "certificate signatures",
            found: wire.signatures.len(),
            max: CERTIFICATE_SIGNATURES_MAX,
        });
    }
    let signatures =
        wire.signatures
            .iter()
            .map(|signature| {
                let index = u16::try_from(signature.validator_index).map_err(|_| {
                    VerifyError::Malformed {
                        what: "certificate validator index",
                        reason: format!("{} does not fit 16 bits", signature.validator_index),
                    }
                })?;
                let bytes: [u8; 64] = signature.signature.as_slice().try_into().map_err(|_| {
                    VerifyError::Malformed {
                        what: "certificate signature",
                        reason: format!("must be 64 bytes, found {}", signature.signature.len()),
                    }
                })?;
                Ok((index, Signature(bytes)))
            })
            .collect::<Result<Vec<_>, VerifyError>>()?;
    Ok(CommitCertificate {
        height: Height(wire.height),
        round: Round(wire.round),
        block_hash: BlockHash(hash32("certificate block_hash", &wire.block_hash)?),
        signatures,
    })
}

/// Decodes header bytes of the trusted chain: bounded, canonical, every hash field 32 bytes.
fn decode_header(chain_id: &str, bytes: &[u8]) -> Result<v1::BlockHeader, VerifyError> {
    if bytes.len() > HEADER_BYTES_MAX {
        return Err(VerifyError::TooLarge {
            what: "header",
            found: bytes.len(),
            max: HEADER_BYTES_MAX,
        });
    }
    let header = v1::BlockHeader::decode(bytes).map_err(|error| VerifyError::Malformed {
        what: "header",
        reason: error.to_string(),
    })?;
    if header.chain_id != chain_id {
        return Err(VerifyError::Mismatch {
            what: "header chain_id",
            expected: format!("{chain_id:?}"),
            found: format!("{:?}", header.chain_id),
        });
    }
    if header.encode_to_vec() != bytes {
        return Err(VerifyError::NonCanonicalHeader);
    }
    for (what, field) in [
        ("header parent_hash", &header.parent_hash),
        ("header proposer", &header.proposer),
        ("header transactions_root", &header.transactions_root),
        ("header receipts_root", &header.receipts_root),
        ("header state_root", &header.state_root),
        ("header validator_set_hash", &header.validator_set_hash),
        (
            "header next_validator_set_hash",
            &header.next_validator_set_hash,
        ),
    ] {
        hash32(what, field)?;
    }
    if header.height == 0 {
        return Err(VerifyError::Inconsistent(
            "header height is 0; blocks start at height 1".to_owned(),
        ));
    }
    Ok(header)
}

/// Verifies a certified header of `chain_id` against the validator set deciding its height.
pub fn verify_certified_header(
    chain_id: &str,
    validators: &ValidatorSet,
    certified: &v1::CertifiedHeader,
) -> Result<ProvenHeader, VerifyError> {
    let header = decode_header(chain_id, &certified.header)?;
    let block_hash = signing_digest(Domain::BlockHeader, chain_id, &certified.header)
        .map_err(VerifyError::ChainId)?;
    let wire = certified.certificate.as_ref().ok_or(VerifyError::Missing {
        what: "certificate",
    })?;
    let certificate = certificate_from_wire(wire)?;
    if certificate.height.0 != header.height {
        return Err(VerifyError::Mismatch {
            what: "certificate height",
            expected: header.height.to_string(),
            found: certificate.height.0.to_string(),
        });
    }
    if certificate.block_hash.0 != block_hash {
        return Err(VerifyError::Mismatch {
            what: "certificate block_hash",
            expected: hex(&block_hash),
            found: hex(&certificate.block_hash.0),
        });
    }
    let set_hash = validators.hash();
    if header.validator_set_hash != set_hash {
        return Err(VerifyError::Mismatch {
            what: "header validator_set_hash (the set deciding this height)",
            expected: hex(&set_hash),
            found: hex(&header.validator_set_hash),
        });
    }
    certificate
        .verify(validators, chain_id)
        .map_err(VerifyError::Certificate)?;
    Ok(ProvenHeader {
        header,
        block_hash,
        signers: certificate.signatures.len(),
        validators: validators.len(),
    })
}

/// The validator sets of heights `1 ..= up_to`, derived from the genesis set by verified changes.
#[derive(Debug, Clone)]
pub struct ValidatorSchedule {
    chain_id: String,
    /// `(first height decided, set)`, by increasing height; the first is the genesis set at 1.
    sets: Vec<(u64, ValidatorSet)>,
    up_to: u64,
}

impl ValidatorSchedule {
    /// Follows `proof` from the genesis set of `trust` up to height `up_to`. Every change must be
    /// at a height below `up_to`, in strictly increasing order, certified by the set in force at
    /// its height, and must name the new set by its hash.
    pub fn follow(
        trust: &Trust,
        proof: Option<&v1::ValidatorSetProof>,
        up_to: u64,
    ) -> Result<Self, VerifyError> {
        let mut schedule = Self {
            chain_id: trust.chain_id.clone(),
            sets: vec![(1, trust.validators.clone())],
            up_to,
        };
        let changes = proof.map_or(&[][..], |proof| proof.changes.as_slice());
        if changes.len() > VALIDATOR_CHANGES_MAX {
            return Err(VerifyError::TooMany {
                what: "validator set changes",
                found: changes.len(),
                max: VALIDATOR_CHANGES_MAX,
            });
        }
        for (position, change) in changes.iter().enumerate() {
            schedule
                .apply(change)
                .context_with(|| format!("validator set change {position}"))?;
        }
        Ok(schedule)
    }

    fn apply(&mut self, change: &v1::ValidatorSetChange) -> Result<(), VerifyError> {
        let certified = change.header.as_ref().ok_or(VerifyError::Missing {
            what: "change header",
        })?;
        // Decode once to learn the height, then verify against the set of that height.
        let header = decode_header(&self.chain_id, &certified.header)?;
        let height = header.height;
        if height >= self.up_to {
            return Err(VerifyError::Inconsistent(format!(
                "change at height {height} is not below height {} the answer is about",
                self.up_to
            )));
        }
        let (last_from, _) = self.sets[self.sets.len() - 1];
        if height < last_from {
            return Err(VerifyError::Inconsistent(format!(
                "change at height {height} is not after the previous change (which decides from \
                 height {last_from})"
            )));
        }
        let proven = verify_certified_header(&self.chain_id, self.set_at(height), certified)
            .context_with(|| format!("header of height {height}"))?;
        if proven.header.next_validator_set_hash == proven.header.validator_set_hash {
            return Err(VerifyError::Inconsistent(format!(
                "header of height {height} does not change the validator set"
            )));
        }
        let keys: Vec<&[u8]> = change.validators.iter().map(Vec::as_slice).collect();
        let set = validator_set(&keys).context("new validators")?;
        let set_hash = set.hash();
        if proven.header.next_validator_set_hash != set_hash {
            return Err(VerifyError::Mismatch {
                what: "header next_validator_set_hash (the new set)",
                expected: hex(&set_hash),
                found: hex(&proven.header.next_validator_set_hash),
            });
        }
        self.sets.push((height + 1, set));
        Ok(())
    }

    /// The set that decides `height`.
    #[must_use]
    pub fn set_at(&self, height: u64) -> &ValidatorSet {
        let position = self.sets.partition_point(|(from, _)| *from <= height);
        // sets[0] starts at height 1; height 0 (never a block) falls back to the genesis set.
        &self.sets[position.max(1) - 1].1
    }

    /// The trusted chain id.
    #[must_use]
    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// Number of changes followed.
    #[must_use]
    pub fn changes(&self) -> usize {
        self.sets.len() - 1
    }

    /// Verifies a certified header of height at most `up_to` against the set of its height.
    pub fn verify_header(
        &self,
        certified: &v1::CertifiedHeader,
    ) -> Result<ProvenHeader, VerifyError> {
        let header = decode_header(&self.chain_id, &certified.header)?;
        if header.height > self.up_to {
            return Err(VerifyError::Inconsistent(format!(
                "header of height {} is above height {} the answer is about",
                header.height, self.up_to
            )));
        }
        verify_certified_header(&self.chain_id, self.set_at(header.height), certified)
            .context_with(|| format!("header of height {}", header.height))
    }
}
