//! The driver: the host-facing [`Consensus`] state machine. It owns one height at a time: the
//! validator set, received proposals and their validity, the vote keeper, the "for the first
//! time" guards, outstanding signing requests, the future-height buffer and the double-signing
//! guard. It evaluates the `upon` conditions of Algorithm 1 and feeds them to [`round::apply`].
//!
//! Invariants:
//! * a peer's vote or proposal counts only after its signature verified under the validator set;
//! * `Persist` precedes every `Sign`, and nothing is ever sent to be signed that
//!   [`SignedState::permits`] rejects, so a restored validator cannot equivocate;
//! * every buffer is bounded by [`crate::limits`]; handling an input does bounded work;
//! * outputs depend only on the inputs (no clock, no randomness, no hash-map order).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::certificate::CommitCertificate;
use crate::error::Error;
use crate::limits::{
    CHAIN_ID_BYTES_MAX, FUTURE_MESSAGES_MAX, FUTURE_MESSAGES_PER_VALIDATOR_MAX,
    FUTURE_PAYLOAD_BYTES_MAX, HEIGHTS_AHEAD_MAX, PAYLOAD_BYTES_MAX, PENDING_SIGNATURES_MAX,
    PROPOSALS_PER_ROUND_MAX, ROUNDS_AHEAD_MAX, TIMEOUT_BASE_MS_DEFAULT, TIMEOUT_DELTA_MS_DEFAULT,
    TIMEOUT_MAX_MS, TRANSITIONS_PER_INPUT_MAX,
};
use crate::round::{self, BreakForTesting, RoundInput, RoundOutput, RoundState};
use crate::safety::{SafetyData, SignStep, SignedState};
use crate::signing::{proposal_signing_message, vote_signing_message, SignatureScheme};
use crate::types::{
    BlockHash, Height, Proposal, PublicKey, Round, Signature, SignedProposal, SignedVote, Step,
    Timeout, TimeoutStep, ValidatorIndex, Vote, VoteKind,
};
use crate::validators::ValidatorSet;
use crate::votes::{AddVote, VoteKeeper};

/// Timeout durations: `base + delta * round` milliseconds per step, capped at
/// [`TIMEOUT_MAX_MS`]. Growing timeouts give liveness after GST (paper, section 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeoutConfig {
    /// `timeoutPropose(0)`.
    pub propose_base_ms: u64,
    /// Added to `timeoutPropose` per round.
    pub propose_delta_ms: u64,
    /// `timeoutPrevote(0)`.
    pub prevote_base_ms: u64,
    /// Added to `timeoutPrevote` per round.
    pub prevote_delta_ms: u64,
    /// `timeoutPrecommit(0)`.
    pub precommit_base_ms: u64,
    /// Added to `timeoutPrecommit` per round.
    pub precommit_delta_ms: u64,
}

impl Default for TimeoutConfig {
    fn default() -> Self {
        TimeoutConfig {
            propose_base_ms: TIMEOUT_BASE_MS_DEFAULT,
            propose_delta_ms: TIMEOUT_DELTA_MS_DEFAULT,
            prevote_base_ms: TIMEOUT_BASE_MS_DEFAULT,
            prevote_delta_ms: TIMEOUT_DELTA_MS_DEFAULT,
            precommit_base_ms: TIMEOUT_BASE_MS_DEFAULT,
            precommit_delta_ms: TIMEOUT_DELTA_MS_DEFAULT,
        }
    }
}

impl TimeoutConfig {
    /// The duration of timeout `step` in `round`, in milliseconds.
    #[must_use]
    pub fn duration_ms(&self, step: TimeoutStep, round: Round) -> u64 {
        let (base, delta) = match step {
            TimeoutStep::Propose => (self.propose_base_ms, self.propose_delta_ms),
            TimeoutStep::Prevote => (self.prevote_base_ms, self.prevote_delta_ms),
            TimeoutStep::Precommit => (self.precommit_base_ms, self.precommit_delta_ms),
        };
        base.saturating_add(delta.saturating_mul(u64::from(round.0)))
            .min(TIMEOUT_MAX_MS)
    }
}

/// Configuration of one validator (or observer: a key outside the validator set never signs).
#[derive(Debug, Clone)]
pub struct Config<S> {
    /// The chain id, signed into every message (at most [`CHAIN_ID_BYTES_MAX`] bytes).
    pub chain_id: String,
    /// This validator's public key; its index is looked up in each height's validator set.
    pub public_key: PublicKey,
    /// Timeout durations.
    pub timeouts: TimeoutConfig,
    /// The scheme that verifies peers' signatures ([`crate::Ed25519`] in production).
    pub scheme: S,
    /// Deliberate protocol breaks, for the simulator's self-test only. Keep the default.
    #[doc(hidden)]
    pub breaks: BreakForTesting,
}

impl<S> Config<S> {
    /// A configuration with the default timeouts and no testing breaks.
    pub fn new(chain_id: impl Into<String>, public_key: PublicKey, scheme: S) -> Self {
        Config {
            chain_id: chain_id.into(),
            public_key,
            timeouts: TimeoutConfig::default(),
            scheme,
            breaks: BreakForTesting::default(),
        }
    }
}

