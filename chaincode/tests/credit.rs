//! The credit-information registry: one test per rule of DOMAIN.md "Ledger 1" and the rules the
//! lead decided (see the `credit` module doc), each accepting what it should and rejecting what
//! it should with its reason code and no writes.

use yrd_chaincode::credit::{self, Viewer};
use yrd_chaincode::date::{add_years, day_of, days_from_civil, DAY_MS};
use yrd_chaincode::keys;
use yrd_chaincode::state::{MemoryState, StateScan, WriteSet};
use yrd_chaincode::testkit::{assert_accepted, assert_rejected, submit_and_writes, Harness, Party};
use yrd_proto::limits::VERSIONS_PER_REPORT_MAX;
use yrd_proto::signing::Hash;
use yrd_proto::v1::{
    self, transaction_body::Action as WireAction, MemberKind, ObjectionOutcome, ObjectionStatus,
    QueryPurpose, ReasonCode, ReportKind, Role,
};

// ---------------------------------------------------------------- helpers

const REPORT: &str = "rpt-core-001";
const LOAN: QueryPurpose = QueryPurpose::LoanApproval;

fn document(n: u8) -> Vec<u8> {
    vec![n; 32]
}

fn record(report_id: &str, subject: &Party) -> WireAction {
    record_with(
        report_id,
        subject,
        false,
        0,
        "loan of 1,000,000 CNY repaid on time",
    )
}

fn record_with(
    report_id: &str,
    subject: &Party,
    negative: bool,
    event_end_day: u32,
    summary: &str,
) -> WireAction {
    WireAction::RecordCreditReport(v1::RecordCreditReport {
        report_id: report_id.to_owned(),
        subject_uscc: subject.id(),
        kind: ReportKind::Loan as i32,
        document_sha256: document(1),
        negative,
        event_end_day,
        summary: summary.to_owned(),
    })
}

fn amend(report_id: &str, n: u8, summary: &str) -> WireAction {
    WireAction::AmendCreditReport(v1::AmendCreditReport {
        report_id: report_id.to_owned(),
        document_sha256: document(n),
        negative: false,
        event_end_day: 0,
        summary: summary.to_owned(),
    })
}

fn object(report_id: &str) -> WireAction {
    WireAction::FileObjection(v1::FileObjection {
        report_id: report_id.to_owned(),
        reason: "the loan was repaid early".to_owned(),
    })
}

fn resolve(report_id: &str, outcome: ObjectionOutcome) -> WireAction {
    WireAction::ResolveObjection(v1::ResolveObjection {
        report_id: report_id.to_owned(),
        outcome: outcome as i32,
        note: "checked against the ledger of repayments".to_owned(),
    })
}

fn grant(grantee: &Party, purpose: QueryPurpose, expires_at_ms: u64) -> WireAction {
    WireAction::GrantAuthorization(v1::GrantAuthorization {
        grantee_uscc: grantee.id(),
        purpose: purpose as i32,
        expires_at_ms,
    })
}

fn revoke(grantee: &Party, purpose: QueryPurpose) -> WireAction {
    WireAction::RevokeAuthorization(v1::RevokeAuthorization {
        grantee_uscc: grantee.id(),
        purpose: purpose as i32,
    })
}

fn query(report_id: &str, purpose: QueryPurpose) -> WireAction {
    WireAction::RecordCreditQuery(v1::RecordCreditQuery {
        report_id: report_id.to_owned(),
        purpose: purpose as i32,
    })
}

/// The state's entries of the credit registry.
fn credit_entries(state: &MemoryState) -> Vec<(Vec<u8>, Vec<u8>)> {
    state.scan_prefix(b"c/", usize::MAX)
}

/// Submits `action`, asserts it is rejected with `reason`, that the block wrote nothing but
/// replay bookkeeping, and that the credit registry is unchanged.
#[track_caller]
fn assert_rejected_without_writes(
    harness: &mut Harness,
    action: WireAction,
    signers: &[&Party],
    reason: ReasonCode,
) {
    let before = credit_entries(&harness.state);
    let (receipt, writes) = submit_and_writes(harness, action, signers);
    assert_rejected(&receipt, reason);
    assert_only_bookkeeping(&writes);
    assert_eq!(
        credit_entries(&harness.state),
        before,
        "credit state changed"
    );
    assert_audit(harness);
}

#[track_caller]
fn assert_only_bookkeeping(writes: &WriteSet) {
    let business: Vec<String> = writes
        .keys()
        .filter(|key| !key.starts_with(b"x/") && !key.starts_with(b"h/"))
        .map(|key| String::from_utf8_lossy(key).into_owned())
        .collect();
    assert!(
        business.is_empty(),
        "rejected transaction wrote {business:?}"
    );
}

#[track_caller]
fn accept(harness: &mut Harness, action: WireAction, signers: &[&Party]) -> v1::Receipt {
    let receipt = harness.submit(action, signers);
    assert_accepted(&receipt);
    assert_audit(harness);
    receipt
}

#[track_caller]
fn assert_audit(harness: &Harness) {
    if let Err(violation) = credit::audit(&harness.state) {
        panic!("audit: {violation}");
    }
}

fn report(harness: &Harness, report_id: &str) -> v1::CreditReportRecord {
    harness
        .get(&keys::credit_report(report_id))
        .unwrap_or_else(|| panic!("report {report_id} missing"))
}

fn version(harness: &Harness, report_id: &str, n: u32) -> Option<v1::CreditReportVersion> {
    harness.get(&keys::credit_report_version(report_id, n))
}

fn authorization(
    harness: &Harness,
    subject: &Party,
    grantee: &Party,
    purpose: QueryPurpose,
) -> Option<v1::AuthorizationRecord> {
    harness.get(&keys::authorization(
        subject.uscc.as_str(),
        grantee.uscc.as_str(),
        purpose as u8,
    ))
}

fn tx_hash(receipt: &v1::Receipt) -> Hash {
    receipt
        .tx_hash
        .as_slice()
        .try_into()
        .unwrap_or_else(|_| panic!("tx hash is not 32 bytes"))
}

fn view(harness: &Harness, report_id: &str, viewer: &Viewer) -> v1::CreditReportView {
    credit::report_view(&harness.state, report_id, viewer, harness.time_ms)
        .unwrap_or_else(|| panic!("no view of {report_id}"))
}

