//! The receivables registry: one test at least per rule, accepted and rejected, with the rejected
//! transaction writing nothing but its replay entries, and the registry audit after each test.

use yrd_chaincode::date::{day_of, DAY_MS};
use yrd_chaincode::keys;
use yrd_chaincode::receivables::{audit, receivable_view, unit};
use yrd_chaincode::testkit::{assert_accepted, assert_rejected, submit_and_writes, Harness, Party};
use yrd_chaincode::StateRead;
use yrd_proto::limits::PARTS_PER_RECEIVABLE_MAX;
use yrd_proto::signing::sha256;
use yrd_proto::v1::{
    self, transaction_body::Action as WireAction, FinancingKind, MemberKind, ReasonCode,
    ReceivableStatus,
};

const FACE_FEN: u64 = 1_000_000;

fn invoice(name: &str) -> Vec<u8> {
    sha256(name.as_bytes()).to_vec()
}

fn today(harness: &Harness) -> u32 {
    u32::try_from(day_of(harness.time_ms)).expect("day fits u32")
}

fn register_action(
    harness: &Harness,
    id: &str,
    debtor: &Party,
    creditor: &Party,
    invoices: &[&str],
) -> WireAction {
    WireAction::RegisterReceivable(v1::RegisterReceivable {
        receivable_id: id.to_owned(),
        debtor_uscc: debtor.id(),
        creditor_uscc: creditor.id(),
        face_fen: FACE_FEN,
        due_day: today(harness) + 30,
        invoice_hashes: invoices.iter().map(|name| invoice(name)).collect(),
        contract_hash: sha256(b"contract").to_vec(),
    })
}

fn confirm_action(id: &str) -> WireAction {
    WireAction::ConfirmReceivable(v1::ConfirmReceivable {
        receivable_id: id.to_owned(),
    })
}

fn transfer_action(unit_id: &str, to: &Party, amount_fen: u64) -> WireAction {
    WireAction::TransferReceivable(v1::TransferReceivable {
        unit_id: unit_id.to_owned(),
        to_uscc: to.id(),
        amount_fen,
    })
}

fn pledge_action(unit_id: &str, pledgee: &Party, secured_amount_fen: u64) -> WireAction {
    WireAction::PledgeReceivable(v1::PledgeReceivable {
        unit_id: unit_id.to_owned(),
        pledgee_uscc: pledgee.id(),
        secured_amount_fen,
    })
}

fn factor_action(unit_id: &str, factor: &Party, advance_fen: u64) -> WireAction {
    WireAction::FactorReceivable(v1::FactorReceivable {
        unit_id: unit_id.to_owned(),
        factor_uscc: factor.id(),
        advance_fen,
    })
}

fn release_action(unit_id: &str) -> WireAction {
    WireAction::ReleaseReceivableFinancing(v1::ReleaseReceivableFinancing {
        unit_id: unit_id.to_owned(),
    })
}

fn pay_action(id: &str, amount_fen: u64) -> WireAction {
    WireAction::RecordReceivablePayment(v1::RecordReceivablePayment {
        receivable_id: id.to_owned(),
        amount_fen,
    })
}

fn cancel_action(id: &str) -> WireAction {
    WireAction::CancelReceivable(v1::CancelReceivable {
        receivable_id: id.to_owned(),
    })
}

/// Registers `id` (core owes supplier) with the given invoices.
fn registered(harness: &mut Harness, id: &str, invoices: &[&str]) {
    let (core, supplier) = (harness.core.clone(), harness.supplier.clone());
    let action = register_action(harness, id, &core, &supplier, invoices);
    assert_accepted(&harness.submit(action, &[&supplier]));
}

/// Registers and confirms `id`.
fn confirmed(harness: &mut Harness, id: &str, invoices: &[&str]) {
    registered(harness, id, invoices);
    let core = harness.core.clone();
    assert_accepted(&harness.submit(confirm_action(id), &[&core]));
}

fn receivable(harness: &Harness, id: &str) -> v1::ReceivableRecord {
    harness
        .get(&keys::receivable(id))
        .expect("receivable is stored")
}

fn unit_of(harness: &Harness, unit_id: &str) -> v1::ReceivableUnitRecord {
    unit(&harness.state, unit_id).expect("unit is stored")
}

/// Submits `action`, asserts it is rejected with `reason`, and that it wrote nothing but the
/// replay entries (`x/`).
#[track_caller]
fn assert_rejected_cleanly(
    harness: &mut Harness,
    action: WireAction,
    signers: &[&Party],
    reason: ReasonCode,
) {
    let before = harness.state.clone();
    let (receipt, writes) = submit_and_writes(harness, action, signers);
    assert_rejected(&receipt, reason);
    for key in writes.keys() {
        assert!(key.starts_with(b"x/"), "a rejection wrote {key:?}");
    }
    let changed: Vec<_> = harness
        .state
        .iter()
        .filter(|(key, value)| !key.starts_with(b"x/") && before.get(key).as_ref() != Some(value))
        .collect();
    assert!(changed.is_empty(), "a rejection changed {changed:?}");
    audit_ok(harness);
}

#[track_caller]
fn audit_ok(harness: &Harness) {
    if let Err(violation) = audit(&harness.state) {
        panic!("audit: {violation}");
    }
}

fn sum_of_units(harness: &Harness, id: &str) -> u64 {
    receivable_view(&harness.state, id, harness.time_ms)
        .expect("view")
        .units
        .iter()
        .map(|u| u.amount_fen)
        .sum()
}

// ---------------------------------------------------------------- register

#[test]
fn register_writes_root_record_unit_and_invoice_index() {
    let mut h = Harness::new();
    let (core, supplier) = (h.core.clone(), h.supplier.clone());
    let action = register_action(&h, "R-1", &core, &supplier, &["inv-1", "inv-2"]);
    let receipt = h.submit(action, &[&supplier]);
    assert_accepted(&receipt);
    assert_eq!(receipt.created_id, "R-1");
    let record = receivable(&h, "R-1");
    assert_eq!(record.status(), ReceivableStatus::Registered);
    assert_eq!(record.paid_fen, 0);
    assert_eq!(record.parts_created, 0);
    assert_eq!(record.face_fen, FACE_FEN);
    assert!(record.registered.is_some());
    let root = unit_of(&h, "R-1");
    assert_eq!(root.holder_uscc, supplier.id());
    assert_eq!(root.amount_fen, FACE_FEN);
    assert!(root.parent_unit_id.is_empty() && root.financing.is_none());
    let hash: [u8; 32] = invoice("inv-2").try_into().expect("32 bytes");
    assert_eq!(h.state.get(&keys::invoice(&hash)), Some(b"R-1".to_vec()));
    audit_ok(&h);
}

