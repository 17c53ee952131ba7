//! Driver-level tests with real Ed25519 signatures: single transitions through the public API
//! (each names the line of Algorithm 1), commit certificates, catch-up, restart safety, memory
//! bounds under a flood, and golden bytes of the signed and stored formats.

use ed25519_dalek::{Signer, SigningKey};
use yrd_consensus::limits::{
    FUTURE_MESSAGES_PER_VALIDATOR_MAX, ROUNDS_AHEAD_MAX, VOTES_PER_SLOT_MAX,
};
use yrd_consensus::round::BreakForTesting;
use yrd_consensus::safety::{SignStep, SAFETY_DATA_BYTES};
use yrd_consensus::{
    proposal_signing_message, vote_signing_message, BlockHash, CommitCertificate, Config,
    Consensus, Ed25519, Error, Evidence, Height, Input, Output, Proposal, PublicKey, Round,
    RoundValue, SafetyData, SignRequest, Signature, SignedProposal, SignedState, SignedVote, Step,
    Timeout, TimeoutConfig, TimeoutStep, ValidatorSet, Vote, VoteKind,
};

const CHAIN: &str = "yrd-test";
const X: BlockHash = BlockHash([0xAA; 32]);
const Y: BlockHash = BlockHash([0xBB; 32]);
const H1: Height = Height(1);

fn signing_key(i: usize) -> SigningKey {
    SigningKey::from_bytes(&[i as u8 + 1; 32])
}

fn public_key(i: usize) -> PublicKey {
    PublicKey(signing_key(i).verifying_key().to_bytes())
}

fn sign(i: usize, message: &[u8; 32]) -> Signature {
    Signature(signing_key(i).sign(message).to_bytes())
}

fn set(n: usize) -> ValidatorSet {
    ValidatorSet::new((0..n).map(public_key).collect()).expect("distinct keys")
}

fn vote(
    i: usize,
    kind: VoteKind,
    height: Height,
    round: u32,
    hash: Option<BlockHash>,
) -> SignedVote {
    let vote = Vote {
        kind,
        height,
        round: Round(round),
        block_hash: hash,
        validator: i as u16,
    };
    SignedVote {
        vote,
        signature: sign(i, &vote_signing_message(CHAIN, &vote)),
    }
}

fn proposal(
    i: usize,
    height: Height,
    round: u32,
    pol: Option<u32>,
    hash: BlockHash,
) -> SignedProposal {
    let proposal = Proposal {
        height,
        round: Round(round),
        pol_round: pol.map(Round),
        block_hash: hash,
        proposer: i as u16,
    };
    SignedProposal {
        proposal,
        signature: sign(i, &proposal_signing_message(CHAIN, &proposal)),
    }
}

fn config(me: usize) -> Config<Ed25519> {
    Config {
        chain_id: CHAIN.to_string(),
        public_key: public_key(me),
        timeouts: TimeoutConfig::default(),
        scheme: Ed25519,
        breaks: BreakForTesting::default(),
    }
}

/// A minimal host: signs with `me`'s key, judges every value valid except `Y`, answers
/// `GetValue` with `X`; returns every output in order.
struct Host {
    me: usize,
    core: Consensus<Ed25519>,
    signed: Vec<SignRequest>,
}

impl Host {
    fn new(me: usize, n: usize) -> (Self, Vec<Output>) {
        let core = Consensus::new(config(me)).expect("config");
        let mut host = Host {
            me,
            core,
            signed: Vec::new(),
        };
        let outputs = host.step(Input::StartHeight {
            height: H1,
            validators: set(n),
        });
        (host, outputs)
    }

    fn step(&mut self, input: Input) -> Vec<Output> {
        let mut all = Vec::new();
        let mut pending = vec![input];
        while let Some(input) = pending.pop() {
            for output in self.core.handle(input) {
                match &output {
                    Output::Sign(request) => {
                        self.signed.push(*request);
                        let signature = sign(self.me, &request.message(CHAIN));
                        pending.push(Input::Signed {
                            request: *request,
                            signature,
                        });
                    }
                    Output::ValidateValue {
                        height, block_hash, ..
                    } => pending.push(Input::ValueValidity {
                        height: *height,
                        block_hash: *block_hash,
                        valid: *block_hash != Y,
                    }),
                    Output::GetValue { height, round } => pending.push(Input::ProposeValue {
                        height: *height,
                        round: *round,
                        block_hash: X,
                        payload: b"block X".to_vec(),
                    }),
                    _ => {}
                }
                all.push(output);
            }
        }
        all
    }
}