/// Something the host must sign with this validator's key: the signature is over
/// [`SignRequest::message`], and the answer comes back as [`Input::Signed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignRequest {
    /// A vote of ours.
    Vote(Vote),
    /// A proposal of ours.
    Proposal(Proposal),
}

impl SignRequest {
    /// The 32-byte message to sign (see [`crate::signing`] for the layouts).
    #[must_use]
    pub fn message(&self, chain_id: &str) -> [u8; 32] {
        match self {
            SignRequest::Vote(vote) => vote_signing_message(chain_id, vote),
            SignRequest::Proposal(proposal) => proposal_signing_message(chain_id, proposal),
        }
    }
}

/// Proof that a validator misbehaved; both messages carry valid signatures of the same key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evidence {
    /// Two different votes of one validator for the same height, round and kind.
    Equivocation {
        /// The vote counted.
        vote_a: SignedVote,
        /// The conflicting vote.
        vote_b: SignedVote,
    },
    /// Two different proposals of one proposer for the same height and round.
    ConflictingProposals {
        /// The proposal received first.
        proposal_a: SignedProposal,
        /// The conflicting proposal.
        proposal_b: SignedProposal,
    },
}

/// What the host hands to the core.
#[derive(Debug, Clone)]
pub enum Input {
    /// Start `height` with its validator set (first start, after `Decide`, or after a restore).
    StartHeight {
        /// The height to start; must be after the current one.
        height: Height,
        /// The validators of that height.
        validators: ValidatorSet,
    },
    /// A proposal from the network. The host has checked that `payload` hashes to
    /// `proposal.proposal.block_hash`; a copy that does not is malformed and never handed in.
    Proposal {
        /// The signed proposal.
        proposal: SignedProposal,
        /// The proposed block.
        payload: Vec<u8>,
    },
    /// A vote from the network.
    Vote(SignedVote),
    /// A timeout scheduled by [`Output::ScheduleTimeout`] expired.
    TimeoutFired(Timeout),
    /// Answer to [`Output::GetValue`]: the block to propose.
    ProposeValue {
        /// Height asked for.
        height: Height,
        /// Round asked for.
        round: Round,
        /// The block's hash.
        block_hash: BlockHash,
        /// The block.
        payload: Vec<u8>,
    },
    /// Answer to [`Output::ValidateValue`]: `valid(v)`.
    ValueValidity {
        /// Height of the value.
        height: Height,
        /// The value.
        block_hash: BlockHash,
        /// Whether it is a valid block.
        valid: bool,
    },
    /// Answer to [`Output::Sign`].
    Signed {
        /// The request answered, unchanged.
        request: SignRequest,
        /// This validator's signature of `request.message(chain_id)`.
        signature: Signature,
    },
    /// A block decided by others, with its certificate (catch-up). The host has checked that
    /// `payload` hashes to `block_hash`.
    DecidedElsewhere {
        /// The decided block's hash.
        block_hash: BlockHash,
        /// The decided block.
        payload: Vec<u8>,
        /// Its commit certificate, for the current height.
        certificate: CommitCertificate,
    },
}

/// What the core asks the host to do, in order (see the crate docs for the ordering contract).
#[derive(Debug, Clone)]
#[must_use]
pub enum Output {
    /// Make this durable before executing any later output.
    Persist(SafetyData),
    /// Sign this with the validator key and answer with [`Input::Signed`].
    Sign(SignRequest),
    /// Send this proposal to all validators.
    BroadcastProposal {
        /// The signed proposal.
        proposal: SignedProposal,
        /// The proposed block.
        payload: Vec<u8>,
    },
    /// Send this vote to all validators.
    BroadcastVote(SignedVote),
    /// Hand `timeout` back as [`Input::TimeoutFired`] after `duration_ms`.
    ScheduleTimeout {
        /// The timeout.
        timeout: Timeout,
        /// Its duration.
        duration_ms: u64,
    },
    /// Produce a block to propose and answer with [`Input::ProposeValue`].
    GetValue {
        /// Height to propose for.
        height: Height,
        /// Round to propose in.
        round: Round,
    },
    /// Judge this block and answer with [`Input::ValueValidity`].
    ValidateValue {
        /// Height of the block.
        height: Height,
        /// Round it was proposed in.
        round: Round,
        /// Its hash.
        block_hash: BlockHash,
        /// The block.
        payload: Vec<u8>,
    },
    /// `height` is decided: execute the block, then send [`Input::StartHeight`] for the next.
    Decide {
        /// The decided height.
        height: Height,
        /// The decided block's hash.
        block_hash: BlockHash,
        /// The decided block.
        payload: Vec<u8>,
        /// Precommits of a quorum for it.
        certificate: CommitCertificate,
    },
    /// A validator misbehaved.
    Evidence(Evidence),
    /// An input was rejected (bad signature, wrong proposer, ...): useful for peer scoring.
    Rejected(Error),
}

#[derive(Debug, Clone)]
struct StoredProposal {
    signed: SignedProposal,
    payload: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Validity {
    Pending,
    Valid,
    Invalid,
}

/// The "for the first time" conditions of Algorithm 1, remembered per round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Guard {
    /// L34.
    PolkaAny,
    /// L36.
    PolkaCurrent,
    /// L47.
    PrecommitAny,
}

