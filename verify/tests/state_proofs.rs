//! State proofs from a real `jmt` tree over the state of a chain holding every kind of record:
//! every key proves its value (a tree key by its own leaf, a versioned record through its
//! latest history entry) and absent keys prove their absence, at several versions, in agreement
//! with `jmt`'s own verifier; any single flipped byte breaks a proof, and a record's stale or
//! missing leaf is never taken for its value.

mod common;

use common::{key_hash, Chain};
use jmt::{RootHash, Sha256Jmt};
use yrd_chaincode::keys::{is_proven_by_history, is_tree_key};
use yrd_chaincode::testkit::{assert_accepted, loan_report, Harness};
use yrd_chaincode::StateRead;
use yrd_proto::signing::sha256;
use yrd_proto::v1::{self, transaction_body::Action, QueryPurpose};
use yrd_verify::keys::history_entry;
use yrd_verify::{state_proof_from_jmt, verify_state, verify_state_proof, VerifyError};

const REPORT: &str = "rpt-core-001";
const FUND: &str = "FUND-1";

fn accept(chain: &mut Chain, action: Action, signers: &[&yrd_chaincode::testkit::Party]) {
    let keys: Vec<_> = signers.iter().map(|p| &p.key).collect();
    let envelope = chain.sign(action, &keys);
    let outcome = chain.commit(vec![envelope]);
    assert_accepted(&outcome.receipts[0]);
}

/// A chain with members, keys, validators, credit reports and their versions, authorizations,
/// query logs, receivables and units, invoices, funds, holdings, fund pledges, freezes,
/// sequences and history entries.
pub fn rich_chain() -> Chain {
    let mut chain = Chain::new();
    let h = chain.harness.clone();
    let (bank, bureau, core, supplier, supplier_b, market, regulator) = (
        &h.bank_a,
        &h.bureau,
        &h.core,
        &h.supplier,
        &h.supplier_b,
        &h.market,
        &h.regulator,
    );
    let record = loan_report(REPORT, core);
    accept(&mut chain, record, &[bureau]);
    let amend = Action::AmendCreditReport(v1::AmendCreditReport {
        report_id: REPORT.to_owned(),
        document_sha256: vec![2; 32],
        negative: false,
        event_end_day: 0,
        summary: "second".to_owned(),
    });
    accept(&mut chain, amend, &[bureau]);
    let expires_at_ms = chain.harness.time_ms + 30 * 86_400_000;
    let grant = Action::GrantAuthorization(v1::GrantAuthorization {
        grantee_uscc: bank.id(),
        purpose: QueryPurpose::LoanApproval as i32,
        expires_at_ms,
    });
    accept(&mut chain, grant, &[core]);
    let query = Action::RecordCreditQuery(v1::RecordCreditQuery {
        report_id: REPORT.to_owned(),
        purpose: QueryPurpose::LoanApproval as i32,
    });
    accept(&mut chain, query, &[bank]);
    let today = (chain.harness.time_ms / 86_400_000) as u32;
    let register = Action::RegisterReceivable(v1::RegisterReceivable {
        receivable_id: "R-1".to_owned(),
        debtor_uscc: core.id(),
        creditor_uscc: supplier.id(),
        face_fen: 1_000_000,
        due_day: today + 30,
        invoice_hashes: vec![sha256(b"invoice-1").to_vec()],
        contract_hash: sha256(b"contract").to_vec(),
    });
    accept(&mut chain, register, &[supplier]);
    let confirm = Action::ConfirmReceivable(v1::ConfirmReceivable {
        receivable_id: "R-1".to_owned(),
    });
    accept(&mut chain, confirm, &[core]);
    let transfer = Action::TransferReceivable(v1::TransferReceivable {
        unit_id: "R-1".to_owned(),
        to_uscc: supplier_b.id(),
        amount_fen: 300_000,
    });
    accept(&mut chain, transfer, &[supplier]);
    let pledge = Action::PledgeReceivable(v1::PledgeReceivable {
        unit_id: "R-1".to_owned(),
        pledgee_uscc: bank.id(),
        secured_amount_fen: 500_000,
    });
    accept(&mut chain, pledge, &[supplier, bank]);
    let fund = Action::RegisterFund(v1::RegisterFund {
        fund_id: FUND.to_owned(),
        manager_uscc: core.id(),
        filing_number: "SXX123".to_owned(),
        total_units: 10_000,
    });
    accept(&mut chain, fund, &[market]);
    let holding = Action::RegisterHolding(v1::RegisterHolding {
        fund_id: FUND.to_owned(),
        holder_uscc: supplier.id(),
        units: 1_000,
    });
    accept(&mut chain, holding, &[market]);
    let fund_pledge = Action::PledgeFundUnits(v1::PledgeFundUnits {
        fund_id: FUND.to_owned(),
        pledgor_uscc: supplier.id(),
        pledgee_uscc: bank.id(),
        units: 100,
    });
    accept(&mut chain, fund_pledge, &[supplier, bank, market]);
    let freeze = Action::FreezeFundUnits(v1::FreezeFundUnits {
        fund_id: FUND.to_owned(),
        holder_uscc: supplier.id(),
        units: 50,
        court_reference: "(2026) Hu 0115 Zhi Bao 123".to_owned(),
    });
    accept(&mut chain, freeze, &[regulator]);
    chain
}