fn broadcast_votes(outputs: &[Output]) -> Vec<Vote> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::BroadcastVote(v) => Some(v.vote),
            _ => None,
        })
        .collect()
}

fn scheduled(outputs: &[Output]) -> Vec<Timeout> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::ScheduleTimeout { timeout, .. } => Some(*timeout),
            _ => None,
        })
        .collect()
}

/// Hands the core height 1 as decided by validators 1 to 3 on `block` (the payload is the
/// hash's bytes: the core does not look into it).
fn decide_height_one_elsewhere(host: &mut Host, block: BlockHash) {
    let _ = host.step(Input::DecidedElsewhere {
        block_hash: block,
        payload: block.0.to_vec(),
        certificate: certificate(&[1, 2, 3], H1, 0, block),
    });
}

/// The safety data the outputs persist, if they do.
fn persisted(outputs: &[Output]) -> Option<SafetyData> {
    outputs.iter().find_map(|o| match o {
        Output::Persist(s) => Some(*s),
        _ => None,
    })
}

fn decided(outputs: &[Output]) -> Option<(BlockHash, Vec<u8>, CommitCertificate)> {
    outputs.iter().find_map(|o| match o {
        Output::Decide {
            block_hash,
            payload,
            certificate,
            ..
        } => Some((*block_hash, payload.clone(), certificate.clone())),
        _ => None,
    })
}

fn prevote_of(me: usize, round: u32, hash: Option<BlockHash>) -> Vote {
    Vote {
        kind: VoteKind::Prevote,
        height: H1,
        round: Round(round),
        block_hash: hash,
        validator: me as u16,
    }
}

#[test]
fn l11_l20_start_round_schedules_propose_timeout() {
    // Validator 0 is not proposer(1, 0) = 1.
    let (_, outputs) = Host::new(0, 4);
    assert_eq!(
        scheduled(&outputs),
        vec![Timeout {
            height: H1,
            round: Round(0),
            step: TimeoutStep::Propose
        }],
        "L20-L21"
    );
}

#[test]
fn l14_l19_proposer_proposes_the_hosts_value() {
    let (_, outputs) = Host::new(1, 4);
    let proposed = outputs.iter().find_map(|o| match o {
        Output::BroadcastProposal { proposal, payload } => {
            Some((proposal.proposal, payload.clone()))
        }
        _ => None,
    });
    let (p, payload) = proposed.expect("L19 broadcast");
    assert_eq!((p.block_hash, p.pol_round, p.round), (X, None, Round(0)));
    assert_eq!(payload, b"block X".to_vec());
    // L22 on its own proposal: the proposer prevotes it.
    assert_eq!(broadcast_votes(&outputs), vec![prevote_of(1, 0, Some(X))]);
}

#[test]
fn l22_prevote_waits_for_validity_and_persists_before_signing() {
    let mut core = Consensus::new(config(0)).expect("config");
    let _ = core.handle(Input::StartHeight {
        height: H1,
        validators: set(4),
    });
    let outputs = core.handle(Input::Proposal {
        proposal: proposal(1, H1, 0, None, X),
        payload: b"x".to_vec(),
    });
    assert!(
        matches!(outputs.as_slice(), [Output::ValidateValue { block_hash, .. }] if *block_hash == X)
    );
    let outputs = core.handle(Input::ValueValidity {
        height: H1,
        block_hash: X,
        valid: true,
    });
    match outputs.as_slice() {
        [Output::Persist(safety), Output::Sign(SignRequest::Vote(v))] => {
            assert_eq!(*v, prevote_of(0, 0, Some(X)), "L24");
            assert_eq!(safety.step, Step::Prevote);
            assert_eq!(
                safety.last_signed,
                Some(SignedState {
                    height: H1,
                    round: Round(0),
                    step: SignStep::Prevote,
                    block_hash: Some(X)
                })
            );
        }
        other => panic!("L22: expected Persist then Sign, got {other:?}"),
    }
}

#[test]
fn l26_invalid_proposal_gets_a_nil_prevote() {
    let (mut host, _) = Host::new(0, 4);
    let outputs = host.step(Input::Proposal {
        proposal: proposal(1, H1, 0, None, Y),
        payload: b"y".to_vec(),
    });
    assert_eq!(broadcast_votes(&outputs), vec![prevote_of(0, 0, None)]);
}