/// A vote or proposal from the network, as kept in the future-height buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PeerMessage {
    Vote(SignedVote),
    Proposal {
        proposal: SignedProposal,
        payload: Vec<u8>,
    },
}

impl PeerMessage {
    fn height(&self) -> Height {
        match self {
            PeerMessage::Vote(v) => v.vote.height,
            PeerMessage::Proposal { proposal, .. } => proposal.proposal.height,
        }
    }
    fn payload_len(&self) -> usize {
        match self {
            PeerMessage::Vote(_) => 0,
            PeerMessage::Proposal { payload, .. } => payload.len(),
        }
    }
}

/// The Tendermint consensus core of one validator. Drive it with [`Consensus::handle`].
#[derive(Debug, Clone)]
pub struct Consensus<S> {
    config: Config<S>,
    validators: Option<ValidatorSet>,
    me: Option<ValidatorIndex>,
    state: RoundState,
    proposals: BTreeMap<Round, Vec<StoredProposal>>,
    validity: BTreeMap<BlockHash, Validity>,
    votes: VoteKeeper,
    guards: BTreeSet<(Round, Guard)>,
    last_signed: Option<SignedState>,
    pending: VecDeque<(SignRequest, Vec<u8>)>,
    own_value: Option<(Round, BlockHash, Vec<u8>)>,
    future: BTreeMap<ValidatorIndex, Vec<PeerMessage>>,
    future_count: usize,
    future_payload_bytes: usize,
    resume: Option<SafetyData>,
}

impl<S: SignatureScheme> Consensus<S> {
    /// A fresh validator that has never signed anything. Send [`Input::StartHeight`] next.
    pub fn new(config: Config<S>) -> Result<Self, Error> {
        if config.chain_id.len() > CHAIN_ID_BYTES_MAX {
            return Err(Error::ChainIdTooLong {
                len: config.chain_id.len(),
                max: CHAIN_ID_BYTES_MAX,
            });
        }
        Ok(Consensus {
            config,
            validators: None,
            me: None,
            state: RoundState::new(Height(0)),
            proposals: BTreeMap::new(),
            validity: BTreeMap::new(),
            votes: VoteKeeper::new(0),
            guards: BTreeSet::new(),
            last_signed: None,
            pending: VecDeque::new(),
            own_value: None,
            future: BTreeMap::new(),
            future_count: 0,
            future_payload_bytes: 0,
            resume: None,
        })
    }

    /// A validator restarted from its last persisted [`SafetyData`]. Send [`Input::StartHeight`]
    /// next: for `safety.height` it resumes the persisted round, step and lock (and re-signs its
    /// last vote, which is the same vote, so it can be re-sent); for a later height it starts
    /// fresh; an earlier height (a host whose stored chain is behind its safety data) runs
    /// without signing anything, and the safety data is kept until `safety.height` starts.
    /// Either way it never signs anything that conflicts with `safety.last_signed`.
    pub fn restore(config: Config<S>, safety: SafetyData) -> Result<Self, Error> {
        let mut core = Consensus::new(config)?;
        core.last_signed = safety.last_signed;
        core.resume = Some(safety);
        Ok(core)
    }

    /// Handles one input; the outputs must be executed in order.
    #[must_use = "the host must execute the outputs, in order"]
    pub fn handle(&mut self, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        let result = match input {
            Input::StartHeight { height, validators } => {
                self.on_start_height(height, validators, &mut out)
            }
            Input::Proposal { proposal, payload } => self.on_proposal(proposal, payload, &mut out),
            Input::Vote(vote) => self.on_vote(vote, &mut out),
            Input::TimeoutFired(timeout) => {
                self.on_timeout(timeout, &mut out);
                Ok(())
            }
            Input::ProposeValue {
                height,
                round,
                block_hash,
                payload,
            } => self.on_propose_value(height, round, block_hash, payload, &mut out),
            Input::ValueValidity {
                height,
                block_hash,
                valid,
            } => {
                if height == self.state.height
                    && self.validity.get(&block_hash) == Some(&Validity::Pending)
                {
                    let validity = if valid {
                        Validity::Valid
                    } else {
                        Validity::Invalid
                    };
                    self.validity.insert(block_hash, validity);
                }
                Ok(())
            }
            Input::Signed { request, signature } => self.on_signed(request, signature, &mut out),
            Input::DecidedElsewhere {
                block_hash,
                payload,
                certificate,
            } => self.on_decided_elsewhere(block_hash, payload, certificate, &mut out),
        };
        if let Err(error) = result {
            out.push(Output::Rejected(error));
        }
        self.drive(&mut out);
        out
    }

    /// The current height `h_p`.
    #[must_use]
    pub fn height(&self) -> Height {
        self.state.height
    }

    /// The current round `round_p`.
    #[must_use]
    pub fn round(&self) -> Round {
        self.state.round
    }

    /// The current step `step_p`.
    #[must_use]
    pub fn step(&self) -> Step {
        self.state.step
    }

    /// The validator set of the current height, once a height has started.
    #[must_use]
    pub fn validators(&self) -> Option<&ValidatorSet> {
        self.validators.as_ref()
    }

