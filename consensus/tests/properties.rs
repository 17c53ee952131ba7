//! Property tests: stored bytes decode totally, and a validator that crashes and restarts from
//! its last persisted safety data at arbitrary points never signs two different messages for one
//! (height, round, step), whatever its peers send.

use std::collections::BTreeMap;

use ed25519_dalek::{Signer, SigningKey};
use proptest::prelude::*;
use yrd_consensus::round::BreakForTesting;
use yrd_consensus::safety::SignStep;
use yrd_consensus::{
    proposal_signing_message, vote_signing_message, BlockHash, Config, Consensus, Ed25519, Height,
    Input, Output, Proposal, PublicKey, Round, RoundValue, SafetyData, SignRequest, Signature,
    SignedProposal, SignedState, SignedVote, Step, Timeout, TimeoutConfig, TimeoutStep,
    ValidatorSet, Vote, VoteKind,
};

const CHAIN: &str = "yrd-prop";
const N: usize = 4;

fn key(i: usize) -> SigningKey {
    SigningKey::from_bytes(&[i as u8 + 40; 32])
}

fn sign(i: usize, message: &[u8; 32]) -> Signature {
    Signature(key(i).sign(message).to_bytes())
}

fn validators() -> ValidatorSet {
    ValidatorSet::new(
        (0..N)
            .map(|i| PublicKey(key(i).verifying_key().to_bytes()))
            .collect(),
    )
    .expect("distinct keys")
}

fn hash(i: u8) -> BlockHash {
    BlockHash([i + 1; 32])
}

fn config() -> Config<Ed25519> {
    Config {
        chain_id: CHAIN.to_string(),
        public_key: PublicKey(key(0).verifying_key().to_bytes()),
        timeouts: TimeoutConfig::default(),
        scheme: Ed25519,
        breaks: BreakForTesting::default(),
    }
}

#[derive(Debug, Clone)]
enum Op {
    Proposal {
        round: u32,
        value: u8,
        pol: Option<u32>,
    },
    Vote {
        from: usize,
        precommit: bool,
        round: u32,
        value: Option<u8>,
    },
    Timeout {
        round: u32,
        step: u8,
    },
    /// Crash now, between inputs.
    Crash,
    /// Crash during the next input that sends something, right after the first message left.
    CrashAfterNextSend,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (0u32..4, 0u8..3, proptest::option::of(0u32..3))
            .prop_map(|(round, value, pol)| Op::Proposal { round, value, pol }),
        4 => (1usize..N, any::<bool>(), 0u32..4, proptest::option::of(0u8..3)).prop_map(
            |(from, precommit, round, value)| Op::Vote { from, precommit, round, value }
        ),
        2 => (0u32..4, 0u8..3).prop_map(|(round, step)| Op::Timeout { round, step }),
        1 => Just(Op::Crash),
        1 => Just(Op::CrashAfterNextSend),
    ]
}

struct Node {
    core: Consensus<Ed25519>,
    durable: Option<[u8; 143]>,
    fresh_values: u8,
    signed: BTreeMap<(u64, u32, SignStep), Option<BlockHash>>,
    height: Height,
    crash_armed: bool,
}

impl Node {
    /// Restarts from the durable safety data: everything in memory is lost.
    fn restart(&mut self) -> Result<(), TestCaseError> {
        self.core = match self.durable {
            Some(bytes) => {
                let safety = SafetyData::decode(&bytes).expect("own bytes decode");
                Consensus::restore(config(), safety).expect("config")
            }
            None => Consensus::new(config()).expect("config"),
        };
        self.feed(Input::StartHeight {
            height: self.height,
            validators: validators(),
        })
    }

