//! One simulated run: validators driven by a deterministic event queue over a virtual clock, a
//! faulty network, crashes with restarts from persisted safety data, and Byzantine actors.
//! Invariant: everything depends only on the scenario's seed (no wall clock, no hash maps).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};

use yrd_consensus::round::BreakForTesting;
use yrd_consensus::{
    BlockHash, CommitCertificate, Config, Consensus, Height, Input, Output, PublicKey, SafetyData,
    SignRequest, SignedProposal, SignedVote, Timeout, TimeoutConfig, ValidatorSet,
};

use super::oracle::{make_payload, payload_hash, payload_valid, Oracle};
use super::rng::Rng;
use super::scheme::{sim_key, test_sign, TestScheme};

/// The chain id of simulated networks.
pub const CHAIN_ID: &str = "yrd-sim";
/// Mean one-way message delay after GST (and always, without faults), in ms.
pub const DELAY_MEAN_MS: u64 = 10;
const DELAY_MIN_MS: u64 = 8;
const DELAY_MAX_MS: u64 = 12;
/// Period of the host's gossip tick (re-send own messages and status when stalled), in ms.
const TICK_MS: u64 = 400;
/// A validator re-sends its gossip only after this many ticks without a decision (retransmission
/// is slower than a round, so rounds run on partial information before gossip heals it).
const GOSSIP_AFTER_STALLED_TICKS: u32 = 3;
/// A validator asks peers for decided blocks only after this many ticks without a decision:
/// slow catch-up keeps laggards voting in later rounds, which stresses the protocol harder.
const SYNC_AFTER_STALLED_TICKS: u32 = 12;
/// Blocks sent per catch-up answer.
const SYNC_BLOCKS_MAX: usize = 16;
/// After GST, every honest validator must decide a new height at least this often (virtual).
pub const LIVENESS_BOUND_MS: u64 = 60_000;

/// The fault a scenario exercises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// A healthy network (the latency figures come from these runs).
    None,
    /// Messages dropped before GST.
    Drop,
    /// Messages delayed by seconds before GST.
    Delay,
    /// Messages duplicated before GST.
    Duplicate,
    /// Messages reordered before GST.
    Reorder,
    /// Changing network partitions before GST.
    Partition,
    /// Validators crash and restart from persisted safety data before GST.
    Crash,
    /// f proposers send different proposals to different peers.
    EquivocatingProposer,
    /// f validators send conflicting votes to different peers.
    DoubleVoter,
    /// f validators never send anything.
    Silent,
    /// f keys run in two instances each, placed on both sides of partitions.
    Twins,
    /// All of the network faults, crashes, and f Byzantine validators of mixed kinds.
    Mixed,
}

/// Every fault kind, in seed order.
pub const FAULTS: [Fault; 12] = [
    Fault::None,
    Fault::Drop,
    Fault::Delay,
    Fault::Duplicate,
    Fault::Reorder,
    Fault::Partition,
    Fault::Crash,
    Fault::EquivocatingProposer,
    Fault::DoubleVoter,
    Fault::Silent,
    Fault::Twins,
    Fault::Mixed,
];

/// Validator counts exercised.
pub const SIZES: [usize; 3] = [4, 7, 10];

/// Everything one seed determines.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// The seed.
    pub seed: u64,
    /// Validators.
    pub n: usize,
    /// Fault kind.
    pub fault: Fault,
    /// Heights every honest validator must decide.
    pub heights: u64,
    /// Protocol breaks for honest validators (oracle self-tests).
    pub breaks: BreakForTesting,
}

impl Scenario {
    /// The scenario of `seed`: size `SIZES[seed % 3]`, fault `FAULTS[(seed / 3) % 12]`.
    pub fn from_seed(seed: u64, heights: u64) -> Self {
        Scenario {
            seed,
            n: SIZES[(seed % 3) as usize],
            fault: FAULTS[((seed / 3) % FAULTS.len() as u64) as usize],
            heights,
            breaks: BreakForTesting::default(),
        }
    }
}

/// What a successful run measured.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Hash of the whole event trace.
    pub trace_hash: u64,
    /// Heights decided (the target, per honest validator).
    pub heights: u64,
    /// Events processed.
    pub events: u64,
    /// Virtual time at the end, in ms.
    pub virtual_ms: u64,
    /// Commit latencies (first start of a height to each honest decision), in ms (no-fault runs).
    pub latencies_ms: Vec<u64>,
    /// Evidence reports checked by the oracle.
    pub evidence: u64,
    /// Prevotes an honest validator signed for a value other than its lock (legal after a
    /// newer proof of lock; far more frequent with the lock rule broken).
    pub lock_changes: u64,
    /// Longest wait of an honest validator for its next decision after GST, in virtual ms.
    pub max_gap_after_gst_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    Honest,
    EquivocatingProposer,
    DoubleVoter,
    Silent,
    Twin,
}