#[test]
fn register_requires_the_creditors_signature() {
    let mut h = Harness::new();
    let (core, supplier) = (h.core.clone(), h.supplier.clone());
    let action = register_action(&h, "R-1", &core, &supplier, &["inv-1"]);
    assert_rejected_cleanly(&mut h, action, &[&core], ReasonCode::ReasonNotCreditor);
}

#[test]
fn register_requires_an_enterprise_key_of_the_creditor() {
    let mut h = Harness::new();
    let (core, bureau) = (h.core.clone(), h.bureau.clone());
    // A bureau's keys hold no ENTERPRISE role.
    let action = register_action(&h, "R-1", &core, &bureau, &["inv-1"]);
    assert_rejected_cleanly(
        &mut h,
        action,
        &[&bureau],
        ReasonCode::ReasonRoleNotPermitted,
    );
}

#[test]
fn register_requires_the_debtor_to_be_a_member() {
    let mut h = Harness::new();
    let supplier = h.supplier.clone();
    let stranger = Party::new("stranger", 77, MemberKind::Enterprise);
    let action = register_action(&h, "R-1", &stranger, &supplier, &["inv-1"]);
    assert_rejected_cleanly(
        &mut h,
        action,
        &[&supplier],
        ReasonCode::ReasonMemberNotFound,
    );
}

#[test]
fn register_rejects_an_existing_receivable_id() {
    let mut h = Harness::new();
    registered(&mut h, "R-1", &["inv-1"]);
    let (core, supplier) = (h.core.clone(), h.supplier.clone());
    let action = register_action(&h, "R-1", &core, &supplier, &["inv-2"]);
    assert_rejected_cleanly(
        &mut h,
        action,
        &[&supplier],
        ReasonCode::ReasonReceivableExists,
    );
}

#[test]
fn register_rejects_a_due_day_before_the_block_day_and_accepts_today() {
    let mut h = Harness::new();
    let (core, supplier) = (h.core.clone(), h.supplier.clone());
    let mut action = register_action(&h, "R-1", &core, &supplier, &["inv-1"]);
    if let WireAction::RegisterReceivable(m) = &mut action {
        m.due_day = today(&h) - 1;
    }
    assert_rejected_cleanly(
        &mut h,
        action.clone(),
        &[&supplier],
        ReasonCode::ReasonDueDatePassed,
    );
    if let WireAction::RegisterReceivable(m) = &mut action {
        m.due_day = today(&h);
    }
    assert_accepted(&h.submit(action, &[&supplier]));
    audit_ok(&h);
}

#[test]
fn register_rejects_an_invoice_backing_a_live_receivable() {
    let mut h = Harness::new();
    registered(&mut h, "R-1", &["inv-1", "inv-2"]);
    let (core, supplier, supplier_b) = (h.core.clone(), h.supplier.clone(), h.supplier_b.clone());
    // The same invoice, another creditor, another id: the classic double-financing fraud.
    let action = register_action(&h, "R-2", &core, &supplier_b, &["inv-9", "inv-2"]);
    assert_rejected_cleanly(
        &mut h,
        action,
        &[&supplier_b],
        ReasonCode::ReasonInvoiceAlreadyUsed,
    );
    // Still used once confirmed.
    assert_accepted(&h.submit(confirm_action("R-1"), &[&core]));
    let action = register_action(&h, "R-3", &core, &supplier, &["inv-1"]);
    assert_rejected_cleanly(
        &mut h,
        action,
        &[&supplier],
        ReasonCode::ReasonInvoiceAlreadyUsed,
    );
    assert!(h
        .get::<v1::ReceivableRecord>(&keys::receivable("R-3"))
        .is_none());
}

#[test]
fn register_rejects_a_second_registration_of_an_invoice_in_the_same_block() {
    let mut h = Harness::new();
    let (core, supplier, supplier_b) = (h.core.clone(), h.supplier.clone(), h.supplier_b.clone());
    let first = register_action(&h, "R-1", &core, &supplier, &["inv-1"]);
    let second = register_action(&h, "R-2", &core, &supplier_b, &["inv-1"]);
    let first = Harness::sign(&h.body(first), &[&supplier.key]);
    let second = Harness::sign(&h.body(second), &[&supplier_b.key]);
    let outcome = h.execute(vec![first, second]);
    assert_accepted(&outcome.receipts[0]);
    assert_rejected(&outcome.receipts[1], ReasonCode::ReasonInvoiceAlreadyUsed);
    assert!(outcome
        .writes
        .keys()
        .all(|key| !key.starts_with(&keys::receivable("R-2"))));
    assert!(h
        .get::<v1::ReceivableRecord>(&keys::receivable("R-2"))
        .is_none());
    audit_ok(&h);
}

#[test]
fn register_reuses_the_invoice_of_a_cancelled_receivable_but_not_of_a_settled_one() {
    let mut h = Harness::new();
    let (core, supplier) = (h.core.clone(), h.supplier.clone());
    registered(&mut h, "R-1", &["inv-1"]);
    assert_accepted(&h.submit(cancel_action("R-1"), &[&supplier]));
    let action = register_action(&h, "R-2", &core, &supplier, &["inv-1"]);
    assert_accepted(&h.submit(action, &[&supplier]));
    audit_ok(&h);
    // Settle R-2: its invoice stays used forever.
    assert_accepted(&h.submit(confirm_action("R-2"), &[&core]));
    assert_accepted(&h.submit(pay_action("R-2", FACE_FEN), &[&core]));
    let action = register_action(&h, "R-3", &core, &supplier, &["inv-1"]);
    assert_rejected_cleanly(
        &mut h,
        action,
        &[&supplier],
        ReasonCode::ReasonInvoiceAlreadyUsed,
    );
}

// ---------------------------------------------------------------- confirm

#[test]
fn confirm_by_the_debtor_confirms() {
    let mut h = Harness::new();
    registered(&mut h, "R-1", &["inv-1"]);
    let core = h.core.clone();
    assert_accepted(&h.submit(confirm_action("R-1"), &[&core]));
    assert_eq!(receivable(&h, "R-1").status(), ReceivableStatus::Confirmed);
    audit_ok(&h);
}

#[test]
fn confirm_rejects_anyone_but_the_debtor() {
    let mut h = Harness::new();
    registered(&mut h, "R-1", &["inv-1"]);
    let supplier = h.supplier.clone();
    assert_rejected_cleanly(
        &mut h,
        confirm_action("R-1"),
        &[&supplier],
        ReasonCode::ReasonNotDebtor,
    );
}

