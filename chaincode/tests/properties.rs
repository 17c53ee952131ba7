//! Property tests: long random sequences of transactions from random members, valid and
//! invalid, checking invariants 2 to 7 of DOMAIN.md after every step, and that executing the
//! same sequence twice gives byte-identical receipts and writes.
//!
//! Every sequence starts with a fixed prologue (funds, holdings, receivables) so that random
//! steps find records to act on; `YRD_PROP_STATS=1` prints each step's outcome, which shows
//! that every kind of action is accepted in a run.
//!
//! The checks here are written apart from the rules: the `audit` functions scan the whole state,
//! and the role oracle below is an independent table of who may do what.

use ed25519_dalek::SigningKey;
use proptest::prelude::*;
use yrd_chaincode::testkit::{Harness, Party};
use yrd_chaincode::{credit, funds, keys, receivables, BlockOutcome};
use yrd_proto::signing::verify_transaction;
use yrd_proto::v1::{self, transaction_body::Action, ReasonCode, Role};

const DAY_MS: u64 = 86_400_000;

/// One random step. Indices pick from small pools so that ids collide and rules are exercised.
#[derive(Clone, Debug)]
enum Op {
    RegisterReceivable {
        id: u8,
        debtor: u8,
        creditor: u8,
        face: u64,
        due_days: u8,
        invoices: Vec<u8>,
    },
    Confirm {
        id: u8,
    },
    Transfer {
        id: u8,
        part: u8,
        to: u8,
        amount: u64,
    },
    Pledge {
        id: u8,
        part: u8,
        financier: u8,
        amount: u64,
        factor: bool,
    },
    Release {
        id: u8,
        part: u8,
    },
    Pay {
        id: u8,
        amount: u64,
    },
    Cancel {
        id: u8,
    },
    RegisterFund {
        id: u8,
        manager: u8,
        total: u64,
    },
    RegisterHolding {
        fund: u8,
        holder: u8,
        units: u64,
    },
    TransferUnits {
        fund: u8,
        from: u8,
        to: u8,
        units: u64,
    },
    PledgeUnits {
        fund: u8,
        pledgor: u8,
        pledgee: u8,
        units: u64,
    },
    ReleasePledge {
        id: u8,
    },
    Enforce {
        id: u8,
        to: u8,
        units: u64,
    },
    Freeze {
        fund: u8,
        holder: u8,
        units: u64,
    },
    Unfreeze {
        id: u8,
    },
    RecordReport {
        id: u8,
        subject: u8,
        negative: bool,
    },
    Amend {
        id: u8,
    },
    Object {
        id: u8,
    },
    Resolve {
        id: u8,
        outcome: u8,
    },
    Grant {
        grantee: u8,
        purpose: u8,
        days: u8,
    },
    Revoke {
        grantee: u8,
        purpose: u8,
    },
    Query {
        id: u8,
        purpose: u8,
    },
    AdvanceDays {
        days: u8,
    },
    Replay {
        back: u8,
    },
}

/// How the signers of a step are chosen: the parties the rule names (most of the time), a
/// random set of parties, or the rule's parties less one.
#[derive(Clone, Debug)]
enum Signers {
    Proper,
    Random(Vec<u8>),
    DropOne(u8),
}

/// Mostly a party that may act as an enterprise (enterprises and banks), sometimes anyone.
fn enterprise() -> impl Strategy<Value = u8> + Clone {
    prop_oneof![6 => prop::sample::select(vec![5u8, 6, 7, 0, 1]), 1 => 0u8..9]
}

/// Mostly a bank (the financiers), sometimes anyone.
fn financier() -> impl Strategy<Value = u8> + Clone {
    prop_oneof![6 => prop::sample::select(vec![0u8, 1]), 1 => 0u8..9]
}