fn check_every_key(chain: &Chain, state: &[(Vec<u8>, Vec<u8>)], version: u64) {
    let root = chain.root(version);
    let tree = Sha256Jmt::new(&chain.store);
    for (key, value) in state {
        let (found, jmt_proof) = tree.get_with_proof(key_hash(key), version).expect("proof");
        assert_eq!(found.as_ref(), Some(value));
        jmt_proof
            .verify(RootHash(root), key_hash(key), Some(value))
            .expect("jmt verifies");
        let proof = state_proof_from_jmt(&jmt_proof).expect("wire");
        verify_state_proof(&root, key, Some(value), &proof)
            .unwrap_or_else(|e| panic!("{:?} at {version}: {e}", String::from_utf8_lossy(key)));
        // The same proof does not prove absence or another value.
        assert!(verify_state_proof(&root, key, None, &proof).is_err());
        assert!(verify_state_proof(&root, key, Some(b"other"), &proof).is_err());
    }
}

fn check_absent(chain: &Chain, key: &[u8], version: u64) {
    let root = chain.root(version);
    let (found, jmt_proof) = Sha256Jmt::new(&chain.store)
        .get_with_proof(key_hash(key), version)
        .expect("proof");
    assert_eq!(found, None);
    jmt_proof
        .verify(RootHash(root), key_hash(key), None::<Vec<u8>>)
        .expect("jmt verifies absence");
    let proof = state_proof_from_jmt(&jmt_proof).expect("wire");
    verify_state_proof(&root, key, None, &proof).expect("absence verifies");
    assert!(verify_state_proof(&root, key, Some(b"x"), &proof).is_err());
}

/// Every key of `state` that is proven through its history, by the answer a node serves: its
/// value verifies, and the answer does not prove another value or the key's absence.
fn check_every_record(chain: &Chain, state: &[(Vec<u8>, Vec<u8>)], height: u64) {
    let trust = chain.trust();
    for (key, value) in state.iter().filter(|(k, _)| is_proven_by_history(k)) {
        let answer = chain.state_response(key, height);
        let proven = verify_state(&trust, &answer)
            .unwrap_or_else(|e| panic!("{:?} at {height}: {e}", String::from_utf8_lossy(key)));
        assert_eq!(proven.value.as_ref(), Some(value));
        let mut other = answer.clone();
        other.value = b"other".to_vec();
        assert!(verify_state(&trust, &other).is_err());
        let mut absent = answer.clone();
        absent.exists = false;
        absent.value.clear();
        assert!(verify_state(&trust, &absent).is_err());
    }
}

/// The keys of `state` that blocks put in the tree under their own name.
fn tree_keys(state: &[(Vec<u8>, Vec<u8>)]) -> Vec<(Vec<u8>, Vec<u8>)> {
    state
        .iter()
        .filter(|(k, _)| is_tree_key(k))
        .cloned()
        .collect()
}