#[test]
fn confirm_rejects_unknown_confirmed_settled_and_cancelled_receivables() {
    let mut h = Harness::new();
    let core = h.core.clone();
    assert_rejected_cleanly(
        &mut h,
        confirm_action("R-404"),
        &[&core],
        ReasonCode::ReasonReceivableNotFound,
    );
    confirmed(&mut h, "R-1", &["inv-1"]);
    assert_rejected_cleanly(
        &mut h,
        confirm_action("R-1"),
        &[&core],
        ReasonCode::ReasonAlreadyConfirmed,
    );
    assert_accepted(&h.submit(pay_action("R-1", FACE_FEN), &[&core]));
    assert_rejected_cleanly(
        &mut h,
        confirm_action("R-1"),
        &[&core],
        ReasonCode::ReasonReceivableSettled,
    );
    registered(&mut h, "R-2", &["inv-2"]);
    assert_accepted(&h.submit(cancel_action("R-2"), &[&core]));
    assert_rejected_cleanly(
        &mut h,
        confirm_action("R-2"),
        &[&core],
        ReasonCode::ReasonReceivableCancelled,
    );
}

// ---------------------------------------------------------------- lifecycle gates

#[test]
fn transfer_and_financing_require_a_confirmed_receivable() {
    let mut h = Harness::new();
    registered(&mut h, "R-1", &["inv-1"]);
    let (supplier, supplier_b, bank) = (h.supplier.clone(), h.supplier_b.clone(), h.bank_a.clone());
    assert_rejected_cleanly(
        &mut h,
        transfer_action("R-1", &supplier_b, 10),
        &[&supplier],
        ReasonCode::ReasonNotConfirmed,
    );
    assert_rejected_cleanly(
        &mut h,
        pledge_action("R-1", &bank, 10),
        &[&supplier, &bank],
        ReasonCode::ReasonNotConfirmed,
    );
    assert_rejected_cleanly(
        &mut h,
        factor_action("R-1", &bank, 10),
        &[&supplier, &bank],
        ReasonCode::ReasonNotConfirmed,
    );
}

#[test]
fn transfer_and_financing_reject_a_settled_receivable() {
    let mut h = Harness::new();
    confirmed(&mut h, "R-1", &["inv-1"]);
    let (core, supplier, supplier_b, bank) = (
        h.core.clone(),
        h.supplier.clone(),
        h.supplier_b.clone(),
        h.bank_a.clone(),
    );
    assert_accepted(&h.submit(pay_action("R-1", FACE_FEN), &[&core]));
    assert_rejected_cleanly(
        &mut h,
        transfer_action("R-1", &supplier_b, 10),
        &[&supplier],
        ReasonCode::ReasonReceivableSettled,
    );
    assert_rejected_cleanly(
        &mut h,
        pledge_action("R-1", &bank, 10),
        &[&supplier, &bank],
        ReasonCode::ReasonReceivableSettled,
    );
}

#[test]
fn transfer_and_financing_reject_an_overdue_receivable_until_then_accept() {
    let mut h = Harness::new();
    confirmed(&mut h, "R-1", &["inv-1"]);
    let (supplier, supplier_b, bank) = (h.supplier.clone(), h.supplier_b.clone(), h.bank_a.clone());
    let due_day = u64::from(receivable(&h, "R-1").due_day);
    // Last moment of the due day: still tradable.
    h.time_ms = (due_day + 1) * DAY_MS - 1;
    assert!(
        !receivable_view(&h.state, "R-1", h.time_ms)
            .expect("view")
            .overdue
    );
    assert_accepted(&h.submit(transfer_action("R-1", &supplier_b, 10), &[&supplier]));
    // The next day: overdue.
    h.time_ms = (due_day + 1) * DAY_MS;
    assert!(
        receivable_view(&h.state, "R-1", h.time_ms)
            .expect("view")
            .overdue
    );
    assert_rejected_cleanly(
        &mut h,
        transfer_action("R-1", &supplier_b, 10),
        &[&supplier],
        ReasonCode::ReasonReceivableOverdue,
    );
    assert_rejected_cleanly(
        &mut h,
        factor_action("R-1", &bank, 10),
        &[&supplier, &bank],
        ReasonCode::ReasonReceivableOverdue,
    );
}

// ---------------------------------------------------------------- transfer

#[test]
fn transfer_of_the_whole_unit_changes_the_holder() {
    let mut h = Harness::new();
    confirmed(&mut h, "R-1", &["inv-1"]);
    let (supplier, supplier_b) = (h.supplier.clone(), h.supplier_b.clone());
    let receipt = h.submit(transfer_action("R-1", &supplier_b, FACE_FEN), &[&supplier]);
    assert_accepted(&receipt);
    assert!(receipt.created_id.is_empty());
    let root = unit_of(&h, "R-1");
    assert_eq!(root.holder_uscc, supplier_b.id());
    assert_eq!(receivable(&h, "R-1").parts_created, 0);
    audit_ok(&h);
}