    /// The chain id.
    #[must_use]
    pub fn chain_id(&self) -> &str {
        &self.config.chain_id
    }

    /// The data [`Output::Persist`] would carry now.
    #[must_use]
    pub fn safety_data(&self) -> SafetyData {
        SafetyData {
            height: self.state.height,
            round: self.state.round,
            step: self.state.step,
            locked: self.state.locked,
            valid: self.state.valid,
            last_signed: self.last_signed,
        }
    }

    /// Messages held for future heights (bounded by [`crate::limits`]).
    #[must_use]
    pub fn future_messages(&self) -> usize {
        debug_assert_eq!(
            self.future_count,
            self.future.values().map(Vec::len).sum::<usize>()
        );
        self.future_count
    }

    /// Votes held for the current height.
    #[must_use]
    pub fn stored_votes(&self) -> usize {
        self.votes.stored_votes()
    }

    /// Proposals held for the current height.
    #[must_use]
    pub fn stored_proposals(&self) -> usize {
        self.proposals.values().map(Vec::len).sum()
    }

    /// Messages worth sending again when the height has not progressed for a while: this
    /// validator's own votes of the height, the proposals of the current round with the prevotes
    /// of the proof-of-lock round they name, and the proposal of its valid value with the
    /// prevotes that justify it. The paper assumes gossip: every message a correct validator
    /// received eventually reaches every correct validator; a host provides that by calling this
    /// on a timer (for example every few hundred milliseconds without a decision) and
    /// broadcasting the result, which is bounded by `2 * rounds + 3n + 3` messages.
    ///
    /// Hosts should also log the proposals and votes they hand in for the current height and
    /// replay them after [`Consensus::restore`] (as CometBFT's WAL does): the restored core then
    /// again holds the proof of its lock and the block of its valid value, which liveness after a
    /// crash can depend on when f validators are silent.
    #[must_use]
    pub fn rebroadcast(&self) -> Vec<Output> {
        let mut out = Vec::new();
        if matches!(self.state.step, Step::Unstarted | Step::Commit) {
            return out;
        }
        let proposal_of = |round: Round, hash: Option<BlockHash>, out: &mut Vec<Output>| {
            for stored in self.proposals.get(&round).into_iter().flatten() {
                if hash.is_none_or(|h| h == stored.signed.proposal.block_hash) {
                    out.push(Output::BroadcastProposal {
                        proposal: stored.signed,
                        payload: stored.payload.clone(),
                    });
                }
            }
        };
        proposal_of(self.state.round, None, &mut out);
        // The proof of lock each current proposal refers to (L28 needs it).
        for stored in self.proposals.get(&self.state.round).into_iter().flatten() {
            let p = stored.signed.proposal;
            if let Some(pol_round) = p.pol_round {
                for vote in self
                    .votes
                    .votes_for(pol_round, VoteKind::Prevote, p.block_hash)
                {
                    out.push(Output::BroadcastVote(vote));
                }
            }
        }
        if let Some(valid) = self.state.valid {
            if valid.round != self.state.round {
                proposal_of(valid.round, Some(valid.block_hash), &mut out);
            }
            for vote in self
                .votes
                .votes_for(valid.round, VoteKind::Prevote, valid.block_hash)
            {
                out.push(Output::BroadcastVote(vote));
            }
        }
        if let Some(me) = self.me {
            for vote in self.votes.votes_of(me) {
                out.push(Output::BroadcastVote(vote));
            }
        }
        out
    }

    fn is_proposer(&self, round: Round) -> bool {
        match (&self.validators, self.me) {
            (Some(set), Some(me)) => set.proposer(self.state.height, round) == me,
            _ => false,
        }
    }