#[test]
fn l36_l49_lock_precommit_and_decide_with_a_verifiable_certificate() {
    let (mut host, _) = Host::new(0, 4);
    let _ = host.step(Input::Proposal {
        proposal: proposal(1, H1, 0, None, X),
        payload: b"block X".to_vec(),
    });
    let _ = host.step(Input::Vote(vote(1, VoteKind::Prevote, H1, 0, Some(X))));
    let outputs = host.step(Input::Vote(vote(2, VoteKind::Prevote, H1, 0, Some(X))));
    let precommit = Vote {
        kind: VoteKind::Precommit,
        ..prevote_of(0, 0, Some(X))
    };
    assert_eq!(broadcast_votes(&outputs), vec![precommit], "L36-L41");
    let lock = Some(RoundValue {
        round: Round(0),
        block_hash: X,
    });
    assert_eq!(host.core.safety_data().locked, lock, "L38-L39");
    assert_eq!(
        persisted(&outputs).map(|s| s.locked),
        Some(lock),
        "the lock is persisted with the precommit"
    );
    let _ = host.step(Input::Vote(vote(1, VoteKind::Precommit, H1, 0, Some(X))));
    let outputs = host.step(Input::Vote(vote(3, VoteKind::Precommit, H1, 0, Some(X))));
    let (hash, payload, certificate) = decided(&outputs).expect("L49-L51");
    assert_eq!((hash, payload), (X, b"block X".to_vec()));
    assert_eq!(certificate.signatures.len(), 3);
    certificate
        .verify(&set(4), CHAIN)
        .expect("a light client accepts the certificate");
    assert_eq!(host.core.step(), Step::Commit);
    // After Decide, the host starts the next height.
    let outputs = host.step(Input::StartHeight {
        height: Height(2),
        validators: set(4),
    });
    assert_eq!(host.core.height(), Height(2));
    assert!(!scheduled(&outputs).is_empty());
}

#[test]
fn l28_proof_of_lock_from_an_earlier_round() {
    let (mut host, _) = Host::new(0, 4);
    // Round 0 polka for X is seen, but the proposal of round 0 is not: no lock.
    for i in 1..4 {
        let _ = host.step(Input::Vote(vote(i, VoteKind::Prevote, H1, 0, Some(X))));
    }
    // f+1 = 2 messages of round 1 move us there (L55).
    let _ = host.step(Input::Vote(vote(2, VoteKind::Prevote, H1, 1, None)));
    let _ = host.step(Input::Vote(vote(3, VoteKind::Prevote, H1, 1, None)));
    assert_eq!(host.core.round(), Round(1), "L55");
    // proposer(1, 1) = 2 re-proposes X with vr = 0.
    let outputs = host.step(Input::Proposal {
        proposal: proposal(2, H1, 1, Some(0), X),
        payload: b"block X".to_vec(),
    });
    assert_eq!(
        broadcast_votes(&outputs),
        vec![prevote_of(0, 1, Some(X))],
        "L28-L30"
    );
}

#[test]
fn l44_l47_l65_nil_polka_then_precommit_timeout_then_next_round() {
    let (mut host, _) = Host::new(0, 4);
    let outputs = host.step(Input::TimeoutFired(Timeout {
        height: H1,
        round: Round(0),
        step: TimeoutStep::Propose,
    }));
    assert_eq!(
        broadcast_votes(&outputs),
        vec![prevote_of(0, 0, None)],
        "L57-L60"
    );
    let _ = host.step(Input::Vote(vote(1, VoteKind::Prevote, H1, 0, None)));
    let outputs = host.step(Input::Vote(vote(2, VoteKind::Prevote, H1, 0, None)));
    let nil_precommit = Vote {
        kind: VoteKind::Precommit,
        ..prevote_of(0, 0, None)
    };
    assert_eq!(broadcast_votes(&outputs), vec![nil_precommit], "L44-L46");
    let _ = host.step(Input::Vote(vote(1, VoteKind::Precommit, H1, 0, None)));
    let outputs = host.step(Input::Vote(vote(2, VoteKind::Precommit, H1, 0, None)));
    let precommit_timeout = Timeout {
        height: H1,
        round: Round(0),
        step: TimeoutStep::Precommit,
    };
    assert_eq!(scheduled(&outputs), vec![precommit_timeout], "L47-L48");
    let outputs = host.step(Input::TimeoutFired(precommit_timeout));
    assert_eq!(host.core.round(), Round(1), "L65-L67");
    let round1 = scheduled(&outputs);
    assert_eq!(round1[0].round, Round(1));
    // Timeouts grow with the round.
    let durations: Vec<u64> = outputs
        .iter()
        .filter_map(|o| match o {
            Output::ScheduleTimeout { duration_ms, .. } => Some(*duration_ms),
            _ => None,
        })
        .collect();
    assert_eq!(durations, vec![1500]);
}