#[derive(Debug, Clone)]
enum NetMsg {
    Proposal(SignedProposal, Vec<u8>),
    Vote(SignedVote),
    Status(u64),
    Blocks(Vec<Decided>),
}

#[derive(Debug, Clone)]
struct Decided {
    block_hash: BlockHash,
    payload: Vec<u8>,
    certificate: CommitCertificate,
}

#[derive(Debug)]
enum EventKind {
    Deliver {
        to: usize,
        msg: NetMsg,
        from: usize,
    },
    Timeout {
        node: usize,
        incarnation: u32,
        timeout: Timeout,
    },
    Validity {
        node: usize,
        incarnation: u32,
        height: Height,
        hash: BlockHash,
        valid: bool,
    },
    Tick {
        node: usize,
    },
    Restart {
        node: usize,
    },
    Repartition,
}

#[derive(Debug)]
struct Event {
    time: u64,
    seq: u64,
    kind: EventKind,
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        (self.time, self.seq) == (other.time, other.seq)
    }
}
impl Eq for Event {}
impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Event {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.time, self.seq).cmp(&(other.time, other.seq))
    }
}

struct Node {
    key: usize,
    behaviour: Behaviour,
    core: Option<Consensus<TestScheme>>,
    incarnation: u32,
    durable: Option<[u8; yrd_consensus::safety::SAFETY_DATA_BYTES]>,
    chain: Vec<Decided>,
    /// Durable log of the proposals and votes handed to the core at the current height (the
    /// host's WAL), replayed after a restart.
    wal_votes: BTreeSet<SignedVote>,
    wal_proposals: BTreeMap<SignedProposal, Vec<u8>>,
    sent: Vec<NetMsg>,
    /// Equivocating proposer: per (height, round), its second value and who was shown it.
    alt_views: BTreeMap<(u64, u32), (BlockHash, Vec<bool>)>,
    tick_height: u64,
    stalled_ticks: u32,
    last_progress_ms: u64,
    group: u8,
}

struct Net {
    drop_ppm: u64,
    dup_ppm: u64,
    slow_ppm: u64,
    slow_max_ms: u64,
    partitions: bool,
    crash_ppm_per_tick: u64,
    crash_mid_output_ppm: u64,
    validity_delay_max_ms: u64,
}

struct World {
    scenario: Scenario,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<Event>>,
    rng: Rng,
    nodes: Vec<Node>,
    keys: Vec<PublicKey>,
    validators: ValidatorSet,
    net: Net,
    gst: u64,
    oracle: Oracle,
    trace: u64,
    events: u64,
    start_ms: Vec<Option<u64>>,
    latencies_ms: Vec<u64>,
    verbose: bool,
    failure: Option<String>,
    lock_breaks: u64,
    max_gap_after_gst_ms: u64,
}

fn fnv(hash: &mut u64, value: u64) {
    for byte in value.to_le_bytes() {
        *hash ^= u64::from(byte);
        *hash = hash.wrapping_mul(0x0000_0100_0000_01B3);
    }
}

fn config(key: PublicKey, breaks: BreakForTesting) -> Config<TestScheme> {
    Config {
        chain_id: CHAIN_ID.to_string(),
        public_key: key,
        timeouts: TimeoutConfig::default(),
        scheme: TestScheme,
        breaks,
    }
}