/// A chain with the bureau's report `REPORT` about the core enterprise.
fn with_report() -> Harness {
    let mut harness = Harness::new();
    let (bureau, core) = (harness.bureau.clone(), harness.core.clone());
    accept(&mut harness, record(REPORT, &core), &[&bureau]);
    harness
}

/// An hour from the next block.
fn in_an_hour(harness: &Harness) -> u64 {
    harness.time_ms + 3_600_000
}

// ---------------------------------------------------------------- RecordCreditReport

#[test]
fn record_report_by_bureau_writes_report_version_one_and_subject_index() {
    let mut harness = Harness::new();
    let (bureau, core) = (harness.bureau.clone(), harness.core.clone());
    let block_time_ms = harness.time_ms;
    let (receipt, writes) = submit_and_writes(&mut harness, record(REPORT, &core), &[&bureau]);
    assert_accepted(&receipt);
    assert_eq!(receipt.created_id, REPORT);
    let business: Vec<Vec<u8>> = writes
        .keys()
        .filter(|key| key.starts_with(b"c/"))
        .cloned()
        .collect();
    assert_eq!(
        business,
        vec![
            keys::credit_report(REPORT),
            keys::credit_report_by_subject(core.uscc.as_str(), REPORT),
            keys::credit_report_version(REPORT, 1),
        ]
    );
    let stored = report(&harness, REPORT);
    assert_eq!(stored.issuer_uscc, bureau.id());
    assert_eq!(stored.subject_uscc, core.id());
    assert_eq!(stored.kind(), ReportKind::Loan);
    assert_eq!(stored.version_count, 1);
    assert!(stored.objection.is_none());
    let first = version(&harness, REPORT, 1).expect("version 1");
    assert_eq!(first.version, 1);
    assert_eq!(first.document_sha256, document(1));
    let provenance = first.provenance.expect("provenance");
    assert_eq!(provenance.height, harness.height);
    assert_eq!(provenance.block_time_ms, block_time_ms);
    assert_eq!(provenance.tx_hash, receipt.tx_hash);
    assert_eq!(
        provenance.signers,
        vec![bureau.key.verifying_key().to_bytes().to_vec()]
    );
    assert_audit(&harness);
}

#[test]
fn record_report_by_bank_is_accepted_and_may_be_about_the_issuer_itself() {
    let mut harness = Harness::new();
    let bank = harness.bank_a.clone();
    accept(&mut harness, record("rpt-self", &bank), &[&bank]);
    assert_eq!(report(&harness, "rpt-self").issuer_uscc, bank.id());
    assert_eq!(report(&harness, "rpt-self").subject_uscc, bank.id());
}

#[test]
fn record_report_by_key_without_reporter_role_is_rejected() {
    let mut harness = Harness::new();
    let (core, supplier, market, regulator) = (
        harness.core.clone(),
        harness.supplier.clone(),
        harness.market.clone(),
        harness.regulator.clone(),
    );
    for signer in [&supplier, &market, &regulator] {
        assert_rejected_without_writes(
            &mut harness,
            record(REPORT, &core),
            &[signer],
            ReasonCode::ReasonRoleNotPermitted,
        );
    }
}

#[test]
fn record_report_first_signer_decides_the_issuer_role() {
    // A bureau co-signature does not lend its role to an enterprise that signs first.
    let mut harness = Harness::new();
    let (core, supplier, bureau) = (
        harness.core.clone(),
        harness.supplier.clone(),
        harness.bureau.clone(),
    );
    assert_rejected_without_writes(
        &mut harness,
        record(REPORT, &core),
        &[&supplier, &bureau],
        ReasonCode::ReasonRoleNotPermitted,
    );
}

#[test]
fn record_report_by_bank_key_holding_only_enterprise_role_is_rejected() {
    let mut harness = Harness::new();
    let core = harness.core.clone();
    // A second key of bank A that holds only the enterprise role.
    let mut treasury = harness.bank_a.clone();
    treasury.key = yrd_chaincode::testkit::test_key("bank-a-treasury");
    let validators = harness.validators[..3].to_vec();
    let keys: Vec<_> = validators.iter().collect();
    let receipt = harness.submit_with_keys(
        WireAction::AddMemberKey(v1::AddMemberKey {
            uscc: treasury.id(),
            key: Some(v1::MemberKey {
                public_key: treasury.key.verifying_key().to_bytes().to_vec(),
                roles: vec![Role::Enterprise as i32],
            }),
        }),
        &keys,
    );
    assert_accepted(&receipt);
    assert_rejected_without_writes(
        &mut harness,
        record(REPORT, &core),
        &[&treasury],
        ReasonCode::ReasonRoleNotPermitted,
    );
}

#[test]
fn record_report_about_non_member_is_rejected() {
    let mut harness = Harness::new();
    let bureau = harness.bureau.clone();
    let stranger = Party::new("stranger", 77, MemberKind::Enterprise);
    assert_rejected_without_writes(
        &mut harness,
        record(REPORT, &stranger),
        &[&bureau],
        ReasonCode::ReasonMemberNotFound,
    );
}

#[test]
fn record_report_about_newly_registered_member_is_accepted() {
    let mut harness = Harness::new();
    let bureau = harness.bureau.clone();
    let newcomer = Party::new("newcomer", 78, MemberKind::Enterprise);
    assert_accepted(&harness.register_member(&newcomer, "Newcomer"));
    accept(&mut harness, record(REPORT, &newcomer), &[&bureau]);
}

#[test]
fn record_report_id_is_unique_chain_wide() {
    let mut harness = with_report();
    let (bank, supplier) = (harness.bank_a.clone(), harness.supplier.clone());
    // Another issuer, another subject: the id is still taken.
    assert_rejected_without_writes(
        &mut harness,
        record(REPORT, &supplier),
        &[&bank],
        ReasonCode::ReasonReportExists,
    );
    accept(&mut harness, record("rpt-other", &supplier), &[&bank]);
}

// ---------------------------------------------------------------- AmendCreditReport

