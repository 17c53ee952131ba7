//! History answers: three versions of a credit report written by three signed transactions in
//! three blocks verify; a missing, swapped or tampered version, a wrong count, a tampered
//! transaction, a wrong inclusion path or a stale "latest" fails.

mod common;

use common::Chain;
use yrd_chaincode::testkit::assert_accepted;
use yrd_proto::v1::{self, transaction_body::Action, QueryPurpose, ReportKind};
use yrd_verify::{verify_bundle, verify_history, ProvenHistory, VerifyError};

const KEY: &[u8] = b"c/r/rpt-core-001";

fn amend(n: u8) -> Action {
    Action::AmendCreditReport(v1::AmendCreditReport {
        report_id: "rpt-core-001".to_owned(),
        document_sha256: vec![n; 32],
        negative: false,
        event_end_day: 0,
        summary: format!("version {n}"),
    })
}

/// Versions at heights 1, 3 (second transaction of its block) and 4; height 5 writes nothing.
fn history_chain() -> Chain {
    let mut chain = Chain::new();
    let h = chain.harness.clone();
    let record = Action::RecordCreditReport(v1::RecordCreditReport {
        report_id: "rpt-core-001".to_owned(),
        subject_uscc: h.core.id(),
        kind: ReportKind::Loan as i32,
        document_sha256: vec![1; 32],
        negative: false,
        event_end_day: 0,
        summary: "first".to_owned(),
    });
    let tx = chain.sign(record, &[&h.bureau.key]);
    assert_accepted(&chain.commit(vec![tx]).receipts[0]);
    chain.commit(vec![]);
    let expires_at_ms = chain.harness.time_ms + 86_400_000;
    let grant = chain.sign(
        Action::GrantAuthorization(v1::GrantAuthorization {
            grantee_uscc: h.bank_a.id(),
            purpose: QueryPurpose::LoanApproval as i32,
            expires_at_ms,
        }),
        &[&h.core.key],
    );
    let second = chain.sign(amend(2), &[&h.bureau.key]);
    let third_grant = chain.sign(
        Action::GrantAuthorization(v1::GrantAuthorization {
            grantee_uscc: h.bank_b.id(),
            purpose: QueryPurpose::LoanApproval as i32,
            expires_at_ms,
        }),
        &[&h.core.key],
    );
    let outcome = chain.commit(vec![grant, second, third_grant]);
    assert!(outcome.receipts.iter().all(|r| r.accepted));
    let third = chain.sign(amend(3), &[&h.bureau.key]);
    assert_accepted(&chain.commit(vec![third]).receipts[0]);
    chain.commit(vec![]);
    chain
}

fn verify(chain: &Chain, response: &v1::HistoryResponse) -> Result<ProvenHistory, VerifyError> {
    verify_history(&chain.trust(), response)
}

#[test]
fn full_history_verifies() {
    let chain = history_chain();
    let response = chain.history_response(KEY, 5, 0);
    let proven = verify(&chain, &response).expect("verifies");
    assert_eq!(proven.version_count, 3);
    assert!(proven.complete && proven.includes_latest);
    let heights: Vec<(u64, u32)> = proven
        .versions
        .iter()
        .map(|v| (v.height, v.tx_index))
        .collect();
    assert_eq!(heights, vec![(1, 0), (3, 1), (4, 0)]);
    assert_eq!(
        proven.value.as_deref(),
        Some(proven.versions[2].value.as_slice())
    );
    let bureau = chain.harness.bureau.key.verifying_key().to_bytes();
    assert!(proven.versions.iter().all(|v| v.signers == vec![bureau]));
    let text = verify_bundle(
        &chain.trust(),
        &v1::ProofBundle {
            answer: Some(v1::proof_bundle::Answer::History(response)),
        },
    )
    .expect("bundle")
    .to_string();
    assert!(
        text.contains("key c/r/rpt-core-001 at height 5: 3 versions"),
        "{text}"
    );
    assert!(
        text.contains("complete; version 2 is the latest as of height 5"),
        "{text}"
    );
    // From version 1: not complete, still the latest. At height 3: two versions.
    let partial = verify(&chain, &chain.history_response(KEY, 5, 1)).expect("partial");
    assert!(!partial.complete && partial.includes_latest);
    let earlier = verify(&chain, &chain.history_response(KEY, 3, 0)).expect("at 3");
    assert_eq!(earlier.version_count, 2);
    assert!(earlier.complete && earlier.includes_latest);
    // A genesis record has a value and no versions; a never-written key has neither.
    let member = yrd_chaincode::keys::member(chain.harness.bank_a.uscc.as_str());
    let genesis = verify(&chain, &chain.history_response(&member, 5, 0)).expect("genesis key");
    assert_eq!(genesis.version_count, 0);
    assert!(genesis.value.is_some() && genesis.complete && !genesis.includes_latest);
    let none = verify(&chain, &chain.history_response(b"c/r/none", 5, 0)).expect("absent key");
    assert!(none.value.is_none() && none.versions.is_empty());
}

