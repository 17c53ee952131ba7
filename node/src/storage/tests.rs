//! Tests of the storage: genesis, commits, refusals, scans, safety data, corruption.

#![allow(clippy::unwrap_used)]

use yrd_chaincode::state::MemoryState;
use yrd_chaincode::testkit::{loan_report, Harness, BLOCK_INTERVAL_MS, CHAIN_ID};
use yrd_chaincode::{execute_block, BlockContext};
use yrd_proto::block::{merkle_root, receipts_root};
use yrd_proto::signing::verify_transactions;

use super::*;
use crate::test_support::TempDir;

// ---------------------------------------------------------------- helpers

/// The genesis `Harness::new` builds its state from.
fn genesis_of(harness: &Harness) -> v1::Genesis {
    let members = [
        (&harness.bank_a, "Bank A"),
        (&harness.bank_b, "Bank B"),
        (&harness.bureau, "Bureau"),
        (&harness.market, "Market"),
        (&harness.market_b, "Market B"),
        (&harness.core, "Core Enterprise"),
        (&harness.supplier, "Supplier"),
        (&harness.supplier_b, "Supplier B"),
        (&harness.regulator, "Regulator"),
    ]
    .iter()
    .map(|(party, name)| party.registration(name))
    .collect();
    v1::Genesis {
        chain_id: CHAIN_ID.to_owned(),
        genesis_time_ms: yrd_chaincode::testkit::GENESIS_TIME_MS,
        validators: harness
            .validators
            .iter()
            .enumerate()
            .map(|(i, key)| v1::ValidatorRecord {
                public_key: key.verifying_key().to_bytes().to_vec(),
                operator_uscc: if i % 2 == 0 {
                    harness.bank_a.id()
                } else {
                    harness.bank_b.id()
                },
            })
            .collect(),
        members,
    }
}

/// A store at genesis and the harness whose members it registers.
pub(crate) fn genesis_store(dir: &TempDir) -> (Store, Harness) {
    let harness = Harness::new();
    let store = Store::open(dir.path()).unwrap();
    store.init_genesis(&genesis_of(&harness)).unwrap();
    (store, harness)
}

fn record_report(harness: &mut Harness, report_id: &str) -> v1::SignedTransaction {
    let body = harness.body(loan_report(report_id, &harness.core));
    Harness::sign(&body, &[&harness.bureau.key])
}

/// A block of `envelopes` on top of the store's tip, executed over `store.state()`.
fn next_block(
    store: &Store,
    harness: &mut Harness,
    envelopes: Vec<v1::SignedTransaction>,
) -> CommitBatch {
    let tip = store.tip();
    let verified: Vec<_> = verify_transactions(envelopes.clone(), CHAIN_ID)
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let height = tip.height + 1;
    let time_ms = harness.time_ms;
    harness.time_ms += BLOCK_INTERVAL_MS;
    let state = store.state();
    assert_eq!(state.tip(), tip);
    let context = BlockContext {
        chain_id: CHAIN_ID.to_owned(),
        height,
        time_ms,
    };
    let outcome = execute_block(&state, &context, &verified).unwrap();
    state.check().unwrap();
    let tx_hashes: Vec<Hash> = verified.iter().map(|v| v.hash).collect();
    block_with(
        store,
        &tip,
        time_ms,
        envelopes,
        outcome.receipts,
        outcome.writes,
        &tx_hashes,
    )
}

/// A block on top of `tip` with the given contents and a state root that chains.
fn block_with(
    store: &Store,
    tip: &ChainTip,
    time_ms: u64,
    transactions: Vec<v1::SignedTransaction>,
    receipts: Vec<v1::Receipt>,
    writes: WriteSet,
    tx_hashes: &[Hash],
) -> CommitBatch {
    let state = store.prepare_state(writes).unwrap();
    let state_root = state.root();
    let header = v1::BlockHeader {
        chain_id: CHAIN_ID.to_owned(),
        height: tip.height + 1,
        parent_hash: tip.block_hash.to_vec(),
        time_ms,
        proposer: vec![7; 32],
        transactions_root: merkle_root(tx_hashes).to_vec(),
        receipts_root: receipts_root(&receipts).to_vec(),
        state_root: state_root.to_vec(),
        validator_set_hash: vec![1; 32],
        next_validator_set_hash: vec![1; 32],
        transaction_count: u32::try_from(transactions.len()).unwrap(),
    };
    let hash = block_hash(&header).unwrap();
    CommitBatch {
        committed: v1::CommittedBlock {
            block: Some(v1::Block {
                header: Some(header.clone()),
                transactions,
                transaction_refs: Vec::new(),
            }),
            receipts,
            certificate: Some(v1::CommitCertificate {
                height: header.height,
                round: 0,
                block_hash: hash.to_vec(),
                signatures: Vec::new(),
            }),
        },
        block_hash: hash,
        state,
        next_validators: None,
    }
}

/// A block without transactions whose writes are `writes`.
fn writes_block(store: &Store, writes: WriteSet) -> CommitBatch {
    let tip = store.tip();
    block_with(
        store,
        &tip,
        tip.time_ms + 1,
        Vec::new(),
        Vec::new(),
        writes,
        &[],
    )
}

fn everything(state: &impl StateScan) -> Vec<(Vec<u8>, Vec<u8>)> {
    state.scan_prefix(b"", usize::MAX)
}

fn memory_entries(state: &MemoryState) -> Vec<(Vec<u8>, Vec<u8>)> {
    state.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

// ---------------------------------------------------------------- genesis

#[test]
fn genesis_is_initialised_once_and_restored_on_reopen() {
    let dir = TempDir::new("storage-genesis");
    let harness = Harness::new();
    let genesis = genesis_of(&harness);
    let writes = genesis_writes(&genesis).unwrap();
    let expected_tip = {
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.tip(), ChainTip::EMPTY);
        assert_eq!(store.genesis().unwrap(), None);
        assert_eq!(store.chain_id(), None);
        store.init_genesis(&genesis).unwrap();
        let tip = store.tip();
        assert_eq!(
            (tip.height, tip.block_hash, tip.time_ms),
            (0, [0; 32], genesis.genesis_time_ms)
        );
        // The state root is the tree's: every genesis key is proven against it.
        for (key, value) in &writes {
            let (stored, proof) = store.tree_reader().unwrap().prove(key, 0).unwrap();
            assert_eq!(&stored, value);
            yrd_verify::verify_state_proof(&tip.state_root, key, value.as_deref(), &proof).unwrap();
        }
        tip
    };
    {
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.tip(), expected_tip);
        assert_eq!(store.genesis().unwrap(), Some(genesis.clone()));
        // The stored state is the genesis state, which is also the harness's.
        assert_eq!(everything(&store.state()), memory_entries(&harness.state));
        // A second init with the same genesis is a no-op.
        store.init_genesis(&genesis).unwrap();
        assert_eq!(store.tip(), expected_tip);
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.tip(), expected_tip);
    assert_eq!(store.chain_id().as_deref(), Some(CHAIN_ID));
    assert_eq!(store.genesis().unwrap(), Some(genesis.clone()));
    store.init_genesis(&genesis).unwrap();
    assert_eq!(everything(&store.state()), memory_entries(&harness.state));
}

