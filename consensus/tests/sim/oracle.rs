//! The safety oracle, written apart from the production code: it re-derives the signed bytes
//! from the documented layout, counts quorums its own way (`3 * signers > 2 * n`), and checks
//! after every step that honest validators agree, decide only proposed and valid blocks with
//! certificates that verify, never sign two different messages for one (height, round, step),
//! and only report evidence against Byzantine validators.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};
use yrd_consensus::{
    BlockHash, CommitCertificate, Evidence, PublicKey, SignRequest, SignedVote, VoteKind,
};

use super::scheme::test_sign;

/// Payload layout used by the simulator: `b"sim"`, height u64, round u32, proposer u16,
/// nonce u64, validity byte (1 = valid).
pub const PAYLOAD_BYTES: usize = 3 + 8 + 4 + 2 + 8 + 1;

/// A simulated block.
pub fn make_payload(height: u64, round: u32, proposer: u16, nonce: u64, valid: bool) -> Vec<u8> {
    let mut p = Vec::with_capacity(PAYLOAD_BYTES);
    p.extend_from_slice(b"sim");
    p.extend_from_slice(&height.to_be_bytes());
    p.extend_from_slice(&round.to_be_bytes());
    p.extend_from_slice(&proposer.to_be_bytes());
    p.extend_from_slice(&nonce.to_be_bytes());
    p.push(u8::from(valid));
    p
}

/// Hash of a simulated block.
pub fn payload_hash(payload: &[u8]) -> BlockHash {
    BlockHash(Sha256::digest(payload).into())
}

/// Whether a simulated block is valid for `height`.
pub fn payload_valid(payload: &[u8], height: u64) -> bool {
    payload.len() == PAYLOAD_BYTES
        && &payload[..3] == b"sim"
        && payload[3..11] == height.to_be_bytes()
        && payload[PAYLOAD_BYTES - 1] == 1
}

/// The precommit/prevote digest, from the documented layout (independent of the crate's code).
pub fn oracle_vote_digest(
    chain_id: &str,
    kind: u8,
    height: u64,
    round: u32,
    hash: Option<BlockHash>,
) -> [u8; 32] {
    let mut bytes = Vec::with_capacity(96);
    bytes.extend_from_slice(b"yrd/vote/v1");
    bytes.push(0);
    bytes.push(chain_id.len() as u8);
    bytes.extend_from_slice(chain_id.as_bytes());
    bytes.push(kind);
    bytes.extend_from_slice(&height.to_be_bytes());
    bytes.extend_from_slice(&round.to_be_bytes());
    match hash {
        Some(h) => {
            bytes.push(1);
            bytes.extend_from_slice(&h.0);
        }
        None => {
            bytes.push(0);
            bytes.extend_from_slice(&[0u8; 32]);
        }
    }
    Sha256::digest(&bytes).into()
}

fn kind_code(kind: VoteKind) -> u8 {
    match kind {
        VoteKind::Prevote => 1,
        VoteKind::Precommit => 2,
    }
}

/// What the oracle knows and checks.
pub struct Oracle {
    chain_id: String,
    keys: Vec<PublicKey>,
    honest_key: Vec<bool>,
    decided: BTreeMap<u64, BlockHash>,
    proposed: BTreeSet<BlockHash>,
    signed: BTreeMap<(usize, u64, u32, u8), Option<BlockHash>>,
    /// Evidence reports checked.
    pub evidence: u64,
}

impl Oracle {
    /// An oracle for validators `keys`, of which those with `honest_key[i]` are honest.
    pub fn new(chain_id: &str, keys: Vec<PublicKey>, honest_key: Vec<bool>) -> Self {
        Oracle {
            chain_id: chain_id.to_string(),
            keys,
            honest_key,
            decided: BTreeMap::new(),
            proposed: BTreeSet::new(),
            signed: BTreeMap::new(),
            evidence: 0,
        }
    }

    /// A block was proposed (by anyone, valid or not).
    pub fn on_proposed(&mut self, hash: BlockHash) {
        self.proposed.insert(hash);
    }

    /// A validator's key signs `request`: honest keys must never sign two different messages
    /// for one (height, round, step).
    pub fn on_sign(&mut self, key: usize, request: &SignRequest) -> Result<(), String> {
        if !self.honest_key[key] {
            return Ok(());
        }
        let (slot, value) = match request {
            SignRequest::Vote(v) => (
                (key, v.height.0, v.round.0, kind_code(v.kind)),
                v.block_hash,
            ),
            SignRequest::Proposal(p) => ((key, p.height.0, p.round.0, 0), Some(p.block_hash)),
        };
        match self.signed.get(&slot) {
            Some(previous) if *previous != value => Err(format!(
                "honest validator {key} signed two different messages at height {} round {} \
                 step {}: {previous:?} and {value:?}",
                slot.1, slot.2, slot.3
            )),
            Some(_) => Ok(()),
            None => {
                self.signed.insert(slot, value);
                Ok(())
            }
        }
    }

