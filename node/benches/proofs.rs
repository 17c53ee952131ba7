//! Benchmark: the cost of a state proof with a million keys in the state, through the node's
//! real [`Store`] (RocksDB and its Jellyfish Merkle Tree) and `yrd-verify`. Prints its figures,
//! then one JSON line with all of them.
//!
//! # Method
//!
//! 1. A store is opened in a fresh folder under the system temp dir (removed at the end, also
//!    when the benchmark panics) and initialised with the test chain's genesis, whose four
//!    validators are the testkit's deterministic keys, so this benchmark can sign certificates.
//! 2. The state is filled with `N` keys in blocks of [`WRITES_PER_BLOCK`] writes, each through
//!    `prepare_state` and a synced `commit_block` with a real header and a real commit
//!    certificate (precommits of three of the four validators). Keys are the first history
//!    entries (`h/v/<record><u32 0>`, the tree keys of record writes) of receivables
//!    (`r/r/AR-<n>`) and credit-report versions (`c/v/CR-<n>/<u32>`) in turn, each holding
//!    its encoded record (about 200 bytes, with hashes and a provenance). One more block then
//!    rewrites the keys of block 1, so height 1 holds values that are no longer the latest.
//!    The fill rate and the database size on disk are printed.
//! 3. At the tip, for [`SAMPLES`] random present keys and as many absent ones, and again at
//!    height 1 (old values of rewritten keys, and keys written only later, absent there), it
//!    measures: the time of `Store::state_proof`; the time to answer (proof plus certified
//!    header, as the `Proofs` service does); the encoded size of the proof and of the whole
//!    `StateProofResponse`; the number of siblings; the time of `verify_state_proof` against
//!    the height's state root; and the time of `verify_state` (header, certificate and proof)
//!    against a `Trust` made from the genesis alone. Every answer is checked to verify and to
//!    hold the expected value. Times are reported as mean, p50 and p99; sizes as mean, p50 and
//!    max. The samples are drawn by a fixed-seed generator, so every run asks the same keys.
//!
//! Reads run right after the fill, so RocksDB's block cache and the OS page cache are warm:
//! the figures are those of a node serving proofs, not of a cold start.
//!
//! # Running
//!
//! `cargo bench --workspace --profile dev --bench proofs` (1,000,000 keys). Set
//! `YRD_BENCH_KEYS` to change the number of keys, e.g. `YRD_BENCH_KEYS=20000` for a quick run. Times depend on which crates
//! the profile optimises (see the profiles in the root `Cargo.toml`); sizes and sibling counts
//! do not.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ed25519_dalek::{Signer, SigningKey};
use prost::Message;
use serde_json::{json, Value};
use yrd_chaincode::keys;
use yrd_chaincode::state::WriteSet;
use yrd_chaincode::testkit::{Harness, BLOCK_INTERVAL_MS, CHAIN_ID, GENESIS_TIME_MS};
use yrd_consensus::{
    vote_signing_message, BlockHash, CommitCertificate, Height, PublicKey, Round, Signature,
    ValidatorSet, Vote, VoteKind,
};
use yrd_node::storage::{CommitBatch, Store};
use yrd_node::wire::certificate_to_wire;
use yrd_proto::block::{block_hash, merkle_root, receipts_root};
use yrd_proto::signing::{sha256, Hash};
use yrd_proto::v1;
use yrd_verify::{verify_state, verify_state_proof, Trust};

/// Keys in the state when `YRD_BENCH_KEYS` is not set.
const KEYS_DEFAULT: u64 = 1_000_000;
/// State writes per filling block.
const WRITES_PER_BLOCK: u64 = 10_000;
/// Proofs measured per group (present or absent, at the tip or at height 1).
const SAMPLES: usize = 2_000;
/// Validators that sign each certificate: a quorum of four.
const SIGNERS: usize = 3;
/// Seed of the sample generator.
const SEED: u64 = 0x9e37_79b9_7f4a_7c15;