#[test]
fn another_genesis_is_refused() {
    let dir = TempDir::new("storage-mismatch");
    let (store, harness) = genesis_store(&dir);
    let mut other = genesis_of(&harness);
    other.genesis_time_ms += 1;
    assert!(matches!(
        store.init_genesis(&other),
        Err(StoreError::GenesisMismatch { .. })
    ));
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    let error = store.init_genesis(&other).unwrap_err();
    let stored = hex::encode(sha256(&genesis_of(&harness).encode_to_vec()));
    let given = hex::encode(sha256(&other.encode_to_vec()));
    assert_eq!(error, StoreError::GenesisMismatch { stored, given });
}

#[test]
fn an_invalid_genesis_writes_nothing() {
    let dir = TempDir::new("storage-invalid-genesis");
    let harness = Harness::new();
    let mut genesis = genesis_of(&harness);
    genesis.validators.truncate(3);
    let store = Store::open(dir.path()).unwrap();
    assert!(matches!(
        store.init_genesis(&genesis),
        Err(StoreError::Genesis(_))
    ));
    assert_eq!(store.tip(), ChainTip::EMPTY);
    assert_eq!(store.genesis().unwrap(), None);
    assert!(everything(&store.state()).is_empty());
    // Preparing a block's state needs a genesis.
    assert_eq!(
        store.prepare_state(WriteSet::new()).unwrap_err(),
        StoreError::NoGenesis
    );
}

// ---------------------------------------------------------------- commits

#[test]
fn proofs_at_every_height_verify_against_that_heights_root() {
    let dir = TempDir::new("storage-proofs");
    let (store, _harness) = genesis_store(&dir);
    // A key with a leaf of its own: a history entry.
    let key = yrd_chaincode::keys::history_entry(b"c/r/proof-key", 0);
    let mut roots = vec![store.tip().state_root];
    for value in [Some(b"one".to_vec()), Some(b"two".to_vec()), None] {
        let writes = WriteSet::from([(key.clone(), value)]);
        store.commit_block(writes_block(&store, writes)).unwrap();
        roots.push(store.tip().state_root);
    }
    let expected: [Option<&[u8]>; 4] = [None, Some(b"one"), Some(b"two"), None];
    // Deleting the only key written restores the genesis tree exactly.
    assert_eq!(roots[0], roots[3]);
    for (height, want) in expected.iter().enumerate() {
        let (value, proof) = store.state_proof(&key, height as u64).unwrap();
        assert_eq!(value.as_deref(), *want, "height {height}");
        yrd_verify::verify_state_proof(&roots[height], &key, *want, &proof).unwrap();
        // The proof of one height does not verify against a root where the value differs.
        for (other, root) in roots.iter().enumerate() {
            if expected[other] != *want {
                assert!(yrd_verify::verify_state_proof(root, &key, *want, &proof).is_err());
            }
        }
    }
    assert_eq!(
        store.state_proof(&key, 4).unwrap_err(),
        StoreError::NotCommitted { height: 4, tip: 3 }
    );
    let header = store.certified_header(2).unwrap();
    let decoded = v1::BlockHeader::decode(header.header.as_slice()).unwrap();
    assert_eq!(decoded.state_root, roots[2].to_vec());
}

#[test]
fn a_block_puts_a_records_history_entry_in_the_tree_and_not_the_record() {
    let dir = TempDir::new("storage-tree-keys");
    let (store, harness) = genesis_store(&dir);
    // Genesis puts every authenticated key in the tree, records included.
    let member = harness
        .state
        .iter()
        .map(|(key, _)| key.clone())
        .find(|key| key.starts_with(b"m/"))
        .unwrap();
    assert!(store.state_proof(&member, 0).unwrap().0.is_some());
    let record = b"c/r/tree-key".to_vec();
    let entry = yrd_chaincode::keys::history_entry(&record, 0);
    let index = b"c/s/subject/tree-key".to_vec();
    let writes = WriteSet::from([
        (record.clone(), Some(b"record".to_vec())),
        (entry.clone(), Some(b"entry".to_vec())),
        (index.clone(), Some(Vec::new())),
    ]);
    store.commit_block(writes_block(&store, writes)).unwrap();
    // The plain state holds all three; the tree the entry and the index only.
    let state = store.state();
    assert_eq!(state.get(&record), Some(b"record".to_vec()));
    assert_eq!(store.state_proof(&record, 1).unwrap().0, None);
    assert_eq!(
        store.state_proof(&entry, 1).unwrap().0,
        Some(b"entry".to_vec())
    );
    assert_eq!(store.state_proof(&index, 1).unwrap().0, Some(Vec::new()));
    // A genesis record keeps its leaf until a block writes it, and after (stale, ignored by
    // verifiers once the record has a version).
    assert!(store.state_proof(&member, 1).unwrap().0.is_some());
}

#[test]
fn batch_and_key_by_key_tree_updates_agree() {
    // A block of puts only takes the batch insertion; a delete (even of an absent key) sends the
    // block key by key. Both must give the same root, block after block.
    let fast_dir = TempDir::new("storage-tree-fast");
    let slow_dir = TempDir::new("storage-tree-slow");
    let (fast, _) = genesis_store(&fast_dir);
    let (slow, _) = genesis_store(&slow_dir);
    for block in 0..4u32 {
        let puts: WriteSet = (0..300u32)
            .map(|i| {
                let key = format!("r/r/AR-{}", i * 7 + block * 100).into_bytes();
                (key, Some(vec![u8::try_from(block).unwrap(); 50]))
            })
            .collect();
        let mut with_delete = puts.clone();
        with_delete.insert(b"m/absent".to_vec(), None);
        fast.commit_block(writes_block(&fast, puts)).unwrap();
        slow.commit_block(writes_block(&slow, with_delete)).unwrap();
        assert_eq!(
            fast.tip().state_root,
            slow.tip().state_root,
            "block {block}"
        );
    }
}