/// Mostly the root unit, sometimes a part.
fn part() -> impl Strategy<Value = u8> + Clone {
    prop::sample::select(vec![0u8, 0, 0, 1, 1, 2])
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let p = 0u8..9;
    let e = enterprise();
    let f = financier();
    prop_oneof![
        4 => (0u8..3, e.clone(), e.clone(), 1u64..10_000, 0u8..40, prop::collection::vec(0u8..6, 1..3))
            .prop_map(|(id, debtor, creditor, face, due_days, invoices)| Op::RegisterReceivable { id, debtor, creditor, face, due_days, invoices }),
        4 => (0u8..3).prop_map(|id| Op::Confirm { id }),
        4 => (0u8..3, part(), e.clone(), 1u64..10_000).prop_map(|(id, part, to, amount)| Op::Transfer { id, part, to, amount }),
        4 => (0u8..3, part(), f.clone(), 1u64..10_000, any::<bool>()).prop_map(|(id, part, financier, amount, factor)| Op::Pledge { id, part, financier, amount, factor }),
        2 => (0u8..3, part()).prop_map(|(id, part)| Op::Release { id, part }),
        3 => (0u8..3, 1u64..10_000).prop_map(|(id, amount)| Op::Pay { id, amount }),
        1 => (0u8..3).prop_map(|id| Op::Cancel { id }),
        1 => (0u8..2, p.clone(), 1u64..10_000).prop_map(|(id, manager, total)| Op::RegisterFund { id, manager, total }),
        3 => (0u8..2, e.clone(), 1u64..5_000).prop_map(|(fund, holder, units)| Op::RegisterHolding { fund, holder, units }),
        3 => (0u8..2, e.clone(), e.clone(), 1u64..2_000).prop_map(|(fund, from, to, units)| Op::TransferUnits { fund, from, to, units }),
        4 => (0u8..2, e.clone(), f.clone(), 1u64..2_000).prop_map(|(fund, pledgor, pledgee, units)| Op::PledgeUnits { fund, pledgor, pledgee, units }),
        2 => (1u8..4).prop_map(|id| Op::ReleasePledge { id }),
        3 => (1u8..4, e.clone(), 1u64..2_000).prop_map(|(id, to, units)| Op::Enforce { id, to, units }),
        2 => (0u8..2, e.clone(), 1u64..2_000).prop_map(|(fund, holder, units)| Op::Freeze { fund, holder, units }),
        1 => (1u8..4).prop_map(|id| Op::Unfreeze { id }),
        2 => (0u8..3, e.clone(), any::<bool>()).prop_map(|(id, subject, negative)| Op::RecordReport { id, subject, negative }),
        2 => (0u8..3).prop_map(|id| Op::Amend { id }),
        2 => (0u8..3).prop_map(|id| Op::Object { id }),
        2 => (0u8..3, 1u8..4).prop_map(|(id, outcome)| Op::Resolve { id, outcome }),
        2 => (p.clone(), 1u8..3, 0u8..30).prop_map(|(grantee, purpose, days)| Op::Grant { grantee, purpose, days }),
        1 => (p.clone(), 1u8..3).prop_map(|(grantee, purpose)| Op::Revoke { grantee, purpose }),
        2 => (0u8..3, 1u8..3).prop_map(|(id, purpose)| Op::Query { id, purpose }),
        1 => (0u8..25).prop_map(|days| Op::AdvanceDays { days }),
        2 => (0u8..8).prop_map(|back| Op::Replay { back }),
    ]
}

fn signers_strategy() -> impl Strategy<Value = Signers> {
    prop_oneof![
        6 => Just(Signers::Proper),
        2 => prop::collection::vec(0u8..9, 1..4).prop_map(Signers::Random),
        1 => (0u8..3).prop_map(Signers::DropOne),
    ]
}

fn parties(h: &Harness) -> Vec<Party> {
    vec![
        h.bank_a.clone(),
        h.bank_b.clone(),
        h.bureau.clone(),
        h.market.clone(),
        h.market_b.clone(),
        h.core.clone(),
        h.supplier.clone(),
        h.supplier_b.clone(),
        h.regulator.clone(),
    ]
}

fn receivable_id(id: u8) -> String {
    format!("R{id}")
}

fn unit_id(id: u8, part: u8) -> String {
    if part == 0 {
        receivable_id(id)
    } else {
        format!("R{id}#{part}")
    }
}