    fn on_start_height(
        &mut self,
        height: Height,
        validators: ValidatorSet,
        out: &mut Vec<Output>,
    ) -> Result<(), Error> {
        if self.validators.is_some() && height <= self.state.height {
            return Err(Error::HeightNotAfterCurrent {
                current: self.state.height,
                requested: height,
            });
        }
        self.me = validators.index_of(&self.config.public_key);
        self.votes = VoteKeeper::new(validators.len());
        self.validators = Some(validators);
        self.state = RoundState::new(height);
        self.proposals.clear();
        self.validity.clear();
        self.guards.clear();
        self.pending.clear();
        self.own_value = None;

        // Safety data of a later height (a host that saved it before writing the block it
        // followed, then restarted) is kept until that height: its lock still binds there.
        let resume = match &self.resume {
            Some(safety) if safety.height > height => None,
            _ => self.resume.take(),
        };
        match resume {
            Some(safety) if safety.height == height && safety.step > Step::Propose => {
                // Resume mid-round: same round, step and lock. Re-sign our last vote of this
                // round (the same vote, so SignedState::permits allows it) so it can be re-sent,
                // and schedule the step's timeout so a node restarted alone cannot stall.
                self.state.round = safety.round;
                self.state.step = if safety.step == Step::Commit {
                    Step::Precommit
                } else {
                    safety.step
                };
                self.state.locked = safety.locked;
                self.state.valid = safety.valid;
                if let (Some(last), Some(me)) = (self.last_signed, self.me) {
                    let kind = match last.step {
                        SignStep::Prevote => Some(VoteKind::Prevote),
                        SignStep::Precommit => Some(VoteKind::Precommit),
                        SignStep::Proposal => None,
                    };
                    if let (Some(kind), true) =
                        (kind, last.height == height && last.round == safety.round)
                    {
                        let vote = Vote {
                            kind,
                            height,
                            round: last.round,
                            block_hash: last.block_hash,
                            validator: me,
                        };
                        self.sign(SignRequest::Vote(vote), Vec::new(), out);
                    }
                }
                let step = if self.state.step == Step::Prevote {
                    TimeoutStep::Prevote
                } else {
                    TimeoutStep::Precommit
                };
                self.act(RoundOutput::ScheduleTimeout(step), out);
            }
            Some(safety) if safety.height == height => {
                // Resume at the start of the persisted round (L11), with the persisted lock.
                self.state.locked = safety.locked;
                self.state.valid = safety.valid;
                let round = safety.round;
                self.transition(
                    RoundInput::NewRound {
                        round,
                        is_proposer: self.is_proposer(round),
                    },
                    out,
                );
            }
            _ => {
                // L10 / L54: StartRound(0).
                self.transition(
                    RoundInput::NewRound {
                        round: Round(0),
                        is_proposer: self.is_proposer(Round(0)),
                    },
                    out,
                );
            }
        }

        // Replay what was buffered for this height; keep later heights, drop earlier ones.
        let buffered = std::mem::take(&mut self.future);
        self.future_count = 0;
        self.future_payload_bytes = 0;
        for (_, messages) in buffered {
            for message in messages {
                let result = match message.height().cmp(&height) {
                    core::cmp::Ordering::Less => Ok(()),
                    core::cmp::Ordering::Equal | core::cmp::Ordering::Greater => match message {
                        PeerMessage::Vote(vote) => self.on_vote(vote, out),
                        PeerMessage::Proposal { proposal, payload } => {
                            self.on_proposal(proposal, payload, out)
                        }
                    },
                };
                if let Err(error) = result {
                    out.push(Output::Rejected(error));
                }
            }
        }
        Ok(())
    }

    /// Sorts a peer message by height: drops stale ones, verifies and buffers (bounded) those
    /// of the next heights, and returns it if it is for the current, undecided height.
    fn admit(&mut self, message: PeerMessage) -> Result<Option<PeerMessage>, Error> {
        let Some(validators) = &self.validators else {
            return Err(Error::NotStarted);
        };
        let height = message.height();
        if height < self.state.height {
            return Ok(None); // Stale: the height is over.
        }
        if height > self.state.height {
            if height.0 - self.state.height.0 > HEIGHTS_AHEAD_MAX {
                return Ok(None);
            }
            // Verify against the current set before spending memory: only the key holder can
            // then fill its own per-validator quota. What does not verify is dropped, not
            // rejected: the next height may have another validator set. Re-verified on replay.
            let Ok(signer) = self.verify(&message, validators) else {
                return Ok(None);
            };
            let bytes = message.payload_len();
            let queue = self.future.entry(signer).or_default();
            if queue.len() >= FUTURE_MESSAGES_PER_VALIDATOR_MAX
                || self.future_count >= FUTURE_MESSAGES_MAX
                || self.future_payload_bytes + bytes > FUTURE_PAYLOAD_BYTES_MAX
                || queue.contains(&message)
            {
                return Ok(None);
            }
            queue.push(message);
            self.future_count += 1;
            self.future_payload_bytes += bytes;
            return Ok(None);
        }
        if self.state.step == Step::Commit {
            return Ok(None); // Decided: nothing more to learn at this height.
        }
        Ok(Some(message))
    }

    fn verify(
        &self,
        message: &PeerMessage,
        validators: &ValidatorSet,
    ) -> Result<ValidatorIndex, Error> {
        let (signer, digest, signature) = match message {
            PeerMessage::Vote(v) => (
                v.vote.validator,
                vote_signing_message(&self.config.chain_id, &v.vote),
                &v.signature,
            ),
            PeerMessage::Proposal { proposal, payload } => {
                if payload.len() > PAYLOAD_BYTES_MAX {
                    return Err(Error::PayloadTooLarge {
                        len: payload.len(),
                        max: PAYLOAD_BYTES_MAX,
                    });
                }
                let p = &proposal.proposal;
                if let Some(pol_round) = p.pol_round {
                    if pol_round >= p.round {
                        return Err(Error::InvalidPolRound {
                            round: p.round,
                            pol_round,
                        });
                    }
                }
                let expected = validators.proposer(p.height, p.round);
                if p.proposer != expected {
                    return Err(Error::WrongProposer {
                        round: p.round,
                        expected,
                        actual: p.proposer,
                    });
                }
                (
                    p.proposer,
                    proposal_signing_message(&self.config.chain_id, p),
                    &proposal.signature,
                )
            }
        };
        let key = validators.key(signer).ok_or(Error::UnknownValidator {
            index: signer,
            count: validators.len(),
        })?;
        if !self.config.scheme.verify(key, &digest, signature) {
            return Err(Error::InvalidSignature { index: signer });
        }
        Ok(signer)
    }

    fn round_in_window(&self, round: Round) -> bool {
        round.0 <= self.state.round.0.saturating_add(ROUNDS_AHEAD_MAX)
    }