#[test]
fn amend_by_issuer_creates_next_version_and_keeps_every_version() {
    let mut harness = with_report();
    let bureau = harness.bureau.clone();
    let receipt = accept(&mut harness, amend(REPORT, 2, "second"), &[&bureau]);
    assert_eq!(receipt.created_id, format!("{REPORT}#2"));
    accept(&mut harness, amend(REPORT, 3, "third"), &[&bureau]);
    assert_eq!(report(&harness, REPORT).version_count, 3);
    for n in 1..=3u8 {
        let stored = version(&harness, REPORT, u32::from(n)).expect("version");
        assert_eq!(stored.version, u32::from(n));
        assert_eq!(stored.document_sha256, document(n));
    }
    let served = view(&harness, REPORT, &Viewer::Regulator);
    assert_eq!(served.versions.len(), 3);
    assert_eq!(served.versions[1].summary, "second");
    assert_eq!(
        served.versions[0].summary,
        "loan of 1,000,000 CNY repaid on time"
    );
    // Each version carries its own provenance.
    let heights: Vec<u64> = served
        .versions
        .iter()
        .map(|v| v.provenance.as_ref().expect("provenance").height)
        .collect();
    assert!(heights[0] < heights[1] && heights[1] < heights[2]);
}

#[test]
fn amend_by_other_reporter_is_rejected() {
    let mut harness = with_report();
    let bank = harness.bank_a.clone();
    assert_rejected_without_writes(
        &mut harness,
        amend(REPORT, 2, "forged"),
        &[&bank],
        ReasonCode::ReasonNotReportIssuer,
    );
}

#[test]
fn amend_by_key_without_reporter_role_is_rejected() {
    let mut harness = with_report();
    let core = harness.core.clone();
    // Even the subject may not amend; its key lacks the reporter role.
    assert_rejected_without_writes(
        &mut harness,
        amend(REPORT, 2, "self-serving"),
        &[&core],
        ReasonCode::ReasonRoleNotPermitted,
    );
}

#[test]
fn amend_of_missing_report_is_rejected() {
    let mut harness = Harness::new();
    let bureau = harness.bureau.clone();
    assert_rejected_without_writes(
        &mut harness,
        amend("rpt-missing", 2, "nothing"),
        &[&bureau],
        ReasonCode::ReasonReportNotFound,
    );
}

#[test]
fn amend_beyond_version_limit_is_rejected() {
    let mut harness = with_report();
    let bureau = harness.bureau.clone();
    // Amend up to the limit in one block.
    let envelopes: Vec<_> = (2..=VERSIONS_PER_REPORT_MAX)
        .map(|n| {
            let body = harness.body(amend(REPORT, (n % 251) as u8, &format!("v{n}")));
            Harness::sign(&body, &[&bureau.key])
        })
        .collect();
    let outcome = harness.execute(envelopes);
    assert!(outcome.receipts.iter().all(|r| r.accepted));
    assert_eq!(
        report(&harness, REPORT).version_count,
        VERSIONS_PER_REPORT_MAX
    );
    assert_audit(&harness);
    assert_rejected_without_writes(
        &mut harness,
        amend(REPORT, 9, "one too many"),
        &[&bureau],
        ReasonCode::ReasonTooManyVersions,
    );
}

// ---------------------------------------------------------------- FileObjection

#[test]
fn objection_by_subject_is_recorded_with_time_and_version() {
    let mut harness = with_report();
    let (core, bureau) = (harness.core.clone(), harness.bureau.clone());
    accept(&mut harness, amend(REPORT, 2, "second"), &[&bureau]);
    let filed_at_ms = harness.time_ms;
    accept(&mut harness, object(REPORT), &[&core]);
    let objection = report(&harness, REPORT).objection.expect("objection");
    assert_eq!(objection.status(), ObjectionStatus::Open);
    assert_eq!(objection.filed_at_ms, filed_at_ms);
    assert_eq!(objection.version_at_filing, 2);
    assert_eq!(objection.reason, "the loan was repaid early");
    let served = view(&harness, REPORT, &Viewer::Public);
    assert!(served.under_objection);
    assert!(!served.objection_overdue);
}

#[test]
fn objection_by_other_enterprise_is_rejected() {
    let mut harness = with_report();
    let supplier = harness.supplier.clone();
    assert_rejected_without_writes(
        &mut harness,
        object(REPORT),
        &[&supplier],
        ReasonCode::ReasonNotReportSubject,
    );
}

#[test]
fn objection_by_key_without_enterprise_role_is_rejected() {
    let mut harness = with_report();
    let (bureau, regulator) = (harness.bureau.clone(), harness.regulator.clone());
    for signer in [&bureau, &regulator] {
        assert_rejected_without_writes(
            &mut harness,
            object(REPORT),
            &[signer],
            ReasonCode::ReasonRoleNotPermitted,
        );
    }
}

#[test]
fn objection_to_missing_report_is_rejected() {
    let mut harness = with_report();
    let core = harness.core.clone();
    assert_rejected_without_writes(
        &mut harness,
        object("rpt-missing"),
        &[&core],
        ReasonCode::ReasonReportNotFound,
    );
}

#[test]
fn second_open_objection_is_rejected_until_resolution() {
    let mut harness = with_report();
    let (core, bureau) = (harness.core.clone(), harness.bureau.clone());
    accept(&mut harness, object(REPORT), &[&core]);
    assert_rejected_without_writes(
        &mut harness,
        object(REPORT),
        &[&core],
        ReasonCode::ReasonObjectionAlreadyOpen,
    );
    accept(
        &mut harness,
        resolve(REPORT, ObjectionOutcome::Upheld),
        &[&bureau],
    );
    let filed_again_ms = harness.time_ms;
    accept(&mut harness, object(REPORT), &[&core]);
    let objection = report(&harness, REPORT).objection.expect("objection");
    assert_eq!(objection.status(), ObjectionStatus::Open);
    assert_eq!(objection.filed_at_ms, filed_again_ms);
}

#[test]
fn objection_is_overdue_only_after_twenty_days() {
    let mut harness = with_report();
    let core = harness.core.clone();
    let filed_at_ms = harness.time_ms;
    accept(&mut harness, object(REPORT), &[&core]);
    let at = |now_ms: u64| {
        credit::report_view(&harness.state, REPORT, &Viewer::Public, now_ms).expect("view")
    };
    let deadline_ms = filed_at_ms + 20 * DAY_MS;
    assert!(!at(deadline_ms).objection_overdue);
    assert!(at(deadline_ms).under_objection);
    assert!(at(deadline_ms + 1).objection_overdue);
    assert_eq!(credit::OBJECTION_RESPONSE_MS, 20 * DAY_MS);
}