#[test]
fn a_state_update_prepared_on_another_tip_is_refused() {
    let dir = TempDir::new("storage-stale-update");
    let (store, _harness) = genesis_store(&dir);
    let stale = writes_block(&store, WriteSet::from([(b"m/x".to_vec(), Some(vec![1]))]));
    store
        .commit_block(writes_block(&store, WriteSet::new()))
        .unwrap();
    let tip = store.tip();
    // Re-aim the stale block at the new tip: its state update still names the old one.
    let mut moved = stale;
    let header = header_mut(&mut moved);
    header.height = tip.height + 1;
    header.parent_hash = tip.block_hash.to_vec();
    header.time_ms = tip.time_ms + 1;
    moved.block_hash = block_hash(header_mut(&mut moved)).unwrap();
    moved.committed.certificate = None;
    assert!(matches!(
        store.commit_block(moved),
        Err(StoreError::InvalidBlock { height: 2, .. })
    ));
    assert_eq!(store.tip(), tip);
}

#[test]
fn a_state_tree_that_disagrees_with_the_tip_is_refused_at_open() {
    let dir = TempDir::new("storage-tree-root");
    {
        let (store, _harness) = genesis_store(&dir);
        let writes = WriteSet::from([(b"m/y".to_vec(), Some(vec![2]))]);
        store.commit_block(writes_block(&store, writes)).unwrap();
        // Wipe the tree nodes: the tip's root can no longer be read back.
        let nodes = store.cf(tree::CF_JMT_NODES).unwrap();
        let keys: Vec<Box<[u8]>> = store
            .db
            .iterator_cf(nodes, IteratorMode::Start)
            .map(|item| item.unwrap().0)
            .collect();
        for key in keys {
            store.db.delete_cf(nodes, key).unwrap();
        }
    }
    let error = Store::open(dir.path()).unwrap_err();
    assert!(matches!(error, StoreError::Corrupt(_)), "{error}");
}

#[test]
fn consecutive_blocks_are_committed_and_read_back() {
    let dir = TempDir::new("storage-commit");
    let (store, mut harness) = genesis_store(&dir);
    let mut mirror = harness.state.clone();

    let first = vec![
        record_report(&mut harness, "rpt-1"),
        record_report(&mut harness, "rpt-2"),
    ];
    let batch1 = next_block(&store, &mut harness, first.clone());
    let receipts1 = batch1.committed.receipts.clone();
    assert!(receipts1.iter().all(|r| r.accepted), "{receipts1:?}");
    mirror.apply(batch1.state.writes());
    store.commit_block(batch1.clone()).unwrap();

    let second = vec![record_report(&mut harness, "rpt-3")];
    let batch2 = next_block(&store, &mut harness, second.clone());
    mirror.apply(batch2.state.writes());
    store.commit_block(batch2.clone()).unwrap();

    let check = |store: &Store| {
        let tip = store.tip();
        assert_eq!(tip.height, 2);
        assert_eq!(tip.block_hash, batch2.block_hash);
        assert_eq!(tip.state_root, batch2.state.root());
        let header2 = batch2.committed.block.as_ref().unwrap().header.as_ref();
        assert_eq!(tip.time_ms, header2.unwrap().time_ms);

        assert_eq!(store.block(0).unwrap(), None);
        assert_eq!(store.block(1).unwrap(), Some(batch1.committed.clone()));
        assert_eq!(store.block(2).unwrap(), Some(batch2.committed.clone()));
        assert_eq!(store.block(3).unwrap(), None);
        assert_eq!(
            store.block_bytes(2).unwrap(),
            Some(batch2.committed.encode_to_vec())
        );
        assert_eq!(store.height_of_block(&batch1.block_hash).unwrap(), Some(1));
        assert_eq!(store.height_of_block(&batch2.block_hash).unwrap(), Some(2));
        assert_eq!(store.height_of_block(&[9; 32]).unwrap(), None);

        for (index, envelope) in first.iter().enumerate() {
            let hash = transaction_hash(CHAIN_ID, &envelope.body).unwrap();
            assert_eq!(
                store.transaction_location(&hash).unwrap(),
                Some(TxLocation {
                    height: 1,
                    index: u32::try_from(index).unwrap()
                })
            );
        }
        let hash = transaction_hash(CHAIN_ID, &second[0].body).unwrap();
        assert_eq!(
            store.transaction_location(&hash).unwrap(),
            Some(TxLocation {
                height: 2,
                index: 0
            })
        );
        assert_eq!(store.transaction_location(&[3; 32]).unwrap(), None);

        let state = store.state();
        // The plain state holds everything but the history entries; those read back from the
        // tree's values.
        let (entries, plain): (Vec<_>, Vec<_>) = memory_entries(&mirror)
            .into_iter()
            .partition(|(key, _)| yrd_chaincode::keys::is_history_entry(key));
        assert_eq!(everything(&state), plain);
        assert!(entries.len() >= 3, "at least one version of each report");
        for (key, value) in &entries {
            assert_eq!(state.get(key).as_ref(), Some(value));
            assert_eq!(store.get(CF_STATE, key).unwrap(), None);
        }
        let report = yrd_chaincode::keys::credit_report("rpt-3");
        assert!(state.get(&report).is_some());
        state.check().unwrap();
    };
    check(&store);
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    check(&store);

    // The next block executes over the reopened state.
    let third = vec![record_report(&mut harness, "rpt-4")];
    let batch3 = next_block(&store, &mut harness, third);
    assert!(batch3.committed.receipts[0].accepted);
    store.commit_block(batch3).unwrap();
    assert_eq!(store.tip().height, 3);
}