    fn on_vote(&mut self, vote: SignedVote, out: &mut Vec<Output>) -> Result<(), Error> {
        let Some(PeerMessage::Vote(vote)) = self.admit(PeerMessage::Vote(vote))? else {
            return Ok(());
        };
        if !self.round_in_window(vote.vote.round) {
            return Ok(());
        }
        if let Some(validators) = &self.validators {
            self.verify(&PeerMessage::Vote(vote), validators)?;
        }
        if let AddVote::Equivocation(pair) = self.votes.add(vote) {
            let (vote_a, vote_b) = *pair;
            out.push(Output::Evidence(Evidence::Equivocation { vote_a, vote_b }));
        }
        Ok(())
    }

    fn on_proposal(
        &mut self,
        proposal: SignedProposal,
        payload: Vec<u8>,
        out: &mut Vec<Output>,
    ) -> Result<(), Error> {
        let message = PeerMessage::Proposal { proposal, payload };
        let Some(PeerMessage::Proposal { proposal, payload }) = self.admit(message)? else {
            return Ok(());
        };
        let round = proposal.proposal.round;
        if !self.round_in_window(round) {
            return Ok(());
        }
        let message = PeerMessage::Proposal { proposal, payload };
        if let Some(validators) = &self.validators {
            self.verify(&message, validators)?;
        }
        let PeerMessage::Proposal { proposal, payload } = message else {
            return Ok(());
        };
        self.votes.note_message(round, proposal.proposal.proposer);
        self.store_proposal(proposal, payload, out);
        Ok(())
    }

    fn store_proposal(
        &mut self,
        proposal: SignedProposal,
        payload: Vec<u8>,
        out: &mut Vec<Output>,
    ) {
        let p = proposal.proposal;
        let stored = self.proposals.entry(p.round).or_default();
        if stored.iter().any(|s| s.signed.proposal == p) {
            return; // Duplicate.
        }
        if stored.len() >= PROPOSALS_PER_ROUND_MAX {
            return;
        }
        if let Some(first) = stored.first() {
            // Reported once per round: further proposals are dropped above.
            out.push(Output::Evidence(Evidence::ConflictingProposals {
                proposal_a: first.signed,
                proposal_b: proposal,
            }));
        }
        if let std::collections::btree_map::Entry::Vacant(entry) = self.validity.entry(p.block_hash)
        {
            entry.insert(Validity::Pending);
            out.push(Output::ValidateValue {
                height: p.height,
                round: p.round,
                block_hash: p.block_hash,
                payload: payload.clone(),
            });
        }
        stored.push(StoredProposal {
            signed: proposal,
            payload,
        });
    }

    fn on_timeout(&mut self, timeout: Timeout, out: &mut Vec<Output>) {
        // L58, L62, L66: only for the current height and round (the step is checked in apply).
        if timeout.height != self.state.height || timeout.round != self.state.round {
            return;
        }
        let input = match timeout.step {
            TimeoutStep::Propose => RoundInput::TimeoutPropose,
            TimeoutStep::Prevote => RoundInput::TimeoutPrevote,
            TimeoutStep::Precommit => RoundInput::TimeoutPrecommit,
        };
        self.transition(input, out);
    }

    fn on_propose_value(
        &mut self,
        height: Height,
        round: Round,
        block_hash: BlockHash,
        payload: Vec<u8>,
        out: &mut Vec<Output>,
    ) -> Result<(), Error> {
        if height != self.state.height || round != self.state.round {
            return Ok(()); // Too late: the round has moved on.
        }
        if payload.len() > PAYLOAD_BYTES_MAX {
            return Err(Error::PayloadTooLarge {
                len: payload.len(),
                max: PAYLOAD_BYTES_MAX,
            });
        }
        if self.state.step != Step::Propose || !self.is_proposer(round) {
            return Ok(());
        }
        // Our own value is valid by construction; a conflicting entry would mean the host
        // proposes a block it judged invalid, which we do not second-guess here.
        self.validity.insert(block_hash, Validity::Valid);
        self.own_value = Some((round, block_hash, payload));
        self.transition(RoundInput::ProposeValue { block_hash }, out);
        Ok(())
    }

    fn on_signed(
        &mut self,
        request: SignRequest,
        signature: Signature,
        out: &mut Vec<Output>,
    ) -> Result<(), Error> {
        let position = self
            .pending
            .iter()
            .position(|(r, _)| *r == request)
            .ok_or(Error::UnexpectedSignature)?;
        let Some((_, payload)) = self.pending.remove(position) else {
            return Err(Error::UnexpectedSignature);
        };
        let digest = request.message(&self.config.chain_id);
        if !self
            .config
            .scheme
            .verify(&self.config.public_key, &digest, &signature)
        {
            return Err(Error::InvalidSignature {
                index: self.me.unwrap_or(ValidatorIndex::MAX),
            });
        }
        match request {
            SignRequest::Vote(vote) => {
                let signed = SignedVote { vote, signature };
                out.push(Output::BroadcastVote(signed));
                if vote.height == self.state.height && self.state.step != Step::Commit {
                    // Our own vote counts like anyone's (it is already verified). A conflicting
                    // vote already in our slot means another machine signs with our key.
                    if let AddVote::Equivocation(pair) = self.votes.add(signed) {
                        let (vote_a, vote_b) = *pair;
                        out.push(Output::Evidence(Evidence::Equivocation { vote_a, vote_b }));
                    }
                }
            }
            SignRequest::Proposal(proposal) => {
                let signed = SignedProposal {
                    proposal,
                    signature,
                };
                out.push(Output::BroadcastProposal {
                    proposal: signed,
                    payload: payload.clone(),
                });
                if proposal.height == self.state.height && self.state.step != Step::Commit {
                    self.votes.note_message(proposal.round, proposal.proposer);
                    self.validity.insert(proposal.block_hash, Validity::Valid);
                    self.store_proposal(signed, payload, out);
                }
            }
        }
        Ok(())
    }