impl World {
    fn new(scenario: Scenario, verbose: bool) -> Self {
        let mut rng = Rng::new(scenario.seed);
        let n = scenario.n;
        let f = (n - 1) / 3;
        let keys: Vec<PublicKey> = (0..n).map(sim_key).collect();
        let validators = ValidatorSet::new(keys.clone()).expect("distinct simulated keys");

        // Choose the f Byzantine keys and what they do.
        let mut behaviour = vec![Behaviour::Honest; n];
        let byzantine_kind = match scenario.fault {
            Fault::EquivocatingProposer => Some(Behaviour::EquivocatingProposer),
            Fault::DoubleVoter => Some(Behaviour::DoubleVoter),
            Fault::Silent => Some(Behaviour::Silent),
            Fault::Twins => Some(Behaviour::Twin),
            Fault::Mixed => Some(Behaviour::Twin), // Refined per key below.
            _ => None,
        };
        if let Some(kind) = byzantine_kind {
            let mut chosen = 0;
            while chosen < f {
                let k = rng.below(n as u64) as usize;
                if behaviour[k] == Behaviour::Honest {
                    behaviour[k] = if scenario.fault == Fault::Mixed {
                        [
                            Behaviour::EquivocatingProposer,
                            Behaviour::DoubleVoter,
                            Behaviour::Silent,
                            Behaviour::Twin,
                        ][rng.below(4) as usize]
                    } else {
                        kind
                    };
                    chosen += 1;
                }
            }
        }
        let honest_key: Vec<bool> = behaviour.iter().map(|b| *b == Behaviour::Honest).collect();

        let mut net = Net {
            drop_ppm: 0,
            dup_ppm: 0,
            slow_ppm: 0,
            slow_max_ms: 0,
            partitions: false,
            crash_ppm_per_tick: 0,
            crash_mid_output_ppm: 0,
            validity_delay_max_ms: 0,
        };
        match scenario.fault {
            Fault::None => {}
            Fault::Drop => net.drop_ppm = rng.range(100_000, 400_000),
            Fault::Delay => {
                net.slow_ppm = rng.range(200_000, 500_000);
                net.slow_max_ms = rng.range(500, 4000);
            }
            Fault::Duplicate => net.dup_ppm = rng.range(100_000, 500_000),
            Fault::Reorder => {
                net.slow_ppm = 500_000;
                net.slow_max_ms = rng.range(20, 200);
                net.validity_delay_max_ms = 30;
            }
            Fault::Partition => net.partitions = true,
            Fault::Crash => {
                net.crash_ppm_per_tick = rng.range(20_000, 80_000);
                net.crash_mid_output_ppm = rng.range(1_000, 20_000);
                net.drop_ppm = 20_000;
            }
            Fault::EquivocatingProposer | Fault::DoubleVoter | Fault::Silent => {
                net.drop_ppm = rng.range(0, 200_000);
                net.slow_ppm = 200_000;
                net.slow_max_ms = 50;
            }
            Fault::Twins => net.partitions = true,
            Fault::Mixed => {
                net.drop_ppm = rng.range(0, 200_000);
                net.dup_ppm = rng.range(0, 200_000);
                net.slow_ppm = rng.range(0, 300_000);
                net.slow_max_ms = rng.range(20, 2000);
                net.partitions = rng.chance(500_000);
                net.crash_ppm_per_tick = rng.range(0, 40_000);
                net.crash_mid_output_ppm = rng.range(0, 10_000);
                net.validity_delay_max_ms = 30;
            }
        }
        let gst = if scenario.fault == Fault::None {
            0
        } else {
            rng.range(2_000, 10_000)
        };

        let mut nodes = Vec::new();
        let mut add_node = |key: usize, behaviour: Behaviour| {
            nodes.push(Node {
                key,
                behaviour,
                core: None,
                incarnation: 0,
                durable: None,
                chain: Vec::new(),
                wal_votes: BTreeSet::new(),
                wal_proposals: BTreeMap::new(),
                sent: Vec::new(),
                alt_views: BTreeMap::new(),
                tick_height: 0,
                stalled_ticks: 0,
                last_progress_ms: 0,
                group: 0,
            });
        };
        for (key, b) in behaviour.iter().enumerate() {
            add_node(key, *b);
        }
        for (key, b) in behaviour.iter().enumerate() {
            if *b == Behaviour::Twin {
                add_node(key, Behaviour::Twin);
            }
        }

        World {
            oracle: Oracle::new(CHAIN_ID, keys.clone(), honest_key),
            scenario,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            rng,
            nodes,
            keys,
            validators,
            net,
            gst,
            trace: 0xcbf2_9ce4_8422_2325,
            events: 0,
            start_ms: vec![None; scenario.heights as usize + 2],
            latencies_ms: Vec::new(),
            verbose,
            failure: None,
            lock_breaks: 0,
            max_gap_after_gst_ms: 0,
        }
    }

    fn push(&mut self, delay_ms: u64, kind: EventKind) {
        self.seq += 1;
        self.queue.push(Reverse(Event {
            time: self.now + delay_ms,
            seq: self.seq,
            kind,
        }));
    }

    fn fail(&mut self, message: String) {
        if self.failure.is_none() {
            self.failure = Some(message);
        }
    }

    fn honest(&self, node: usize) -> bool {
        self.nodes[node].behaviour == Behaviour::Honest
    }