#[test]
fn a_block_that_does_not_extend_the_tip_writes_nothing() {
    let dir = TempDir::new("storage-refuse");
    let (store, mut harness) = genesis_store(&dir);
    let envelope = record_report(&mut harness, "rpt-1");
    let tx_hash = transaction_hash(CHAIN_ID, &envelope.body).unwrap();
    let good = next_block(&store, &mut harness, vec![envelope]);
    let genesis_tip = store.tip();
    let genesis_state = everything(&store.state());

    let assert_unchanged = |store: &Store| {
        assert_eq!(store.tip(), genesis_tip);
        assert_eq!(store.block(1).unwrap(), None);
        assert_eq!(store.block(2).unwrap(), None);
        assert_eq!(store.transaction_location(&tx_hash).unwrap(), None);
        assert_eq!(store.height_of_block(&good.block_hash).unwrap(), None);
        assert_eq!(everything(&store.state()), genesis_state);
    };

    let mut wrong_height = good.clone();
    header_mut(&mut wrong_height).height = 2;
    assert_eq!(
        store.commit_block(wrong_height),
        Err(StoreError::NotNext {
            expected_height: 1,
            found_height: 2
        })
    );
    assert_unchanged(&store);

    let mut wrong_parent = good.clone();
    header_mut(&mut wrong_parent).parent_hash = vec![5; 32];
    assert_eq!(
        store.commit_block(wrong_parent),
        Err(StoreError::ParentMismatch {
            expected: hex::encode([0u8; 32]),
            found: hex::encode([5u8; 32]),
        })
    );
    assert_unchanged(&store);

    let mut wrong_hash = good.clone();
    wrong_hash.block_hash = [6; 32];
    assert!(matches!(
        store.commit_block(wrong_hash),
        Err(StoreError::InvalidBlock { height: 1, .. })
    ));
    assert_unchanged(&store);

    let mut wrong_root = good.clone();
    header_mut(&mut wrong_root).state_root = vec![8; 32];
    wrong_root.block_hash = block_hash(header_mut(&mut wrong_root)).unwrap();
    assert!(matches!(
        store.commit_block(wrong_root),
        Err(StoreError::StateRootMismatch { .. })
    ));
    assert_unchanged(&store);

    let mut wrong_receipt = good.clone();
    wrong_receipt.committed.receipts[0].tx_hash = vec![4; 32];
    assert!(matches!(
        store.commit_block(wrong_receipt),
        Err(StoreError::InvalidBlock { .. })
    ));
    let mut missing_receipt = good.clone();
    missing_receipt.committed.receipts.clear();
    assert!(matches!(
        store.commit_block(missing_receipt),
        Err(StoreError::InvalidBlock { .. })
    ));
    assert_unchanged(&store);

    // A proposal's references in place of transactions are never stored.
    let mut by_reference = good.clone();
    if let Some(block) = by_reference.committed.block.as_mut() {
        block.transaction_refs = vec![v1::TransactionRef {
            hash: vec![1; 32],
            envelope_hash: vec![2; 32],
        }];
    }
    assert!(matches!(
        store.commit_block(by_reference),
        Err(StoreError::InvalidBlock { height: 1, ref problem }) if problem.contains("references")
    ));
    assert_unchanged(&store);

    store.commit_block(good.clone()).unwrap();
    assert_eq!(store.tip().height, 1);
    // The same block again is not next.
    assert_eq!(
        store.commit_block(good),
        Err(StoreError::NotNext {
            expected_height: 2,
            found_height: 1
        })
    );
    assert_eq!(store.tip().height, 1);
}

fn header_mut(batch: &mut CommitBatch) -> &mut v1::BlockHeader {
    batch
        .committed
        .block
        .as_mut()
        .unwrap()
        .header
        .as_mut()
        .unwrap()
}

#[test]
fn an_accepted_inclusion_wins_the_transaction_index() {
    let dir = TempDir::new("storage-tx-index");
    let (store, mut harness) = genesis_store(&dir);
    let envelope = record_report(&mut harness, "rpt-1");
    let batch1 = next_block(&store, &mut harness, vec![envelope.clone()]);
    assert!(batch1.committed.receipts[0].accepted);
    store.commit_block(batch1).unwrap();
    // The same envelope again is rejected as a replay, and the index keeps the first inclusion.
    let batch2 = next_block(&store, &mut harness, vec![envelope.clone()]);
    assert!(!batch2.committed.receipts[0].accepted);
    store.commit_block(batch2).unwrap();
    let hash = transaction_hash(CHAIN_ID, &envelope.body).unwrap();
    assert_eq!(
        store.transaction_location(&hash).unwrap(),
        Some(TxLocation {
            height: 1,
            index: 0
        })
    );
}

// ---------------------------------------------------------------- state, sync ranges

#[test]
fn state_scans_are_ordered_limited_and_consistent() {
    let dir = TempDir::new("storage-scan");
    let (store, _harness) = genesis_store(&dir);
    let put = |key: &[u8], value: &[u8]| (key.to_vec(), Some(value.to_vec()));
    let writes = WriteSet::from([
        put(b"t/3", b"three"),
        put(b"t/1", b"one"),
        put(b"t/20", b"twenty"),
        put(b"t/2", b"two"),
        put(b"t0", b"outside"),
        put(b"s/9", b"outside"),
        put(&[0xff, 0xff, 1], b"high"),
        put(&[0xff, 0xff], b"high-prefix"),
    ]);
    store.commit_block(writes_block(&store, writes)).unwrap();

    let before = store.state();
    let keys = |entries: Vec<(Vec<u8>, Vec<u8>)>| -> Vec<Vec<u8>> {
        entries.into_iter().map(|(k, _)| k).collect()
    };
    assert_eq!(
        keys(before.scan_prefix(b"t/", 10)),
        vec![
            b"t/1".to_vec(),
            b"t/2".to_vec(),
            b"t/20".to_vec(),
            b"t/3".to_vec()
        ]
    );
    assert_eq!(
        before.scan_prefix(b"t/", 2),
        vec![
            (b"t/1".to_vec(), b"one".to_vec()),
            (b"t/2".to_vec(), b"two".to_vec())
        ]
    );
    assert!(before.scan_prefix(b"t/", 0).is_empty());
    assert!(before.scan_prefix(b"u/", 10).is_empty());
    assert_eq!(
        keys(before.scan_prefix(&[0xff, 0xff], 10)),
        vec![vec![0xff, 0xff], vec![0xff, 0xff, 1]]
    );
    assert_eq!(before.get(b"t/20"), Some(b"twenty".to_vec()));

    // A later commit deletes and changes keys; the old snapshot does not see it.
    let writes = WriteSet::from([(b"t/2".to_vec(), None), put(b"t/1", b"uno")]);
    store.commit_block(writes_block(&store, writes)).unwrap();
    assert_eq!(before.get(b"t/2"), Some(b"two".to_vec()));
    assert_eq!(before.tip().height, 1);
    let after = store.state();
    assert_eq!(after.tip().height, 2);
    assert_eq!(after.get(b"t/2"), None);
    assert_eq!(
        after.scan_prefix(b"t/", 2),
        vec![
            (b"t/1".to_vec(), b"uno".to_vec()),
            (b"t/20".to_vec(), b"twenty".to_vec())
        ]
    );
    before.check().unwrap();
    after.check().unwrap();
}