fn party_of(all: &[Party], uscc: &str) -> Option<usize> {
    all.iter().position(|p| p.uscc.as_str() == uscc)
}

/// Builds the wire action of a step and the parties its rule names (by index into `parties`).
fn build(h: &Harness, all: &[Party], op: &Op) -> Option<(Action, Vec<usize>)> {
    let id_of = |i: u8| all[i as usize].id();
    let unit = |id: u8, part: u8| -> Option<v1::ReceivableUnitRecord> {
        h.get(&keys::receivable_unit(&receivable_id(id), u32::from(part)))
    };
    let receivable =
        |id: u8| -> Option<v1::ReceivableRecord> { h.get(&keys::receivable(&receivable_id(id))) };
    let fund = |id: u8| -> Option<v1::FundRecord> { h.get(&keys::fund(&format!("F{id}"))) };
    let report = |id: u8| -> Option<v1::CreditReportRecord> {
        h.get(&keys::credit_report(&format!("C{id}")))
    };
    let holder_index = |uscc: &str| party_of(all, uscc);
    Some(match op {
        Op::RegisterReceivable {
            id,
            debtor,
            creditor,
            face,
            due_days,
            invoices,
        } => (
            Action::RegisterReceivable(v1::RegisterReceivable {
                receivable_id: receivable_id(*id),
                debtor_uscc: id_of(*debtor),
                creditor_uscc: id_of(*creditor),
                face_fen: *face,
                due_day: u32::try_from(h.time_ms / DAY_MS).ok()? + u32::from(*due_days),
                invoice_hashes: {
                    let mut v: Vec<Vec<u8>> = invoices.iter().map(|i| vec![*i; 32]).collect();
                    v.dedup();
                    v
                },
                contract_hash: vec![9; 32],
            }),
            vec![*creditor as usize],
        ),
        Op::Confirm { id } => {
            let debtor = receivable(*id)
                .and_then(|r| holder_index(&r.debtor_uscc))
                .unwrap_or(5);
            (
                Action::ConfirmReceivable(v1::ConfirmReceivable {
                    receivable_id: receivable_id(*id),
                }),
                vec![debtor],
            )
        }
        Op::Transfer {
            id,
            part,
            to,
            amount,
        } => {
            let record = unit(*id, *part);
            let mut signers = vec![record
                .as_ref()
                .and_then(|u| holder_index(&u.holder_uscc))
                .unwrap_or(6)];
            if let Some(financing) = record.as_ref().and_then(|u| u.financing.as_ref()) {
                signers.extend(holder_index(&financing.financier_uscc));
            }
            let amount = record.as_ref().map_or(*amount, |u| {
                if amount % 3 == 0 {
                    u.amount_fen
                } else {
                    (*amount).min(u.amount_fen.max(1))
                }
            });
            (
                Action::TransferReceivable(v1::TransferReceivable {
                    unit_id: unit_id(*id, *part),
                    to_uscc: id_of(*to),
                    amount_fen: amount,
                }),
                signers,
            )
        }
        Op::Pledge {
            id,
            part,
            financier,
            amount,
            factor,
        } => {
            let holder = unit(*id, *part)
                .and_then(|u| holder_index(&u.holder_uscc))
                .unwrap_or(6);
            let action = if *factor {
                Action::FactorReceivable(v1::FactorReceivable {
                    unit_id: unit_id(*id, *part),
                    factor_uscc: id_of(*financier),
                    advance_fen: *amount,
                })
            } else {
                Action::PledgeReceivable(v1::PledgeReceivable {
                    unit_id: unit_id(*id, *part),
                    pledgee_uscc: id_of(*financier),
                    secured_amount_fen: *amount,
                })
            };
            (action, vec![holder, *financier as usize])
        }
        Op::Release { id, part } => {
            let financier = unit(*id, *part)
                .and_then(|u| u.financing)
                .and_then(|f| holder_index(&f.financier_uscc))
                .unwrap_or(0);
            (
                Action::ReleaseReceivableFinancing(v1::ReleaseReceivableFinancing {
                    unit_id: unit_id(*id, *part),
                }),
                vec![financier],
            )
        }
        Op::Pay { id, amount } => {
            let record = receivable(*id);
            let debtor = record
                .as_ref()
                .and_then(|r| holder_index(&r.debtor_uscc))
                .unwrap_or(5);
            let amount = record.map_or(*amount, |r| {
                if amount % 4 == 0 {
                    r.face_fen.saturating_sub(r.paid_fen).max(1)
                } else {
                    *amount
                }
            });
            (
                Action::RecordReceivablePayment(v1::RecordReceivablePayment {
                    receivable_id: receivable_id(*id),
                    amount_fen: amount,
                }),
                vec![debtor],
            )
        }
        Op::Cancel { id } => {
            let creditor = receivable(*id)
                .and_then(|r| holder_index(&r.creditor_uscc))
                .unwrap_or(6);
            (
                Action::CancelReceivable(v1::CancelReceivable {
                    receivable_id: receivable_id(*id),
                }),
                vec![creditor],
            )
        }
        Op::RegisterFund { id, manager, total } => (
            Action::RegisterFund(v1::RegisterFund {
                fund_id: format!("F{id}"),
                manager_uscc: id_of(*manager),
                filing_number: "SX1234".into(),
                total_units: *total,
            }),
            vec![3 + (*id as usize % 2)],
        ),
        Op::RegisterHolding {
            fund: f,
            holder,
            units,
        } => {
            let registrar = fund(*f)
                .and_then(|r| holder_index(&r.registrar_uscc))
                .unwrap_or(3);
            (
                Action::RegisterHolding(v1::RegisterHolding {
                    fund_id: format!("F{f}"),
                    holder_uscc: id_of(*holder),
                    units: *units,
                }),
                vec![registrar],
            )
        }
        Op::TransferUnits {
            fund: f,
            from,
            to,
            units,
        } => {
            let registrar = fund(*f)
                .and_then(|r| holder_index(&r.registrar_uscc))
                .unwrap_or(3);
            (
                Action::TransferFundUnits(v1::TransferFundUnits {
                    fund_id: format!("F{f}"),
                    to_uscc: id_of(*to),
                    units: *units,
                }),
                vec![*from as usize, registrar],
            )
        }
        Op::PledgeUnits {
            fund: f,
            pledgor,
            pledgee,
            units,
        } => {
            let registrar = fund(*f)
                .and_then(|r| holder_index(&r.registrar_uscc))
                .unwrap_or(3);
            (
                Action::PledgeFundUnits(v1::PledgeFundUnits {
                    fund_id: format!("F{f}"),
                    pledgor_uscc: id_of(*pledgor),
                    pledgee_uscc: id_of(*pledgee),
                    units: *units,
                }),
                vec![*pledgor as usize, *pledgee as usize, registrar],
            )
        }
        Op::ReleasePledge { id } => {
            let pledge: Option<v1::FundPledgeRecord> = h.get(&keys::fund_pledge(u64::from(*id)));
            let pledgee = pledge
                .and_then(|p| holder_index(&p.pledgee_uscc))
                .unwrap_or(0);
            (
                Action::ReleaseFundPledge(v1::ReleaseFundPledge {
                    pledge_id: u64::from(*id),
                }),
                vec![pledgee],
            )
        }
        Op::Enforce { id, to, units } => {
            let pledge: Option<v1::FundPledgeRecord> = h.get(&keys::fund_pledge(u64::from(*id)));
            let pledgee = pledge
                .as_ref()
                .and_then(|p| holder_index(&p.pledgee_uscc))
                .unwrap_or(0);
            let registrar = pledge
                .and_then(|p| fund_by_id(h, &p.fund_id))
                .and_then(|r| holder_index(&r.registrar_uscc))
                .unwrap_or(3);
            (
                Action::EnforceFundPledge(v1::EnforceFundPledge {
                    pledge_id: u64::from(*id),
                    to_uscc: id_of(*to),
                    units: *units,
                }),
                vec![pledgee, registrar],
            )
        }
        Op::Freeze {
            fund: f,
            holder,
            units,
        } => (
            Action::FreezeFundUnits(v1::FreezeFundUnits {
                fund_id: format!("F{f}"),
                holder_uscc: id_of(*holder),
                units: *units,
                court_reference: "(2026) Hu 01 Zhi 1".into(),
            }),
            vec![8],
        ),
        Op::Unfreeze { id } => (
            Action::UnfreezeFundUnits(v1::UnfreezeFundUnits {
                freeze_id: u64::from(*id),
            }),
            vec![8],
        ),
        Op::RecordReport {
            id,
            subject,
            negative,
        } => (
            Action::RecordCreditReport(v1::RecordCreditReport {
                report_id: format!("C{id}"),
                subject_uscc: id_of(*subject),
                kind: v1::ReportKind::Loan as i32,
                document_sha256: vec![*id; 32],
                negative: *negative,
                event_end_day: u32::try_from(h.time_ms / DAY_MS).ok()?,
                summary: "overdue loan repaid".into(),
            }),
            vec![if id % 2 == 0 { 2 } else { 0 }],
        ),
        Op::Amend { id } => {
            let issuer = report(*id)
                .and_then(|r| holder_index(&r.issuer_uscc))
                .unwrap_or(2);
            (
                Action::AmendCreditReport(v1::AmendCreditReport {
                    report_id: format!("C{id}"),
                    document_sha256: vec![0xAA; 32],
                    negative: false,
                    event_end_day: 0,
                    summary: "corrected".into(),
                }),
                vec![issuer],
            )
        }
        Op::Object { id } => {
            let subject = report(*id)
                .and_then(|r| holder_index(&r.subject_uscc))
                .unwrap_or(5);
            (
                Action::FileObjection(v1::FileObjection {
                    report_id: format!("C{id}"),
                    reason: "not ours".into(),
                }),
                vec![subject],
            )
        }
        Op::Resolve { id, outcome } => {
            let issuer = report(*id)
                .and_then(|r| holder_index(&r.issuer_uscc))
                .unwrap_or(2);
            (
                Action::ResolveObjection(v1::ResolveObjection {
                    report_id: format!("C{id}"),
                    outcome: i32::from(*outcome),
                    note: String::new(),
                }),
                vec![issuer],
            )
        }
        Op::Grant {
            grantee,
            purpose,
            days,
        } => (
            Action::GrantAuthorization(v1::GrantAuthorization {
                grantee_uscc: id_of(*grantee),
                purpose: i32::from(*purpose),
                expires_at_ms: h.time_ms + u64::from(*days) * DAY_MS,
            }),
            vec![5 + (*grantee as usize % 3)],
        ),
        Op::Revoke { grantee, purpose } => (
            Action::RevokeAuthorization(v1::RevokeAuthorization {
                grantee_uscc: id_of(*grantee),
                purpose: i32::from(*purpose),
            }),
            vec![5 + (*grantee as usize % 3)],
        ),
        Op::Query { id, purpose } => (
            Action::RecordCreditQuery(v1::RecordCreditQuery {
                report_id: format!("C{id}"),
                purpose: i32::from(*purpose),
            }),
            vec![usize::from(id % 2)],
        ),
        Op::AdvanceDays { .. } | Op::Replay { .. } => return None,
    })
}