    fn start_node(&mut self, i: usize) {
        let key = self.keys[self.nodes[i].key];
        let breaks = if self.honest(i) {
            self.scenario.breaks
        } else {
            BreakForTesting::default()
        };
        let config = config(key, breaks);
        let core = match self.nodes[i].durable {
            Some(bytes) => {
                let safety = SafetyData::decode(&bytes).expect("persisted safety data decodes");
                Consensus::restore(config, safety)
            }
            None => Consensus::new(config),
        }
        .expect("valid simulator config");
        self.nodes[i].core = Some(core);
        let height = Height(self.nodes[i].chain.len() as u64 + 1);
        self.feed(
            i,
            Input::StartHeight {
                height,
                validators: self.validators.clone(),
            },
        );
        self.note_start(height.0);
        // Replay the WAL of this height.
        let proposals: Vec<_> = self.nodes[i]
            .wal_proposals
            .iter()
            .map(|(p, payload)| (*p, payload.clone()))
            .collect();
        for (proposal, payload) in proposals {
            self.feed(i, Input::Proposal { proposal, payload });
        }
        let votes: Vec<_> = self.nodes[i].wal_votes.iter().copied().collect();
        for vote in votes {
            self.feed(i, Input::Vote(vote));
        }
    }

    fn note_start(&mut self, height: u64) {
        if let Some(slot) = self.start_ms.get_mut(height as usize) {
            if slot.is_none() {
                *slot = Some(self.now);
            }
        }
    }

    fn crash(&mut self, i: usize) {
        if self.nodes[i].core.is_none() {
            return;
        }
        if self.verbose {
            println!("{:>8} node {i} crashes", self.now);
        }
        self.nodes[i].core = None;
        self.nodes[i].incarnation += 1;
        self.nodes[i].sent.clear();
        let downtime = self.rng.range(100, 3000);
        let restart_in = downtime.min(self.gst.saturating_sub(self.now));
        self.push(restart_in, EventKind::Restart { node: i });
    }

    fn feed(&mut self, i: usize, input: Input) {
        if self.nodes[i].core.is_none() {
            return;
        }
        let outputs = self.handle(i, input);
        self.process(i, outputs);
    }

    /// Executes a node's outputs in order, like a real host: `Persist` is durable before the
    /// next output runs, and a crash may strike right after it.
    fn process(&mut self, i: usize, outputs: Vec<Output>) {
        let mut queue: VecDeque<Output> = outputs.into();
        while let Some(output) = queue.pop_front() {
            if self.failure.is_some() || self.nodes[i].core.is_none() {
                return;
            }
            let more = match output {
                Output::Persist(safety) => {
                    self.nodes[i].durable = Some(safety.encode());
                    if self.crash_point(i) {
                        return;
                    }
                    Vec::new()
                }
                Output::Sign(request) => {
                    let key = self.nodes[i].key;
                    if let (SignRequest::Vote(v), Some(core)) = (&request, &self.nodes[i].core) {
                        if let Some(locked) = core.safety_data().locked {
                            if v.kind == yrd_consensus::VoteKind::Prevote
                                && v.block_hash.is_some_and(|h| h != locked.block_hash)
                            {
                                self.lock_breaks += 1;
                            }
                        }
                    }
                    if let Err(e) = self.oracle.on_sign(key, &request) {
                        self.fail(e);
                        return;
                    }
                    let signature = test_sign(&self.keys[key], &request.message(CHAIN_ID));
                    self.handle(i, Input::Signed { request, signature })
                }
                Output::BroadcastProposal { proposal, payload } => {
                    self.nodes[i]
                        .wal_proposals
                        .insert(proposal, payload.clone());
                    self.broadcast_proposal(i, proposal, payload);
                    if self.crash_point(i) {
                        return;
                    }
                    Vec::new()
                }
                Output::BroadcastVote(vote) => {
                    self.nodes[i].wal_votes.insert(vote);
                    self.broadcast_vote(i, vote);
                    if self.crash_point(i) {
                        return;
                    }
                    Vec::new()
                }
                Output::ScheduleTimeout {
                    timeout,
                    duration_ms,
                } => {
                    let incarnation = self.nodes[i].incarnation;
                    self.push(
                        duration_ms,
                        EventKind::Timeout {
                            node: i,
                            incarnation,
                            timeout,
                        },
                    );
                    Vec::new()
                }
                Output::GetValue { height, round } => {
                    let nonce = self.rng.next_u64();
                    let payload =
                        make_payload(height.0, round.0, self.nodes[i].key as u16, nonce, true);
                    let block_hash = payload_hash(&payload);
                    self.oracle.on_proposed(block_hash);
                    self.handle(
                        i,
                        Input::ProposeValue {
                            height,
                            round,
                            block_hash,
                            payload,
                        },
                    )
                }
                Output::ValidateValue {
                    height,
                    block_hash,
                    payload,
                    ..
                } => {
                    let valid =
                        payload_valid(&payload, height.0) && payload_hash(&payload) == block_hash;
                    let delay = if self.net.validity_delay_max_ms > 0 {
                        self.rng.below(self.net.validity_delay_max_ms + 1)
                    } else {
                        0
                    };
                    if delay == 0 {
                        self.handle(
                            i,
                            Input::ValueValidity {
                                height,
                                block_hash,
                                valid,
                            },
                        )
                    } else {
                        let incarnation = self.nodes[i].incarnation;
                        self.push(
                            delay,
                            EventKind::Validity {
                                node: i,
                                incarnation,
                                height,
                                hash: block_hash,
                                valid,
                            },
                        );
                        Vec::new()
                    }
                }
                Output::Decide {
                    height,
                    block_hash,
                    payload,
                    certificate,
                } => self.on_decide(i, height, block_hash, payload, certificate),
                Output::Evidence(evidence) => {
                    if self.honest(i) {
                        if let Err(e) = self.oracle.on_evidence(&evidence) {
                            self.fail(e);
                            return;
                        }
                    }
                    Vec::new()
                }
                Output::Rejected(error) => {
                    if self.verbose {
                        println!("{:>8} node {i} rejected: {error}", self.now);
                    }
                    Vec::new()
                }
            };
            queue.extend(more);
        }
    }