#[test]
fn block_ranges_are_bounded_by_count_and_bytes() {
    let dir = TempDir::new("storage-ranges");
    let (store, _harness) = genesis_store(&dir);
    let mut sizes = Vec::new();
    for i in 0..5u8 {
        let writes = WriteSet::from([(vec![b'k', i], Some(vec![i; 10]))]);
        store.commit_block(writes_block(&store, writes)).unwrap();
        sizes.push(store.block_bytes(u64::from(i) + 1).unwrap().unwrap().len());
    }
    let all = store.blocks_bytes_from(0, 100, usize::MAX).unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(all[0], store.block_bytes(1).unwrap().unwrap());
    assert_eq!(
        store.blocks_bytes_from(4, 100, usize::MAX).unwrap().len(),
        2
    );
    assert_eq!(store.blocks_bytes_from(2, 2, usize::MAX).unwrap().len(), 2);
    assert!(store
        .blocks_bytes_from(6, 100, usize::MAX)
        .unwrap()
        .is_empty());
    // Always at least one block, then only whole blocks within the byte budget.
    assert_eq!(store.blocks_bytes_from(1, 100, 1).unwrap().len(), 1);
    let two = sizes[0] + sizes[1];
    assert_eq!(store.blocks_bytes_from(1, 100, two).unwrap().len(), 2);
    assert_eq!(
        store
            .blocks_bytes_from(1, 100, two + sizes[2] - 1)
            .unwrap()
            .len(),
        2
    );
}

// ---------------------------------------------------------------- safety data

#[test]
fn safety_data_survives_reopen() {
    let dir = TempDir::new("storage-safety");
    {
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.load_safety_data().unwrap(), None);
        store.save_safety_data(b"first").unwrap();
        assert_eq!(store.load_safety_data().unwrap(), Some(b"first".to_vec()));
        store.save_safety_data(&[7; 143]).unwrap();
        let too_large = vec![0; SAFETY_DATA_BYTES_MAX + 1];
        assert!(matches!(
            store.save_safety_data(&too_large),
            Err(StoreError::TooLarge { .. })
        ));
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.load_safety_data().unwrap(), Some(vec![7; 143]));
}

// ---------------------------------------------------------------- corruption

#[test]
fn a_corrupt_tip_is_reported_on_open() {
    let dir = TempDir::new("storage-corrupt-tip");
    {
        let (store, _harness) = genesis_store(&dir);
        store.put_raw(CF_META, META_TIP, b"garbage");
    }
    let error = Store::open(dir.path()).unwrap_err();
    assert!(matches!(error, StoreError::Corrupt(_)), "{error}");
}

#[test]
fn a_missing_meta_record_is_reported_on_open() {
    let dir = TempDir::new("storage-missing-meta");
    {
        let (store, _harness) = genesis_store(&dir);
        store
            .db
            .delete_cf(store.cf(CF_META).unwrap(), META_GENESIS_SHA256)
            .unwrap();
    }
    let error = Store::open(dir.path()).unwrap_err();
    assert!(matches!(error, StoreError::Corrupt(_)), "{error}");
}

#[test]
fn an_unknown_format_is_refused() {
    let dir = TempDir::new("storage-format");
    {
        let (store, _harness) = genesis_store(&dir);
        store.put_raw(CF_META, META_SCHEMA, &1u32.to_be_bytes());
    }
    assert_eq!(
        Store::open(dir.path()).unwrap_err(),
        StoreError::UnsupportedFormat {
            found: 1,
            supported: STORAGE_FORMAT_VERSION
        }
    );
}

#[test]
fn a_format_5_database_is_upgraded_in_place_and_reads_the_same() {
    let dir = TempDir::new("storage-upgrade");
    let (entries, tip) = {
        let (store, mut harness) = genesis_store(&dir);
        let envelope = record_report(&mut harness, "rpt-1");
        let batch = next_block(&store, &mut harness, vec![envelope]);
        assert!(batch.committed.receipts[0].accepted);
        let entries: Vec<(Vec<u8>, Vec<u8>)> = batch
            .state
            .writes()
            .iter()
            .filter(|(key, _)| yrd_chaincode::keys::is_history_entry(key))
            .map(|(key, value)| (key.clone(), value.clone().expect("a put")))
            .collect();
        assert!(!entries.is_empty());
        store.commit_block(batch).unwrap();
        // What format 5 wrote: the same, plus each history entry in the plain state, and a
        // replay entry by hash beside the one by expiry.
        for (key, value) in &entries {
            store.put_raw(CF_STATE, key, value);
        }
        store.put_raw(CF_STATE, &[b"x/h/".as_slice(), &[7; 32]].concat(), &[0; 8]);
        store.put_raw(CF_META, META_SCHEMA, &5u32.to_be_bytes());
        (entries, store.tip())
    };
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.tip(), tip);
    assert_eq!(
        store.get(CF_META, META_SCHEMA).unwrap(),
        Some(STORAGE_FORMAT_VERSION.to_be_bytes().to_vec())
    );
    let state = store.state();
    for (key, value) in &entries {
        assert_eq!(store.get(CF_STATE, key).unwrap(), None, "copy dropped");
        assert_eq!(state.get(key).as_ref(), Some(value), "read from the tree");
    }
    assert!(state
        .scan_prefix(yrd_chaincode::keys::HISTORY_ENTRY_PREFIX, 10)
        .is_empty());
    assert!(state
        .scan_prefix(yrd_chaincode::keys::APPLIED_BY_HASH_PREFIX, 10)
        .is_empty());
    assert_eq!(
        state
            .scan_prefix(yrd_chaincode::keys::APPLIED_BY_EXPIRY_PREFIX, 10)
            .len(),
        1,
        "the replay entry by expiry is kept"
    );
    state.check().unwrap();
    drop(state);
    drop(store);
    // Opening again finds the current format and changes nothing.
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.tip(), tip);
}