    fn verify_certificate(&self, certificate: &CommitCertificate) -> Result<(), String> {
        let n = self.keys.len();
        let mut signers = BTreeSet::new();
        for (index, signature) in &certificate.signatures {
            let index = usize::from(*index);
            let key = self
                .keys
                .get(index)
                .ok_or_else(|| format!("certificate names unknown validator {index}"))?;
            let digest = oracle_vote_digest(
                &self.chain_id,
                2,
                certificate.height.0,
                certificate.round.0,
                Some(certificate.block_hash),
            );
            if test_sign(key, &digest) != *signature {
                return Err(format!("certificate signature of {index} does not verify"));
            }
            if !signers.insert(index) {
                return Err(format!("certificate repeats validator {index}"));
            }
        }
        if 3 * signers.len() <= 2 * n {
            return Err(format!(
                "certificate has {} signers of {n}: not more than two thirds",
                signers.len()
            ));
        }
        Ok(())
    }

    /// An honest validator decided.
    pub fn on_decide(
        &mut self,
        node: usize,
        height: u64,
        hash: BlockHash,
        payload: &[u8],
        certificate: &CommitCertificate,
    ) -> Result<(), String> {
        if payload_hash(payload) != hash {
            return Err(format!(
                "node {node} decided a payload that does not hash to {hash:?}"
            ));
        }
        if !self.proposed.contains(&hash) {
            return Err(format!(
                "node {node} decided {hash:?} at {height}, never proposed"
            ));
        }
        if !payload_valid(payload, height) {
            return Err(format!(
                "node {node} decided invalid block {hash:?} at {height}"
            ));
        }
        if certificate.height.0 != height || certificate.block_hash != hash {
            return Err(format!(
                "node {node}: certificate is for another block or height"
            ));
        }
        self.verify_certificate(certificate)
            .map_err(|e| format!("node {node} height {height}: {e}"))?;
        match self.decided.get(&height) {
            Some(previous) if *previous != hash => Err(format!(
                "AGREEMENT VIOLATED at height {height}: node {node} decided {hash:?}, another \
                 honest node decided {previous:?}"
            )),
            Some(_) => Ok(()),
            None => {
                self.decided.insert(height, hash);
                Ok(())
            }
        }
    }

    fn vote_verifies(&self, vote: &SignedVote) -> bool {
        let v = vote.vote;
        self.keys.get(usize::from(v.validator)).is_some_and(|key| {
            let digest = oracle_vote_digest(
                &self.chain_id,
                kind_code(v.kind),
                v.height.0,
                v.round.0,
                v.block_hash,
            );
            test_sign(key, &digest) == vote.signature
        })
    }

    /// Evidence was reported: it must be real and must accuse a Byzantine validator.
    pub fn on_evidence(&mut self, evidence: &Evidence) -> Result<(), String> {
        self.evidence += 1;
        match evidence {
            Evidence::Equivocation { vote_a, vote_b } => {
                let (a, b) = (vote_a.vote, vote_b.vote);
                let same_slot = a.validator == b.validator
                    && a.height == b.height
                    && a.round == b.round
                    && a.kind == b.kind;
                if !same_slot || a.block_hash == b.block_hash {
                    return Err(format!("bogus equivocation evidence {a:?} / {b:?}"));
                }
                if !self.vote_verifies(vote_a) || !self.vote_verifies(vote_b) {
                    return Err("equivocation evidence with a bad signature".to_string());
                }
                if self.honest_key[usize::from(a.validator)] {
                    return Err(format!("evidence accuses honest validator {}", a.validator));
                }
            }
            Evidence::ConflictingProposals {
                proposal_a,
                proposal_b,
            } => {
                let (a, b) = (proposal_a.proposal, proposal_b.proposal);
                if a.proposer != b.proposer || a.height != b.height || a.round != b.round || a == b
                {
                    return Err(format!("bogus proposal evidence {a:?} / {b:?}"));
                }
                if self.honest_key[usize::from(a.proposer)] {
                    return Err(format!("evidence accuses honest proposer {}", a.proposer));
                }
            }
        }
        Ok(())
    }
}