#[test]
fn resolved_objection_is_never_overdue() {
    let mut harness = with_report();
    let (core, bureau) = (harness.core.clone(), harness.bureau.clone());
    accept(&mut harness, object(REPORT), &[&core]);
    harness.advance_ms(30 * DAY_MS);
    let late = view(&harness, REPORT, &Viewer::Public);
    assert!(late.under_objection && late.objection_overdue);
    accept(
        &mut harness,
        resolve(REPORT, ObjectionOutcome::Unresolved),
        &[&bureau],
    );
    let resolved = view(&harness, REPORT, &Viewer::Public);
    assert!(!resolved.under_objection);
    assert!(!resolved.objection_overdue);
}

// ---------------------------------------------------------------- ResolveObjection

#[test]
fn resolve_corrected_after_amendment_is_accepted() {
    let mut harness = with_report();
    let (core, bureau) = (harness.core.clone(), harness.bureau.clone());
    accept(&mut harness, object(REPORT), &[&core]);
    accept(&mut harness, amend(REPORT, 2, "corrected"), &[&bureau]);
    let resolved_at_ms = harness.time_ms;
    accept(
        &mut harness,
        resolve(REPORT, ObjectionOutcome::Corrected),
        &[&bureau],
    );
    let objection = report(&harness, REPORT).objection.expect("objection");
    assert_eq!(objection.status(), ObjectionStatus::Corrected);
    assert_eq!(objection.resolved_at_ms, resolved_at_ms);
    assert_eq!(objection.note, "checked against the ledger of repayments");
    assert_eq!(objection.version_at_filing, 1);
}

#[test]
fn resolve_corrected_without_amendment_is_rejected() {
    let mut harness = with_report();
    let (core, bureau) = (harness.core.clone(), harness.bureau.clone());
    // An amendment before the filing does not count.
    accept(
        &mut harness,
        amend(REPORT, 2, "before the objection"),
        &[&bureau],
    );
    accept(&mut harness, object(REPORT), &[&core]);
    assert_rejected_without_writes(
        &mut harness,
        resolve(REPORT, ObjectionOutcome::Corrected),
        &[&bureau],
        ReasonCode::ReasonCorrectionWithoutAmendment,
    );
}

#[test]
fn resolve_upheld_or_unresolved_is_always_allowed() {
    for outcome in [ObjectionOutcome::Upheld, ObjectionOutcome::Unresolved] {
        let mut harness = with_report();
        let (core, bureau) = (harness.core.clone(), harness.bureau.clone());
        accept(&mut harness, object(REPORT), &[&core]);
        accept(&mut harness, resolve(REPORT, outcome), &[&bureau]);
        let status = report(&harness, REPORT)
            .objection
            .expect("objection")
            .status();
        let expected = match outcome {
            ObjectionOutcome::Upheld => ObjectionStatus::Upheld,
            _ => ObjectionStatus::Unresolved,
        };
        assert_eq!(status, expected);
    }
}

#[test]
fn resolve_without_open_objection_is_rejected() {
    let mut harness = with_report();
    let (core, bureau) = (harness.core.clone(), harness.bureau.clone());
    assert_rejected_without_writes(
        &mut harness,
        resolve(REPORT, ObjectionOutcome::Upheld),
        &[&bureau],
        ReasonCode::ReasonNoOpenObjection,
    );
    accept(&mut harness, object(REPORT), &[&core]);
    accept(
        &mut harness,
        resolve(REPORT, ObjectionOutcome::Upheld),
        &[&bureau],
    );
    assert_rejected_without_writes(
        &mut harness,
        resolve(REPORT, ObjectionOutcome::Unresolved),
        &[&bureau],
        ReasonCode::ReasonNoOpenObjection,
    );
}

#[test]
fn resolve_by_non_issuer_is_rejected() {
    let mut harness = with_report();
    let (core, bank, regulator) = (
        harness.core.clone(),
        harness.bank_a.clone(),
        harness.regulator.clone(),
    );
    accept(&mut harness, object(REPORT), &[&core]);
    assert_rejected_without_writes(
        &mut harness,
        resolve(REPORT, ObjectionOutcome::Upheld),
        &[&bank],
        ReasonCode::ReasonNotReportIssuer,
    );
    // The subject and the regulator lack the reporter role altogether.
    for signer in [&core, &regulator] {
        assert_rejected_without_writes(
            &mut harness,
            resolve(REPORT, ObjectionOutcome::Upheld),
            &[signer],
            ReasonCode::ReasonRoleNotPermitted,
        );
    }
}

// ---------------------------------------------------------------- GrantAuthorization

#[test]
fn grant_by_subject_is_recorded() {
    let mut harness = Harness::new();
    let (core, bank) = (harness.core.clone(), harness.bank_a.clone());
    let granted_at_ms = harness.time_ms;
    let expires_at_ms = in_an_hour(&harness);
    accept(&mut harness, grant(&bank, LOAN, expires_at_ms), &[&core]);
    let stored = authorization(&harness, &core, &bank, LOAN).expect("authorization");
    assert_eq!(stored.subject_uscc, core.id());
    assert_eq!(stored.grantee_uscc, bank.id());
    assert_eq!(stored.purpose(), LOAN);
    assert_eq!(stored.granted_at_ms, granted_at_ms);
    assert_eq!(stored.expires_at_ms, expires_at_ms);
    assert!(!stored.revoked);
}

#[test]
fn grant_by_key_without_enterprise_role_is_rejected() {
    let mut harness = Harness::new();
    let (bureau, bank, regulator) = (
        harness.bureau.clone(),
        harness.bank_a.clone(),
        harness.regulator.clone(),
    );
    let expires_at_ms = in_an_hour(&harness);
    for signer in [&bureau, &regulator] {
        assert_rejected_without_writes(
            &mut harness,
            grant(&bank, LOAN, expires_at_ms),
            &[signer],
            ReasonCode::ReasonRoleNotPermitted,
        );
    }
}

#[test]
fn grant_to_non_member_is_rejected() {
    let mut harness = Harness::new();
    let core = harness.core.clone();
    let stranger = Party::new("stranger", 77, MemberKind::Bureau);
    let expires_at_ms = in_an_hour(&harness);
    assert_rejected_without_writes(
        &mut harness,
        grant(&stranger, LOAN, expires_at_ms),
        &[&core],
        ReasonCode::ReasonMemberNotFound,
    );
}