#[test]
fn l34_l61_prevote_timeout_gives_a_nil_precommit() {
    let (mut host, _) = Host::new(0, 4);
    let _ = host.step(Input::TimeoutFired(Timeout {
        height: H1,
        round: Round(0),
        step: TimeoutStep::Propose,
    }));
    let _ = host.step(Input::Vote(vote(1, VoteKind::Prevote, H1, 0, Some(X))));
    let outputs = host.step(Input::Vote(vote(2, VoteKind::Prevote, H1, 0, Some(Y))));
    let prevote_timeout = Timeout {
        height: H1,
        round: Round(0),
        step: TimeoutStep::Prevote,
    };
    assert_eq!(scheduled(&outputs), vec![prevote_timeout], "L34-L35");
    let outputs = host.step(Input::TimeoutFired(prevote_timeout));
    assert_eq!(
        broadcast_votes(&outputs),
        vec![Vote {
            kind: VoteKind::Precommit,
            ..prevote_of(0, 0, None)
        }],
        "L61-L64"
    );
    // A stale timeout of another round does nothing (L62).
    let outputs = host.step(Input::TimeoutFired(Timeout {
        round: Round(7),
        ..prevote_timeout
    }));
    assert!(outputs.is_empty());
}

#[test]
fn equivocation_is_reported_with_both_signed_votes() {
    let (mut host, _) = Host::new(0, 4);
    let a = vote(3, VoteKind::Prevote, H1, 0, Some(X));
    let b = vote(3, VoteKind::Prevote, H1, 0, Some(Y));
    let _ = host.step(Input::Vote(a));
    let outputs = host.step(Input::Vote(b));
    assert!(
        outputs.iter().any(|o| matches!(o, Output::Evidence(Evidence::Equivocation { vote_a, vote_b }) if *vote_a == a && *vote_b == b)),
        "{outputs:?}"
    );
    // Reported once; a third conflicting vote is dropped.
    let c = vote(3, VoteKind::Prevote, H1, 0, None);
    assert!(host.step(Input::Vote(c)).is_empty());
}

#[test]
fn forged_and_misattributed_messages_are_rejected() {
    let (mut host, _) = Host::new(0, 4);
    let mut forged = vote(2, VoteKind::Prevote, H1, 0, Some(X));
    forged.signature.0[5] ^= 1;
    let outputs = host.step(Input::Vote(forged));
    assert!(matches!(
        outputs.as_slice(),
        [Output::Rejected(Error::InvalidSignature { index: 2 })]
    ));
    let outputs = host.step(Input::Vote(vote(9, VoteKind::Prevote, H1, 0, Some(X))));
    assert!(matches!(
        outputs.as_slice(),
        [Output::Rejected(Error::UnknownValidator { index: 9, .. })]
    ));
    let outputs = host.step(Input::Proposal {
        proposal: proposal(3, H1, 0, None, X),
        payload: Vec::new(),
    });
    assert!(matches!(
        outputs.as_slice(),
        [Output::Rejected(Error::WrongProposer {
            expected: 1,
            actual: 3,
            ..
        })]
    ));
    // A vote signed for another chain does not verify here.
    let v = prevote_of(2, 0, Some(X));
    let other_chain = SignedVote {
        vote: v,
        signature: sign(2, &vote_signing_message("another-chain", &v)),
    };
    let outputs = host.step(Input::Vote(other_chain));
    assert!(matches!(
        outputs.as_slice(),
        [Output::Rejected(Error::InvalidSignature { .. })]
    ));
    assert_eq!(host.core.stored_votes(), 0);
}

fn certificate(
    signers: &[usize],
    height: Height,
    round: u32,
    hash: BlockHash,
) -> CommitCertificate {
    CommitCertificate {
        height,
        round: Round(round),
        block_hash: hash,
        signatures: signers
            .iter()
            .map(|i| {
                (
                    *i as u16,
                    vote(*i, VoteKind::Precommit, height, round, Some(hash)).signature,
                )
            })
            .collect(),
    }
}