    /// Maybe crash an honest node in the middle of executing its outputs (right after a
    /// `Persist`, or right after a message left): the windows restart safety is about.
    fn crash_point(&mut self, i: usize) -> bool {
        if self.now < self.gst && self.honest(i) && self.rng.chance(self.net.crash_mid_output_ppm) {
            self.crash(i);
            return true;
        }
        false
    }

    fn handle(&mut self, i: usize, input: Input) -> Vec<Output> {
        let trace_node = self.verbose && super::env_u64("YRD_SIM_TRACE_NODE") == Some(i as u64);
        if trace_node {
            println!("{:>8} node {i} <- {input:?}", self.now);
        }
        let outputs = self.nodes[i]
            .core
            .as_mut()
            .map(|core| core.handle(input))
            .unwrap_or_default();
        if trace_node {
            for output in &outputs {
                println!("{:>8} node {i} -> {output:?}", self.now);
            }
        }
        outputs
    }

    fn on_decide(
        &mut self,
        i: usize,
        height: Height,
        block_hash: BlockHash,
        payload: Vec<u8>,
        certificate: CommitCertificate,
    ) -> Vec<Output> {
        if self.verbose {
            println!(
                "{:>8} node {i} decides height {} {block_hash:?} (round {})",
                self.now, height.0, certificate.round.0
            );
        }
        fnv(&mut self.trace, height.0);
        fnv(
            &mut self.trace,
            u64::from_le_bytes(block_hash.0[..8].try_into().unwrap_or([0; 8])),
        );
        if self.honest(i) {
            if let Err(e) = self
                .oracle
                .on_decide(i, height.0, block_hash, &payload, &certificate)
            {
                self.fail(e);
                return Vec::new();
            }
            if self.scenario.fault == Fault::None {
                if let Some(Some(start)) = self.start_ms.get(height.0 as usize) {
                    self.latencies_ms.push(self.now - start);
                }
            }
        }
        if self.honest(i) && self.now > self.gst {
            let since = self.nodes[i].last_progress_ms.max(self.gst);
            self.max_gap_after_gst_ms = self.max_gap_after_gst_ms.max(self.now - since);
        }
        let node = &mut self.nodes[i];
        if node.chain.len() as u64 + 1 != height.0 {
            self.fail(format!("node {i} decided height {} out of order", height.0));
            return Vec::new();
        }
        node.chain.push(Decided {
            block_hash,
            payload,
            certificate,
        });
        node.sent.clear();
        node.alt_views.clear();
        node.wal_votes.clear();
        node.wal_proposals.clear();
        node.last_progress_ms = self.now;
        let next = height.next();
        self.note_start(next.0);
        self.handle(
            i,
            Input::StartHeight {
                height: next,
                validators: self.validators.clone(),
            },
        )
    }

    fn send(&mut self, from: usize, to: usize, msg: NetMsg) {
        let faulty = self.now < self.gst;
        if faulty {
            if self.net.partitions && self.nodes[from].group != self.nodes[to].group {
                return;
            }
            if self.rng.chance(self.net.drop_ppm) {
                return;
            }
        }
        let mut delay = self.rng.range(DELAY_MIN_MS, DELAY_MAX_MS);
        if faulty && self.rng.chance(self.net.slow_ppm) {
            delay += self.rng.below(self.net.slow_max_ms + 1);
        }
        if faulty && self.rng.chance(self.net.dup_ppm) {
            let again = delay + self.rng.below(self.net.slow_max_ms + 50);
            self.push(
                again,
                EventKind::Deliver {
                    to,
                    msg: msg.clone(),
                    from,
                },
            );
        }
        self.push(delay, EventKind::Deliver { to, msg, from });
    }

    fn broadcast(&mut self, from: usize, msg: &NetMsg) {
        for to in 0..self.nodes.len() {
            if to != from {
                self.send(from, to, msg.clone());
            }
        }
    }