#[test]
fn grant_expiring_at_or_before_block_time_is_rejected() {
    let mut harness = Harness::new();
    let (core, bank) = (harness.core.clone(), harness.bank_a.clone());
    let block_time_ms = harness.time_ms;
    assert_rejected_without_writes(
        &mut harness,
        grant(&bank, LOAN, block_time_ms),
        &[&core],
        ReasonCode::ReasonExpiryNotInFuture,
    );
    let block_time_ms = harness.time_ms;
    accept(
        &mut harness,
        grant(&bank, LOAN, block_time_ms + 1),
        &[&core],
    );
}

#[test]
fn grant_renews_and_clears_revocation_of_the_same_authorization() {
    let mut harness = Harness::new();
    let (core, bank) = (harness.core.clone(), harness.bank_a.clone());
    let first_expiry_ms = in_an_hour(&harness);
    accept(&mut harness, grant(&bank, LOAN, first_expiry_ms), &[&core]);
    accept(&mut harness, revoke(&bank, LOAN), &[&core]);
    assert!(
        authorization(&harness, &core, &bank, LOAN)
            .expect("auth")
            .revoked
    );
    let renewed_expiry_ms = first_expiry_ms + 30 * DAY_MS;
    accept(
        &mut harness,
        grant(&bank, LOAN, renewed_expiry_ms),
        &[&core],
    );
    let stored = authorization(&harness, &core, &bank, LOAN).expect("authorization");
    assert!(!stored.revoked);
    assert_eq!(stored.expires_at_ms, renewed_expiry_ms);
    // One record per (subject, grantee, purpose).
    assert_eq!(harness.state.scan_prefix(b"c/a/", usize::MAX).len(), 1);
}

// ---------------------------------------------------------------- RevokeAuthorization

#[test]
fn revoke_by_subject_marks_the_authorization_revoked() {
    let mut harness = Harness::new();
    let (core, bank) = (harness.core.clone(), harness.bank_a.clone());
    let expires_at_ms = in_an_hour(&harness);
    accept(&mut harness, grant(&bank, LOAN, expires_at_ms), &[&core]);
    accept(&mut harness, revoke(&bank, LOAN), &[&core]);
    let stored = authorization(&harness, &core, &bank, LOAN).expect("authorization");
    assert!(stored.revoked);
    assert_eq!(stored.expires_at_ms, expires_at_ms);
}

#[test]
fn revoke_without_active_authorization_is_rejected() {
    let mut harness = Harness::new();
    let (core, bank, supplier) = (
        harness.core.clone(),
        harness.bank_a.clone(),
        harness.supplier.clone(),
    );
    // Never granted.
    assert_rejected_without_writes(
        &mut harness,
        revoke(&bank, LOAN),
        &[&core],
        ReasonCode::ReasonAuthorizationNotFound,
    );
    let expires_at_ms = in_an_hour(&harness);
    accept(&mut harness, grant(&bank, LOAN, expires_at_ms), &[&core]);
    // Another purpose, another subject: not the same authorization.
    assert_rejected_without_writes(
        &mut harness,
        revoke(&bank, QueryPurpose::PostLoanManagement),
        &[&core],
        ReasonCode::ReasonAuthorizationNotFound,
    );
    assert_rejected_without_writes(
        &mut harness,
        revoke(&bank, LOAN),
        &[&supplier],
        ReasonCode::ReasonAuthorizationNotFound,
    );
    // Already revoked.
    accept(&mut harness, revoke(&bank, LOAN), &[&core]);
    assert_rejected_without_writes(
        &mut harness,
        revoke(&bank, LOAN),
        &[&core],
        ReasonCode::ReasonAuthorizationNotFound,
    );
    // Expired.
    let expires_at_ms = harness.time_ms + 1;
    accept(&mut harness, grant(&bank, LOAN, expires_at_ms), &[&core]);
    assert_rejected_without_writes(
        &mut harness,
        revoke(&bank, LOAN),
        &[&core],
        ReasonCode::ReasonAuthorizationNotFound,
    );
}

#[test]
fn revoke_by_key_without_enterprise_role_is_rejected() {
    let mut harness = Harness::new();
    let (core, bank, bureau) = (
        harness.core.clone(),
        harness.bank_a.clone(),
        harness.bureau.clone(),
    );
    let expires_at_ms = in_an_hour(&harness);
    accept(&mut harness, grant(&bank, LOAN, expires_at_ms), &[&core]);
    assert_rejected_without_writes(
        &mut harness,
        revoke(&bank, LOAN),
        &[&bureau],
        ReasonCode::ReasonRoleNotPermitted,
    );
}

// ---------------------------------------------------------------- RecordCreditQuery

#[test]
fn query_with_active_authorization_is_recorded() {
    let mut harness = with_report();
    let (core, bank) = (harness.core.clone(), harness.bank_a.clone());
    let expires_at_ms = in_an_hour(&harness);
    accept(&mut harness, grant(&bank, LOAN, expires_at_ms), &[&core]);
    let block_time_ms = harness.time_ms;
    let receipt = accept(&mut harness, query(REPORT, LOAN), &[&bank]);
    let hash = tx_hash(&receipt);
    assert_eq!(receipt.created_id, hex::encode(hash));
    let log: v1::QueryLogRecord = harness.get(&keys::query_log(&hash)).expect("query log");
    assert_eq!(log.querier_uscc, bank.id());
    assert_eq!(log.subject_uscc, core.id());
    assert_eq!(log.report_id, REPORT);
    assert_eq!(log.purpose(), LOAN);
    let provenance = log.provenance.expect("provenance");
    assert_eq!(provenance.block_time_ms, block_time_ms);
    assert_eq!(provenance.tx_hash, receipt.tx_hash);
}