    fn feed(&mut self, input: Input) -> Result<(), TestCaseError> {
        let mut pending = vec![input];
        while let Some(input) = pending.pop() {
            for output in self.core.handle(input) {
                match output {
                    Output::Persist(safety) => self.durable = Some(safety.encode()),
                    Output::BroadcastVote(_) | Output::BroadcastProposal { .. }
                        if self.crash_armed =>
                    {
                        // The message has left; the crash loses everything not persisted.
                        self.crash_armed = false;
                        return self.restart();
                    }
                    Output::Sign(request) => {
                        let slot = match request {
                            SignRequest::Vote(v) => (
                                (v.height.0, v.round.0, SignStep::from(v.kind)),
                                v.block_hash,
                            ),
                            SignRequest::Proposal(p) => (
                                (p.height.0, p.round.0, SignStep::Proposal),
                                Some(p.block_hash),
                            ),
                        };
                        if let Some(previous) = self.signed.insert(slot.0, slot.1) {
                            prop_assert_eq!(previous, slot.1, "double signing at {:?}", slot.0);
                        }
                        pending.push(Input::Signed {
                            request,
                            signature: sign(0, &request.message(CHAIN)),
                        });
                    }
                    Output::ValidateValue {
                        height, block_hash, ..
                    } => pending.push(Input::ValueValidity {
                        height,
                        block_hash,
                        valid: block_hash != hash(2),
                    }),
                    Output::GetValue { height, round } => {
                        // A host that offers a different block every time it is asked.
                        self.fresh_values = self.fresh_values.wrapping_add(1);
                        pending.push(Input::ProposeValue {
                            height,
                            round,
                            block_hash: BlockHash([0xF0 ^ self.fresh_values; 32]),
                            payload: vec![self.fresh_values],
                        });
                    }
                    Output::Decide { height, .. } => {
                        self.height = height.next();
                        pending.push(Input::StartHeight {
                            height: self.height,
                            validators: validators(),
                        });
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = SafetyData::decode(&bytes);
    }

    #[test]
    fn safety_data_round_trips(
        height in any::<u64>(),
        round in any::<u32>(),
        step in 0usize..5,
        locked in proptest::option::of((any::<u32>(), any::<[u8; 32]>())),
        valid in proptest::option::of((any::<u32>(), any::<[u8; 32]>())),
        last in proptest::option::of((any::<u64>(), any::<u32>(), 0usize..3, proptest::option::of(any::<[u8; 32]>()))),
    ) {
        let value = |v: Option<(u32, [u8; 32])>| v.map(|(r, h)| RoundValue { round: Round(r), block_hash: BlockHash(h) });
        let steps = [Step::Unstarted, Step::Propose, Step::Prevote, Step::Precommit, Step::Commit];
        let sign_steps = [SignStep::Proposal, SignStep::Prevote, SignStep::Precommit];
        let last_signed = last.map(|(h, r, s, b)| SignedState {
            height: Height(h),
            round: Round(r),
            step: sign_steps[s],
            // A proposal always names a block.
            block_hash: if s == 0 { Some(BlockHash(b.unwrap_or([7; 32]))) } else { b.map(BlockHash) },
        });
        let data = SafetyData {
            height: Height(height),
            round: Round(round),
            step: steps[step],
            locked: value(locked),
            valid: value(valid),
            last_signed,
        };
        prop_assert_eq!(SafetyData::decode(&data.encode()), Ok(data));
    }

    #[test]
    fn restarts_never_make_a_validator_sign_twice(ops in proptest::collection::vec(op(), 1..80)) {
        let mut node = Node {
            core: Consensus::new(config()).expect("config"),
            durable: None,
            fresh_values: 0,
            signed: BTreeMap::new(),
            height: Height(1),
            crash_armed: false,
        };
        node.feed(Input::StartHeight { height: Height(1), validators: validators() })?;
        for op in ops {
            let height = node.height;
            match op {
                Op::Proposal { round, value, pol } => {
                    let proposer = validators().proposer(height, Round(round));
                    if proposer == 0 {
                        continue; // We do not forge our own proposals.
                    }
                    let proposal = Proposal {
                        height,
                        round: Round(round),
                        pol_round: pol.filter(|p| *p < round).map(Round),
                        block_hash: hash(value),
                        proposer,
                    };
                    let signature = sign(usize::from(proposer), &proposal_signing_message(CHAIN, &proposal));
                    node.feed(Input::Proposal {
                        proposal: SignedProposal { proposal, signature },
                        payload: vec![value],
                    })?;
                }
                Op::Vote { from, precommit, round, value } => {
                    let vote = Vote {
                        kind: if precommit { VoteKind::Precommit } else { VoteKind::Prevote },
                        height,
                        round: Round(round),
                        block_hash: value.map(hash),
                        validator: from as u16,
                    };
                    let signature = sign(from, &vote_signing_message(CHAIN, &vote));
                    node.feed(Input::Vote(SignedVote { vote, signature }))?;
                }
                Op::Timeout { round, step } => {
                    let step = [TimeoutStep::Propose, TimeoutStep::Prevote, TimeoutStep::Precommit][usize::from(step)];
                    node.feed(Input::TimeoutFired(Timeout { height, round: Round(round), step }))?;
                }
                Op::Crash => node.restart()?,
                Op::CrashAfterNextSend => node.crash_armed = true,
            }
        }
    }
}