    fn on_decided_elsewhere(
        &mut self,
        block_hash: BlockHash,
        payload: Vec<u8>,
        certificate: CommitCertificate,
        out: &mut Vec<Output>,
    ) -> Result<(), Error> {
        let Some(validators) = &self.validators else {
            return Err(Error::NotStarted);
        };
        if certificate.height < self.state.height
            || (certificate.height == self.state.height && self.state.step == Step::Commit)
        {
            return Ok(()); // Already decided.
        }
        if certificate.height != self.state.height {
            return Err(Error::HeightMismatch {
                expected: self.state.height,
                actual: certificate.height,
            });
        }
        if certificate.block_hash != block_hash {
            return Err(Error::BlockHashMismatch {
                expected: certificate.block_hash,
                actual: block_hash,
            });
        }
        if payload.len() > PAYLOAD_BYTES_MAX {
            return Err(Error::PayloadTooLarge {
                len: payload.len(),
                max: PAYLOAD_BYTES_MAX,
            });
        }
        certificate.verify_with(&self.config.scheme, validators, &self.config.chain_id)?;
        // A quorum precommitted it, so at least f+1 correct validators judged it valid: decide
        // (the effect of L49-L51 for a node that missed the messages).
        self.state.step = Step::Commit;
        out.push(Output::Decide {
            height: self.state.height,
            block_hash,
            payload,
            certificate,
        });
        Ok(())
    }

    /// Asks for a signature unless it would conflict with what was signed before.
    fn sign(&mut self, request: SignRequest, payload: Vec<u8>, out: &mut Vec<Output>) {
        let next = match request {
            SignRequest::Vote(v) => SignedState {
                height: v.height,
                round: v.round,
                step: v.kind.into(),
                block_hash: v.block_hash,
            },
            SignRequest::Proposal(p) => SignedState {
                height: p.height,
                round: p.round,
                step: SignStep::Proposal,
                block_hash: Some(p.block_hash),
            },
        };
        if let Some(last) = self.last_signed {
            if !last.permits(&next) && !self.config.breaks.skip_signing_guard {
                return; // Would equivocate (possible only after a restore): stay silent.
            }
        }
        self.last_signed = Some(next);
        out.push(Output::Persist(self.safety_data()));
        out.push(Output::Sign(request));
        if self.pending.len() >= PENDING_SIGNATURES_MAX {
            self.pending.pop_front();
        }
        self.pending.push_back((request, payload));
    }

    fn transition(&mut self, input: RoundInput, out: &mut Vec<Output>) {
        let outputs = round::apply(&mut self.state, input, self.config.breaks);
        for output in outputs {
            self.act(output, out);
        }
    }

    fn act(&mut self, output: RoundOutput, out: &mut Vec<Output>) {
        let height = self.state.height;
        let round = self.state.round;
        match output {
            RoundOutput::NewRound(round) => {
                let is_proposer = self.is_proposer(round);
                self.transition(RoundInput::NewRound { round, is_proposer }, out);
            }
            RoundOutput::GetValue => out.push(Output::GetValue { height, round }),
            RoundOutput::Proposal {
                block_hash,
                pol_round,
            } => {
                let Some(me) = self.me else { return };
                let payload = match pol_round {
                    Some(_) => self
                        .proposals
                        .values()
                        .flatten()
                        .find(|s| s.signed.proposal.block_hash == block_hash)
                        .map(|s| s.payload.clone()),
                    None => self
                        .own_value
                        .as_ref()
                        .filter(|(r, h, _)| *r == round && *h == block_hash)
                        .map(|(_, _, payload)| payload.clone()),
                };
                let Some(payload) = payload else {
                    // The valid value's block is gone (restored from safety data alone): ask for
                    // a fresh value instead (L17), which locked validators will refuse if needed.
                    out.push(Output::GetValue { height, round });
                    return;
                };
                let proposal = Proposal {
                    height,
                    round,
                    pol_round,
                    block_hash,
                    proposer: me,
                };
                self.sign(SignRequest::Proposal(proposal), payload, out);
            }
            RoundOutput::Vote { kind, block_hash } => {
                let Some(me) = self.me else { return };
                let vote = Vote {
                    kind,
                    height,
                    round,
                    block_hash,
                    validator: me,
                };
                self.sign(SignRequest::Vote(vote), Vec::new(), out);
            }
            RoundOutput::ScheduleTimeout(step) => out.push(Output::ScheduleTimeout {
                timeout: Timeout {
                    height,
                    round,
                    step,
                },
                duration_ms: self.config.timeouts.duration_ms(step, round),
            }),
            RoundOutput::Decide { round, block_hash } => {
                let payload = self
                    .proposals
                    .get(&round)
                    .into_iter()
                    .flatten()
                    .find(|s| s.signed.proposal.block_hash == block_hash)
                    .map(|s| s.payload.clone())
                    .unwrap_or_default();
                let signatures = self
                    .votes
                    .votes_for(round, VoteKind::Precommit, block_hash)
                    .into_iter()
                    .map(|v| (v.vote.validator, v.signature))
                    .collect();
                out.push(Output::Decide {
                    height,
                    block_hash,
                    payload,
                    certificate: CommitCertificate {
                        height,
                        round,
                        block_hash,
                        signatures,
                    },
                });
            }
        }
    }