#[test]
fn query_without_authorization_is_rejected() {
    let mut harness = with_report();
    let (core, bank, bank_b, supplier) = (
        harness.core.clone(),
        harness.bank_a.clone(),
        harness.bank_b.clone(),
        harness.supplier.clone(),
    );
    assert_rejected_without_writes(
        &mut harness,
        query(REPORT, LOAN),
        &[&bank],
        ReasonCode::ReasonNotAuthorized,
    );
    let expires_at_ms = in_an_hour(&harness);
    accept(&mut harness, grant(&bank, LOAN, expires_at_ms), &[&core]);
    // Another purpose, another querier, or an authorization from another subject do not count.
    assert_rejected_without_writes(
        &mut harness,
        query(REPORT, QueryPurpose::GuaranteeApproval),
        &[&bank],
        ReasonCode::ReasonNotAuthorized,
    );
    assert_rejected_without_writes(
        &mut harness,
        query(REPORT, LOAN),
        &[&bank_b],
        ReasonCode::ReasonNotAuthorized,
    );
    accept(
        &mut harness,
        grant(&bank_b, LOAN, expires_at_ms),
        &[&supplier],
    );
    assert_rejected_without_writes(
        &mut harness,
        query(REPORT, LOAN),
        &[&bank_b],
        ReasonCode::ReasonNotAuthorized,
    );
    accept(&mut harness, query(REPORT, LOAN), &[&bank]);
}

#[test]
fn query_after_authorization_expired_is_rejected() {
    let mut harness = with_report();
    let (core, bank) = (harness.core.clone(), harness.bank_a.clone());
    // Valid for the next block only.
    let expires_at_ms = harness.time_ms + 1_500;
    accept(&mut harness, grant(&bank, LOAN, expires_at_ms), &[&core]);
    accept(&mut harness, query(REPORT, LOAN), &[&bank]);
    assert!(harness.time_ms >= expires_at_ms);
    assert_rejected_without_writes(
        &mut harness,
        query(REPORT, LOAN),
        &[&bank],
        ReasonCode::ReasonNotAuthorized,
    );
}

#[test]
fn query_after_authorization_revoked_is_rejected() {
    let mut harness = with_report();
    let (core, bank) = (harness.core.clone(), harness.bank_a.clone());
    let expires_at_ms = in_an_hour(&harness);
    accept(&mut harness, grant(&bank, LOAN, expires_at_ms), &[&core]);
    accept(&mut harness, query(REPORT, LOAN), &[&bank]);
    accept(&mut harness, revoke(&bank, LOAN), &[&core]);
    assert_rejected_without_writes(
        &mut harness,
        query(REPORT, LOAN),
        &[&bank],
        ReasonCode::ReasonNotAuthorized,
    );
}

#[test]
fn query_by_key_without_querier_role_is_rejected() {
    let mut harness = with_report();
    let (core, supplier, market) = (
        harness.core.clone(),
        harness.supplier.clone(),
        harness.market.clone(),
    );
    let expires_at_ms = in_an_hour(&harness);
    // Even when authorized, an enterprise or an equity market cannot query.
    accept(
        &mut harness,
        grant(&supplier, LOAN, expires_at_ms),
        &[&core],
    );
    accept(&mut harness, grant(&market, LOAN, expires_at_ms), &[&core]);
    for signer in [&supplier, &market, &core] {
        assert_rejected_without_writes(
            &mut harness,
            query(REPORT, LOAN),
            &[signer],
            ReasonCode::ReasonRoleNotPermitted,
        );
    }
}

#[test]
fn query_by_regulator_needs_no_authorization() {
    let mut harness = with_report();
    let regulator = harness.regulator.clone();
    let receipt = accept(
        &mut harness,
        query(REPORT, QueryPurpose::PostLoanManagement),
        &[&regulator],
    );
    let log: v1::QueryLogRecord = harness
        .get(&keys::query_log(&tx_hash(&receipt)))
        .expect("query log");
    assert_eq!(log.querier_uscc, regulator.id());
}

#[test]
fn query_by_issuer_of_own_report_needs_no_authorization() {
    let mut harness = with_report();
    let bureau = harness.bureau.clone();
    accept(&mut harness, query(REPORT, LOAN), &[&bureau]);
}

#[test]
fn query_of_missing_report_is_rejected() {
    let mut harness = with_report();
    let regulator = harness.regulator.clone();
    assert_rejected_without_writes(
        &mut harness,
        query("rpt-missing", LOAN),
        &[&regulator],
        ReasonCode::ReasonReportNotFound,
    );
}

// ---------------------------------------------------------------- views: authorization

#[test]
fn details_are_served_to_regulator_issuer_and_subject() {
    let harness = with_report();
    let (bureau, core) = (harness.bureau.clone(), harness.core.clone());
    for viewer in [
        Viewer::Regulator,
        Viewer::Issuer(bureau.uscc.clone()),
        Viewer::Subject(core.uscc.clone()),
    ] {
        let served = view(&harness, REPORT, &viewer);
        assert!(!served.details_withheld, "{viewer:?}");
        assert_eq!(
            served.versions[0].summary,
            "loan of 1,000,000 CNY repaid on time"
        );
    }
}

#[test]
fn details_are_withheld_without_authorization() {
    let mut harness = with_report();
    let (bank, core, supplier) = (
        harness.bank_a.clone(),
        harness.core.clone(),
        harness.supplier.clone(),
    );
    accept(&mut harness, object(REPORT), &[&core]);
    for viewer in [
        Viewer::Public,
        Viewer::Issuer(bank.uscc.clone()),
        Viewer::Subject(supplier.uscc.clone()),
        Viewer::Querier {
            uscc: bank.uscc.clone(),
            query_tx_hash: [7; 32],
        },
    ] {
        let served = view(&harness, REPORT, &viewer);
        assert!(served.details_withheld, "{viewer:?}");
        let first = &served.versions[0];
        assert!(first.summary.is_empty());
        // Hash and provenance are always served.
        assert_eq!(first.document_sha256, document(1));
        assert!(first.provenance.is_some());
        // The objection's status is served, not its reason.
        assert!(served.under_objection);
        let objection = served.report.expect("report").objection.expect("objection");
        assert!(objection.reason.is_empty());
    }
}

