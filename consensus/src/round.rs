//! The round state machine of Tendermint, Algorithm 1 of arXiv:1807.04938: one pure function,
//! [`apply`], a single `match (step, input)` whose arms name the lines they implement. It owns
//! `round_p`, `step_p`, `lockedValue_p/lockedRound_p` and `validValue_p/validRound_p`.
//!
//! Invariants: the round never decreases; within a round the step only moves forward
//! (`Propose < Prevote < Precommit < Commit`); the lock changes only together with a precommit
//! for the locked value (L36-L41). The driver ([`crate::consensus`]) evaluates the `upon`
//! conditions (vote counts, "for the first time" guards, validity) and feeds the results here as
//! [`RoundInput`]s; this module never counts votes.
//!
//! Deviation from the paper, for liveness only: the proposer also schedules `timeoutPropose`
//! (L20-L21), so a host that never answers `GetValue` cannot stall the round.

use crate::safety::RoundValue;
use crate::types::{BlockHash, Height, Round, Step, TimeoutStep, VoteKind};

/// The per-height state of Algorithm 1 for one validator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoundState {
    /// `h_p`.
    pub height: Height,
    /// `round_p`.
    pub round: Round,
    /// `step_p`.
    pub step: Step,
    /// `lockedRound_p`, `lockedValue_p` (`None` is `-1`, `nil`).
    pub locked: Option<RoundValue>,
    /// `validRound_p`, `validValue_p` (`None` is `-1`, `nil`).
    pub valid: Option<RoundValue>,
}

impl RoundState {
    /// The initial state of a height (L1-L9).
    #[must_use]
    pub fn new(height: Height) -> Self {
        RoundState {
            height,
            round: Round(0),
            step: Step::Unstarted,
            locked: None,
            valid: None,
        }
    }
}

/// An `upon` condition of Algorithm 1 that the driver found true, or an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundInput {
    /// `StartRound(round)` (L11), with whether this validator is `proposer(h_p, round)`.
    NewRound {
        /// The round to start.
        round: Round,
        /// Whether we propose in it.
        is_proposer: bool,
    },
    /// `getValue()` returned (L18).
    ProposeValue {
        /// The host's value.
        block_hash: BlockHash,
    },
    /// `<PROPOSAL, h_p, round_p, v, -1>` from the proposer, validity known (L22).
    Proposal {
        /// `id(v)`.
        block_hash: BlockHash,
        /// `valid(v)`.
        valid: bool,
    },
    /// `<PROPOSAL, h_p, round_p, v, vr>` and 2f+1 `<PREVOTE, h_p, vr, id(v)>`, vr < round_p (L28).
    ProposalAndPolkaPrevious {
        /// `id(v)`.
        block_hash: BlockHash,
        /// `vr`.
        pol_round: Round,
        /// `valid(v)`.
        valid: bool,
    },
    /// 2f+1 `<PREVOTE, h_p, round_p, *>`, first time (L34).
    PolkaAny,
    /// Proposal `v` of `round_p`, `valid(v)`, 2f+1 `<PREVOTE, h_p, round_p, id(v)>`, first time (L36).
    ProposalAndPolkaCurrent {
        /// `id(v)`.
        block_hash: BlockHash,
    },
    /// 2f+1 `<PREVOTE, h_p, round_p, nil>` (L44).
    PolkaNil,
    /// 2f+1 `<PRECOMMIT, h_p, round_p, *>`, first time (L47).
    PrecommitAny,
    /// Proposal `v` of round `r`, `valid(v)`, 2f+1 `<PRECOMMIT, h_p, r, id(v)>` (L49).
    ProposalAndPrecommitValue {
        /// `r`.
        round: Round,
        /// `id(v)`.
        block_hash: BlockHash,
    },
    /// f+1 messages of a round above `round_p` (L55).
    SkipRound {
        /// That round.
        round: Round,
    },
    /// `OnTimeoutPropose(h_p, round_p)` (L57).
    TimeoutPropose,
    /// `OnTimeoutPrevote(h_p, round_p)` (L61).
    TimeoutPrevote,
    /// `OnTimeoutPrecommit(h_p, round_p)` (L65).
    TimeoutPrecommit,
}

/// What a transition asks the driver to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundOutput {
    /// Start `round` (the driver feeds back `NewRound`): L54 is the driver's, L56 and L67 here.
    NewRound(Round),
    /// Ask the host for a value (L18).
    GetValue,
    /// Broadcast `<PROPOSAL, h_p, round_p, v, vr>` (L19).
    Proposal {
        /// `id(v)`.
        block_hash: BlockHash,
        /// `vr`.
        pol_round: Option<Round>,
    },
    /// Broadcast a vote of ours in `round_p`.
    Vote {
        /// Prevote or precommit.
        kind: VoteKind,
        /// `id(v)` or nil.
        block_hash: Option<BlockHash>,
    },
    /// Schedule a timeout for `round_p`.
    ScheduleTimeout(TimeoutStep),
    /// `decision_p[h_p] = v` (L51).
    Decide {
        /// The round whose precommits decided.
        round: Round,
        /// `id(v)`.
        block_hash: BlockHash,
    },
}