// ---------------------------------------------------------------- support

/// A folder under the system temp dir, removed when dropped (also while unwinding a panic).
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path =
            std::env::temp_dir().join(format!("yrd-bench-proofs-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).expect("create the temp folder");
        Self(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// SplitMix64: a small deterministic generator, so every run samples the same keys.
struct Samples(u64);

impl Samples {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `from..to` (`to > from`).
    fn in_range(&mut self, from: u64, to: u64) -> u64 {
        from + self.next() % (to - from)
    }
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(str::to_owned)
        })
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Bytes on disk under `path`: all files, SST files, write-ahead logs.
fn disk_bytes(path: &Path) -> (u64, u64, u64) {
    let (mut total, mut sst, mut wal) = (0, 0, 0);
    for entry in std::fs::read_dir(path).expect("list the database folder") {
        let entry = entry.expect("database folder entry");
        let metadata = entry.metadata().expect("database file metadata");
        if metadata.is_dir() {
            let (t, s, w) = disk_bytes(&entry.path());
            total += t;
            sst += s;
            wal += w;
            continue;
        }
        let name = entry.file_name();
        let name = name.to_string_lossy();
        total += metadata.len();
        if name.ends_with(".sst") {
            sst += metadata.len();
        } else if name.ends_with(".log") && !name.starts_with("LOG") {
            wal += metadata.len();
        }
    }
    (total, sst, wal)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

/// Mean, p50 and p99 of durations, in microseconds.
fn time_figures(mut samples: Vec<Duration>) -> (f64, f64, f64) {
    assert!(!samples.is_empty(), "no time samples");
    samples.sort();
    let total: Duration = samples.iter().sum();
    let at = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize];
    (
        micros(total) / samples.len() as f64,
        micros(at(0.5)),
        micros(at(0.99)),
    )
}

/// Mean, p50 and max of sizes.
fn size_figures(mut samples: Vec<usize>) -> (f64, usize, usize) {
    assert!(!samples.is_empty(), "no size samples");
    samples.sort_unstable();
    let total: usize = samples.iter().sum();
    (
        total as f64 / samples.len() as f64,
        samples[(samples.len() - 1) / 2],
        samples[samples.len() - 1],
    )
}

// ---------------------------------------------------------------- the chain

/// The test chain's genesis: the testkit's members and its four validators.
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
        genesis_time_ms: GENESIS_TIME_MS,
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

/// State key number `n`: the first history entry of a record (what a block puts in the tree
/// for a record write), even numbers of receivables, odd ones of credit-report versions.
fn state_key(n: u64) -> Vec<u8> {
    let record = if n.is_multiple_of(2) {
        keys::receivable(&format!("AR-{:09}", n / 2))
    } else {
        keys::credit_report_version(&format!("CR-{:09}", n / 2), 1)
    };
    keys::history_entry(&record, 0)
}

/// Height of the filling block that first writes key `n`.
fn first_height(n: u64) -> u64 {
    n / WRITES_PER_BLOCK + 1
}

/// The record key `n` holds when written by the block of `height`: a realistic encoded record
/// (ids, codes, hashes, a provenance), about 200 bytes.
fn state_value(harness: &Harness, n: u64, height: u64) -> Vec<u8> {
    let seed = [n.to_be_bytes(), height.to_be_bytes()].concat();
    let provenance = v1::Provenance {
        height,
        tx_index: u32::try_from(n % WRITES_PER_BLOCK).expect("index fits u32"),
        tx_hash: sha256(&[b"tx".as_slice(), &seed].concat()).to_vec(),
        block_time_ms: GENESIS_TIME_MS + height * BLOCK_INTERVAL_MS,
        signers: vec![harness.supplier.key.verifying_key().to_bytes().to_vec()],
    };
    let rewritten = height != first_height(n);
    if n.is_multiple_of(2) {
        v1::ReceivableRecord {
            receivable_id: format!("AR-{:09}", n / 2),
            debtor_uscc: harness.core.id(),
            creditor_uscc: harness.supplier.id(),
            face_fen: 1_000_000 + (n % 997) * 1_000,
            due_day: 20_500 + u32::try_from(n % 365).expect("day fits u32"),
            invoice_hashes: [b"invoice-1".as_slice(), b"invoice-2"]
                .iter()
                .map(|tag| sha256(&[tag, &n.to_be_bytes()[..]].concat()).to_vec())
                .collect(),
            contract_hash: sha256(&[b"contract".as_slice(), &n.to_be_bytes()].concat()).to_vec(),
            status: if rewritten {
                v1::ReceivableStatus::Settled
            } else {
                v1::ReceivableStatus::Confirmed
            } as i32,
            paid_fen: if rewritten { 1_000_000 } else { 0 },
            parts_created: 0,
            registered: Some(provenance),
        }
        .encode_to_vec()
    } else {
        v1::CreditReportVersion {
            version: 1,
            document_sha256: sha256(&[b"report".as_slice(), &seed].concat()).to_vec(),
            negative: rewritten,
            event_end_day: 20_000 + u32::try_from(n % 365).expect("day fits u32"),
            summary: if rewritten {
                "loan overdue 30 days, corrected on objection".to_owned()
            } else {
                "loan repaid on time".to_owned()
            },
            provenance: Some(provenance),
        }
        .encode_to_vec()
    }
}

/// The chain being written: the store, the genesis validators' keys and their set's hash.
struct Chain<'a> {
    store: &'a Store,
    validators: &'a [SigningKey],
    set_hash: Hash,
}

impl Chain<'_> {
    /// A commit certificate of `height` and `hash` signed by the first [`SIGNERS`] validators.
    fn certificate(&self, height: u64, hash: Hash) -> v1::CommitCertificate {
        let signatures = self
            .validators
            .iter()
            .take(SIGNERS)
            .enumerate()
            .map(|(index, key)| {
                let index = u16::try_from(index).expect("validator index fits u16");
                let vote = Vote {
                    kind: VoteKind::Precommit,
                    height: Height(height),
                    round: Round(0),
                    block_hash: Some(BlockHash(hash)),
                    validator: index,
                };
                let message = vote_signing_message(CHAIN_ID, &vote);
                (index, Signature(key.sign(&message).to_bytes()))
            })
            .collect();
        certificate_to_wire(&CommitCertificate {
            height: Height(height),
            round: Round(0),
            block_hash: BlockHash(hash),
            signatures,
        })
    }

    /// Commits a block without transactions whose state writes are `writes`; returns the time
    /// spent in `prepare_state` and in `commit_block`.
    fn commit(&self, writes: WriteSet) -> (Duration, Duration) {
        let tip = self.store.tip();
        let height = tip.height + 1;
        let started = Instant::now();
        let state = self.store.prepare_state(writes).expect("prepare the state");
        let prepared = started.elapsed();
        let header = v1::BlockHeader {
            chain_id: CHAIN_ID.to_owned(),
            height,
            parent_hash: tip.block_hash.to_vec(),
            time_ms: GENESIS_TIME_MS + height * BLOCK_INTERVAL_MS,
            proposer: self.validators[0].verifying_key().to_bytes().to_vec(),
            transactions_root: merkle_root(&[]).to_vec(),
            receipts_root: receipts_root(&[]).to_vec(),
            state_root: state.root().to_vec(),
            validator_set_hash: self.set_hash.to_vec(),
            next_validator_set_hash: self.set_hash.to_vec(),
            transaction_count: 0,
        };
        let hash = block_hash(&header).expect("hash the header");
        let batch = CommitBatch {
            committed: v1::CommittedBlock {
                certificate: Some(self.certificate(height, hash)),
                block: Some(v1::Block {
                    header: Some(header),
                    transactions: Vec::new(),
                    transaction_refs: Vec::new(),
                }),
                receipts: Vec::new(),
            },
            block_hash: hash,
            state,
            next_validators: None,
        };
        let started = Instant::now();
        self.store.commit_block(batch).expect("commit the block");
        (prepared, started.elapsed())
    }
}