#[test]
fn a_format_6_database_of_borsh_tree_nodes_is_read_and_extended() {
    let dir = TempDir::new("storage-upgrade-6");
    let key = yrd_chaincode::keys::history_entry(b"c/r/format-6", 0);
    let (tip, borsh_nodes) = {
        let (store, _harness) = genesis_store(&dir);
        let writes = WriteSet::from([(key.clone(), Some(b"six".to_vec()))]);
        store.commit_block(writes_block(&store, writes)).unwrap();
        // What format 6 wrote: every node in borsh.
        let nodes = store.cf(tree::CF_JMT_NODES).unwrap();
        let stored: Vec<tree::IteratorItem> =
            store.db.iterator_cf(nodes, IteratorMode::Start).collect();
        let mut compact = 0;
        for item in &stored {
            let (node_key, bytes) = item.as_ref().unwrap();
            let node = node_codec::decode_node(bytes).unwrap();
            let borsh = borsh::to_vec(&node).unwrap();
            compact += usize::from(borsh.as_slice() != &bytes[..]);
            store.put_raw(tree::CF_JMT_NODES, node_key, &borsh);
        }
        assert!(compact > 0, "the internal nodes were written compact");
        store.put_raw(CF_META, META_SCHEMA, &6u32.to_be_bytes());
        (store.tip(), stored.len())
    };
    // Opening checks the tip's root against the borsh nodes, and records format 7 only.
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.tip(), tip);
    assert_eq!(
        store.get(CF_META, META_SCHEMA).unwrap(),
        Some(STORAGE_FORMAT_VERSION.to_be_bytes().to_vec())
    );
    let (value, proof) = store.state_proof(&key, 1).unwrap();
    assert_eq!(value.as_deref(), Some(&b"six"[..]));
    yrd_verify::verify_state_proof(&tip.state_root, &key, Some(b"six"), &proof).unwrap();
    // A block on top reads the borsh nodes and writes compact ones beside them.
    let next = yrd_chaincode::keys::history_entry(b"c/r/format-6", 1);
    let writes = WriteSet::from([(next.clone(), Some(b"seven".to_vec()))]);
    store.commit_block(writes_block(&store, writes)).unwrap();
    let tip = store.tip();
    let nodes = store.cf(tree::CF_JMT_NODES).unwrap();
    assert!(store.db.iterator_cf(nodes, IteratorMode::Start).count() > borsh_nodes);
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.tip(), tip);
    for (key, value) in [(&key, &b"six"[..]), (&next, &b"seven"[..])] {
        let (stored, proof) = store.state_proof(key, 2).unwrap();
        assert_eq!(stored.as_deref(), Some(value));
        yrd_verify::verify_state_proof(&tip.state_root, key, Some(value), &proof).unwrap();
    }
}

#[test]
fn a_snapshot_reads_the_history_entries_of_its_own_height_only() {
    let dir = TempDir::new("storage-history-snapshot");
    let (store, _harness) = genesis_store(&dir);
    let entry = yrd_chaincode::keys::history_entry(b"c/r/snap", 0);
    let before = store.state();
    let writes = WriteSet::from([(entry.clone(), Some(b"version 0".to_vec()))]);
    store.commit_block(writes_block(&store, writes)).unwrap();
    let after = store.state();
    assert_eq!(before.get(&entry), None);
    assert_eq!(after.get(&entry), Some(b"version 0".to_vec()));
    assert_eq!(
        after.get(&yrd_chaincode::keys::history_entry(b"c/r/snap", 1)),
        None
    );
    before.check().unwrap();
    after.check().unwrap();
}

#[test]
fn corrupt_blocks_and_index_entries_are_reported() {
    let dir = TempDir::new("storage-corrupt-block");
    {
        let (store, mut harness) = genesis_store(&dir);
        let envelope = record_report(&mut harness, "rpt-1");
        let batch = next_block(&store, &mut harness, vec![envelope]);
        let block_hash = batch.block_hash;
        store.commit_block(batch).unwrap();
        store.put_raw(CF_TRANSACTIONS, &[1; 32], b"short");
        store.put_raw(CF_BLOCK_HASHES, &[2; 32], b"short");
        assert!(matches!(
            store.transaction_location(&[1; 32]),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            store.height_of_block(&[2; 32]),
            Err(StoreError::Corrupt(_))
        ));
        // A valid block stored under the wrong height is caught too.
        let bytes = store.block_bytes(1).unwrap().unwrap();
        store.put_raw(CF_BLOCKS, &7u64.to_be_bytes(), &bytes);
        assert!(matches!(store.block(7), Err(StoreError::Corrupt(_))));
        store.put_raw(CF_BLOCKS, &1u64.to_be_bytes(), &[0xff; 40]);
        assert!(matches!(store.block(1), Err(StoreError::Corrupt(_))));
        assert!(matches!(store.block_bytes(1), Err(StoreError::Corrupt(_))));
        assert!(matches!(
            store.blocks_bytes_from(1, 10, usize::MAX),
            Err(StoreError::Corrupt(_))
        ));
        assert_eq!(store.height_of_block(&block_hash).unwrap(), Some(1));
    }
    // The tip's block no longer decodes: the store refuses to open.
    let error = Store::open(dir.path()).unwrap_err();
    assert!(matches!(error, StoreError::Corrupt(_)), "{error}");
}

// ---------------------------------------------------------------- formats

#[test]
fn tip_record_bytes_are_pinned() {
    let tip = ChainTip {
        height: 0x0102_0304_0506_0708,
        block_hash: [0xaa; 32],
        state_root: [0xbb; 32],
        time_ms: 1_767_225_600_000,
    };
    let encoded = tip.encode();
    let expected = format!(
        "01{}{}{}{}",
        "0102030405060708",
        "aa".repeat(32),
        "bb".repeat(32),
        "0000019b76daa800"
    );
    assert_eq!(hex::encode(encoded), expected);
    assert_eq!(ChainTip::decode(&encoded).unwrap(), tip);
    let mut other_version = encoded;
    other_version[0] = 2;
    assert!(matches!(
        ChainTip::decode(&other_version),
        Err(StoreError::Corrupt(_))
    ));
    assert_eq!(
        hex::encode(
            TxLocation {
                height: 5,
                index: 3
            }
            .encode()
        ),
        "000000000000000500000003"
    );
}

#[test]
fn prefix_upper_bounds() {
    assert_eq!(prefix_upper_bound(b"t/"), Some(b"t0".to_vec()));
    assert_eq!(prefix_upper_bound(&[1, 0xff]), Some(vec![2]));
    assert_eq!(prefix_upper_bound(&[0xff, 0xff]), None);
    assert_eq!(prefix_upper_bound(b""), None);
}

#[test]
fn consensus_log_keeps_order_per_height_survives_reopen_and_is_pruned() {
    let dir = TempDir::new("storage-consensus-log");
    {
        let (store, _) = genesis_store(&dir);
        store.log_consensus_message(5, 0, b"first").expect("log");
        store.log_consensus_message(5, 1, b"second").expect("log");
        store
            .log_consensus_message(6, 0, b"next height")
            .expect("log");
        store
            .save_safety_data(b"synced after the log")
            .expect("safety");
        assert!(store
            .log_consensus_message(5, CONSENSUS_LOG_MESSAGES_MAX, b"x")
            .is_err());
    }
    let store = Store::open(dir.path()).expect("reopen");
    assert_eq!(
        store.consensus_messages(5).expect("read"),
        vec![b"first".to_vec(), b"second".to_vec()]
    );
    assert_eq!(
        store.consensus_messages(6).expect("read"),
        vec![b"next height".to_vec()]
    );
    // Committing height 5 forgets the log of every height up to 5, not that of 6.
    for height in 1..=5u8 {
        let writes = WriteSet::from([(vec![b't', b'/', height], Some(vec![height]))]);
        store.commit_block(writes_block(&store, writes)).unwrap();
    }
    assert!(store.consensus_messages(5).expect("read").is_empty());
    assert_eq!(store.consensus_messages(6).expect("read").len(), 1);
    assert_eq!(
        store.load_safety_data().expect("safety").as_deref(),
        Some(&b"synced after the log"[..])
    );
}