    fn broadcast_proposal(&mut self, i: usize, proposal: SignedProposal, payload: Vec<u8>) {
        match self.nodes[i].behaviour {
            Behaviour::Silent => {}
            Behaviour::EquivocatingProposer => {
                // A second, fresh proposal for the same round (no proof of lock, sometimes
                // invalid), shown to some peers, who later also get votes for it: an attack
                // on locked validators.
                let p = proposal.proposal;
                let valid = self.rng.chance(800_000);
                let nonce = self.rng.next_u64();
                let alt_payload = make_payload(p.height.0, p.round.0, p.proposer, nonce, valid);
                let alt_hash = payload_hash(&alt_payload);
                self.oracle.on_proposed(alt_hash);
                let mut alt = p;
                alt.block_hash = alt_hash;
                alt.pol_round = None;
                let key = self.keys[self.nodes[i].key];
                let alt_signed = SignedProposal {
                    proposal: alt,
                    signature: test_sign(&key, &SignRequest::Proposal(alt).message(CHAIN_ID)),
                };
                let first = NetMsg::Proposal(proposal, payload);
                let second = NetMsg::Proposal(alt_signed, alt_payload);
                let mut shown_alt = vec![false; self.nodes.len()];
                for (to, shown) in shown_alt.iter_mut().enumerate() {
                    if to == i {
                        continue;
                    }
                    match self.rng.below(5) {
                        0 | 1 => self.send(i, to, first.clone()),
                        2 | 3 => {
                            *shown = true;
                            self.send(i, to, second.clone());
                        }
                        _ => {
                            *shown = true;
                            self.send(i, to, second.clone());
                            self.send(i, to, first.clone());
                        }
                    }
                }
                self.nodes[i]
                    .alt_views
                    .insert((p.height.0, p.round.0), (alt_hash, shown_alt));
                self.nodes[i].sent.push(first);
                self.nodes[i].sent.push(second);
            }
            _ => {
                let msg = NetMsg::Proposal(proposal, payload);
                self.broadcast(i, &msg);
                self.nodes[i].sent.push(msg);
            }
        }
    }

    fn broadcast_vote(&mut self, i: usize, vote: SignedVote) {
        let v = vote.vote;
        let alt_view = self.nodes[i]
            .alt_views
            .get(&(v.height.0, v.round.0))
            .cloned();
        match self.nodes[i].behaviour {
            Behaviour::Silent => {}
            Behaviour::EquivocatingProposer
                if alt_view.is_none()
                    && v.kind == yrd_consensus::VoteKind::Precommit
                    && v.block_hash.is_some() =>
            {
                // Withhold the precommit from a random subset (they get nil): some peers can
                // decide while others stay locked, the set-up for attacking locks next round.
                let mut nil = v;
                nil.block_hash = None;
                let key = self.keys[self.nodes[i].key];
                let nil_signed = SignedVote {
                    vote: nil,
                    signature: test_sign(&key, &SignRequest::Vote(nil).message(CHAIN_ID)),
                };
                for to in 0..self.nodes.len() {
                    if to != i {
                        let msg = if self.rng.chance(500_000) {
                            vote
                        } else {
                            nil_signed
                        };
                        self.send(i, to, NetMsg::Vote(msg));
                    }
                }
            }
            Behaviour::EquivocatingProposer if alt_view.is_some() => {
                // Vote for the second value towards those who were shown it.
                let Some((alt_hash, shown_alt)) = alt_view else {
                    return;
                };
                let mut alt = v;
                alt.block_hash = Some(alt_hash);
                let key = self.keys[self.nodes[i].key];
                let alt_signed = SignedVote {
                    vote: alt,
                    signature: test_sign(&key, &SignRequest::Vote(alt).message(CHAIN_ID)),
                };
                for (to, shown) in shown_alt.iter().enumerate() {
                    if to != i {
                        let msg = if *shown { alt_signed } else { vote };
                        self.send(i, to, NetMsg::Vote(msg));
                    }
                }
                self.nodes[i].sent.push(NetMsg::Vote(vote));
                self.nodes[i].sent.push(NetMsg::Vote(alt_signed));
            }
            Behaviour::DoubleVoter => {
                let mut alt = vote.vote;
                alt.block_hash = match alt.block_hash {
                    Some(_) => None,
                    None => {
                        let mut bytes = [0u8; 32];
                        bytes[..8].copy_from_slice(&self.rng.next_u64().to_be_bytes());
                        Some(BlockHash(bytes))
                    }
                };
                let key = self.keys[self.nodes[i].key];
                let alt_signed = SignedVote {
                    vote: alt,
                    signature: test_sign(&key, &SignRequest::Vote(alt).message(CHAIN_ID)),
                };
                let first = NetMsg::Vote(vote);
                let second = NetMsg::Vote(alt_signed);
                for to in 0..self.nodes.len() {
                    if to == i {
                        continue;
                    }
                    match self.rng.below(4) {
                        0 => self.send(i, to, first.clone()),
                        1 => self.send(i, to, second.clone()),
                        _ => {
                            self.send(i, to, second.clone());
                            self.send(i, to, first.clone());
                        }
                    }
                }
                self.nodes[i].sent.push(first);
                self.nodes[i].sent.push(second);
            }
            _ => {
                let msg = NetMsg::Vote(vote);
                self.broadcast(i, &msg);
                self.nodes[i].sent.push(msg);
            }
        }
    }