fn op_name(op: &Op) -> String {
    format!("{op:?}")
        .split([' ', '{'])
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn fund_by_id(h: &Harness, fund_id: &str) -> Option<v1::FundRecord> {
    h.get(&keys::fund(fund_id))
}

/// The roles some signer must hold for an accepted action: written apart from the rules.
fn required_roles(action: &Action) -> &'static [Role] {
    match action {
        Action::RecordCreditReport(_)
        | Action::AmendCreditReport(_)
        | Action::ResolveObjection(_) => &[Role::CreditReporter],
        Action::FileObjection(_)
        | Action::GrantAuthorization(_)
        | Action::RevokeAuthorization(_) => &[Role::Enterprise],
        Action::RegisterReceivable(_)
        | Action::ConfirmReceivable(_)
        | Action::TransferReceivable(_)
        | Action::RecordReceivablePayment(_) => &[Role::Enterprise],
        Action::PledgeReceivable(_) | Action::FactorReceivable(_) => {
            &[Role::Enterprise, Role::Financier]
        }
        Action::ReleaseReceivableFinancing(_) | Action::ReleaseFundPledge(_) => &[Role::Financier],
        Action::RegisterFund(_) | Action::RegisterHolding(_) => &[Role::Registrar],
        Action::TransferFundUnits(_) => &[Role::Enterprise, Role::Registrar],
        Action::PledgeFundUnits(_) => &[Role::Enterprise, Role::Financier, Role::Registrar],
        Action::EnforceFundPledge(_) => &[Role::Financier, Role::Registrar],
        _ => &[],
    }
}

