//! How often a block's execution reads its base state: each key at most once, however many of
//! the block's transactions read it (the read cache of `execute_block`).

use std::cell::RefCell;
use std::collections::HashMap;

use yrd_chaincode::keys;
use yrd_chaincode::state::{MemoryState, StateRead, StateScan};
use yrd_chaincode::testkit::{assert_accepted, loan_report, Harness, CHAIN_ID};
use yrd_chaincode::{execute_block, BlockContext};
use yrd_proto::signing;
use yrd_proto::v1;

/// A state that counts the reads of each key.
struct Counting<'a> {
    state: &'a MemoryState,
    reads: RefCell<HashMap<Vec<u8>, usize>>,
}

impl StateRead for Counting<'_> {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        *self.reads.borrow_mut().entry(key.to_vec()).or_default() += 1;
        self.state.get(key)
    }
}

impl StateScan for Counting<'_> {
    fn scan_prefix(&self, prefix: &[u8], limit: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.state.scan_prefix(prefix, limit)
    }

    fn scan_range(&self, start: &[u8], end: &[u8], limit: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.state.scan_range(start, end, limit)
    }
}

#[test]
fn a_block_reads_each_key_of_its_base_once() {
    let mut harness = Harness::new();
    let envelopes: Vec<v1::SignedTransaction> = (0..10)
        .map(|n| {
            let body = harness.body(loan_report(&format!("rpt-{n}"), &harness.core));
            Harness::sign(&body, &[&harness.bank_a.key])
        })
        .collect();
    let verified: Vec<_> = signing::verify_transactions(envelopes, CHAIN_ID)
        .into_iter()
        .map(|verified| verified.expect("a valid envelope"))
        .collect();
    let base = Counting {
        state: &harness.state,
        reads: RefCell::new(HashMap::new()),
    };
    let block = BlockContext {
        chain_id: CHAIN_ID.to_owned(),
        height: 1,
        time_ms: harness.time_ms,
    };
    let outcome = execute_block(&base, &block, &verified).expect("execution");
    for receipt in &outcome.receipts {
        assert_accepted(receipt);
    }
    let reads = base.reads.borrow();
    let signer_key = keys::member_key(&harness.bank_a.key.verifying_key().to_bytes());
    assert_eq!(reads.get(&signer_key), Some(&1), "the signer's key record");
    let member_reads: usize = reads
        .iter()
        .filter(|(key, _)| key.starts_with(b"m/"))
        .map(|(_, count)| count)
        .sum();
    assert!(member_reads >= 1, "the signer's member record is read");
    let repeated: Vec<_> = reads.iter().filter(|(_, count)| **count > 1).collect();
    assert!(
        repeated.is_empty(),
        "keys read more than once: {repeated:?}"
    );
}