// ---------------------------------------------------------------- measurement

/// The figures of one group of proofs.
struct Group {
    name: &'static str,
    prove: Vec<Duration>,
    answer: Vec<Duration>,
    verify_proof: Vec<Duration>,
    verify_answer: Vec<Duration>,
    proof_bytes: Vec<usize>,
    response_bytes: Vec<usize>,
    siblings: Vec<usize>,
}

impl Group {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            prove: Vec::new(),
            answer: Vec::new(),
            verify_proof: Vec::new(),
            verify_answer: Vec::new(),
            proof_bytes: Vec::new(),
            response_bytes: Vec::new(),
            siblings: Vec::new(),
        }
    }

    fn print_and_json(self) -> Value {
        let times = [
            ("prove", "prove (state_proof)", self.prove),
            ("answer", "answer (+ header)", self.answer),
            ("verify_proof", "verify_state_proof", self.verify_proof),
            ("verify_answer", "verify_state", self.verify_answer),
        ];
        let sizes = [
            ("proof_bytes", "proof bytes", self.proof_bytes),
            ("response_bytes", "response bytes", self.response_bytes),
            ("siblings", "siblings", self.siblings),
        ];
        println!("  {} ({SAMPLES} keys)", self.name);
        let mut object = serde_json::Map::new();
        for (key, label, samples) in times {
            let (mean, p50, p99) = time_figures(samples);
            println!("    {label:<22} mean {mean:>9.1} us  p50 {p50:>9.1} us  p99 {p99:>9.1} us");
            object.insert(
                format!("{key}_us"),
                json!({ "mean": mean, "p50": p50, "p99": p99 }),
            );
        }
        for (key, label, samples) in sizes {
            let (mean, p50, max) = size_figures(samples);
            println!("    {label:<22} mean {mean:>9.1}     p50 {p50:>9}     max {max:>9}");
            object.insert(
                key.to_owned(),
                json!({ "mean": mean, "p50": p50, "max": max }),
            );
        }
        Value::Object(object)
    }
}