#[test]
fn details_are_served_under_a_recorded_authorized_query() {
    let mut harness = with_report();
    let (core, bank, bank_b) = (
        harness.core.clone(),
        harness.bank_a.clone(),
        harness.bank_b.clone(),
    );
    let (bureau, supplier) = (harness.bureau.clone(), harness.supplier.clone());
    accept(&mut harness, record("rpt-supplier", &supplier), &[&bureau]);
    let expires_at_ms = in_an_hour(&harness);
    accept(&mut harness, grant(&bank, LOAN, expires_at_ms), &[&core]);
    let receipt = accept(&mut harness, query(REPORT, LOAN), &[&bank]);
    let hash = tx_hash(&receipt);
    let served = view(
        &harness,
        REPORT,
        &Viewer::Querier {
            uscc: bank.uscc.clone(),
            query_tx_hash: hash,
        },
    );
    assert!(!served.details_withheld);
    assert_eq!(
        served.versions[0].summary,
        "loan of 1,000,000 CNY repaid on time"
    );
    // The same query does not serve another organisation, nor another report.
    let other_org = view(
        &harness,
        REPORT,
        &Viewer::Querier {
            uscc: bank_b.uscc.clone(),
            query_tx_hash: hash,
        },
    );
    assert!(other_org.details_withheld);
    let other_report = view(
        &harness,
        "rpt-supplier",
        &Viewer::Querier {
            uscc: bank.uscc.clone(),
            query_tx_hash: hash,
        },
    );
    assert!(other_report.details_withheld);
    assert!(other_report.versions[0].summary.is_empty());
}

#[test]
fn details_stop_being_served_once_the_authorization_is_revoked_or_expired() {
    let mut harness = with_report();
    let (core, bank) = (harness.core.clone(), harness.bank_a.clone());
    let expires_at_ms = in_an_hour(&harness);
    accept(&mut harness, grant(&bank, LOAN, expires_at_ms), &[&core]);
    let receipt = accept(&mut harness, query(REPORT, LOAN), &[&bank]);
    let viewer = Viewer::Querier {
        uscc: bank.uscc.clone(),
        query_tx_hash: tx_hash(&receipt),
    };
    let before_expiry =
        credit::report_view(&harness.state, REPORT, &viewer, expires_at_ms - 1).expect("view");
    assert!(!before_expiry.details_withheld);
    let at_expiry =
        credit::report_view(&harness.state, REPORT, &viewer, expires_at_ms).expect("view");
    assert!(at_expiry.details_withheld);
    accept(&mut harness, revoke(&bank, LOAN), &[&core]);
    assert!(view(&harness, REPORT, &viewer).details_withheld);
}

#[test]
fn view_of_missing_report_is_none() {
    let harness = Harness::new();
    assert!(credit::report_view(&harness.state, "rpt-missing", &Viewer::Regulator, 0).is_none());
}

// ---------------------------------------------------------------- views: retention

fn negative_report(harness: &mut Harness, report_id: &str, event_end_day: u32) {
    let (bureau, core) = (harness.bureau.clone(), harness.core.clone());
    accept(
        harness,
        record_with(
            report_id,
            &core,
            true,
            event_end_day,
            "tax arrears of 20,000 CNY",
        ),
        &[&bureau],
    );
}

#[test]
fn negative_information_is_served_until_five_years_after_its_event() {
    let mut harness = Harness::new();
    let now_day = day_of(harness.time_ms);
    // The event ended exactly five years before today: still served today.
    let ended = u32::try_from(days_from_civil(2021, 1, 1)).expect("day");
    assert_eq!(add_years(u64::from(ended), 5), now_day);
    negative_report(&mut harness, "rpt-tax", ended);
    let served = view(&harness, "rpt-tax", &Viewer::Regulator);
    assert!(!served.details_withheld);
    assert!(served.versions[0].negative);
    assert_eq!(served.versions[0].event_end_day, ended);
    assert_eq!(served.versions[0].summary, "tax arrears of 20,000 CNY");
}

#[test]
fn negative_information_older_than_five_years_is_withheld_from_everyone() {
    let mut harness = Harness::new();
    let ended = u32::try_from(days_from_civil(2021, 1, 1)).expect("day");
    negative_report(&mut harness, "rpt-tax", ended);
    // The next day, the retention period has passed.
    let tomorrow_ms = harness.time_ms + DAY_MS;
    let core = harness.core.clone();
    for viewer in [Viewer::Regulator, Viewer::Subject(core.uscc.clone())] {
        let served =
            credit::report_view(&harness.state, "rpt-tax", &viewer, tomorrow_ms).expect("view");
        assert!(served.details_withheld);
        let first = &served.versions[0];
        assert!(first.summary.is_empty());
        assert!(!first.negative);
        assert_eq!(first.event_end_day, 0);
        // Hash and provenance remain.
        assert_eq!(first.document_sha256, document(1));
        assert!(first.provenance.is_some());
    }
}

#[test]
fn retention_applies_only_to_negative_information_with_an_ended_event() {
    let mut harness = Harness::new();
    let (bureau, core) = (harness.bureau.clone(), harness.core.clone());
    let long_ago = u32::try_from(days_from_civil(2010, 6, 30)).expect("day");
    // Positive information of the same age, and negative information whose event has not ended.
    accept(
        &mut harness,
        record_with("rpt-positive", &core, false, long_ago, "utility bills paid"),
        &[&bureau],
    );
    negative_report(&mut harness, "rpt-ongoing", 0);
    for id in ["rpt-positive", "rpt-ongoing"] {
        let served = view(&harness, id, &Viewer::Regulator);
        assert!(!served.details_withheld, "{id}");
        assert!(!served.versions[0].summary.is_empty());
    }
    // An amendment that ends the event long ago withholds that version only.
    accept(
        &mut harness,
        WireAction::AmendCreditReport(v1::AmendCreditReport {
            report_id: "rpt-ongoing".to_owned(),
            document_sha256: document(2),
            negative: true,
            event_end_day: long_ago,
            summary: "tax arrears settled".to_owned(),
        }),
        &[&bureau],
    );
    let served = view(&harness, "rpt-ongoing", &Viewer::Regulator);
    assert!(served.details_withheld);
    assert_eq!(served.versions[0].summary, "tax arrears of 20,000 CNY");
    assert!(served.versions[1].summary.is_empty());
    assert_eq!(served.versions[1].document_sha256, document(2));
}

// ---------------------------------------------------------------- listing and audit

#[test]
fn reports_of_subject_lists_only_that_subjects_reports() {
    let mut harness = with_report();
    let (bank, core, supplier) = (
        harness.bank_a.clone(),
        harness.core.clone(),
        harness.supplier.clone(),
    );
    accept(&mut harness, record("rpt-core-002", &core), &[&bank]);
    accept(&mut harness, record("rpt-supplier", &supplier), &[&bank]);
    accept(&mut harness, object(REPORT), &[&core]);
    let listed = credit::reports_of_subject(&harness.state, core.uscc.as_str());
    let ids: Vec<&str> = listed.iter().map(|r| r.report_id.as_str()).collect();
    assert_eq!(ids, vec![REPORT, "rpt-core-002"]);
    assert!(listed.iter().all(|r| r.subject_uscc == core.id()));
    let objection = listed[0].objection.as_ref().expect("objection");
    assert_eq!(objection.status(), ObjectionStatus::Open);
    assert!(objection.reason.is_empty());
    assert!(credit::reports_of_subject(&harness.state, harness.bureau.uscc.as_str()).is_empty());
}