#[test]
fn missing_swapped_or_tampered_versions_fail() {
    let chain = history_chain();
    let good = chain.history_response(KEY, 5, 0);
    let mut missing = good.clone();
    missing.versions.remove(1);
    assert!(verify(&chain, &missing).is_err());
    let mut swapped = good.clone();
    swapped.versions.swap(0, 1);
    assert!(verify(&chain, &swapped).is_err());
    let mut repeated = good.clone();
    repeated.versions[1] = repeated.versions[0].clone();
    assert!(verify(&chain, &repeated).is_err());
    for count in [0, 2, 4] {
        let mut wrong = good.clone();
        wrong.version_count = count;
        assert!(verify(&chain, &wrong).is_err(), "count {count}");
    }
    for i in 0..good.versions[1].entry.len() {
        let mut tampered = good.clone();
        tampered.versions[1].entry[i] ^= 1;
        assert!(verify(&chain, &tampered).is_err(), "entry byte {i}");
    }
    let mut flipped_proof = good.clone();
    flipped_proof.versions[1]
        .entry_proof
        .as_mut()
        .expect("p")
        .siblings[0][0] ^= 1;
    assert!(verify(&chain, &flipped_proof).is_err());
    let mut too_many = good.clone();
    too_many.versions = vec![good.versions[0].clone(); 4097];
    assert!(matches!(
        verify(&chain, &too_many),
        Err(VerifyError::TooMany { .. })
    ));
}

#[test]
fn tampered_transactions_and_inclusion_paths_fail() {
    let chain = history_chain();
    let good = chain.history_response(KEY, 5, 0);
    // A body byte changed: the signature no longer verifies.
    let mut tampered = good.clone();
    tampered.versions[1].transaction.as_mut().expect("tx").body[3] ^= 1;
    assert!(verify(&chain, &tampered).is_err());
    // Another valid transaction of the same block: its hash is not the provenance's.
    let mut other = good.clone();
    other.versions[1].transaction = Some(chain.transactions[2][0].clone());
    assert!(verify(&chain, &other).is_err());
    // A signature dropped from a correctly signed envelope: the signers differ.
    let mut unsigned = good.clone();
    unsigned.versions[1]
        .transaction
        .as_mut()
        .expect("tx")
        .signatures
        .clear();
    assert!(verify(&chain, &unsigned).is_err());
    // Wrong inclusion paths: a flipped byte, a missing or an extra hash, none.
    for level in 0..good.versions[1].inclusion_path.len() {
        let mut wrong = good.clone();
        wrong.versions[1].inclusion_path[level][5] ^= 1;
        assert!(verify(&chain, &wrong).is_err());
    }
    let mut short = good.clone();
    short.versions[1].inclusion_path.pop();
    assert!(verify(&chain, &short).is_err());
    let mut long = good.clone();
    long.versions[1].inclusion_path.push(vec![0; 32]);
    assert!(verify(&chain, &long).is_err());
    let mut none = good.clone();
    none.versions[1].inclusion_path.clear();
    assert!(verify(&chain, &none).is_err());
    // The block of another height.
    let mut wrong_block = good.clone();
    wrong_block.versions[1].block = Some(chain.header(2));
    assert!(verify(&chain, &wrong_block).is_err());
    let mut no_block = good;
    no_block.versions[1].block = None;
    assert!(verify(&chain, &no_block).is_err());
}

#[test]
fn stale_latest_fails() {
    let chain = history_chain();
    let good = chain.history_response(KEY, 5, 0);
    let old = chain.history_response(KEY, 3, 0);
    // Claiming at height 5 that version 1 is the latest: the count of height 3 does not prove.
    let mut stale = good.clone();
    stale.version_count = old.version_count;
    stale.count_proof = old.count_proof.clone();
    stale.versions.pop();
    assert!(verify(&chain, &stale).is_err());
    // The count right, the last version moved to `last_entry`: proven, but not the latest, not
    // complete.
    let short = chain.without_latest(good.clone());
    let proven = verify(&chain, &short).expect("a prefix is a valid answer");
    assert!(!proven.includes_latest && !proven.complete);
    assert_eq!(proven.version_count, good.version_count);
    // Without the last entry, or with the entry of another version, the count is not proven.
    let mut unproven = short.clone();
    unproven.last_entry_proof = None;
    assert!(matches!(
        verify(&chain, &unproven),
        Err(VerifyError::Missing { .. })
    ));
    let mut other = short.clone();
    other.last_entry = short.versions[0].entry.clone();
    assert!(verify(&chain, &other).is_err());
    let mut dropped = good.clone();
    dropped.versions.pop();
    assert!(verify(&chain, &dropped).is_err());
    // A page with no version at all (from the count on) proves the count by `last_entry`.
    let empty = chain.without_latest(chain.history_response(KEY, 5, 2));
    assert!(empty.versions.is_empty());
    let proven_empty = verify(&chain, &empty).expect("an empty page is a valid answer");
    assert_eq!(proven_empty.version_count, 3);
    assert!(!proven_empty.includes_latest && !proven_empty.complete);
    // The value of height 3 with the versions of height 5.
    let mut stale_value = good.clone();
    stale_value.value = old.value.clone();
    assert!(verify(&chain, &stale_value).is_err());
    stale_value.value_proof = old.value_proof.clone();
    assert!(verify(&chain, &stale_value).is_err());
    // The header of height 3 for an answer about height 5.
    let mut stale_header = good.clone();
    stale_header.header = Some(chain.header(3));
    assert!(verify(&chain, &stale_header).is_err());
    // Absent with a value is refused.
    let mut contradiction = good;
    contradiction.exists = false;
    assert!(matches!(
        verify(&chain, &contradiction),
        Err(VerifyError::Inconsistent(_))
    ));
}