#[test]
fn certificate_verification() {
    let validators = set(4);
    let good = certificate(&[0, 2, 3], H1, 2, X);
    assert_eq!(good.verify(&validators, CHAIN), Ok(()), "quorum of 3 of 4");
    assert_eq!(
        certificate(&[0, 1, 2, 3], H1, 2, X).verify(&validators, CHAIN),
        Ok(())
    );

    let cases: Vec<(&str, CommitCertificate, &str, Error)> = vec![
        (
            "quorum - 1",
            certificate(&[0, 3], H1, 2, X),
            CHAIN,
            Error::InsufficientQuorum {
                count: 2,
                quorum: 3,
            },
        ),
        (
            "duplicate signer",
            certificate(&[0, 2, 2], H1, 2, X),
            CHAIN,
            Error::DuplicateSigner { index: 2 },
        ),
        (
            "unordered signers",
            certificate(&[2, 0, 3], H1, 2, X),
            CHAIN,
            Error::UnorderedSigners {
                previous: 2,
                index: 0,
            },
        ),
        (
            "unknown index",
            {
                let mut c = certificate(&[0, 1, 2], H1, 2, X);
                c.signatures.push((4, c.signatures[0].1));
                c
            },
            CHAIN,
            Error::UnknownValidator { index: 4, count: 4 },
        ),
        (
            "more signatures than validators",
            {
                let mut c = certificate(&[0, 1, 2, 3], H1, 2, X);
                c.signatures.push((4, c.signatures[0].1));
                c
            },
            CHAIN,
            Error::TooManySignatures { count: 5, max: 4 },
        ),
        (
            "tampered signature byte",
            {
                let mut c = certificate(&[0, 2, 3], H1, 2, X);
                c.signatures[1].1 .0[17] ^= 0x40;
                c
            },
            CHAIN,
            Error::InvalidSignature { index: 2 },
        ),
        (
            "tampered block hash",
            {
                let mut c = certificate(&[0, 2, 3], H1, 2, X);
                c.block_hash = Y;
                c
            },
            CHAIN,
            Error::InvalidSignature { index: 0 },
        ),
        (
            "tampered round",
            {
                let mut c = certificate(&[0, 2, 3], H1, 2, X);
                c.round = Round(3);
                c
            },
            CHAIN,
            Error::InvalidSignature { index: 0 },
        ),
        (
            "another chain id",
            good.clone(),
            "another-chain",
            Error::InvalidSignature { index: 0 },
        ),
    ];
    for (name, cert, chain, expected) in cases {
        assert_eq!(cert.verify(&validators, chain), Err(expected), "{name}");
    }
    // Prevotes are not precommits: a certificate made of prevote signatures fails.
    let mut prevotes = good.clone();
    for (index, signature) in &mut prevotes.signatures {
        *signature = vote(usize::from(*index), VoteKind::Prevote, H1, 2, Some(X)).signature;
    }
    assert!(prevotes.verify(&validators, CHAIN).is_err());
}

#[test]
fn decided_elsewhere_catches_a_lagging_validator_up() {
    let (mut host, _) = Host::new(0, 4);
    let cert = certificate(&[1, 2, 3], H1, 4, X);
    // Wrong block hash, bad certificate, future height: rejected.
    let outputs = host.step(Input::DecidedElsewhere {
        block_hash: Y,
        payload: b"y".to_vec(),
        certificate: cert.clone(),
    });
    assert!(matches!(
        outputs.as_slice(),
        [Output::Rejected(Error::BlockHashMismatch { .. })]
    ));
    let outputs = host.step(Input::DecidedElsewhere {
        block_hash: X,
        payload: b"x".to_vec(),
        certificate: certificate(&[1, 2], H1, 4, X),
    });
    assert!(matches!(
        outputs.as_slice(),
        [Output::Rejected(Error::InsufficientQuorum { .. })]
    ));
    let outputs = host.step(Input::DecidedElsewhere {
        block_hash: X,
        payload: b"x".to_vec(),
        certificate: certificate(&[1, 2, 3], Height(3), 0, X),
    });
    assert!(matches!(
        outputs.as_slice(),
        [Output::Rejected(Error::HeightMismatch { .. })]
    ));
    // The real one.
    let outputs = host.step(Input::DecidedElsewhere {
        block_hash: X,
        payload: b"x".to_vec(),
        certificate: cert.clone(),
    });
    let (hash, payload, certificate) = decided(&outputs).expect("decides");
    assert_eq!((hash, payload, certificate), (X, b"x".to_vec(), cert));
    let _ = host.step(Input::StartHeight {
        height: Height(2),
        validators: set(4),
    });
    assert_eq!(
        (host.core.height(), host.core.step()),
        (Height(2), Step::Propose)
    );
}