#[test]
fn audit_detects_a_missing_version_and_a_dangling_index_entry() {
    let mut harness = with_report();
    let bureau = harness.bureau.clone();
    accept(&mut harness, amend(REPORT, 2, "second"), &[&bureau]);
    let mut broken = harness.state.clone();
    broken.apply(&WriteSet::from([(
        keys::credit_report_version(REPORT, 1),
        None,
    )]));
    assert!(credit::audit(&broken).is_err());
    let mut dangling = harness.state.clone();
    dangling.apply(&WriteSet::from([(
        keys::credit_report_by_subject(harness.supplier.uscc.as_str(), REPORT),
        Some(Vec::new()),
    )]));
    assert!(credit::audit(&dangling).is_err());
    let mut stray_log = harness.state.clone();
    let log = v1::QueryLogRecord {
        querier_uscc: yrd_chaincode::testkit::test_uscc(99).as_str().to_owned(),
        subject_uscc: harness.core.id(),
        report_id: REPORT.to_owned(),
        purpose: LOAN as i32,
        provenance: None,
    };
    stray_log.apply(&WriteSet::from([(
        keys::query_log(&[1; 32]),
        Some(yrd_chaincode::testkit::encode(&log)),
    )]));
    assert!(credit::audit(&stray_log).is_err());
}

// ---------------------------------------------------------------- exact writes and check order

fn business_keys(writes: &WriteSet) -> Vec<Vec<u8>> {
    writes
        .keys()
        .filter(|key| !key.starts_with(b"x/") && !key.starts_with(b"h/"))
        .cloned()
        .collect()
}

#[test]
fn accepted_actions_write_exactly_their_records() {
    let mut harness = with_report();
    let (bureau, core, bank) = (
        harness.bureau.clone(),
        harness.core.clone(),
        harness.bank_a.clone(),
    );
    let (receipt, writes) = submit_and_writes(&mut harness, amend(REPORT, 2, "v2"), &[&bureau]);
    assert_accepted(&receipt);
    assert_eq!(
        business_keys(&writes),
        vec![
            keys::credit_report(REPORT),
            keys::credit_report_version(REPORT, 2)
        ]
    );
    let (receipt, writes) = submit_and_writes(&mut harness, object(REPORT), &[&core]);
    assert_accepted(&receipt);
    assert_eq!(business_keys(&writes), vec![keys::credit_report(REPORT)]);
    let expires_at_ms = in_an_hour(&harness);
    let (receipt, writes) =
        submit_and_writes(&mut harness, grant(&bank, LOAN, expires_at_ms), &[&core]);
    assert_accepted(&receipt);
    let authorization_key = keys::authorization(core.uscc.as_str(), bank.uscc.as_str(), LOAN as u8);
    assert_eq!(business_keys(&writes), vec![authorization_key.clone()]);
    let (receipt, writes) = submit_and_writes(&mut harness, query(REPORT, LOAN), &[&bank]);
    assert_accepted(&receipt);
    assert_eq!(
        business_keys(&writes),
        vec![keys::query_log(&tx_hash(&receipt))]
    );
    let (receipt, writes) = submit_and_writes(&mut harness, revoke(&bank, LOAN), &[&core]);
    assert_accepted(&receipt);
    assert_eq!(business_keys(&writes), vec![authorization_key]);
    let (receipt, writes) = submit_and_writes(
        &mut harness,
        resolve(REPORT, ObjectionOutcome::Upheld),
        &[&bureau],
    );
    assert_accepted(&receipt);
    assert_eq!(business_keys(&writes), vec![keys::credit_report(REPORT)]);
    assert_audit(&harness);
}

#[test]
fn role_is_checked_before_the_report_is_looked_up() {
    let mut harness = Harness::new();
    let (core, bureau) = (harness.core.clone(), harness.bureau.clone());
    assert_rejected_without_writes(
        &mut harness,
        amend("rpt-missing", 2, "nothing"),
        &[&core],
        ReasonCode::ReasonRoleNotPermitted,
    );
    assert_rejected_without_writes(
        &mut harness,
        object("rpt-missing"),
        &[&bureau],
        ReasonCode::ReasonRoleNotPermitted,
    );
    assert_rejected_without_writes(
        &mut harness,
        query("rpt-missing", LOAN),
        &[&core],
        ReasonCode::ReasonRoleNotPermitted,
    );
}

#[test]
fn amend_cosigned_by_the_issuer_is_accepted() {
    // The rule is that a reporter key of the issuer signs; it need not sign first.
    let mut harness = with_report();
    let (bank, bureau) = (harness.bank_a.clone(), harness.bureau.clone());
    accept(&mut harness, amend(REPORT, 2, "joint"), &[&bank, &bureau]);
    assert_eq!(report(&harness, REPORT).version_count, 2);
}

#[test]
fn query_by_subject_of_own_report_needs_no_authorization() {
    let mut harness = Harness::new();
    let (bureau, bank) = (harness.bureau.clone(), harness.bank_a.clone());
    accept(&mut harness, record("rpt-bank", &bank), &[&bureau]);
    let receipt = accept(&mut harness, query("rpt-bank", LOAN), &[&bank]);
    let served = view(
        &harness,
        "rpt-bank",
        &Viewer::Querier {
            uscc: bank.uscc.clone(),
            query_tx_hash: tx_hash(&receipt),
        },
    );
    assert!(!served.details_withheld);
}

#[test]
fn subject_that_is_a_bank_may_object_with_its_enterprise_role() {
    let mut harness = Harness::new();
    let (bureau, bank) = (harness.bureau.clone(), harness.bank_a.clone());
    accept(&mut harness, record("rpt-bank", &bank), &[&bureau]);
    accept(&mut harness, object("rpt-bank"), &[&bank]);
    assert!(view(&harness, "rpt-bank", &Viewer::Public).under_objection);
}