fn signer_roles(h: &Harness, key: &SigningKey) -> Vec<Role> {
    h.get::<v1::KeyRecord>(&keys::member_key(&key.verifying_key().to_bytes()))
        .map(|k| k.roles().collect())
        .unwrap_or_default()
}

fn audit(h: &Harness) -> Result<(), String> {
    credit::audit(&h.state)?;
    receivables::audit(&h.state)?;
    funds::audit(&h.state)
}

/// A fixed opening that gives the random steps something to work on: two funds with holdings,
/// an active fund pledge, three receivables (two confirmed, one split).
fn prologue() -> Vec<(Op, Signers)> {
    let mut ops = vec![
        Op::RegisterFund {
            id: 0,
            manager: 5,
            total: 100_000,
        },
        Op::RegisterFund {
            id: 1,
            manager: 6,
            total: 100_000,
        },
    ];
    for fund in 0..2 {
        for holder in [5, 6, 7, 0] {
            ops.push(Op::RegisterHolding {
                fund,
                holder,
                units: 5_000,
            });
        }
    }
    ops.push(Op::PledgeUnits {
        fund: 0,
        pledgor: 5,
        pledgee: 0,
        units: 1_000,
    });
    ops.push(Op::RegisterReceivable {
        id: 0,
        debtor: 5,
        creditor: 6,
        face: 10_000,
        due_days: 60,
        invoices: vec![0],
    });
    ops.push(Op::RegisterReceivable {
        id: 1,
        debtor: 5,
        creditor: 7,
        face: 8_000,
        due_days: 90,
        invoices: vec![1],
    });
    ops.push(Op::RegisterReceivable {
        id: 2,
        debtor: 6,
        creditor: 0,
        face: 5_000,
        due_days: 30,
        invoices: vec![2],
    });
    ops.push(Op::Confirm { id: 0 });
    ops.push(Op::Confirm { id: 1 });
    ops.push(Op::Transfer {
        id: 0,
        part: 0,
        to: 7,
        amount: 2_500,
    });
    ops.into_iter().map(|op| (op, Signers::Proper)).collect()
}