#[test]
fn a_commit_forgets_its_heights_consensus_log_and_is_durable_once_synced() {
    let dir = TempDir::new("storage-durable");
    let (store, _harness) = genesis_store(&dir);
    assert_eq!(store.durable_height(), 0);
    store.log_consensus_message(1, 0, b"proposal").expect("log");
    store
        .log_consensus_message(2, 0, b"early vote")
        .expect("log");
    let writes = WriteSet::from([(b"c/r/durable".to_vec(), Some(b"v".to_vec()))]);
    store.commit_block(writes_block(&store, writes)).unwrap();
    assert_eq!(store.tip().height, 1);
    // Written, readable, not yet known to be durable.
    assert_eq!(store.durable_height(), 0);
    assert!(store.consensus_messages(1).expect("read").is_empty());
    assert_eq!(store.consensus_messages(2).expect("read").len(), 1);
    assert_eq!(store.sync_wal().expect("sync"), 1);
    assert_eq!(store.durable_height(), 1);

    // A synced safety-data write makes the commits before it durable as well.
    let writes = WriteSet::from([(b"c/r/durable".to_vec(), Some(b"w".to_vec()))]);
    store.commit_block(writes_block(&store, writes)).unwrap();
    assert_eq!(store.durable_height(), 1);
    store.save_safety_data(b"safety").expect("safety");
    assert_eq!(store.durable_height(), 2);
    drop(store);
    let store = Store::open(dir.path()).expect("reopen");
    assert_eq!(store.durable_height(), 2);
    assert!(store.consensus_messages(2).expect("read").is_empty());
}

#[test]
fn the_wal_syncer_announces_a_commit_once_it_is_durable() {
    use crate::wal_sync::WalSyncer;
    use tokio::sync::{broadcast, mpsc};

    let dir = TempDir::new("storage-wal-syncer");
    let (store, _harness) = genesis_store(&dir);
    let store = std::sync::Arc::new(store);
    let (commits, mut notices) = broadcast::channel(8);
    let (failed, mut failures) = mpsc::channel(1);
    let syncer = WalSyncer::start(std::sync::Arc::clone(&store), commits, failed).unwrap();
    for value in [b"one", b"two"] {
        let writes = WriteSet::from([(b"c/r/synced".to_vec(), Some(value.to_vec()))]);
        store.commit_block(writes_block(&store, writes)).unwrap();
        syncer.committed();
    }
    // Stopping the syncer waits for the syncs it was asked for.
    drop(syncer);
    assert_eq!(store.durable_height(), 2);
    let mut last = 0;
    while let Ok(height) = notices.try_recv() {
        assert!(height >= last, "notices never move back");
        last = height;
    }
    assert_eq!(last, 2, "the last notice names the last commit");
    assert!(failures.try_recv().is_err(), "no failure expected");
}

#[test]
fn a_staged_block_reads_scans_and_roots_as_if_written() {
    let dir = TempDir::new("storage-staged");
    let (store, _harness) = genesis_store(&dir);
    let put = |key: &str, value: &str| (key.as_bytes().to_vec(), Some(value.as_bytes().to_vec()));
    let first = WriteSet::from([
        put("t/a/1", "one"),
        put("t/a/2", "two"),
        put("t/a/3", "three"),
        put("t/b/1", "b-one"),
    ]);
    store.commit_block(writes_block(&store, first)).unwrap();
    let staged_writes = WriteSet::from([
        put("t/a/2", "two, amended"),
        (b"t/a/3".to_vec(), None),
        put("t/a/4", "four"),
        put("t/a/0", "zero"),
        (b"t/b/1".to_vec(), None),
    ]);
    let staged = store
        .stage(writes_block(&store, staged_writes.clone()))
        .unwrap();
    assert_eq!(store.tip().height, 1, "staging writes nothing");
    assert_eq!(staged.tip().height, 2);

    // What the view shows is the committed state with the staged writes applied.
    let mut expected = MemoryState::new();
    expected.apply(
        &everything(&store.state())
            .into_iter()
            .map(|(k, v)| (k, Some(v)))
            .collect(),
    );
    expected.apply(&staged_writes);
    let view = store.state_on(Some(&staged));
    assert_eq!(view.tip().height, 2);
    for key in ["t/a/0", "t/a/2", "t/a/3", "t/b/1", "t/c"] {
        assert_eq!(
            view.get(key.as_bytes()),
            expected.get(key.as_bytes()),
            "{key}"
        );
    }
    for prefix in ["t/", "t/a/", "t/b/", "t/c/", ""] {
        for limit in [0, 1, 2, 3, 5, usize::MAX] {
            assert_eq!(
                view.scan_prefix(prefix.as_bytes(), limit),
                expected.scan_prefix(prefix.as_bytes(), limit),
                "prefix {prefix:?}, limit {limit}"
            );
        }
    }
    for (start, end) in [("t/a/1", "t/a/4"), ("t/a/3", "t/b/2"), ("t/b", "t/a")] {
        for limit in [1, 2, usize::MAX] {
            assert_eq!(
                view.scan_range(start.as_bytes(), end.as_bytes(), limit),
                expected.scan_range(start.as_bytes(), end.as_bytes(), limit),
                "range {start}..{end}, limit {limit}"
            );
        }
    }
    view.check().unwrap();
    drop(view);

    // The next block's root on top of the staged one equals its root once that is written.
    let next = WriteSet::from([put("t/a/2", "two, again"), put("t/d/1", "d")]);
    let on_staged = store.prepare_state_on(next.clone(), Some(&staged)).unwrap();
    store.commit_staged(staged).unwrap();
    assert_eq!(store.tip().height, 2);
    let on_written = store.prepare_state(next).unwrap();
    assert_eq!(on_staged.root(), on_written.root());

    // A staged block whose tip moved on is refused, not read over the wrong state.
    let stale = store
        .stage(writes_block(&store, WriteSet::from([put("t/e", "e")])))
        .unwrap();
    store
        .commit_block(writes_block(&store, WriteSet::from([put("t/f", "f")])))
        .unwrap();
    assert!(store
        .prepare_state_on(WriteSet::new(), Some(&stale))
        .is_err());
    assert!(store.state_on(Some(&stale)).check().is_err());
    assert!(store.commit_staged(stale).is_err());
}

/// The options RocksDB last persisted for `family`.
fn persisted_family_options(dir: &Path, family: &str) -> String {
    persisted_section(dir, &format!("[CFOptions \"{family}\"]"))
}