/// The authenticated part of the state: every key a proof covers, by its own leaf or its
/// history.
fn snapshot(harness: &Harness) -> Vec<(Vec<u8>, Vec<u8>)> {
    harness
        .state
        .iter()
        .filter(|(k, _)| yrd_chaincode::keys::is_authenticated(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[test]
fn every_key_of_every_record_kind_proves_its_value_and_absent_keys_their_absence() {
    let genesis = Chain::new();
    let genesis_state = snapshot(&genesis.harness);
    let chain = rich_chain();
    let height = chain.height();
    let state = snapshot(&chain.harness);
    let prefixes: [&[u8]; 16] = [
        b"m/",
        b"k/",
        b"v/current",
        b"c/r/",
        b"c/v/",
        b"c/s/",
        b"c/a/",
        b"c/q/",
        b"r/r/",
        b"r/u/",
        b"r/i/",
        b"f/f/",
        b"f/h/",
        b"f/p/",
        b"f/z/",
        b"h/v/",
    ];
    for prefix in prefixes {
        assert!(
            state.iter().any(|(k, _)| k.starts_with(prefix)),
            "no key under {:?}: {:?}",
            String::from_utf8_lossy(prefix),
            state
                .iter()
                .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
                .collect::<Vec<_>>()
        );
    }
    assert!(state.iter().any(|(k, _)| k.starts_with(b"s/")));
    // History counts and replay entries are kept but outside the tree: proven absent.
    for prefix in [&b"h/c/"[..], b"x/e/"] {
        let (outside, _) = chain
            .harness
            .state
            .iter()
            .find(|(k, _)| k.starts_with(prefix))
            .unwrap_or_else(|| panic!("no key under {}", String::from_utf8_lossy(prefix)));
        assert!(!state.iter().any(|(k, _)| k.starts_with(prefix)));
        check_absent(&chain, outside, height);
    }
    // Genesis puts every authenticated key in the tree; later, a block puts a versioned
    // record's history entry there instead of the record.
    check_every_key(&chain, &genesis_state, 0);
    check_every_key(&chain, &tree_keys(&state), height);
    check_every_record(&chain, &state, height);
    assert!(state
        .iter()
        .any(|(k, _)| is_proven_by_history(k) && !is_tree_key(k)));
    for key in [
        &b"c/r/rpt-core-001"[..],
        b"r/r/R-1",
        b"f/f/FUND-1",
        b"",
        b"nope",
    ] {
        check_absent(&chain, key, 0);
    }
    for key in [&b"c/r/none"[..], b"r/r/R-2", b"", &[0xff; 40]] {
        check_absent(&chain, key, height);
    }
    // Two later versions with changes and deletions, straight into the tree.
    let state = tree_keys(&state);
    let deleted: Vec<Vec<u8>> = state.iter().step_by(3).map(|(k, _)| k.clone()).collect();
    let changed: Vec<Vec<u8>> = state
        .iter()
        .skip(1)
        .step_by(3)
        .map(|(k, _)| k.clone())
        .collect();
    let tree = Sha256Jmt::new(&chain.store);
    let writes: Vec<_> = deleted
        .iter()
        .map(|k| (key_hash(k), None))
        .chain(
            changed
                .iter()
                .map(|k| (key_hash(k), Some(b"changed".to_vec()))),
        )
        .collect();
    let (_, batch) = tree.put_value_set(writes, height + 1).expect("version");
    chain.store.write_tree_update_batch(batch).expect("write");
    let (_, batch) = Sha256Jmt::new(&chain.store)
        .put_value_set(
            vec![(key_hash(&deleted[0]), Some(b"back".to_vec()))],
            height + 2,
        )
        .expect("version");
    chain.store.write_tree_update_batch(batch).expect("write");
    let after: Vec<(Vec<u8>, Vec<u8>)> = state
        .iter()
        .filter(|(k, _)| !deleted.contains(k))
        .map(|(k, v)| {
            let v = if changed.contains(k) {
                b"changed".to_vec()
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect();
    check_every_key(&chain, &after, height + 1);
    for key in &deleted {
        check_absent(&chain, key, height + 1);
    }
    for key in &deleted[1..] {
        check_absent(&chain, key, height + 2);
    }
    check_every_key(
        &chain,
        &[(deleted[0].clone(), b"back".to_vec())],
        height + 2,
    );
    // Older versions stay provable.
    check_every_key(&chain, &state, height);
    assert!(chain.harness.state.get(b"v/current").is_some());
}

fn flipped(proof: &v1::StateProof) -> Vec<v1::StateProof> {
    let mut out = Vec::new();
    if let Some(leaf) = &proof.leaf {
        for i in 0..32 {
            let mut p = proof.clone();
            p.leaf.as_mut().expect("leaf").key_hash[i] ^= 1;
            out.push(p);
            let mut p = proof.clone();
            p.leaf.as_mut().expect("leaf").value_hash[i] ^= 0x80;
            out.push(p);
        }
        assert_eq!(leaf.key_hash.len(), 32);
    }
    for s in 0..proof.siblings.len() {
        for i in 0..32 {
            let mut p = proof.clone();
            p.siblings[s][i] ^= 1;
            out.push(p);
        }
    }
    out
}

#[test]
fn flipping_any_byte_of_a_proof_or_value_fails() {
    let chain = rich_chain();
    let height = chain.height();
    let root = chain.root(height);
    let key = &history_entry(b"c/r/rpt-core-001", 0);
    let (value, proof) = chain.prove(key, height);
    let value = value.expect("exists");
    assert!(!proof.siblings.is_empty());
    verify_state_proof(&root, key, Some(&value), &proof).expect("verifies");
    for bad in flipped(&proof) {
        assert!(verify_state_proof(&root, key, Some(&value), &bad).is_err());
    }
    for i in 0..value.len() {
        let mut bad = value.clone();
        bad[i] ^= 1;
        assert!(verify_state_proof(&root, key, Some(&bad), &proof).is_err());
    }
    // A dropped or an extra sibling, a short sibling, too many siblings.
    let mut bad = proof.clone();
    bad.siblings.pop();
    assert!(verify_state_proof(&root, key, Some(&value), &bad).is_err());
    let mut bad = proof.clone();
    bad.siblings.push(vec![0; 32]);
    assert!(verify_state_proof(&root, key, Some(&value), &bad).is_err());
    let mut bad = proof.clone();
    bad.siblings[0].pop();
    assert!(matches!(
        verify_state_proof(&root, key, Some(&value), &bad),
        Err(VerifyError::Malformed { .. })
    ));
    let mut bad = proof.clone();
    bad.siblings = vec![vec![0; 32]; 257];
    assert!(matches!(
        verify_state_proof(&root, key, Some(&value), &bad),
        Err(VerifyError::TooMany { .. })
    ));
    // An absence proof: flipping any byte fails too.
    let absent = &history_entry(b"c/r/none", 0);
    let (none, proof) = chain.prove(absent, height);
    assert_eq!(none, None);
    verify_state_proof(&root, absent, None, &proof).expect("absence verifies");
    for bad in flipped(&proof) {
        assert!(verify_state_proof(&root, absent, None, &bad).is_err());
    }
    // A proof of the present key, offered as proof of absence of another key, fails.
    let (_, present) = chain.prove(key, height);
    assert!(verify_state_proof(&root, absent, None, &present).is_err());
}

/// A versioned record's value is its latest version's: an answer that offers the record's own
/// leaf (absent from the tree, or stale since genesis), hides versions, or names an older
/// version as the latest fails.
#[test]
fn a_record_is_proven_by_its_latest_version_only() {
    let mut chain = rich_chain();
    let trust = chain.trust();
    let height = chain.height();
    let key = format!("c/r/{REPORT}").into_bytes();
    let answer = chain.state_response(&key, height);
    assert!(answer.version_count >= 2, "the report has versions");
    let proven = verify_state(&trust, &answer).expect("verifies");
    assert_eq!(
        proven.value.as_deref(),
        chain.harness.state.get(&key).as_deref()
    );

    // Without the count, or with a count that hides the latest version.
    let mut no_count = answer.clone();
    no_count.count_proof = None;
    assert!(verify_state(&trust, &no_count).is_err());
    let mut hidden = answer.clone();
    hidden.version_count -= 1;
    hidden.count_proof = Some(
        chain
            .prove(&history_entry(&key, hidden.version_count), height)
            .1,
    );
    let (older, older_proof) = chain.prove(&history_entry(&key, hidden.version_count - 1), height);
    hidden.last_entry = older.expect("older entry");
    hidden.last_entry_proof = Some(older_proof);
    hidden.value = common::Chain::entry_value(&hidden.last_entry).expect("a value");
    assert!(verify_state(&trust, &hidden).is_err());
    // The record's own leaf (absent from the tree: blocks never put it there) as if it had no
    // versions.
    let mut by_leaf = answer.clone();
    let (leaf, leaf_proof) = chain.prove(&key, height);
    assert_eq!(leaf, None);
    by_leaf.version_count = 0;
    by_leaf.count_proof = Some(chain.prove(&history_entry(&key, 0), height).1);
    by_leaf.proof = Some(leaf_proof);
    by_leaf.exists = false;
    by_leaf.value.clear();
    assert!(verify_state(&trust, &by_leaf).is_err());
    // A latest entry that is not of the counted index, or that a flipped byte changed.
    let mut flipped_entry = answer.clone();
    let last = flipped_entry.last_entry.len() - 1;
    flipped_entry.last_entry[last] ^= 1;
    assert!(verify_state(&trust, &flipped_entry).is_err());
    let mut no_entry_proof = answer;
    no_entry_proof.last_entry_proof = None;
    assert!(verify_state(&trust, &no_entry_proof).is_err());

    // A key written at genesis and never since has no version: its genesis leaf proves it.
    let genesis_only = chain
        .harness
        .state
        .iter()
        .map(|(k, _)| k.clone())
        .find(|k| k.starts_with(b"k/") && chain.state_response(k, height).version_count == 0)
        .expect("a genesis key without versions");
    let (genesis_leaf, _) = chain.prove(&genesis_only, 0);
    let proven = verify_state(&trust, &chain.state_response(&genesis_only, height))
        .expect("genesis value verifies");
    assert_eq!(proven.value, genesis_leaf);
    assert!(proven.value.is_some());
    // After one more block, the record still verifies at the new height.
    chain.commit(vec![]);
    verify_state(&trust, &chain.state_response(&key, chain.height())).expect("still verifies");
}