#[test]
fn transfer_of_a_part_splits_the_unit_and_parts_add_up_to_face() {
    let mut h = Harness::new();
    confirmed(&mut h, "R-1", &["inv-1"]);
    let (supplier, supplier_b, bank) = (h.supplier.clone(), h.supplier_b.clone(), h.bank_a.clone());
    let receipt = h.submit(transfer_action("R-1", &supplier_b, 300_000), &[&supplier]);
    assert_accepted(&receipt);
    assert_eq!(receipt.created_id, "R-1#1");
    // The new holder splits its part further.
    let receipt = h.submit(transfer_action("R-1#1", &bank, 100_000), &[&supplier_b]);
    assert_accepted(&receipt);
    assert_eq!(receipt.created_id, "R-1#2");
    let view = receivable_view(&h.state, "R-1", h.time_ms).expect("view");
    let summary: Vec<_> = view
        .units
        .iter()
        .map(|u| {
            (
                u.unit_id.as_str(),
                u.parent_unit_id.as_str(),
                u.amount_fen,
                u.holder_uscc.clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("R-1", "", 700_000, supplier.id()),
            ("R-1#1", "R-1", 200_000, supplier_b.id()),
            ("R-1#2", "R-1#1", 100_000, bank.id()),
        ]
    );
    assert_eq!(view.receivable.expect("record").parts_created, 2);
    assert_eq!(sum_of_units(&h, "R-1"), FACE_FEN);
    audit_ok(&h);
}

#[test]
fn transfer_rejects_anyone_but_the_holder() {
    let mut h = Harness::new();
    confirmed(&mut h, "R-1", &["inv-1"]);
    let (core, supplier, supplier_b) = (h.core.clone(), h.supplier.clone(), h.supplier_b.clone());
    assert_rejected_cleanly(
        &mut h,
        transfer_action("R-1", &supplier_b, 10),
        &[&supplier_b],
        ReasonCode::ReasonNotHolder,
    );
    assert_rejected_cleanly(
        &mut h,
        transfer_action("R-1", &supplier_b, 10),
        &[&core],
        ReasonCode::ReasonNotHolder,
    );
    // After a whole transfer the former holder no longer may.
    assert_accepted(&h.submit(transfer_action("R-1", &supplier_b, FACE_FEN), &[&supplier]));
    assert_rejected_cleanly(
        &mut h,
        transfer_action("R-1", &core, 10),
        &[&supplier],
        ReasonCode::ReasonNotHolder,
    );
}

#[test]
fn transfer_rejects_an_unknown_unit_or_a_part_not_yet_created() {
    let mut h = Harness::new();
    confirmed(&mut h, "R-1", &["inv-1"]);
    let (supplier, supplier_b) = (h.supplier.clone(), h.supplier_b.clone());
    assert_rejected_cleanly(
        &mut h,
        transfer_action("R-1#1", &supplier_b, 10),
        &[&supplier],
        ReasonCode::ReasonReceivableNotFound,
    );
    assert_rejected_cleanly(
        &mut h,
        transfer_action("R-2", &supplier_b, 10),
        &[&supplier],
        ReasonCode::ReasonReceivableNotFound,
    );
}

#[test]
fn transfer_rejects_a_non_member_recipient_and_the_holder_itself() {
    let mut h = Harness::new();
    confirmed(&mut h, "R-1", &["inv-1"]);
    let supplier = h.supplier.clone();
    let stranger = Party::new("stranger", 77, MemberKind::Enterprise);
    assert_rejected_cleanly(
        &mut h,
        transfer_action("R-1", &stranger, 10),
        &[&supplier],
        ReasonCode::ReasonMemberNotFound,
    );
    assert_rejected_cleanly(
        &mut h,
        transfer_action("R-1", &supplier, 10),
        &[&supplier],
        ReasonCode::ReasonSelfTransfer,
    );
}

#[test]
fn transfer_rejects_more_than_the_unit_holds() {
    let mut h = Harness::new();
    confirmed(&mut h, "R-1", &["inv-1"]);
    let (supplier, supplier_b) = (h.supplier.clone(), h.supplier_b.clone());
    assert_accepted(&h.submit(transfer_action("R-1", &supplier_b, 400_000), &[&supplier]));
    assert_rejected_cleanly(
        &mut h,
        transfer_action("R-1", &supplier_b, 600_001),
        &[&supplier],
        ReasonCode::ReasonInsufficientBalance,
    );
    assert_rejected_cleanly(
        &mut h,
        transfer_action("R-1#1", &supplier, 400_001),
        &[&supplier_b],
        ReasonCode::ReasonInsufficientBalance,
    );
}

#[test]
fn transfer_of_a_pledged_unit_needs_the_pledgees_signature_and_moves_whole() {
    let mut h = Harness::new();
    confirmed(&mut h, "R-1", &["inv-1"]);
    let (supplier, supplier_b, bank) = (h.supplier.clone(), h.supplier_b.clone(), h.bank_a.clone());
    assert_accepted(&h.submit(pledge_action("R-1", &bank, 500_000), &[&supplier, &bank]));
    // Art. 445: not without the pledgee.
    assert_rejected_cleanly(
        &mut h,
        transfer_action("R-1", &supplier_b, FACE_FEN),
        &[&supplier],
        ReasonCode::ReasonMissingSignature,
    );
    // A financed unit does not split: its unencumbered balance is zero.
    assert_rejected_cleanly(
        &mut h,
        transfer_action("R-1", &supplier_b, 10),
        &[&supplier, &bank],
        ReasonCode::ReasonInsufficientBalance,
    );
    assert_accepted(&h.submit(
        transfer_action("R-1", &supplier_b, FACE_FEN),
        &[&supplier, &bank],
    ));
    let root = unit_of(&h, "R-1");
    assert_eq!(root.holder_uscc, supplier_b.id());
    let financing = root.financing.expect("the pledge stays attached");
    assert_eq!(financing.financier_uscc, bank.id());
    audit_ok(&h);
}

#[test]
fn transfer_rejects_beyond_the_parts_limit() {
    let mut h = Harness::new();
    confirmed(&mut h, "R-1", &["inv-1"]);
    let (supplier, supplier_b) = (h.supplier.clone(), h.supplier_b.clone());
    // Split off the most parts allowed, several transfers per block.
    let mut remaining = PARTS_PER_RECEIVABLE_MAX;
    while remaining > 0 {
        let batch = remaining.min(250);
        let envelopes = (0..batch)
            .map(|_| {
                let body = h.body(transfer_action("R-1", &supplier_b, 1));
                Harness::sign(&body, &[&supplier.key])
            })
            .collect();
        let outcome = h.execute(envelopes);
        outcome.receipts.iter().for_each(assert_accepted);
        remaining -= batch;
    }
    assert_eq!(
        receivable(&h, "R-1").parts_created,
        PARTS_PER_RECEIVABLE_MAX
    );
    assert_rejected_cleanly(
        &mut h,
        transfer_action("R-1", &supplier_b, 1),
        &[&supplier],
        ReasonCode::ReasonTooManyParts,
    );
    // A whole transfer still works.
    let last = format!("R-1#{PARTS_PER_RECEIVABLE_MAX}");
    assert_accepted(&h.submit(transfer_action(&last, &supplier, 1), &[&supplier_b]));
    assert_eq!(sum_of_units(&h, "R-1"), FACE_FEN);
    audit_ok(&h);
}

// ---------------------------------------------------------------- financing

#[test]
fn pledge_by_holder_and_pledgee_records_the_financing_with_chain_wide_priority() {
    let mut h = Harness::new();
    confirmed(&mut h, "R-1", &["inv-1"]);
    confirmed(&mut h, "R-2", &["inv-2"]);
    let (supplier, bank_a, bank_b) = (h.supplier.clone(), h.bank_a.clone(), h.bank_b.clone());
    assert_accepted(&h.submit(
        pledge_action("R-2", &bank_b, 800_000),
        &[&supplier, &bank_b],
    ));
    assert_accepted(&h.submit(
        factor_action("R-1", &bank_a, FACE_FEN),
        &[&supplier, &bank_a],
    ));
    let pledge = unit_of(&h, "R-2").financing.expect("pledge");
    assert_eq!(pledge.kind(), FinancingKind::Pledge);
    assert_eq!(pledge.financier_uscc, bank_b.id());
    assert_eq!(pledge.amount_fen, 800_000);
    assert_eq!(pledge.priority, 1);
    assert!(pledge.registered.is_some());
    let factoring = unit_of(&h, "R-1").financing.expect("factoring");
    assert_eq!(factoring.kind(), FinancingKind::Factoring);
    assert_eq!(factoring.priority, 2);
    audit_ok(&h);
}

#[test]
fn financing_of_a_part_leaves_the_other_parts_free() {
    let mut h = Harness::new();
    confirmed(&mut h, "R-1", &["inv-1"]);
    let (supplier, supplier_b, bank_a, bank_b) = (
        h.supplier.clone(),
        h.supplier_b.clone(),
        h.bank_a.clone(),
        h.bank_b.clone(),
    );
    assert_accepted(&h.submit(transfer_action("R-1", &supplier_b, 400_000), &[&supplier]));
    assert_accepted(&h.submit(
        pledge_action("R-1#1", &bank_a, 400_000),
        &[&supplier_b, &bank_a],
    ));
    assert_accepted(&h.submit(
        factor_action("R-1", &bank_b, 600_000),
        &[&supplier, &bank_b],
    ));
    // The root is factored now: it no longer splits either.
    assert_rejected_cleanly(
        &mut h,
        transfer_action("R-1", &supplier_b, 10),
        &[&supplier, &bank_b],
        ReasonCode::ReasonInsufficientBalance,
    );
    audit_ok(&h);
}

#[test]
fn financing_requires_the_holder_and_the_financiers_signatures() {
    let mut h = Harness::new();
    confirmed(&mut h, "R-1", &["inv-1"]);
    let (core, supplier, bank, bureau) = (
        h.core.clone(),
        h.supplier.clone(),
        h.bank_a.clone(),
        h.bureau.clone(),
    );
    assert_rejected_cleanly(
        &mut h,
        pledge_action("R-1", &bank, 10),
        &[&bank],
        ReasonCode::ReasonNotHolder,
    );
    assert_rejected_cleanly(
        &mut h,
        pledge_action("R-1", &bank, 10),
        &[&supplier],
        ReasonCode::ReasonMissingSignature,
    );
    assert_rejected_cleanly(
        &mut h,
        factor_action("R-1", &bank, 10),
        &[&supplier],
        ReasonCode::ReasonMissingSignature,
    );
    // A financier must hold the FINANCIER role: neither an enterprise nor a bureau does.
    assert_rejected_cleanly(
        &mut h,
        pledge_action("R-1", &core, 10),
        &[&supplier, &core],
        ReasonCode::ReasonRoleNotPermitted,
    );
    assert_rejected_cleanly(
        &mut h,
        factor_action("R-1", &bureau, 10),
        &[&supplier, &bureau],
        ReasonCode::ReasonRoleNotPermitted,
    );
}

#[test]
fn financing_rejects_a_financier_that_is_the_holder() {
    let mut h = Harness::new();
    confirmed(&mut h, "R-1", &["inv-1"]);
    let (supplier, bank) = (h.supplier.clone(), h.bank_a.clone());
    assert_accepted(&h.submit(transfer_action("R-1", &bank, FACE_FEN), &[&supplier]));
    assert_rejected_cleanly(
        &mut h,
        pledge_action("R-1", &bank, 10),
        &[&bank],
        ReasonCode::ReasonSelfTransfer,
    );
}

#[test]
fn financing_rejects_a_second_pledge_or_a_factoring_of_a_pledged_unit() {
    let mut h = Harness::new();
    confirmed(&mut h, "R-1", &["inv-1"]);
    let (supplier, bank_a, bank_b) = (h.supplier.clone(), h.bank_a.clone(), h.bank_b.clone());
    assert_accepted(&h.submit(
        pledge_action("R-1", &bank_a, 100_000),
        &[&supplier, &bank_a],
    ));
    assert_rejected_cleanly(
        &mut h,
        pledge_action("R-1", &bank_b, 100_000),
        &[&supplier, &bank_b],
        ReasonCode::ReasonAlreadyFinanced,
    );
    assert_rejected_cleanly(
        &mut h,
        factor_action("R-1", &bank_b, 100_000),
        &[&supplier, &bank_b],
        ReasonCode::ReasonAlreadyFinanced,
    );
    // Not even the same financier twice.
    assert_rejected_cleanly(
        &mut h,
        pledge_action("R-1", &bank_a, 100_000),
        &[&supplier, &bank_a],
        ReasonCode::ReasonAlreadyFinanced,
    );
    // After release, a new financing is accepted with a later priority.
    assert_accepted(&h.submit(release_action("R-1"), &[&bank_a]));
    assert_accepted(&h.submit(
        factor_action("R-1", &bank_b, 100_000),
        &[&supplier, &bank_b],
    ));
    assert_eq!(unit_of(&h, "R-1").financing.expect("factoring").priority, 2);
    audit_ok(&h);
}

#[test]
fn financing_rejects_a_double_pledge_inside_one_block() {
    let mut h = Harness::new();
    confirmed(&mut h, "R-1", &["inv-1"]);
    let (supplier, bank_a, bank_b) = (h.supplier.clone(), h.bank_a.clone(), h.bank_b.clone());
    let first = h.body(pledge_action("R-1", &bank_a, 100));
    let second = h.body(factor_action("R-1", &bank_b, 100));
    let outcome = h.execute(vec![
        Harness::sign(&first, &[&supplier.key, &bank_a.key]),
        Harness::sign(&second, &[&supplier.key, &bank_b.key]),
    ]);
    assert_accepted(&outcome.receipts[0]);
    assert_rejected(&outcome.receipts[1], ReasonCode::ReasonAlreadyFinanced);
    assert_eq!(
        unit_of(&h, "R-1").financing.expect("pledge").financier_uscc,
        bank_a.id()
    );
    audit_ok(&h);
}

#[test]
fn financing_rejects_more_than_the_unit_amount() {
    let mut h = Harness::new();
    confirmed(&mut h, "R-1", &["inv-1"]);
    let (supplier, supplier_b, bank) = (h.supplier.clone(), h.supplier_b.clone(), h.bank_a.clone());
    assert_accepted(&h.submit(transfer_action("R-1", &supplier_b, 300_000), &[&supplier]));
    assert_rejected_cleanly(
        &mut h,
        pledge_action("R-1#1", &bank, 300_001),
        &[&supplier_b, &bank],
        ReasonCode::ReasonInsufficientBalance,
    );
    assert_rejected_cleanly(
        &mut h,
        factor_action("R-1", &bank, 700_001),
        &[&supplier, &bank],
        ReasonCode::ReasonInsufficientBalance,
    );
    assert_accepted(&h.submit(
        pledge_action("R-1#1", &bank, 300_000),
        &[&supplier_b, &bank],
    ));
    audit_ok(&h);
}

// ---------------------------------------------------------------- release

#[test]
fn release_by_the_financier_frees_the_unit() {
    let mut h = Harness::new();
    confirmed(&mut h, "R-1", &["inv-1"]);
    let (supplier, supplier_b, bank) = (h.supplier.clone(), h.supplier_b.clone(), h.bank_a.clone());
    assert_accepted(&h.submit(pledge_action("R-1", &bank, 100), &[&supplier, &bank]));
    assert_accepted(&h.submit(release_action("R-1"), &[&bank]));
    assert!(unit_of(&h, "R-1").financing.is_none());
    // Free again: the holder splits it alone.
    assert_accepted(&h.submit(transfer_action("R-1", &supplier_b, 10), &[&supplier]));
    audit_ok(&h);
}

#[test]
fn release_rejects_anyone_but_the_financier() {
    let mut h = Harness::new();
    confirmed(&mut h, "R-1", &["inv-1"]);
    let (supplier, bank_a, bank_b) = (h.supplier.clone(), h.bank_a.clone(), h.bank_b.clone());
    assert_accepted(&h.submit(pledge_action("R-1", &bank_a, 100), &[&supplier, &bank_a]));
    assert_rejected_cleanly(
        &mut h,
        release_action("R-1"),
        &[&supplier],
        ReasonCode::ReasonNotFinancier,
    );
    assert_rejected_cleanly(
        &mut h,
        release_action("R-1"),
        &[&bank_b],
        ReasonCode::ReasonNotFinancier,
    );
}

#[test]
fn release_rejects_a_unit_without_financing() {
    let mut h = Harness::new();
    confirmed(&mut h, "R-1", &["inv-1"]);
    let bank = h.bank_a.clone();
    assert_rejected_cleanly(
        &mut h,
        release_action("R-1"),
        &[&bank],
        ReasonCode::ReasonNotFinanced,
    );
}

// ---------------------------------------------------------------- payment

#[test]
fn payment_by_the_debtor_accumulates_and_full_payment_settles() {
    let mut h = Harness::new();
    confirmed(&mut h, "R-1", &["inv-1"]);
    let core = h.core.clone();
    assert_accepted(&h.submit(pay_action("R-1", 400_000), &[&core]));
    let record = receivable(&h, "R-1");
    assert_eq!(record.paid_fen, 400_000);
    assert_eq!(record.status(), ReceivableStatus::Confirmed);
    assert_accepted(&h.submit(pay_action("R-1", 600_000), &[&core]));
    let record = receivable(&h, "R-1");
    assert_eq!(record.paid_fen, FACE_FEN);
    assert_eq!(record.status(), ReceivableStatus::Settled);
    audit_ok(&h);
}

#[test]
fn payment_rejects_anyone_but_the_debtor() {
    let mut h = Harness::new();
    confirmed(&mut h, "R-1", &["inv-1"]);
    let (supplier, bank) = (h.supplier.clone(), h.bank_a.clone());
    assert_rejected_cleanly(
        &mut h,
        pay_action("R-1", 1),
        &[&supplier],
        ReasonCode::ReasonNotDebtor,
    );
    assert_rejected_cleanly(
        &mut h,
        pay_action("R-1", 1),
        &[&bank],
        ReasonCode::ReasonNotDebtor,
    );
}

#[test]
fn payment_rejects_an_unconfirmed_or_settled_receivable() {
    let mut h = Harness::new();
    registered(&mut h, "R-1", &["inv-1"]);
    let core = h.core.clone();
    assert_rejected_cleanly(
        &mut h,
        pay_action("R-1", 1),
        &[&core],
        ReasonCode::ReasonNotConfirmed,
    );
    assert_accepted(&h.submit(confirm_action("R-1"), &[&core]));
    assert_accepted(&h.submit(pay_action("R-1", FACE_FEN), &[&core]));
    assert_rejected_cleanly(
        &mut h,
        pay_action("R-1", 1),
        &[&core],
        ReasonCode::ReasonReceivableSettled,
    );
}

#[test]
fn payment_rejects_overpayment() {
    let mut h = Harness::new();
    confirmed(&mut h, "R-1", &["inv-1"]);
    let core = h.core.clone();
    assert_rejected_cleanly(
        &mut h,
        pay_action("R-1", FACE_FEN + 1),
        &[&core],
        ReasonCode::ReasonOverpayment,
    );
    assert_accepted(&h.submit(pay_action("R-1", 999_999), &[&core]));
    assert_rejected_cleanly(
        &mut h,
        pay_action("R-1", 2),
        &[&core],
        ReasonCode::ReasonOverpayment,
    );
    assert_rejected_cleanly(
        &mut h,
        pay_action("R-1", u64::MAX),
        &[&core],
        ReasonCode::ReasonArithmeticOverflow,
    );
    assert_eq!(receivable(&h, "R-1").paid_fen, 999_999);
}

#[test]
fn payment_is_accepted_when_overdue() {
    let mut h = Harness::new();
    confirmed(&mut h, "R-1", &["inv-1"]);
    let core = h.core.clone();
    h.advance_ms(40 * DAY_MS);
    assert!(
        receivable_view(&h.state, "R-1", h.time_ms)
            .expect("view")
            .overdue
    );
    assert_accepted(&h.submit(pay_action("R-1", FACE_FEN), &[&core]));
    assert!(
        !receivable_view(&h.state, "R-1", h.time_ms)
            .expect("view")
            .overdue
    );
    audit_ok(&h);
}

#[test]
fn full_payment_releases_every_encumbrance_on_every_part() {
    let mut h = Harness::new();
    confirmed(&mut h, "R-1", &["inv-1"]);
    let (core, supplier, supplier_b, bank_a, bank_b) = (
        h.core.clone(),
        h.supplier.clone(),
        h.supplier_b.clone(),
        h.bank_a.clone(),
        h.bank_b.clone(),
    );
    assert_accepted(&h.submit(transfer_action("R-1", &supplier_b, 300_000), &[&supplier]));
    assert_accepted(&h.submit(transfer_action("R-1#1", &supplier, 100_000), &[&supplier_b]));
    assert_accepted(&h.submit(
        pledge_action("R-1", &bank_a, 700_000),
        &[&supplier, &bank_a],
    ));
    assert_accepted(&h.submit(
        factor_action("R-1#1", &bank_b, 150_000),
        &[&supplier_b, &bank_b],
    ));
    assert_accepted(&h.submit(
        pledge_action("R-1#2", &bank_b, 100_000),
        &[&supplier, &bank_b],
    ));
    assert_accepted(&h.submit(pay_action("R-1", 500_000), &[&core]));
    assert!(
        unit_of(&h, "R-1").financing.is_some(),
        "partial payment releases nothing"
    );
    assert_accepted(&h.submit(pay_action("R-1", 500_000), &[&core]));
    let view = receivable_view(&h.state, "R-1", h.time_ms).expect("view");
    assert_eq!(
        view.receivable.expect("record").status(),
        ReceivableStatus::Settled
    );
    assert_eq!(view.units.len(), 3);
    assert!(view.units.iter().all(|u| u.financing.is_none()));
    assert_eq!(sum_of_units(&h, "R-1"), FACE_FEN);
    assert_rejected_cleanly(
        &mut h,
        release_action("R-1"),
        &[&bank_a],
        ReasonCode::ReasonNotFinanced,
    );
    audit_ok(&h);
}

// ---------------------------------------------------------------- cancel

#[test]
fn cancel_by_creditor_or_debtor_frees_the_invoices() {
    let mut h = Harness::new();
    let (core, supplier) = (h.core.clone(), h.supplier.clone());
    registered(&mut h, "R-1", &["inv-1", "inv-2"]);
    assert_accepted(&h.submit(cancel_action("R-1"), &[&supplier]));
    assert_eq!(receivable(&h, "R-1").status(), ReceivableStatus::Cancelled);
    let hash: [u8; 32] = invoice("inv-1").try_into().expect("32 bytes");
    assert_eq!(h.state.get(&keys::invoice(&hash)), None);
    registered(&mut h, "R-2", &["inv-1"]);
    assert_accepted(&h.submit(cancel_action("R-2"), &[&core]));
    assert_eq!(receivable(&h, "R-2").status(), ReceivableStatus::Cancelled);
    audit_ok(&h);
}

#[test]
fn cancel_rejects_a_third_party() {
    let mut h = Harness::new();
    registered(&mut h, "R-1", &["inv-1"]);
    let (supplier_b, bank) = (h.supplier_b.clone(), h.bank_a.clone());
    assert_rejected_cleanly(
        &mut h,
        cancel_action("R-1"),
        &[&supplier_b],
        ReasonCode::ReasonNotCreditor,
    );
    assert_rejected_cleanly(
        &mut h,
        cancel_action("R-1"),
        &[&bank],
        ReasonCode::ReasonNotCreditor,
    );
}

#[test]
fn cancel_rejects_a_confirmed_settled_or_cancelled_receivable() {
    let mut h = Harness::new();
    let (core, supplier) = (h.core.clone(), h.supplier.clone());
    confirmed(&mut h, "R-1", &["inv-1"]);
    assert_rejected_cleanly(
        &mut h,
        cancel_action("R-1"),
        &[&supplier],
        ReasonCode::ReasonNotCancellable,
    );
    assert_accepted(&h.submit(pay_action("R-1", FACE_FEN), &[&core]));
    assert_rejected_cleanly(
        &mut h,
        cancel_action("R-1"),
        &[&core],
        ReasonCode::ReasonNotCancellable,
    );
    registered(&mut h, "R-2", &["inv-2"]);
    assert_accepted(&h.submit(cancel_action("R-2"), &[&supplier]));
    assert_rejected_cleanly(
        &mut h,
        cancel_action("R-2"),
        &[&supplier],
        ReasonCode::ReasonNotCancellable,
    );
    // A cancelled receivable is never transferred or paid.
    assert_rejected_cleanly(
        &mut h,
        pay_action("R-2", 1),
        &[&core],
        ReasonCode::ReasonNotConfirmed,
    );
}

// ---------------------------------------------------------------- exact writes

/// The keys an accepted transaction wrote, without its replay entries.
fn business_writes(h: &mut Harness, action: WireAction, signers: &[&Party]) -> Vec<Vec<u8>> {
    let (receipt, writes) = submit_and_writes(h, action, signers);
    assert_accepted(&receipt);
    writes
        .into_keys()
        .filter(|key| !key.starts_with(b"x/") && !key.starts_with(b"h/"))
        .collect()
}

#[test]
fn accepted_actions_write_exactly_the_records_of_their_rule() {
    let mut h = Harness::new();
    let (core, supplier, supplier_b, bank) = (
        h.core.clone(),
        h.supplier.clone(),
        h.supplier_b.clone(),
        h.bank_a.clone(),
    );
    let hash: [u8; 32] = invoice("inv-1").try_into().expect("32 bytes");
    let root = keys::receivable("R-1");
    let unit_0 = keys::receivable_unit("R-1", 0);
    let unit_1 = keys::receivable_unit("R-1", 1);
    let sorted = |mut keys: Vec<Vec<u8>>| {
        keys.sort();
        keys
    };
    let action = register_action(&h, "R-1", &core, &supplier, &["inv-1"]);
    assert_eq!(
        business_writes(&mut h, action, &[&supplier]),
        sorted(vec![root.clone(), unit_0.clone(), keys::invoice(&hash)])
    );
    assert_eq!(
        business_writes(&mut h, confirm_action("R-1"), &[&core]),
        vec![root.clone()]
    );
    assert_eq!(
        business_writes(
            &mut h,
            transfer_action("R-1", &supplier_b, 10),
            &[&supplier]
        ),
        sorted(vec![root.clone(), unit_0.clone(), unit_1.clone()])
    );
    assert_eq!(
        business_writes(
            &mut h,
            pledge_action("R-1#1", &bank, 10),
            &[&supplier_b, &bank]
        ),
        sorted(vec![
            unit_1.clone(),
            keys::sequence(keys::sequences::FINANCING_PRIORITY)
        ])
    );
    assert_eq!(
        business_writes(
            &mut h,
            transfer_action("R-1#1", &supplier, 10),
            &[&supplier_b, &bank]
        ),
        vec![unit_1.clone()]
    );
    assert_eq!(
        business_writes(&mut h, pay_action("R-1", 5), &[&core]),
        vec![root.clone()]
    );
    // Full payment: the receivable and only the units whose financing it releases.
    assert_eq!(
        business_writes(&mut h, pay_action("R-1", FACE_FEN - 5), &[&core]),
        sorted(vec![root.clone(), unit_1.clone()])
    );
    registered(&mut h, "R-2", &["inv-2"]);
    let hash_2: [u8; 32] = invoice("inv-2").try_into().expect("32 bytes");
    assert_eq!(
        business_writes(&mut h, cancel_action("R-2"), &[&core]),
        sorted(vec![keys::receivable("R-2"), keys::invoice(&hash_2)])
    );
    audit_ok(&h);
}

// ---------------------------------------------------------------- views and audit

#[test]
fn views_report_units_in_part_order_and_unknown_ids_as_none() {
    let mut h = Harness::new();
    confirmed(&mut h, "R-1", &["inv-1"]);
    let (supplier, supplier_b) = (h.supplier.clone(), h.supplier_b.clone());
    for _ in 0..3 {
        assert_accepted(&h.submit(transfer_action("R-1", &supplier_b, 1), &[&supplier]));
    }
    let view = receivable_view(&h.state, "R-1", h.time_ms).expect("view");
    let ids: Vec<_> = view.units.iter().map(|u| u.unit_id.clone()).collect();
    assert_eq!(ids, ["R-1", "R-1#1", "R-1#2", "R-1#3"]);
    assert!(receivable_view(&h.state, "R-9", h.time_ms).is_none());
    assert!(unit(&h.state, "R-1#4").is_none());
    assert!(unit(&h.state, "R-1#0").is_none());
    assert!(unit(&h.state, "not an id").is_none());
    assert_eq!(unit_of(&h, "R-1#3").amount_fen, 1);
}

#[test]
fn audit_detects_a_broken_sum_and_a_dangling_invoice() {
    let mut h = Harness::new();
    confirmed(&mut h, "R-1", &["inv-1"]);
    audit_ok(&h);
    let mut broken = h.clone();
    let mut root = unit_of(&broken, "R-1");
    root.amount_fen -= 1;
    let mut writes = yrd_chaincode::WriteSet::new();
    writes.insert(
        keys::receivable_unit("R-1", 0),
        Some(prost::Message::encode_to_vec(&root)),
    );
    broken.state.apply(&writes);
    assert!(audit(&broken.state).is_err());
    let mut dangling = h.clone();
    let hash = sha256(b"other invoice");
    let mut writes = yrd_chaincode::WriteSet::new();
    writes.insert(keys::invoice(&hash), Some(b"R-1".to_vec()));
    dangling.state.apply(&writes);
    assert!(audit(&dangling.state).is_err());
}

#[test]
fn audit_holds_after_every_step_of_a_pseudo_random_walk() {
    let mut h = Harness::new();
    let parties = [
        h.core.clone(),
        h.supplier.clone(),
        h.supplier_b.clone(),
        h.bank_a.clone(),
        h.bank_b.clone(),
    ];
    let by_uscc = |uscc: &str| parties.iter().find(|p| p.id() == uscc).cloned();
    // A fixed linear congruential generator: the same walk on every run.
    let mut seed: u64 = 0x5eed;
    let mut next = |bound: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % bound
    };
    let mut accepted = 0;
    let mut reasons = std::collections::BTreeMap::new();
    let mut count: u64 = 0;
    for step in 0..600 {
        // Act on one of the latest receivables (or register the next one).
        let id = format!("R-{}", count - next(count.clamp(1, 3)).min(count));
        let parts_created = receivable_view(&h.state, &id, h.time_ms)
            .and_then(|v| v.receivable)
            .map_or(0, |r| u64::from(r.parts_created));
        let part = next(parts_created + 1);
        let unit_id = if part == 0 {
            id.clone()
        } else {
            format!("{id}#{part}")
        };
        let other = parties[1 + next(4) as usize].clone();
        let amount = 1 + next(FACE_FEN / 3);
        // Mostly fresh invoices, sometimes one already registered.
        let invoice_name = format!("inv-{}", count + 1 - next(4).min(count));
        // Usually the parties the rule names sign; sometimes a random one, to draw rejections.
        let holder = unit(&h.state, &unit_id).and_then(|u| by_uscc(&u.holder_uscc));
        let financier = unit(&h.state, &unit_id)
            .and_then(|u| u.financing)
            .and_then(|f| by_uscc(&f.financier_uscc));
        let core = parties[0].clone();
        let mut signers: Vec<Party> = Vec::new();
        let action = match next(10) {
            0 => {
                signers.push(other.clone());
                let new_id = format!("R-{}", count + 1);
                register_action(&h, &new_id, &core, &other, &[invoice_name.as_str()])
            }
            1 => {
                signers.push(core);
                confirm_action(&id)
            }
            2 => {
                signers.extend(holder);
                signers.extend(financier);
                transfer_action(&unit_id, &other, amount)
            }
            3 | 4 => {
                let bank = parties[3 + next(2) as usize].clone();
                signers.extend(holder);
                signers.push(bank.clone());
                if next(2) == 0 {
                    pledge_action(&unit_id, &bank, amount)
                } else {
                    factor_action(&unit_id, &bank, amount)
                }
            }
            5 => {
                signers.extend(financier);
                release_action(&unit_id)
            }
            6 => {
                signers.push(core);
                let outstanding = receivable_view(&h.state, &id, h.time_ms)
                    .and_then(|v| v.receivable)
                    .map_or(1, |r| (r.face_fen - r.paid_fen).max(1));
                pay_action(&id, if next(3) == 0 { outstanding } else { amount })
            }
            7 => {
                signers.push(if next(2) == 0 { core } else { other.clone() });
                cancel_action(&id)
            }
            _ => {
                h.advance_ms(next(DAY_MS));
                continue;
            }
        };
        if signers.is_empty() || next(10) == 0 {
            signers = vec![parties[next(5) as usize].clone()];
        }
        signers.dedup_by(|a, b| a.uscc == b.uscc);
        let refs: Vec<&Party> = signers.iter().collect();
        let receipt = h.submit(action, &refs);
        accepted += usize::from(receipt.accepted);
        if receipt.accepted && receipt.created_id == format!("R-{}", count + 1) {
            count += 1;
        }
        *reasons.entry(receipt.reason).or_insert(0) += 1;
        if let Err(violation) = audit(&h.state) {
            panic!("step {step}: {violation}");
        }
    }
    println!("{accepted} of 600 steps accepted; reasons {reasons:?}");
    assert!(
        accepted > 60,
        "the walk exercised too little: {accepted} accepted"
    );
}