/// The section under `header` of the newest `OPTIONS-*` file RocksDB wrote in `dir`.
fn persisted_section(dir: &Path, header: &str) -> String {
    let newest = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with("OPTIONS-"))
        .max_by_key(|name| name["OPTIONS-".len()..].parse::<u64>().unwrap_or(0))
        .expect("an options file");
    let text = std::fs::read_to_string(dir.join(newest)).unwrap();
    let start = text.find(header).expect("the section");
    let rest = &text[start + header.len()..];
    rest[..rest.find("\n[").unwrap_or(rest.len())].to_owned()
}

#[test]
fn append_only_families_skip_bottommost_rewrites_and_the_others_keep_them() {
    let dir = TempDir::new("storage-bottommost");
    let (_store, _harness) = genesis_store(&dir);
    for family in [
        tree::CF_JMT_NODES,
        tree::CF_JMT_VALUES,
        CF_BLOCKS,
        CF_BLOCK_HASHES,
    ] {
        assert!(
            persisted_family_options(dir.path(), family)
                .contains("bottommost_file_compaction_delay=4294967295"),
            "{family}"
        );
    }
    for family in [CF_STATE, CF_CONSENSUS, CF_TRANSACTIONS, CF_META] {
        assert!(
            persisted_family_options(dir.path(), family)
                .contains("bottommost_file_compaction_delay=0"),
            "{family}"
        );
    }
}

#[test]
fn every_family_compacts_into_small_levels_and_files() {
    let dir = TempDir::new("storage-levels");
    let (_store, _harness) = genesis_store(&dir);
    for family in COLUMN_FAMILIES {
        let options = persisted_family_options(dir.path(), family);
        assert!(
            options.contains(&format!("max_bytes_for_level_base={LEVEL_BASE_BYTES}")),
            "{family}"
        );
        assert!(
            options.contains(&format!("target_file_size_base={TARGET_FILE_BYTES}")),
            "{family}"
        );
    }
}

#[test]
fn only_families_read_by_keys_they_may_lack_have_bloom_filters() {
    let dir = TempDir::new("storage-filters");
    let (_store, _harness) = genesis_store(&dir);
    for family in COLUMN_FAMILIES {
        let table = persisted_table_options(dir.path(), family);
        let filtered = table.contains("filter_policy=bloomfilter");
        assert_eq!(
            filtered,
            !UNFILTERED_FAMILIES.contains(&family),
            "{family}: {table}"
        );
    }
    for family in [CF_STATE, CF_TRANSACTIONS, CF_BLOCK_HASHES] {
        assert!(!UNFILTERED_FAMILIES.contains(&family), "{family}");
    }
}

#[test]
fn large_tree_values_live_in_blob_files_and_read_back_after_a_flush() {
    let dir = TempDir::new("storage-blobs");
    let (store, _harness) = genesis_store(&dir);
    for family in COLUMN_FAMILIES {
        let options = persisted_family_options(dir.path(), family);
        let blobs = family == tree::CF_JMT_VALUES;
        assert_eq!(
            options.contains("enable_blob_files=true"),
            blobs,
            "{family}"
        );
        if blobs {
            assert!(options.contains(&format!("min_blob_size={TREE_VALUE_BLOB_BYTES_MIN}")));
            assert!(options.contains("enable_blob_garbage_collection=false"));
        }
    }
    let small = yrd_chaincode::keys::history_entry(b"c/r/small", 0);
    let large = yrd_chaincode::keys::history_entry(b"c/r/large", 0);
    let large_value = vec![7u8; 4 * usize::try_from(TREE_VALUE_BLOB_BYTES_MIN).unwrap()];
    let writes = WriteSet::from([
        (small.clone(), Some(b"inline".to_vec())),
        (large.clone(), Some(large_value.clone())),
    ]);
    store.commit_block(writes_block(&store, writes)).unwrap();
    store
        .db
        .flush_cf(store.cf(tree::CF_JMT_VALUES).unwrap())
        .unwrap();
    let blob_files = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|entry| {
            entry
                .as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "blob"))
        })
        .count();
    assert_eq!(blob_files, 1, "the large value went to a blob file");
    let state = store.state();
    assert_eq!(state.get(&large), Some(large_value.clone()));
    assert_eq!(state.get(&small), Some(b"inline".to_vec()));
    state.check().unwrap();
    assert_eq!(store.state_proof(&large, 1).unwrap().0, Some(large_value));
}

/// The block-based table options RocksDB last persisted for `family`.
fn persisted_table_options(dir: &Path, family: &str) -> String {
    persisted_section(dir, &format!("[TableOptions/BlockBasedTable \"{family}\"]"))
}

#[test]
fn the_open_files_budget_leaves_descriptors_for_the_rest_and_stays_within_its_bounds() {
    assert_eq!(open_files_budget(Some(256)), OPEN_FILES_MIN);
    assert_eq!(open_files_budget(Some(1_024)), OPEN_FILES_MIN);
    assert_eq!(open_files_budget(Some(4_096)), 3_072);
    assert_eq!(open_files_budget(Some(1 << 20)), OPEN_FILES_MAX);
    assert_eq!(open_files_budget(None), OPEN_FILES_MAX);
}

#[test]
fn raising_the_file_limit_never_lowers_it() {
    let before = file_limit();
    let after = raise_file_limit().expect("raising the soft limit within the hard one");
    assert_eq!(after, file_limit());
    match (before, after) {
        (Some(before), Some(after)) => assert!(after >= before, "{before} -> {after}"),
        (None, after) => assert_eq!(after, None),
        (Some(before), None) => panic!("{before} became unlimited"),
    }
}

#[test]
fn the_store_opens_with_its_open_files_budget_and_reports_its_memory() {
    let dir = TempDir::new("storage-stats");
    let (store, _harness) = genesis_store(&dir);
    let budget = open_files_budget(file_limit());
    assert!(
        persisted_section(dir.path(), "[DBOptions]").contains(&format!("max_open_files={budget}"))
    );
    let stats = store.stats().unwrap();
    assert_eq!(stats.open_files_max, budget);
    assert!(
        stats.memtables_bytes > 0,
        "genesis is in the memtables: {stats:?}"
    );
    assert_eq!(stats.table_files, 0, "nothing flushed yet: {stats:?}");
    store.db.flush_cf(store.cf(CF_STATE).unwrap()).unwrap();
    let flushed = store.stats().unwrap();
    assert_eq!(flushed.table_files, 1, "{flushed:?}");
    assert!(flushed.table_files_bytes > 0, "{flushed:?}");
    assert!(flushed.table_readers_bytes > 0, "{flushed:?}");
}
