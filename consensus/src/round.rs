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
    /// Sign whatever the round asks, even if it conflicts with the persisted last signed
    /// message (a restarted validator may then equivocate).
    pub skip_signing_guard: bool,
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

#[cfg(test)]
mod tests {
    //! Table-driven tests of single transitions; each row names the line of Algorithm 1.

    use super::*;

    const X: BlockHash = BlockHash([0x11; 32]);
    const Y: BlockHash = BlockHash([0x22; 32]);

    fn rv(round: u32, block_hash: BlockHash) -> Option<RoundValue> {
        Some(RoundValue {
            round: Round(round),
            block_hash,
        })
    }

    fn state(
        round: u32,
        step: Step,
        locked: Option<RoundValue>,
        valid: Option<RoundValue>,
    ) -> RoundState {
        RoundState {
            height: Height(1),
            round: Round(round),
            step,
            locked,
            valid,
        }
    }

    fn vote(kind: VoteKind, block_hash: Option<BlockHash>) -> RoundOutput {
        RoundOutput::Vote { kind, block_hash }
    }

    struct Row {
        line: &'static str,
        before: RoundState,
        input: RoundInput,
        outputs: Vec<RoundOutput>,
        after: RoundState,
    }

    fn rows() -> Vec<Row> {
        use RoundInput as I;
        use RoundOutput as O;
        use Step::{Commit, Precommit, Prevote, Propose, Unstarted};
        let (pv, pc) = (VoteKind::Prevote, VoteKind::Precommit);
        vec![
            Row {
                line: "L11-L14, L17-L18: proposer without a valid value asks for one",
                before: state(0, Unstarted, None, None),
                input: I::NewRound {
                    round: Round(0),
                    is_proposer: true,
                },
                outputs: vec![O::GetValue, O::ScheduleTimeout(TimeoutStep::Propose)],
                after: state(0, Propose, None, None),
            },
            Row {
                line: "L15-L16, L19: proposer re-proposes its valid value with validRound",
                before: state(1, Precommit, rv(1, X), rv(1, X)),
                input: I::NewRound {
                    round: Round(2),
                    is_proposer: true,
                },
                outputs: vec![
                    O::Proposal {
                        block_hash: X,
                        pol_round: Some(Round(1)),
                    },
                    O::ScheduleTimeout(TimeoutStep::Propose),
                ],
                after: state(2, Propose, rv(1, X), rv(1, X)),
            },
            Row {
                line: "L11-L13, L20-L21: non-proposer schedules timeoutPropose",
                before: state(0, Unstarted, None, None),
                input: I::NewRound {
                    round: Round(0),
                    is_proposer: false,
                },
                outputs: vec![O::ScheduleTimeout(TimeoutStep::Propose)],
                after: state(0, Propose, None, None),
            },
            Row {
                line: "L11: StartRound never goes back to an earlier round",
                before: state(3, Prevote, None, None),
                input: I::NewRound {
                    round: Round(2),
                    is_proposer: false,
                },
                outputs: vec![],
                after: state(3, Prevote, None, None),
            },
            Row {
                line: "L18-L19: getValue() returned, broadcast proposal with vr = -1",
                before: state(0, Propose, None, None),
                input: I::ProposeValue { block_hash: X },
                outputs: vec![O::Proposal {
                    block_hash: X,
                    pol_round: None,
                }],
                after: state(0, Propose, None, None),
            },
            Row {
                line: "L22-L24, L27: valid proposal, not locked: prevote id(v)",
                before: state(0, Propose, None, None),
                input: I::Proposal {
                    block_hash: X,
                    valid: true,
                },
                outputs: vec![vote(pv, Some(X))],
                after: state(0, Prevote, None, None),
            },
            Row {
                line: "L22-L24: valid proposal equal to the lock: prevote id(v)",
                before: state(2, Propose, rv(1, X), rv(1, X)),
                input: I::Proposal {
                    block_hash: X,
                    valid: true,
                },
                outputs: vec![vote(pv, Some(X))],
                after: state(2, Prevote, rv(1, X), rv(1, X)),
            },
            Row {
                line: "L25-L26: locked on another value: prevote nil",
                before: state(2, Propose, rv(1, Y), rv(1, Y)),
                input: I::Proposal {
                    block_hash: X,
                    valid: true,
                },
                outputs: vec![vote(pv, None)],
                after: state(2, Prevote, rv(1, Y), rv(1, Y)),
            },
            Row {
                line: "L25-L26: invalid proposal: prevote nil",
                before: state(0, Propose, None, None),
                input: I::Proposal {
                    block_hash: X,
                    valid: false,
                },
                outputs: vec![vote(pv, None)],
                after: state(0, Prevote, None, None),
            },
            Row {
                line: "L22: a proposal only counts in step propose",
                before: state(0, Prevote, None, None),
                input: I::Proposal {
                    block_hash: X,
                    valid: true,
                },
                outputs: vec![],
                after: state(0, Prevote, None, None),
            },
            Row {
                line: "L28-L30: proof of lock at vr >= lockedRound: prevote id(v)",
                before: state(3, Propose, rv(1, Y), rv(1, Y)),
                input: I::ProposalAndPolkaPrevious {
                    block_hash: X,
                    pol_round: Round(2),
                    valid: true,
                },
                outputs: vec![vote(pv, Some(X))],
                after: state(3, Prevote, rv(1, Y), rv(1, Y)),
            },
            Row {
                line: "L31-L32: proof of lock older than the lock, other value: prevote nil",
                before: state(3, Propose, rv(2, Y), rv(2, Y)),
                input: I::ProposalAndPolkaPrevious {
                    block_hash: X,
                    pol_round: Round(1),
                    valid: true,
                },
                outputs: vec![vote(pv, None)],
                after: state(3, Prevote, rv(2, Y), rv(2, Y)),
            },
            Row {
                line: "L28: vr must be below round_p",
                before: state(1, Propose, None, None),
                input: I::ProposalAndPolkaPrevious {
                    block_hash: X,
                    pol_round: Round(1),
                    valid: true,
                },
                outputs: vec![],
                after: state(1, Propose, None, None),
            },
            Row {
                line: "L34-L35: 2f+1 prevotes for anything: schedule timeoutPrevote",
                before: state(0, Prevote, None, None),
                input: I::PolkaAny,
                outputs: vec![O::ScheduleTimeout(TimeoutStep::Prevote)],
                after: state(0, Prevote, None, None),
            },
            Row {
                line: "L34: only while step = prevote",
                before: state(0, Precommit, None, None),
                input: I::PolkaAny,
                outputs: vec![],
                after: state(0, Precommit, None, None),
            },
            Row {
                line: "L36-L43: polka for the proposal in step prevote: lock, valid, precommit",
                before: state(1, Prevote, None, None),
                input: I::ProposalAndPolkaCurrent { block_hash: X },
                outputs: vec![vote(pc, Some(X))],
                after: state(1, Precommit, rv(1, X), rv(1, X)),
            },
            Row {
                line: "L36, L42-L43: polka seen after precommitting: only the valid value moves",
                before: state(1, Precommit, rv(0, Y), rv(0, Y)),
                input: I::ProposalAndPolkaCurrent { block_hash: X },
                outputs: vec![],
                after: state(1, Precommit, rv(0, Y), rv(1, X)),
            },
            Row {
                line: "L44-L46: 2f+1 nil prevotes: precommit nil",
                before: state(0, Prevote, None, None),
                input: I::PolkaNil,
                outputs: vec![vote(pc, None)],
                after: state(0, Precommit, None, None),
            },
            Row {
                line: "L47-L48: 2f+1 precommits for anything: schedule timeoutPrecommit",
                before: state(0, Precommit, None, None),
                input: I::PrecommitAny,
                outputs: vec![O::ScheduleTimeout(TimeoutStep::Precommit)],
                after: state(0, Precommit, None, None),
            },
            Row {
                line: "L49-L51: proposal and 2f+1 precommits for it: decide",
                before: state(2, Prevote, rv(1, X), rv(1, X)),
                input: I::ProposalAndPrecommitValue {
                    round: Round(1),
                    block_hash: X,
                },
                outputs: vec![O::Decide {
                    round: Round(1),
                    block_hash: X,
                }],
                after: state(2, Commit, rv(1, X), rv(1, X)),
            },
            Row {
                line: "L49: decision_p is set once",
                before: state(0, Commit, None, None),
                input: I::ProposalAndPrecommitValue {
                    round: Round(0),
                    block_hash: Y,
                },
                outputs: vec![],
                after: state(0, Commit, None, None),
            },
            Row {
                line: "L55-L56: f+1 messages of a later round: StartRound(round)",
                before: state(2, Prevote, None, None),
                input: I::SkipRound { round: Round(5) },
                outputs: vec![O::NewRound(Round(5))],
                after: state(2, Prevote, None, None),
            },
            Row {
                line: "L55: only rounds above round_p",
                before: state(2, Prevote, None, None),
                input: I::SkipRound { round: Round(2) },
                outputs: vec![],
                after: state(2, Prevote, None, None),
            },
            Row {
                line: "L57-L60: timeoutPropose in step propose: prevote nil",
                before: state(0, Propose, None, None),
                input: I::TimeoutPropose,
                outputs: vec![vote(pv, None)],
                after: state(0, Prevote, None, None),
            },
            Row {
                line: "L58: timeoutPropose after prevoting does nothing",
                before: state(0, Prevote, None, None),
                input: I::TimeoutPropose,
                outputs: vec![],
                after: state(0, Prevote, None, None),
            },
            Row {
                line: "L61-L64: timeoutPrevote in step prevote: precommit nil",
                before: state(0, Prevote, None, None),
                input: I::TimeoutPrevote,
                outputs: vec![vote(pc, None)],
                after: state(0, Precommit, None, None),
            },
            Row {
                line: "L62: timeoutPrevote after precommitting does nothing",
                before: state(0, Precommit, None, None),
                input: I::TimeoutPrevote,
                outputs: vec![],
                after: state(0, Precommit, None, None),
            },
            Row {
                line: "L65-L67: timeoutPrecommit: StartRound(round_p + 1)",
                before: state(4, Precommit, None, None),
                input: I::TimeoutPrecommit,
                outputs: vec![O::NewRound(Round(5))],
                after: state(4, Precommit, None, None),
            },
            Row {
                line: "L65: timeoutPrecommit after deciding does nothing",
                before: state(4, Commit, None, None),
                input: I::TimeoutPrecommit,
                outputs: vec![],
                after: state(4, Commit, None, None),
            },
        ]
    }

    #[test]
    fn transitions_follow_algorithm_1() {
        for row in rows() {
            let mut state = row.before;
            let outputs = apply(&mut state, row.input, BreakForTesting::default());
            assert_eq!(outputs, row.outputs, "{}: outputs", row.line);
            assert_eq!(state, row.after, "{}: state", row.line);
        }
    }

    #[test]
    fn broken_lock_switch_prevotes_against_the_lock() {
        let mut state = state(2, Step::Propose, rv(1, Y), rv(1, Y));
        let breaks = BreakForTesting {
            ignore_lock: true,
            ..BreakForTesting::default()
        };
        let outputs = apply(
            &mut state,
            RoundInput::Proposal {
                block_hash: X,
                valid: true,
            },
            breaks,
        );
        assert_eq!(
            outputs,
            vec![vote(VoteKind::Prevote, Some(X))],
            "L23 with the lock ignored"
        );
    }
}