#[test]
fn future_height_messages_are_buffered_then_replayed() {
    let (mut host, _) = Host::new(0, 4);
    let h2 = Height(2);
    // proposer(2, 0) = 2.
    let _ = host.step(Input::Proposal {
        proposal: proposal(2, h2, 0, None, X),
        payload: b"block X".to_vec(),
    });
    let _ = host.step(Input::Vote(vote(2, VoteKind::Prevote, h2, 0, Some(X))));
    assert_eq!(host.core.future_messages(), 2);
    decide_height_one_elsewhere(&mut host, Y);
    let outputs = host.step(Input::StartHeight {
        height: h2,
        validators: set(4),
    });
    assert_eq!(host.core.future_messages(), 0);
    // The buffered proposal was replayed: we prevote it at height 2.
    let prevote = Vote {
        height: h2,
        ..prevote_of(0, 0, Some(X))
    };
    assert_eq!(broadcast_votes(&outputs), vec![prevote]);
}

#[test]
fn a_restored_validator_never_signs_a_conflicting_vote() {
    // Validator 0 prevotes X in round 0 and persists; it crashes before anything else.
    let (mut host, _) = Host::new(0, 4);
    let outputs = host.step(Input::Proposal {
        proposal: proposal(1, H1, 0, None, X),
        payload: b"block X".to_vec(),
    });
    let persisted = persisted(&outputs)
        .expect("persisted before signing")
        .encode();
    let safety = SafetyData::decode(&persisted).expect("decodes");

    // Restored, it resumes at step prevote and re-signs only the very same prevote.
    let mut restored = Host {
        me: 0,
        core: Consensus::restore(config(0), safety).expect("config"),
        signed: Vec::new(),
    };
    let outputs = restored.step(Input::StartHeight {
        height: H1,
        validators: set(4),
    });
    assert_eq!(broadcast_votes(&outputs), vec![prevote_of(0, 0, Some(X))]);
    assert_eq!(restored.core.step(), Step::Prevote);

    // Even safety data that claims step propose (as if the step were lost) cannot make it
    // prevote another value in round 0: the signing guard refuses.
    let mut rewound = safety;
    rewound.step = Step::Propose;
    let mut restored = Host {
        me: 0,
        core: Consensus::restore(config(0), rewound).expect("config"),
        signed: Vec::new(),
    };
    let _ = restored.step(Input::StartHeight {
        height: H1,
        validators: set(4),
    });
    let outputs = restored.step(Input::Proposal {
        proposal: proposal(1, H1, 0, None, Z),
        payload: b"block Z".to_vec(),
    });
    assert!(
        broadcast_votes(&outputs).is_empty(),
        "no second prevote in round 0: {outputs:?}"
    );
    let outputs = restored.step(Input::TimeoutFired(Timeout {
        height: H1,
        round: Round(0),
        step: TimeoutStep::Propose,
    }));
    assert!(
        broadcast_votes(&outputs).is_empty(),
        "no nil prevote either"
    );
    assert!(
        restored.signed.is_empty(),
        "nothing conflicting was even sent to the signer"
    );

    // A later round is fine: f+1 messages of round 1 (L55), then its proposal.
    let _ = restored.step(Input::Vote(vote(2, VoteKind::Prevote, H1, 1, None)));
    let _ = restored.step(Input::Vote(vote(3, VoteKind::Prevote, H1, 1, None)));
    assert_eq!(restored.core.round(), Round(1));
    let outputs = restored.step(Input::Proposal {
        proposal: proposal(2, H1, 1, None, Z),
        payload: b"block Z".to_vec(),
    });
    assert_eq!(broadcast_votes(&outputs), vec![prevote_of(0, 1, Some(Z))]);
}

const Z: BlockHash = BlockHash([0xCC; 32]);

#[test]
fn safety_data_of_a_later_height_is_kept_until_that_height() {
    // Validator 0 decides height 1, prevotes X at height 2 and persists; its host had not yet
    // written block 1 when it crashed, so it restarts at height 1.
    let (mut host, _) = Host::new(0, 4);
    decide_height_one_elsewhere(&mut host, Y);
    let h2 = Height(2);
    let _ = host.step(Input::StartHeight {
        height: h2,
        validators: set(4),
    });
    // proposer(2, 0) = 2.
    let outputs = host.step(Input::Proposal {
        proposal: proposal(2, h2, 0, None, X),
        payload: b"block X".to_vec(),
    });
    let safety = persisted(&outputs).expect("persisted before signing");
    let prevote = Vote {
        height: h2,
        ..prevote_of(0, 0, Some(X))
    };
    assert_eq!(broadcast_votes(&outputs), vec![prevote]);

    let mut restored = Host {
        me: 0,
        core: Consensus::restore(config(0), safety).expect("config"),
        signed: Vec::new(),
    };
    let outputs = restored.step(Input::StartHeight {
        height: H1,
        validators: set(4),
    });
    assert!(
        broadcast_votes(&outputs).is_empty(),
        "nothing is signed at a height below the saved one: {outputs:?}"
    );
    decide_height_one_elsewhere(&mut restored, Y);
    // At height 2 it resumes where it was: the same prevote, at step prevote.
    let outputs = restored.step(Input::StartHeight {
        height: h2,
        validators: set(4),
    });
    assert_eq!(broadcast_votes(&outputs), vec![prevote]);
    assert_eq!(restored.core.step(), Step::Prevote);
}