    fn deliver(&mut self, to: usize, from: usize, msg: NetMsg) {
        if self.nodes[to].core.is_none() {
            return;
        }
        match msg {
            NetMsg::Proposal(proposal, payload) => {
                // The host's wire check: the payload must hash to the signed block hash.
                if payload_hash(&payload) != proposal.proposal.block_hash {
                    return;
                }
                if proposal.proposal.height.0 == self.nodes[to].chain.len() as u64 + 1 {
                    self.nodes[to]
                        .wal_proposals
                        .insert(proposal, payload.clone());
                }
                self.feed(to, Input::Proposal { proposal, payload });
            }
            NetMsg::Vote(vote) => {
                if vote.vote.height.0 == self.nodes[to].chain.len() as u64 + 1 {
                    self.nodes[to].wal_votes.insert(vote);
                }
                self.feed(to, Input::Vote(vote));
            }
            NetMsg::Status(height) => {
                if self.nodes[to].behaviour == Behaviour::Silent {
                    return;
                }
                let chain = &self.nodes[to].chain;
                let first = height.saturating_sub(1) as usize;
                if first < chain.len() {
                    let last = (first + SYNC_BLOCKS_MAX).min(chain.len());
                    let blocks = chain[first..last].to_vec();
                    self.send(to, from, NetMsg::Blocks(blocks));
                }
            }
            NetMsg::Blocks(blocks) => {
                for block in blocks {
                    let Some(core) = self.nodes[to].core.as_ref() else {
                        return;
                    };
                    if core.height() != block.certificate.height {
                        continue;
                    }
                    if payload_hash(&block.payload) != block.block_hash {
                        continue;
                    }
                    self.feed(
                        to,
                        Input::DecidedElsewhere {
                            block_hash: block.block_hash,
                            payload: block.payload,
                            certificate: block.certificate,
                        },
                    );
                }
            }
        }
    }

    fn tick(&mut self, i: usize) {
        self.push(TICK_MS, EventKind::Tick { node: i });
        let target = self.scenario.heights;
        if self.honest(i)
            && self.now > self.gst
            && (self.nodes[i].chain.len() as u64) < target
            && self.now - self.nodes[i].last_progress_ms.max(self.gst) > LIVENESS_BOUND_MS
        {
            let states = self.describe();
            self.fail(format!(
                "LIVENESS: honest node {i} decided nothing for {LIVENESS_BOUND_MS} ms after GST \
                 (at height {}, GST {} ms, now {} ms); nodes: {states}",
                self.nodes[i].chain.len() + 1,
                self.gst,
                self.now
            ));
            return;
        }
        if self.nodes[i].core.is_none() {
            return;
        }
        if self.now < self.gst && self.honest(i) && self.rng.chance(self.net.crash_ppm_per_tick) {
            self.crash(i);
            return;
        }
        let height = self.nodes[i].chain.len() as u64 + 1;
        if self.nodes[i].tick_height != height {
            self.nodes[i].stalled_ticks = 0;
        } else {
            self.nodes[i].stalled_ticks += 1;
        }
        self.nodes[i].tick_height = height;
        if self.nodes[i].stalled_ticks >= GOSSIP_AFTER_STALLED_TICKS
            && self.nodes[i].behaviour != Behaviour::Silent
        {
            // Stalled for a tick: gossip again (the core says what; Byzantine nodes repeat
            // their own equivocations), and ask for blocks we lack.
            let behaviour = self.nodes[i].behaviour;
            let mut again = if behaviour == Behaviour::DoubleVoter {
                self.nodes[i].sent.clone()
            } else {
                Vec::new()
            };
            // The lock attacker keeps its split views: it never gossips.
            let gossip = match (&self.nodes[i].core, behaviour) {
                (Some(core), b) if b != Behaviour::EquivocatingProposer => core.rebroadcast(),
                _ => Vec::new(),
            };
            for output in gossip {
                match output {
                    Output::BroadcastVote(vote) => again.push(NetMsg::Vote(vote)),
                    Output::BroadcastProposal { proposal, payload } => {
                        again.push(NetMsg::Proposal(proposal, payload));
                    }
                    _ => {}
                }
            }
            for msg in &again {
                self.broadcast(i, msg);
            }
            if self.nodes[i].stalled_ticks >= SYNC_AFTER_STALLED_TICKS {
                self.broadcast(i, &NetMsg::Status(height));
            }
        }
    }