/// What the proofs are checked against.
struct Verifier<'a> {
    store: &'a Store,
    trust: &'a Trust,
}

impl Verifier<'_> {
    /// Proves, answers and verifies `key` at `height`, expecting `expected`; adds the figures
    /// to `group`.
    fn measure(
        &self,
        group: &mut Group,
        key: &[u8],
        height: u64,
        root: &Hash,
        expected: Option<&[u8]>,
    ) {
        let started = Instant::now();
        let (value, proof) = self.store.state_proof(key, height).expect("state proof");
        group.prove.push(started.elapsed());
        let header = self
            .store
            .certified_header(height)
            .expect("certified header");
        let response = v1::StateProofResponse {
            key: key.to_vec(),
            height,
            exists: value.is_some(),
            value: value.clone().unwrap_or_default(),
            proof: Some(proof.clone()),
            header: Some(header),
            validator_changes: Some(v1::ValidatorSetProof::default()),
            ..v1::StateProofResponse::default()
        };
        group.answer.push(started.elapsed());
        assert_eq!(value.as_deref(), expected, "the value of a sampled key");
        group.proof_bytes.push(proof.encoded_len());
        group.response_bytes.push(response.encoded_len());
        group.siblings.push(proof.siblings.len());

        let started = Instant::now();
        let checked = verify_state_proof(root, key, value.as_deref(), &proof);
        group.verify_proof.push(started.elapsed());
        checked.expect("the state proof verifies");

        let started = Instant::now();
        let proven = verify_state(self.trust, &response);
        group.verify_answer.push(started.elapsed());
        let proven = proven.expect("the answer verifies");
        assert_eq!(proven.value.as_deref(), expected, "the proven value");
        assert_eq!(proven.header.height(), height);
    }

    /// The state root of `height`, from its stored header.
    fn root(&self, height: u64) -> Hash {
        let certified = self
            .store
            .certified_header(height)
            .expect("certified header");
        let header = v1::BlockHeader::decode(certified.header.as_slice()).expect("decode header");
        header.state_root.as_slice().try_into().expect("32 bytes")
    }
}