#[test]
fn a_flood_from_one_validator_does_not_grow_memory() {
    let (mut host, _) = Host::new(0, 4);
    let flooder = 3;
    let mut inputs = 0u64;
    for height in [2u64, 3, 4, 1000] {
        for round in 0..200u32 {
            for kind in [VoteKind::Prevote, VoteKind::Precommit] {
                for hash in [Some(X), Some(Y), Some(Z), None] {
                    let _ = host.step(Input::Vote(vote(
                        flooder,
                        kind,
                        Height(height),
                        round,
                        hash,
                    )));
                    inputs += 1;
                }
            }
        }
    }
    // Current height, rounds far ahead and within the window.
    for round in 0..2000u32 {
        for hash in [Some(X), Some(Y), Some(Z)] {
            let _ = host.step(Input::Vote(vote(
                flooder,
                VoteKind::Prevote,
                H1,
                round,
                hash,
            )));
            inputs += 1;
        }
    }
    // Forged messages for the next height take no buffer space at all.
    let buffered = host.core.future_messages();
    for round in 0..1000u32 {
        let mut forged = vote(2, VoteKind::Prevote, Height(2), round, Some(X));
        forged.signature.0[0] ^= 1;
        let _ = host.step(Input::Vote(forged));
        inputs += 1;
    }
    assert_eq!(host.core.future_messages(), buffered);
    assert!(inputs > 10_000);
    assert!(host.core.future_messages() <= FUTURE_MESSAGES_PER_VALIDATOR_MAX);
    let window = ROUNDS_AHEAD_MAX as usize + 1;
    assert!(
        host.core.stored_votes() <= 2 * VOTES_PER_SLOT_MAX * window,
        "stored {} votes",
        host.core.stored_votes()
    );
    // One validator alone (f = 1, it needs f + 1 = 2) cannot drag us to a later round.
    assert_eq!(host.core.round(), Round(0));
}

#[test]
fn safety_data_round_trips_and_rejects_malformed_bytes() {
    let samples = [
        SafetyData {
            height: Height(0),
            round: Round(0),
            step: Step::Unstarted,
            locked: None,
            valid: None,
            last_signed: None,
        },
        SafetyData {
            height: Height(u64::MAX),
            round: Round(u32::MAX),
            step: Step::Precommit,
            locked: Some(RoundValue {
                round: Round(3),
                block_hash: X,
            }),
            valid: Some(RoundValue {
                round: Round(4),
                block_hash: Y,
            }),
            last_signed: Some(SignedState {
                height: Height(u64::MAX),
                round: Round(4),
                step: SignStep::Precommit,
                block_hash: None,
            }),
        },
    ];
    for sample in samples {
        let bytes = sample.encode();
        assert_eq!(bytes.len(), SAFETY_DATA_BYTES);
        assert_eq!(SafetyData::decode(&bytes), Ok(sample));
        for i in 0..bytes.len() {
            let mut corrupt = bytes;
            corrupt[i] ^= 0x01;
            assert!(
                SafetyData::decode(&corrupt).is_err(),
                "flip in byte {i} accepted"
            );
        }
        assert!(SafetyData::decode(&bytes[..bytes.len() - 1]).is_err());
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert!(SafetyData::decode(&longer).is_err());
    }
    assert!(SafetyData::decode(&[]).is_err());
}

/// Golden bytes: these formats are signed or stored, so a change must be deliberate.
#[test]
fn golden_bytes_of_signed_and_stored_formats() {
    let vote = Vote {
        kind: VoteKind::Precommit,
        height: Height(7),
        round: Round(2),
        block_hash: Some(X),
        validator: 3,
    };
    let nil_prevote = Vote {
        kind: VoteKind::Prevote,
        block_hash: None,
        ..vote
    };
    let proposal = Proposal {
        height: Height(7),
        round: Round(2),
        pol_round: Some(Round(1)),
        block_hash: X,
        proposer: 1,
    };
    let safety = SafetyData {
        height: Height(7),
        round: Round(2),
        step: Step::Precommit,
        locked: Some(RoundValue {
            round: Round(2),
            block_hash: X,
        }),
        valid: None,
        last_signed: Some(SignedState {
            height: Height(7),
            round: Round(2),
            step: SignStep::Precommit,
            block_hash: Some(X),
        }),
    };
    let actual = [
        hex::encode(vote_signing_message("yrd-main", &vote)),
        hex::encode(vote_signing_message("yrd-main", &nil_prevote)),
        hex::encode(proposal_signing_message("yrd-main", &proposal)),
        hex::encode(safety.encode()),
        hex::encode(set(4).hash()),
    ];
    assert_eq!(actual, GOLDEN);
}