/// Runs the prologue and then a sequence, checking invariants after every step; returns every
/// block outcome.
fn run(random_ops: &[(Op, Signers)], check: bool) -> Result<Vec<BlockOutcome>, TestCaseError> {
    let mut ops = prologue();
    ops.extend_from_slice(random_ops);
    let mut h = Harness::new();
    let all = parties(&h);
    let mut accepted: Vec<v1::SignedTransaction> = Vec::new();
    let mut outcomes = Vec::new();
    for (step, (op, signers)) in ops.iter().enumerate() {
        let envelope = match op {
            Op::AdvanceDays { days } => {
                h.advance_ms(u64::from(*days) * DAY_MS / 4);
                continue;
            }
            Op::Replay { back } => match accepted.iter().rev().nth(usize::from(*back)) {
                Some(envelope) => envelope.clone(),
                None => continue,
            },
            _ => {
                let Some((action, proper)) = build(&h, &all, op) else {
                    continue;
                };
                let chosen: Vec<usize> = match signers {
                    Signers::Proper => proper,
                    Signers::Random(random) => random.iter().map(|i| usize::from(*i)).collect(),
                    Signers::DropOne(index) => {
                        let mut proper = proper;
                        if proper.len() > 1 {
                            proper.remove(usize::from(*index) % proper.len());
                        }
                        proper
                    }
                };
                let mut chosen_dedup: Vec<usize> = Vec::new();
                for index in chosen {
                    if !chosen_dedup.contains(&index) {
                        chosen_dedup.push(index);
                    }
                }
                let keys: Vec<&SigningKey> = chosen_dedup.iter().map(|i| &all[*i].key).collect();
                let body = h.body(action);
                Harness::sign(&body, &keys)
            }
        };
        let is_replay = matches!(op, Op::Replay { .. });
        let verified = verify_transaction(envelope.clone(), yrd_chaincode::testkit::CHAIN_ID)
            .map_err(|e| {
                TestCaseError::fail(format!(
                    "step {step}: test envelope fails verification: {e}"
                ))
            })?;
        let signer_keys: Vec<SigningKey> = all
            .iter()
            .filter(|p| verified.signers.contains(&p.key.verifying_key().to_bytes()))
            .map(|p| p.key.clone())
            .collect();
        let roles: Vec<Role> = signer_keys
            .iter()
            .flat_map(|k| signer_roles(&h, k))
            .collect();
        let outcome = h.execute_verified(std::slice::from_ref(&verified));
        let receipt = &outcome.receipts[0];
        if check {
            // Invariant 7: a replayed transaction is never applied again.
            if is_replay {
                prop_assert!(
                    !receipt.accepted,
                    "step {step}: a replayed transaction was applied again"
                );
                prop_assert!(
                    receipt.reason == ReasonCode::ReasonDuplicateTransaction as i32
                        || receipt.reason == ReasonCode::ReasonExpired as i32,
                    "step {step}: replay rejected with {}",
                    receipt.reason
                );
            }
            // Invariant 5: a rejected transaction changes nothing (block pruning of expired
            // replay entries aside).
            if !receipt.accepted {
                for (key, value) in &outcome.writes {
                    prop_assert!(
                        key.starts_with(keys::APPLIED_BY_EXPIRY_PREFIX),
                        "step {step}: rejected {op:?} wrote {key:?}"
                    );
                    prop_assert!(
                        value.is_none(),
                        "step {step}: rejected transaction put {key:?}"
                    );
                }
            } else {
                prop_assert!(
                    outcome.writes.contains_key(&keys::applied_by_expiry(
                        verified.body.valid_until_ms,
                        &verified.hash
                    )),
                    "step {step}: accepted without a replay entry"
                );
                // Invariant 6: no write from a key lacking the role.
                let action = verified.body.action.as_ref().expect("action");
                for role in required_roles(action) {
                    prop_assert!(
                        roles.contains(role),
                        "step {step}: {op:?} accepted without a {role:?} signer"
                    );
                }
                accepted.push(envelope);
            }
            // Invariants 2, 3, 4 (and the registries' own consistency).
            audit(&h).map_err(|e| TestCaseError::fail(format!("step {step} after {op:?}: {e}")))?;
        } else if receipt.accepted {
            accepted.push(envelope);
        }
        if std::env::var_os("YRD_PROP_STATS").is_some() {
            eprintln!(
                "STAT {} {} {}",
                op_name(op),
                receipt.accepted,
                receipt.reason
            );
        }
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

fn sequence() -> impl Strategy<Value = Vec<(Op, Signers)>> {
    prop::collection::vec((op_strategy(), signers_strategy()), 150..300)
}

proptest! {
    #![proptest_config(ProptestConfig {
        // PROPTEST_CASES runs as many cases as asked.
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(96),
        max_shrink_iters: 2_000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn invariants_hold_after_every_step(ops in sequence()) {
        run(&ops, true)?;
    }

    #[test]
    fn the_same_sequence_gives_byte_identical_receipts_and_writes(ops in sequence()) {
        let first = run(&ops, false)?;
        let second = run(&ops, false)?;
        prop_assert_eq!(first, second);
    }
}