    /// Evaluates the `upon` rules until none applies.
    fn drive(&mut self, out: &mut Vec<Output>) {
        for _ in 0..TRANSITIONS_PER_INPUT_MAX {
            let Some((input, guard)) = self.next_round_input() else {
                return;
            };
            if let Some(guard) = guard {
                self.guards.insert((self.state.round, guard));
            }
            self.transition(input, out);
        }
        debug_assert!(false, "drive did not reach a fixpoint");
    }

    fn validity_of(&self, block_hash: &BlockHash) -> Option<bool> {
        match self.validity.get(block_hash) {
            Some(Validity::Valid) => Some(true),
            Some(Validity::Invalid) => Some(false),
            Some(Validity::Pending) | None => None,
        }
    }

    /// The first enabled `upon` rule, in a fixed priority order. Every input returned changes
    /// the round state or sets a guard, so [`Consensus::drive`] terminates.
    fn next_round_input(&self) -> Option<(RoundInput, Option<Guard>)> {
        let validators = self.validators.as_ref()?;
        let step = self.state.step;
        if matches!(step, Step::Unstarted | Step::Commit) {
            return None;
        }
        let quorum = validators.quorum();
        let round = self.state.round;
        let proposals = self.proposals.get(&round).map_or(&[][..], Vec::as_slice);
        let polka_for = |r: Round, hash: BlockHash| {
            self.votes.count(r, VoteKind::Prevote, Some(hash)) >= quorum
        };

        // L49: proposal v of any round r, valid, and 2f+1 precommits for it in r.
        for (r, hash) in self.votes.precommit_quorums(quorum) {
            let proposed = self
                .proposals
                .get(&r)
                .is_some_and(|ps| ps.iter().any(|p| p.signed.proposal.block_hash == hash));
            if proposed && self.validity_of(&hash) == Some(true) {
                return Some((
                    RoundInput::ProposalAndPrecommitValue {
                        round: r,
                        block_hash: hash,
                    },
                    None,
                ));
            }
        }

        // L55: f+1 validators already in a later round.
        if let Some(r) = self.votes.skip_round(round, validators.skip_threshold()) {
            return Some((RoundInput::SkipRound { round: r }, None));
        }

        match step {
            Step::Propose => {
                for p in proposals {
                    let hash = p.signed.proposal.block_hash;
                    let Some(valid) = self.validity_of(&hash) else {
                        continue;
                    };
                    match p.signed.proposal.pol_round {
                        // L22.
                        None => {
                            return Some((
                                RoundInput::Proposal {
                                    block_hash: hash,
                                    valid,
                                },
                                None,
                            ))
                        }
                        // L28.
                        Some(vr) if vr < round && polka_for(vr, hash) => {
                            return Some((
                                RoundInput::ProposalAndPolkaPrevious {
                                    block_hash: hash,
                                    pol_round: vr,
                                    valid,
                                },
                                None,
                            ))
                        }
                        Some(_) => {}
                    }
                }
            }
            Step::Prevote | Step::Precommit => {
                // L36 (step >= prevote, first time).
                if !self.guards.contains(&(round, Guard::PolkaCurrent)) {
                    for p in proposals {
                        let hash = p.signed.proposal.block_hash;
                        if self.validity_of(&hash) == Some(true) && polka_for(round, hash) {
                            return Some((
                                RoundInput::ProposalAndPolkaCurrent { block_hash: hash },
                                Some(Guard::PolkaCurrent),
                            ));
                        }
                    }
                }
                if step == Step::Prevote {
                    // L44.
                    if self.votes.count(round, VoteKind::Prevote, None) >= quorum {
                        return Some((RoundInput::PolkaNil, None));
                    }
                    // L34 (first time).
                    if !self.guards.contains(&(round, Guard::PolkaAny))
                        && self.votes.total(round, VoteKind::Prevote) >= quorum
                    {
                        return Some((RoundInput::PolkaAny, Some(Guard::PolkaAny)));
                    }
                }
            }
            Step::Unstarted | Step::Commit => {}
        }

        // L47 (first time).
        if !self.guards.contains(&(round, Guard::PrecommitAny))
            && self.votes.total(round, VoteKind::Precommit) >= quorum
        {
            return Some((RoundInput::PrecommitAny, Some(Guard::PrecommitAny)));
        }
        None
    }
}