/// Cross-checked against an independent Python implementation of the documented layouts.
const GOLDEN: [&str; 5] = [
    // Precommit for 0xaa.. at height 7, round 2, chain "yrd-main".
    "726dfef367fccb66b7c096575aed3d47e271e39e6dfb69a1136d6c70e6f0f672",
    // Nil prevote at height 7, round 2.
    "40ad3b4418815b600e1058f18d1af3f13a05eaaea3b8831e798a1a232c71fa18",
    // Proposal of 0xaa.. at height 7, round 2, proof-of-lock round 1.
    "d37bda1f1b0e382902666f7d3197f9f23cb8d2a2ca81a5ed55a97f7384bb56c8",
    // SafetyData, 143 bytes.
    "7972645301000000000000000700000002030100000002aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa00000000000000000000000000000000000000000000000000000000000000000000000000010000000000000007000000020301aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa7adc414d",
    // ValidatorSet::hash of the four test keys.
    "8aa78b0130261f423a829a20b2768ca8ccf1280c4df10b281b5720e3440e692b",
];

#[test]
fn validator_set_quorum_and_proposer() {
    for (n, f, quorum) in [
        (1, 0, 1),
        (3, 0, 3),
        (4, 1, 3),
        (5, 1, 4),
        (6, 1, 5),
        (7, 2, 5),
        (10, 3, 7),
        (100, 33, 67),
    ] {
        let validators = set(n);
        assert_eq!(
            (validators.max_faulty(), validators.quorum()),
            (f, quorum),
            "n = {n}"
        );
        assert!(3 * validators.quorum() > 2 * n);
    }
    let validators = set(4);
    let proposers: Vec<u16> = (0..6)
        .map(|r| validators.proposer(Height(5), Round(r)))
        .collect();
    assert_eq!(proposers, vec![1, 2, 3, 0, 1, 2], "(h + r) mod n");
    assert_eq!(ValidatorSet::new(Vec::new()), Err(Error::EmptyValidatorSet));
    assert_eq!(
        ValidatorSet::new(vec![public_key(0), public_key(1), public_key(0)]),
        Err(Error::DuplicateValidator { index: 2 })
    );
}

#[test]
fn a_key_outside_the_validator_set_observes_and_decides_without_signing() {
    // Height 2 drops validator 0: its core follows as an observer.
    let (mut host, _) = Host::new(0, 4);
    decide_height_one_elsewhere(&mut host, X);
    let smaller =
        ValidatorSet::new(vec![public_key(1), public_key(2), public_key(3)]).expect("set");
    let h2 = Height(2);
    let signed_before = host.signed.len();
    let _ = host.step(Input::StartHeight {
        height: h2,
        validators: smaller.clone(),
    });
    // In the new set, index i is validator i + 1; proposer(2, 0) = 2 % 3 = index 2 (key 3).
    let p = Proposal {
        height: h2,
        round: Round(0),
        pol_round: None,
        block_hash: Z,
        proposer: 2,
    };
    let _ = host.step(Input::Proposal {
        proposal: SignedProposal {
            proposal: p,
            signature: sign(3, &proposal_signing_message(CHAIN, &p)),
        },
        payload: b"block Z".to_vec(),
    });
    let mut outputs = Vec::new();
    for (index, key) in [(0u16, 1usize), (1, 2), (2, 3)] {
        for kind in [VoteKind::Prevote, VoteKind::Precommit] {
            let v = Vote {
                kind,
                height: h2,
                round: Round(0),
                block_hash: Some(Z),
                validator: index,
            };
            outputs.extend(host.step(Input::Vote(SignedVote {
                vote: v,
                signature: sign(key, &vote_signing_message(CHAIN, &v)),
            })));
        }
    }
    let (hash, _, certificate) = decided(&outputs).expect("an observer decides too");
    assert_eq!(hash, Z);
    certificate
        .verify(&smaller, CHAIN)
        .expect("certificate for the new set");
    assert_eq!(host.signed.len(), signed_before, "an observer never signs");
}
