//! Domain types of Tendermint: heights, rounds, steps, votes and proposals, signed or not.
//! Invariant: these are plain values; a `Signed*` value is only trusted after the core (or a
//! certificate check) has verified its signature against the validator set.

use core::fmt;

/// Index of a validator in its [`crate::ValidatorSet`] (the order of the set).
pub type ValidatorIndex = u16;

/// A block height: the consensus instance that decides one block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Height(pub u64);

impl Height {
    /// The next height (saturating: `u64::MAX` is never reached in practice).
    #[must_use]
    pub fn next(self) -> Height {
        Height(self.0.saturating_add(1))
    }
}

impl fmt::Display for Height {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A round within a height; round 0 is the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Round(pub u32);

impl Round {
    /// The next round (saturating).
    #[must_use]
    pub fn next(self) -> Round {
        Round(self.0.saturating_add(1))
    }
}

impl fmt::Display for Round {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The identity of a proposed value, `id(v)` in Algorithm 1. The host decides how it is derived
/// from the payload (typically SHA-256 of the block header); consensus treats it as opaque.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct BlockHash(pub [u8; 32]);

impl fmt::Debug for BlockHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlockHash(")?;
        for byte in &self.0[..6] {
            write!(f, "{byte:02x}")?;
        }
        write!(f, "..)")
    }
}

impl fmt::Display for BlockHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in &self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// A validator's public key: 32 bytes (an Ed25519 key in production).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey(pub [u8; 32]);

/// A signature: 64 bytes (an Ed25519 signature in production).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Signature(pub [u8; 64]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature(")?;
        for byte in &self.0[..6] {
            write!(f, "{byte:02x}")?;
        }
        write!(f, "..)")
    }
}

/// The two vote types of Tendermint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VoteKind {
    /// First voting step of a round.
    Prevote,
    /// Second voting step of a round; 2f+1 precommits for a value decide it.
    Precommit,
}

/// The step of a validator within a round (`step_p` in Algorithm 1), plus the states before the
/// first round starts and after the height is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Step {
    /// The height has not started (no round yet).
    Unstarted,
    /// Waiting for the proposal of the round.
    Propose,
    /// Prevoted; waiting for prevotes.
    Prevote,
    /// Precommitted; waiting for precommits.
    Precommit,
    /// The height is decided; waiting for the host to start the next height.
    Commit,
}

/// An unsigned vote: `<PREVOTE|PRECOMMIT, h, r, id(v) or nil>` from one validator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Vote {
    /// Prevote or precommit.
    pub kind: VoteKind,
    /// Height voted on.
    pub height: Height,
    /// Round voted in.
    pub round: Round,
    /// The value voted for; `None` is nil.
    pub block_hash: Option<BlockHash>,
    /// The voter's index in the validator set of `height`.
    pub validator: ValidatorIndex,
}

/// A vote with its signature over [`crate::vote_signing_message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SignedVote {
    /// The vote.
    pub vote: Vote,
    /// The voter's signature.
    pub signature: Signature,
}

/// An unsigned proposal: `<PROPOSAL, h, r, v, vr>`. The payload travels next to it; the block
/// hash commits to the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Proposal {
    /// Height proposed for.
    pub height: Height,
    /// Round proposed in.
    pub round: Round,
    /// The proof-of-lock round `vr`: `None` is `-1` in Algorithm 1.
    pub pol_round: Option<Round>,
    /// The proposed value's identity.
    pub block_hash: BlockHash,
    /// The proposer's index in the validator set of `height`.
    pub proposer: ValidatorIndex,
}

/// A proposal with its signature over [`crate::proposal_signing_message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SignedProposal {
    /// The proposal.
    pub proposal: Proposal,
    /// The proposer's signature.
    pub signature: Signature,
}

/// The three timeouts of Algorithm 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimeoutStep {
    /// `timeoutPropose` (L21, handled at L57).
    Propose,
    /// `timeoutPrevote` (L35, handled at L61).
    Prevote,
    /// `timeoutPrecommit` (L48, handled at L65).
    Precommit,
}

/// A timeout the core asked the host to schedule; the host hands it back when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timeout {
    /// Height it was scheduled in.
    pub height: Height,
    /// Round it was scheduled in.
    pub round: Round,
    /// Which timeout.
    pub step: TimeoutStep,
}