// ---------------------------------------------------------------- the benchmark

fn keys_from_env() -> u64 {
    match std::env::var("YRD_BENCH_KEYS") {
        Ok(text) => {
            let keys: u64 = text
                .replace('_', "")
                .parse()
                .unwrap_or_else(|e| panic!("YRD_BENCH_KEYS={text:?} is not a number: {e}"));
            assert!(keys >= 2, "YRD_BENCH_KEYS must be at least 2");
            keys
        }
        Err(_) => KEYS_DEFAULT,
    }
}

fn main() {
    let keys_total = keys_from_env();
    let wall = Instant::now();
    let folder = TempDir::new();
    let harness = Harness::new();
    let genesis = genesis_of(&harness);
    let store = Store::open(folder.path()).expect("open the store");
    store
        .init_genesis(&genesis)
        .expect("initialise the genesis");
    let trust = Trust::from_genesis(&genesis).expect("trust from the genesis");
    let set = ValidatorSet::new(
        harness
            .validators
            .iter()
            .map(|key| PublicKey(key.verifying_key().to_bytes()))
            .collect(),
    )
    .expect("the genesis validator set");
    let chain = Chain {
        store: &store,
        validators: &harness.validators,
        set_hash: set.hash(),
    };

    println!("yrd state proof benchmark");
    println!("  store                   {}", folder.path().display());
    println!(
        "  keys                    {keys_total} in blocks of {WRITES_PER_BLOCK} writes (receivables and credit-report versions)"
    );

    // Fill.
    let mut prepare_total = Duration::ZERO;
    let mut commit_total = Duration::ZERO;
    let mut value_bytes_total = 0u64;
    let fill_started = Instant::now();
    let mut next_progress = keys_total / 10;
    let mut n = 0u64;
    while n < keys_total {
        let end = keys_total.min(n + WRITES_PER_BLOCK);
        let height = store.tip().height + 1;
        assert_eq!(height, first_height(n));
        let writes: WriteSet = (n..end)
            .map(|i| {
                let value = state_value(&harness, i, height);
                value_bytes_total += value.len() as u64;
                (state_key(i), Some(value))
            })
            .collect();
        let (prepared, committed) = chain.commit(writes);
        prepare_total += prepared;
        commit_total += committed;
        n = end;
        if n >= next_progress && n < keys_total {
            eprintln!(
                "  ... {n} keys, {:.1} s",
                fill_started.elapsed().as_secs_f64()
            );
            next_progress += keys_total / 10;
        }
    }
    let fill = fill_started.elapsed();
    let fill_height = store.tip().height;

    // Rewrite the keys of block 1, so height 1 holds values that are no longer the latest.
    let rewritten = keys_total.min(WRITES_PER_BLOCK);
    let rewrite_height = fill_height + 1;
    let rewrite_started = Instant::now();
    chain.commit(
        (0..rewritten)
            .map(|i| (state_key(i), Some(state_value(&harness, i, rewrite_height))))
            .collect(),
    );
    let rewrite = rewrite_started.elapsed();
    let tip = store.tip();
    assert_eq!(tip.height, rewrite_height);

    let (disk_total, disk_sst, disk_wal) = disk_bytes(folder.path());
    let fill_rate = keys_total as f64 / fill.as_secs_f64();
    println!(
        "  fill                    {:.1} s, {fill_rate:.0} keys/s, {fill_height} blocks \
         (prepare_state {:.1} s, commit_block {:.1} s)",
        fill.as_secs_f64(),
        prepare_total.as_secs_f64(),
        commit_total.as_secs_f64()
    );
    println!(
        "  value size              {:.1} bytes mean",
        value_bytes_total as f64 / keys_total as f64
    );
    println!(
        "  rewrite of block 1      {rewritten} keys at height {rewrite_height}, {:.2} s",
        rewrite.as_secs_f64()
    );
    println!(
        "  database on disk        {:.1} MiB ({:.1} MiB SST, {:.1} MiB WAL), {:.0} bytes per key",
        mib(disk_total),
        mib(disk_sst),
        mib(disk_wal),
        disk_total as f64 / keys_total as f64
    );

    // Measure.
    let verifier = Verifier {
        store: &store,
        trust: &trust,
    };
    let mut samples = Samples(SEED);
    let measure_started = Instant::now();

    let tip_root = verifier.root(tip.height);
    assert_eq!(tip_root, tip.state_root);
    let mut tip_present = Group::new("tip, present keys");
    let mut tip_absent = Group::new("tip, absent keys");
    for _ in 0..SAMPLES {
        let i = samples.in_range(0, keys_total);
        let height = if i < rewritten {
            rewrite_height
        } else {
            first_height(i)
        };
        let value = state_value(&harness, i, height);
        verifier.measure(
            &mut tip_present,
            &state_key(i),
            tip.height,
            &tip_root,
            Some(&value),
        );
        let i = samples.in_range(keys_total, 2 * keys_total);
        verifier.measure(&mut tip_absent, &state_key(i), tip.height, &tip_root, None);
    }

    // Height 1: the first values of the rewritten keys, and keys written only later.
    let old_root = verifier.root(1);
    let mut old_present = Group::new("height 1, present keys (old values)");
    let mut old_absent = Group::new("height 1, absent keys (written later)");
    for _ in 0..SAMPLES {
        let i = samples.in_range(0, rewritten);
        let value = state_value(&harness, i, 1);
        verifier.measure(&mut old_present, &state_key(i), 1, &old_root, Some(&value));
        let i = if keys_total > WRITES_PER_BLOCK {
            samples.in_range(WRITES_PER_BLOCK, keys_total)
        } else {
            samples.in_range(keys_total, 2 * keys_total)
        };
        verifier.measure(&mut old_absent, &state_key(i), 1, &old_root, None);
    }
    let measure = measure_started.elapsed();

    println!("  proofs at the tip (height {})", tip.height);
    let tip_present = tip_present.print_and_json();
    let tip_absent = tip_absent.print_and_json();
    println!("  proofs at height 1");
    let old_present = old_present.print_and_json();
    let old_absent = old_absent.print_and_json();
    let peak_rss = peak_rss_mib();
    println!("  measurement             {:.1} s", measure.as_secs_f64());
    println!("  peak RSS                {peak_rss:.1} MiB");
    println!(
        "  wall time               {:.1} s",
        wall.elapsed().as_secs_f64()
    );

    let figures = json!({
        "bench": "proofs",
        "keys": keys_total,
        "writes_per_block": WRITES_PER_BLOCK,
        "samples_per_group": SAMPLES,
        "tip_height": tip.height,
        "fill": {
            "seconds": fill.as_secs_f64(),
            "keys_per_second": fill_rate,
            "prepare_state_seconds": prepare_total.as_secs_f64(),
            "commit_block_seconds": commit_total.as_secs_f64(),
            "value_bytes_mean": value_bytes_total as f64 / keys_total as f64,
        },
        "disk_bytes": { "total": disk_total, "sst": disk_sst, "wal": disk_wal },
        "tip": { "present": tip_present, "absent": tip_absent },
        "height_1": { "present": old_present, "absent": old_absent },
        "peak_rss_mib": peak_rss,
        "wall_seconds": wall.elapsed().as_secs_f64(),
    });
    println!("{figures}");
    // The store closes before its folder is removed.
    drop(store);
}