/// Testing switches that deliberately break the protocol, to prove the simulator's oracle can
/// catch a broken core. Never set them in production.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BreakForTesting {
    /// Ignore the lock in L23 and L29: prevote for any valid proposal.
    pub ignore_lock: bool,
}

fn prevote(state: &mut RoundState, block_hash: Option<BlockHash>) -> Vec<RoundOutput> {
    state.step = Step::Prevote;
    vec![RoundOutput::Vote {
        kind: VoteKind::Prevote,
        block_hash,
    }]
}

fn precommit(state: &mut RoundState, block_hash: Option<BlockHash>) -> Vec<RoundOutput> {
    state.step = Step::Precommit;
    vec![RoundOutput::Vote {
        kind: VoteKind::Precommit,
        block_hash,
    }]
}

/// Applies one input to the round state and returns what to do. Inputs that do not apply in the
/// current step change nothing and return no output.
pub fn apply(
    state: &mut RoundState,
    input: RoundInput,
    breaks: BreakForTesting,
) -> Vec<RoundOutput> {
    use RoundInput as I;
    use RoundOutput as O;
    use Step::{Commit, Precommit, Prevote, Propose, Unstarted};

    let locked_on =
        |state: &RoundState, hash: BlockHash| state.locked.is_some_and(|l| l.block_hash == hash);

    match (state.step, input) {
        // L49-L54: a decision in any round, whatever the step (not twice: Commit is final).
        (
            Unstarted | Propose | Prevote | Precommit,
            I::ProposalAndPrecommitValue { round, block_hash },
        ) => {
            state.step = Commit;
            vec![O::Decide { round, block_hash }]
        }

        // L55-L56: f+1 messages from a later round.
        (Propose | Prevote | Precommit, I::SkipRound { round }) if round > state.round => {
            vec![O::NewRound(round)]
        }

        // L11-L21: StartRound(round).
        (Unstarted | Propose | Prevote | Precommit, I::NewRound { round, is_proposer })
            if round > state.round || state.step == Unstarted =>
        {
            state.round = round; // L12
            state.step = Propose; // L13
            if is_proposer {
                match state.valid {
                    // L15-L16, L19: re-propose the valid value with its round.
                    Some(valid) => vec![
                        O::Proposal {
                            block_hash: valid.block_hash,
                            pol_round: Some(valid.round),
                        },
                        O::ScheduleTimeout(TimeoutStep::Propose),
                    ],
                    // L17-L18: ask the host for a value.
                    None => vec![O::GetValue, O::ScheduleTimeout(TimeoutStep::Propose)],
                }
            } else {
                vec![O::ScheduleTimeout(TimeoutStep::Propose)] // L20-L21
            }
        }

        // L18-L19: getValue() returned; broadcast the proposal with vr = -1.
        (Propose, I::ProposeValue { block_hash }) => vec![O::Proposal {
            block_hash,
            pol_round: None,
        }],

        // L22-L27: proposal with vr = -1.
        (Propose, I::Proposal { block_hash, valid }) => {
            let free = state.locked.is_none() || breaks.ignore_lock;
            if valid && (free || locked_on(state, block_hash)) {
                prevote(state, Some(block_hash)) // L24
            } else {
                prevote(state, None) // L26
            }
        }

        // L28-L33: proposal with a proof-of-lock from an earlier round.
        (
            Propose,
            I::ProposalAndPolkaPrevious {
                block_hash,
                pol_round,
                valid,
            },
        ) if pol_round < state.round => {
            let free = state.locked.is_none_or(|l| l.round <= pol_round) || breaks.ignore_lock;
            if valid && (free || locked_on(state, block_hash)) {
                prevote(state, Some(block_hash)) // L30
            } else {
                prevote(state, None) // L32
            }
        }

        // L34-L35: 2f+1 prevotes for anything, first time.
        (Prevote, I::PolkaAny) => vec![O::ScheduleTimeout(TimeoutStep::Prevote)],

        // L36-L43 in step prevote: lock, set the valid value, precommit.
        (Prevote, I::ProposalAndPolkaCurrent { block_hash }) => {
            let value = RoundValue {
                round: state.round,
                block_hash,
            };
            state.locked = Some(value); // L38-L39
            state.valid = Some(value); // L42-L43
            precommit(state, Some(block_hash)) // L40-L41
        }

        // L36, L42-L43 in step precommit: only the valid value moves.
        (Precommit, I::ProposalAndPolkaCurrent { block_hash }) => {
            state.valid = Some(RoundValue {
                round: state.round,
                block_hash,
            });
            vec![]
        }

        // L44-L46: 2f+1 nil prevotes.
        (Prevote, I::PolkaNil) => precommit(state, None),

        // L47-L48: 2f+1 precommits for anything, first time.
        (Propose | Prevote | Precommit, I::PrecommitAny) => {
            vec![O::ScheduleTimeout(TimeoutStep::Precommit)]
        }

        // L57-L60: no acceptable proposal in time.
        (Propose, I::TimeoutPropose) => prevote(state, None),

        // L61-L64: no polka for a value in time.
        (Prevote, I::TimeoutPrevote) => precommit(state, None),

        // L65-L67: no decision in time: next round.
        (Propose | Prevote | Precommit, I::TimeoutPrecommit) => {
            vec![O::NewRound(state.round.next())]
        }

        // Anything else does not apply in this step.
        _ => vec![],
    }
}