    /// Each node's key, behaviour and (height, round, step), for failure reports.
    fn describe(&self) -> String {
        let mut out = String::new();
        for (i, node) in self.nodes.iter().enumerate() {
            let state = node.core.as_ref().map_or("down".to_string(), |c| {
                format!(
                    "h{} r{} {:?} lock {:?}",
                    c.height().0,
                    c.round().0,
                    c.step(),
                    c.safety_data().locked
                )
            });
            out.push_str(&format!(
                "\n    node {i} key {} {:?}: {state}",
                node.key, node.behaviour
            ));
        }
        out
    }

    fn repartition(&mut self) {
        if self.now >= self.gst {
            for node in &mut self.nodes {
                node.group = 0;
            }
            return;
        }
        let split = self.rng.chance(750_000);
        let mut twin_seen = vec![false; self.keys.len()];
        for i in 0..self.nodes.len() {
            let group = if !split {
                0
            } else if self.nodes[i].behaviour == Behaviour::Twin {
                // Twins of one key always sit on opposite sides.
                let key = self.nodes[i].key;
                let side = u8::from(twin_seen[key]);
                twin_seen[key] = true;
                side
            } else {
                self.rng.below(2) as u8
            };
            self.nodes[i].group = group;
        }
        let next = self.rng.range(300, 3000);
        self.push(next, EventKind::Repartition);
    }

    fn all_done(&self) -> bool {
        self.nodes.iter().all(|node| {
            node.behaviour != Behaviour::Honest || node.chain.len() as u64 >= self.scenario.heights
        })
    }

    fn run(mut self) -> Result<Outcome, String> {
        for i in 0..self.nodes.len() {
            if self.nodes[i].behaviour != Behaviour::Silent {
                self.start_node(i);
            }
            let offset = self.rng.below(TICK_MS);
            self.push(offset, EventKind::Tick { node: i });
        }
        if self.net.partitions {
            self.push(0, EventKind::Repartition);
            self.push(self.gst, EventKind::Repartition);
        }
        let deadline = self.gst + (self.scenario.heights + 2) * LIVENESS_BOUND_MS;
        while !self.all_done() {
            let Some(Reverse(event)) = self.queue.pop() else {
                return Err("event queue ran dry".to_string());
            };
            self.now = event.time;
            self.events += 1;
            fnv(&mut self.trace, event.time);
            fnv(&mut self.trace, event.seq);
            if self.now > deadline {
                return Err(format!("LIVENESS: virtual deadline {deadline} ms passed"));
            }
            match event.kind {
                EventKind::Deliver { to, msg, from } => {
                    fnv(&mut self.trace, to as u64);
                    self.deliver(to, from, msg);
                }
                EventKind::Timeout {
                    node,
                    incarnation,
                    timeout,
                } => {
                    if self.nodes[node].incarnation == incarnation {
                        self.feed(node, Input::TimeoutFired(timeout));
                    }
                }
                EventKind::Validity {
                    node,
                    incarnation,
                    height,
                    hash,
                    valid,
                } => {
                    if self.nodes[node].incarnation == incarnation {
                        self.feed(
                            node,
                            Input::ValueValidity {
                                height,
                                block_hash: hash,
                                valid,
                            },
                        );
                    }
                }
                EventKind::Tick { node } => self.tick(node),
                EventKind::Restart { node } => {
                    if self.nodes[node].core.is_none() {
                        if self.verbose {
                            println!("{:>8} node {node} restarts", self.now);
                        }
                        self.start_node(node);
                    }
                }
                EventKind::Repartition => self.repartition(),
            }
            if let Some(failure) = self.failure.take() {
                return Err(failure);
            }
        }
        Ok(Outcome {
            trace_hash: self.trace,
            heights: self.scenario.heights,
            events: self.events,
            virtual_ms: self.now,
            latencies_ms: self.latencies_ms,
            evidence: self.oracle.evidence,
            lock_changes: self.lock_breaks,
            max_gap_after_gst_ms: self.max_gap_after_gst_ms,
        })
    }
}

/// Runs one scenario; `Err` carries the oracle's or the liveness check's complaint.
pub fn run(scenario: Scenario, verbose: bool) -> Result<Outcome, String> {
    World::new(scenario, verbose).run()
}
