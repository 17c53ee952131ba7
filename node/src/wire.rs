//! Conversions between the consensus core's types and their protobuf form on the wire and on
//! disk. Every conversion from the wire checks lengths and ranges and refuses what is malformed.

use yrd_consensus::{
    BlockHash, CommitCertificate, Height, Proposal, PublicKey, Round, Signature, SignedProposal,
    SignedVote, ValidatorSet, Vote, VoteKind,
};
use yrd_proto::v1;

/// A malformed consensus message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed consensus message: {0}")]
pub struct WireError(pub String);

fn bytes32(field: &str, bytes: &[u8]) -> Result<[u8; 32], WireError> {
    bytes
        .try_into()
        .map_err(|_| WireError(format!("{field} must be 32 bytes, found {}", bytes.len())))
}

fn signature(bytes: &[u8]) -> Result<Signature, WireError> {
    let array: [u8; 64] = bytes
        .try_into()
        .map_err(|_| WireError(format!("signature must be 64 bytes, found {}", bytes.len())))?;
    Ok(Signature(array))
}

fn index(value: u32) -> Result<u16, WireError> {
    u16::try_from(value).map_err(|_| WireError(format!("validator index {value} out of range")))
}

/// A signed proposal to the wire.
#[must_use]
pub fn proposal_to_wire(proposal: &SignedProposal, payload: Vec<u8>) -> v1::ConsensusMessage {
    let p = &proposal.proposal;
    v1::ConsensusMessage {
        message: Some(v1::consensus_message::Message::Proposal(
            v1::ConsensusProposal {
                height: p.height.0,
                round: p.round.0,
                pol_round: p.pol_round.map_or(-1, |r| i64::from(r.0)),
                block_hash: p.block_hash.0.to_vec(),
                proposer: u32::from(p.proposer),
                signature: proposal.signature.0.to_vec(),
                payload,
            },
        )),
    }
}

/// A signed vote to the wire.
#[must_use]
pub fn vote_to_wire(vote: &SignedVote) -> v1::ConsensusMessage {
    let v = &vote.vote;
    v1::ConsensusMessage {
        message: Some(v1::consensus_message::Message::Vote(v1::ConsensusVote {
            kind: match v.kind {
                VoteKind::Prevote => v1::VoteKind::Prevote as i32,
                VoteKind::Precommit => v1::VoteKind::Precommit as i32,
            },
            height: v.height.0,
            round: v.round.0,
            block_hash: v.block_hash.map(|h| h.0.to_vec()).unwrap_or_default(),
            validator: u32::from(v.validator),
            signature: vote.signature.0.to_vec(),
        })),
    }
}

/// A proposal from the wire, with its payload.
pub fn proposal_from_wire(
    wire: v1::ConsensusProposal,
) -> Result<(SignedProposal, Vec<u8>), WireError> {
    let pol_round = match wire.pol_round {
        -1 => None,
        r => {
            Some(Round(u32::try_from(r).map_err(|_| {
                WireError(format!("pol_round {r} out of range"))
            })?))
        }
    };
    Ok((
        SignedProposal {
            proposal: Proposal {
                height: Height(wire.height),
                round: Round(wire.round),
                pol_round,
                block_hash: BlockHash(bytes32("block_hash", &wire.block_hash)?),
                proposer: index(wire.proposer)?,
            },
            signature: signature(&wire.signature)?,
        },
        wire.payload,
    ))
}

/// A vote from the wire.
pub fn vote_from_wire(wire: &v1::ConsensusVote) -> Result<SignedVote, WireError> {
    let kind = match v1::VoteKind::try_from(wire.kind) {
        Ok(v1::VoteKind::Prevote) => VoteKind::Prevote,
        Ok(v1::VoteKind::Precommit) => VoteKind::Precommit,
        _ => return Err(WireError(format!("unknown vote kind {}", wire.kind))),
    };
    let block_hash = if wire.block_hash.is_empty() {
        None
    } else {
        Some(BlockHash(bytes32("block_hash", &wire.block_hash)?))
    };
    Ok(SignedVote {
        vote: Vote {
            kind,
            height: Height(wire.height),
            round: Round(wire.round),
            block_hash,
            validator: index(wire.validator)?,
        },
        signature: signature(&wire.signature)?,
    })
}

/// A commit certificate to its stored form.
#[must_use]
pub fn certificate_to_wire(certificate: &CommitCertificate) -> v1::CommitCertificate {
    v1::CommitCertificate {
        height: certificate.height.0,
        round: certificate.round.0,
        block_hash: certificate.block_hash.0.to_vec(),
        signatures: certificate
            .signatures
            .iter()
            .map(|(index, signature)| v1::CommitSignature {
                validator_index: u32::from(*index),
                signature: signature.0.to_vec(),
            })
            .collect(),
    }
}

/// A commit certificate from its stored or received form (signatures are not checked here);
/// the same checks a light client makes (`yrd_verify::certificate_from_wire`).
pub fn certificate_from_wire(wire: &v1::CommitCertificate) -> Result<CommitCertificate, WireError> {
    yrd_verify::certificate_from_wire(wire).map_err(|error| WireError(error.to_string()))
}

/// The consensus validator set from the chaincode's validator records.
pub fn validator_set(records: &[v1::ValidatorRecord]) -> Result<ValidatorSet, WireError> {
    let keys = records
        .iter()
        .map(|r| bytes32("validator key", &r.public_key).map(PublicKey))
        .collect::<Result<Vec<_>, _>>()?;
    ValidatorSet::new(keys).map_err(|e| WireError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vote_round_trip_and_refusals() {
        let vote = SignedVote {
            vote: Vote {
                kind: VoteKind::Precommit,
                height: Height(5),
                round: Round(1),
                block_hash: Some(BlockHash([7; 32])),
                validator: 3,
            },
            signature: Signature([9; 64]),
        };
        let Some(v1::consensus_message::Message::Vote(wire)) = vote_to_wire(&vote).message else {
            panic!("vote")
        };
        assert_eq!(vote_from_wire(&wire).expect("decode"), vote);
        let mut bad = wire.clone();
        bad.block_hash = vec![1; 31];
        assert!(vote_from_wire(&bad).is_err());
        let mut bad = wire;
        bad.validator = 70_000;
        assert!(vote_from_wire(&bad).is_err());
    }
}
