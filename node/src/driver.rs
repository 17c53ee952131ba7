//! The consensus driver: the one place that turns the consensus core's outputs into I/O. It owns
//! the core, builds and validates blocks, executes decided blocks through the chaincode and
//! commits them, catches up from peers (fetching in the background), and hands gossiped
//! transactions to the admission thread.
//!
//! Invariants kept here:
//! - outputs of one `handle` call are executed in order, and `Persist` is durable (a synced
//!   RocksDB write) before any later output, so no vote leaves before the safety data is on disk;
//! - a block is committed only with a commit certificate that verifies against the validator set
//!   of its height, and only if executing it reproduces its header's receipts and state roots;
//!   a certified block whose execution disagrees is a broken invariant and stops the node;
//! - heights are committed one after another, each on top of the previous block hash;
//! - a commit is announced (commit notices, so `SubmitAndWait` and `StreamBlocks`) only once it
//!   is durable: the write-ahead log is synced beside the next height by [`WalSyncer`].

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::{Signer, SigningKey};
use prost::Message;
use tokio::sync::{broadcast, mpsc, watch};
use tracing::{debug, info, warn};
use yrd_chaincode::members::validator_set_for_height;
use yrd_chaincode::state::Overlay;
use yrd_chaincode::{execute_block, BlockContext, BlockOutcome, StateRead};
use yrd_consensus::{
    BlockHash, CommitCertificate, Config, Consensus, Ed25519, Height, Input, Output, PublicKey,
    Round, SafetyData, Signature, SignedProposal, TimeoutConfig, ValidatorSet,
};
use yrd_proto::block::{block_hash, merkle_root, receipts_root};
use yrd_proto::limits::{BLOCK_BYTES_MAX, BLOCK_TRANSACTIONS_MAX};
use yrd_proto::signing::{
    envelope_hash, transaction_hash, transaction_ref, verify_transactions, Hash,
    VerifiedTransaction,
};
use yrd_proto::v1;

use crate::admission::{now_ms, AdmissionQueue};
use crate::config::ConsensusConfig;
use crate::mempool::Mempool;
use crate::network::{NetworkEvent, NetworkHandle};
use crate::storage::{ChainTip, CommitBatch, Staged, StateUpdate, Store};
use crate::wal_sync::WalSyncer;
use crate::wire;

/// Blocks executed ahead of their decision, kept by hash; cleared at every commit.
const PREPARED_BLOCKS_MAX: usize = 16;
/// Blocks asked of a peer at once when catching up.
const SYNC_BATCH_BLOCKS: u32 = 32;
/// Timeouts waiting to be handed to the core.
const TIMEOUT_QUEUE: usize = 1_024;
/// Transactions in one gossiped batch, at most.
const GOSSIP_BATCH_TRANSACTIONS_MAX: usize = 1_024;
/// Period of the driver's housekeeping tick, ms: proposing when a wait ends, syncing, stalls.
const TICK_MS: u64 = 20;
/// Without progress for this long, the driver re-sends its messages and asks peers for blocks.
const STALL_MS: u64 = 2_000;
/// Proposals by reference of the current height kept until judged, at most.
const UNLOGGED_PROPOSALS_MAX: usize = 64;
/// Blocks of the current height waiting for transactions asked of peers, at most.
const AWAITING_BLOCKS_MAX: usize = 8;
/// Fetches of a proposal's missing transactions before it is left unjudged (the round's
/// timeout then moves on); a decided block keeps waiting, and block sync also brings it.
const TRANSACTION_FETCH_ATTEMPTS: u32 = 3;
/// Added before each fetch of a block's transactions after the second, ms.
const FETCH_BACKOFF_STEP_MS: u64 = 250;
/// Longest wait before fetching a block's transactions again, ms.
const FETCH_BACKOFF_MAX_MS: u64 = 2_000;
/// Period of the storage log line (files, their memory, the block cache), ms.
const STORAGE_LOG_MS: u64 = 60_000;
/// A synced write of the safety data that takes longer than this, ms, is logged as a warning:
/// every proposal and vote of this validator waits for one, so a slow disk shows as slow
/// heights.
const SLOW_SYNC_WARN_MS: u128 = 200;

/// Why the driver stopped.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// Storage failed; the node cannot continue safely.
    #[error("storage: {0}")]
    Storage(String),
    /// A node invariant is broken (for example a certified block that executes differently).
    #[error("invariant broken: {0}")]
    Invariant(String),
}

/// What the rest of the node shares with the driver.
#[derive(Clone)]
pub struct Shared {
    /// The chain id.
    pub chain_id: String,
    /// The database.
    pub store: Arc<Store>,
    /// The mempool.
    pub mempool: Arc<Mempool>,
    /// The network.
    pub network: NetworkHandle,
    /// Commit notices: the height committed and durable, each time it moves (see
    /// [`crate::wal_sync`]).
    pub commits: broadcast::Sender<u64>,
    /// Whether this node is a validator of the current height.
    pub is_validator: Arc<AtomicBool>,
    /// This node's public key.
    pub node_public_key: [u8; 32],
    /// The admission thread.
    pub admission: AdmissionQueue,
}

/// A block executed before its decision.
struct Prepared {
    block: v1::Block,
    receipts: Vec<v1::Receipt>,
    state: StateUpdate,
    /// The next validator set, when the block changes it.
    next_validators: Option<Vec<[u8; 32]>>,
}

impl Prepared {
    /// The hashes of the block's transactions, from its receipts.
    fn transaction_hashes(&self) -> Vec<Hash> {
        self.receipts
            .iter()
            .filter_map(|r| r.tx_hash.as_slice().try_into().ok())
            .collect()
    }
}

/// When a proposer that was asked for a block proposes it.
#[derive(Clone, Copy, Debug)]
struct ProposalWait {
    /// The end of the minimum interval after the last commit.
    earliest: Instant,
    /// When an empty block is proposed if nothing arrived.
    if_empty: Instant,
    /// Half the block's transaction limit, rounded up.
    half_block: usize,
}

impl ProposalWait {
    /// Whether to propose now, with `waiting` transactions in the mempool: half a block or more
    /// is waiting (the block's fixed cost is then spread well enough, and waiting longer would
    /// only add latency), or clients are being refused (none are taken until a block leaves), or
    /// the minimum interval has passed and there are transactions (or the empty-block wait is
    /// over).
    fn ready(&self, now: Instant, waiting: usize, accepts_clients: bool) -> bool {
        waiting >= self.half_block
            || (waiting > 0 && !accepts_clients)
            || (now >= self.earliest && (waiting > 0 || now >= self.if_empty))
    }
}

/// Why a proposed or synced block is not valid.
#[derive(Debug)]
struct Invalid(String);

/// A judged block: valid and executed, or naming transactions this node does not hold yet.
enum Judged {
    Valid(Box<Prepared>),
    Missing {
        /// The hashes of the transactions to fetch.
        hashes: Vec<Hash>,
        /// The key of the block's proposer, asked first.
        proposer: [u8; 32],
    },
}

/// A block of the current height whose transactions are not all at hand: they are asked of
/// peers, and the block is judged again when they arrive.
struct Awaiting {
    height: u64,
    /// The round it was proposed in, or `None` for a decided block.
    round: Option<Round>,
    payload: Vec<u8>,
    /// A decided block's certificate: the block is committed once it resolves.
    certificate: Option<CommitCertificate>,
    proposer: [u8; 32],
    /// Fetches sent so far.
    attempts: u32,
}

/// Whether a proposed block names its transactions by reference.
fn names_transactions(block: &v1::Block) -> bool {
    !block.transaction_refs.is_empty()
}

/// Refuses a block whose `count` transactions (carried or named) are not the header's count
/// or more than a block may hold.
fn check_count(header: &v1::BlockHeader, count: usize) -> Result<(), Invalid> {
    if count > BLOCK_TRANSACTIONS_MAX || header.transaction_count as usize != count {
        return Err(Invalid("transaction count is wrong or too large".into()));
    }
    Ok(())
}

/// Transactions fetched for a block: its hash and the encoded envelopes a peer sent.
type Fetched = ([u8; 32], Result<Vec<Vec<u8>>, String>);

/// The transactions a proposal names, from the mempool or from those fetched, each the exact
/// envelope named (its signatures included); or the hashes of those not at hand. The
/// references must match the header's count and transactions root before anything is fetched
/// for them, and a block may not carry both transactions and references.
fn resolve(
    header: &v1::BlockHeader,
    refs: &[v1::TransactionRef],
    also_carried: usize,
    mempool: &Mempool,
    fetched: &HashMap<Hash, VerifiedTransaction>,
) -> Result<Result<Vec<VerifiedTransaction>, Vec<Hash>>, Invalid> {
    if also_carried > 0 {
        return Err(Invalid(
            "block carries both transactions and references".into(),
        ));
    }
    check_count(header, refs.len())?;
    let mut named = Vec::with_capacity(refs.len());
    for r in refs {
        let hash = Hash::try_from(r.hash.as_slice());
        let envelope = Hash::try_from(r.envelope_hash.as_slice());
        match (hash, envelope) {
            (Ok(hash), Ok(envelope)) => named.push((hash, envelope)),
            _ => return Err(Invalid("a transaction reference is malformed".into())),
        }
    }
    let hashes: Vec<Hash> = named.iter().map(|(hash, _)| *hash).collect();
    if merkle_root(&hashes).as_slice() != header.transactions_root.as_slice() {
        return Err(Invalid(
            "transaction references do not match the transactions root".into(),
        ));
    }
    let waiting = mempool.get_many(&hashes);
    let mut transactions = Vec::with_capacity(named.len());
    let mut missing = Vec::new();
    for ((hash, envelope), waiting) in named.iter().zip(waiting) {
        let found = waiting
            .filter(|t| envelope_hash(&t.envelope) == *envelope)
            .map(|t| (*t).clone())
            .or_else(|| {
                fetched
                    .get(hash)
                    .filter(|t| envelope_hash(&t.envelope) == *envelope)
                    .cloned()
            });
        match found {
            Some(transaction) => transactions.push(transaction),
            None => missing.push(*hash),
        }
    }
    if missing.is_empty() {
        Ok(Ok(transactions))
    } else {
        missing.sort_unstable();
        missing.dedup();
        Ok(Err(missing))
    }
}

/// The driver's state.
pub struct Driver {
    shared: Shared,
    key: SigningKey,
    config: ConsensusConfig,
    consensus: Option<Consensus<Ed25519>>,
    validators: Option<ValidatorSet>,
    prepared: BTreeMap<[u8; 32], Prepared>,
    timeouts_tx: mpsc::Sender<yrd_consensus::Timeout>,
    timeouts_rx: mpsc::Receiver<yrd_consensus::Timeout>,
    /// The core asked for a block: `(height, round, earliest, latest if empty)`.
    waiting_value: Option<(Height, Round, Instant, Instant)>,
    /// When the last block was committed: the start of the minimum interval before the next
    /// proposal.
    last_commit: Instant,
    highest_seen: u64,
    last_progress: Instant,
    /// Consensus messages logged for the current height.
    logged: u32,
    /// Whether a block fetch from a peer is under way.
    sync_in_flight: bool,
    /// Makes commits durable and announces them, once [`Driver::run`] started it.
    wal_syncer: Option<WalSyncer>,
    /// A decided block not yet written: only while this validator, the next height's first
    /// proposer, builds its proposal on top of it (see `Output::Decide`).
    staged: Option<Staged>,
    /// Blocks of the current height waiting for transactions asked of peers, by hash.
    awaiting: BTreeMap<[u8; 32], Awaiting>,
    /// Verified transactions fetched for the awaiting blocks; cleared at every height.
    fetched: HashMap<Hash, VerifiedTransaction>,
    /// Proposals by reference of the current height not logged yet, by round and block hash:
    /// each is logged with its transactions once found valid.
    unlogged: BTreeMap<(u32, [u8; 32]), SignedProposal>,
    fetched_tx: mpsc::Sender<Fetched>,
    fetched_rx: mpsc::Receiver<Fetched>,
}

fn storage(error: impl std::fmt::Display) -> DriverError {
    DriverError::Storage(error.to_string())
}

/// The broken invariant of a block certified by a quorum that does not execute here.
fn certified_but_invalid(height: u64, reason: &str) -> DriverError {
    DriverError::Invariant(format!(
        "block {height} was certified by a quorum but does not execute here: {reason}"
    ))
}

impl Driver {
    /// A driver for `shared` signing with `key`.
    #[must_use]
    pub fn new(shared: Shared, key: SigningKey, config: ConsensusConfig) -> Self {
        let (timeouts_tx, timeouts_rx) = mpsc::channel(TIMEOUT_QUEUE);
        let (fetched_tx, fetched_rx) = mpsc::channel(AWAITING_BLOCKS_MAX);
        Self {
            shared,
            key,
            config,
            consensus: None,
            validators: None,
            prepared: BTreeMap::new(),
            timeouts_tx,
            timeouts_rx,
            waiting_value: None,
            last_commit: Instant::now(),
            sync_in_flight: false,
            highest_seen: 0,
            last_progress: Instant::now(),
            logged: 0,
            wal_syncer: None,
            staged: None,
            awaiting: BTreeMap::new(),
            fetched: HashMap::new(),
            unlogged: BTreeMap::new(),
            fetched_tx,
            fetched_rx,
        }
    }

    fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// The last decided block: the staged one if any, else the stored tip.
    fn base_tip(&self) -> ChainTip {
        self.staged
            .as_ref()
            .map_or_else(|| self.shared.store.tip(), Staged::tip)
    }

    /// The validator set that decides `height`, from the decided state.
    fn validator_set_for(&self, height: u64) -> Result<ValidatorSet, DriverError> {
        let state = self.shared.store.state_on(self.staged.as_ref());
        let records = validator_set_for_height(&state, height).map_err(storage)?;
        state.check().map_err(storage)?;
        wire::validator_set(&records)
            .map_err(|e| DriverError::Invariant(format!("validator set of height {height}: {e}")))
    }

    /// Starts consensus at the height after the tip (as a validator if the set includes us).
    fn start_height(&mut self) -> Result<(), DriverError> {
        let height = self.base_tip().height + 1;
        let validators = self.validator_set_for(height)?;
        let ours = validators.index_of(&PublicKey(self.public_key())).is_some();
        self.shared.is_validator.store(ours, Ordering::Relaxed);
        self.validators = Some(validators.clone());
        self.prepared.clear();
        self.awaiting.clear();
        self.fetched.clear();
        self.unlogged.clear();
        self.waiting_value = None;
        if !ours {
            self.consensus = None;
            return Ok(());
        }
        let restoring = self.consensus.is_none();
        if restoring {
            let config = Config {
                chain_id: self.shared.chain_id.clone(),
                public_key: PublicKey(self.public_key()),
                timeouts: TimeoutConfig {
                    propose_base_ms: self.config.timeout_propose_ms,
                    propose_delta_ms: self.config.timeout_propose_ms / 2,
                    prevote_base_ms: self.config.timeout_vote_ms,
                    prevote_delta_ms: self.config.timeout_vote_ms / 2,
                    precommit_base_ms: self.config.timeout_vote_ms,
                    precommit_delta_ms: self.config.timeout_vote_ms / 2,
                },
                scheme: Ed25519,
                breaks: Default::default(),
            };
            let saved = self.shared.store.load_safety_data().map_err(storage)?;
            let consensus = match saved {
                Some(bytes) => {
                    let safety = SafetyData::decode(&bytes).map_err(|e| {
                        DriverError::Invariant(format!(
                            "stored consensus safety data does not decode: {e}"
                        ))
                    })?;
                    info!(height = safety.height.0, "restoring consensus safety data");
                    Consensus::restore(config, safety)
                }
                None => Consensus::new(config),
            }
            .map_err(|e| DriverError::Invariant(format!("consensus: {e}")))?;
            self.consensus = Some(consensus);
        }
        info!(height, "starting height as a validator");
        let logged = if restoring {
            self.shared
                .store
                .consensus_messages(height)
                .map_err(storage)?
        } else {
            Vec::new()
        };
        // New messages are logged after those already there.
        self.logged = u32::try_from(logged.len()).unwrap_or(u32::MAX);
        self.feed(Input::StartHeight {
            height: Height(height),
            validators,
        })?;
        if !logged.is_empty() {
            // Hand back what this validator saw of the height before it stopped, the block it
            // may be locked on among them, so that it can still help decide the height.
            info!(
                height,
                messages = logged.len(),
                "replaying the consensus log of the height"
            );
            for bytes in logged {
                let message = v1::ConsensusMessage::decode(bytes.as_slice()).ok();
                if let Some((input, _)) = message.and_then(|m| self.consensus_input(m)) {
                    self.feed(input)?;
                }
            }
        }
        Ok(())
    }

    /// Logs a consensus message of the current height (see `Store::log_consensus_message`).
    fn log_message(&mut self, height: u64, bytes: &[u8]) {
        let current = self.consensus.as_ref().map(|c| c.height().0);
        if current != Some(height) || self.logged >= crate::storage::CONSENSUS_LOG_MESSAGES_MAX {
            return;
        }
        match self
            .shared
            .store
            .log_consensus_message(height, self.logged, bytes)
        {
            Ok(()) => self.logged += 1,
            Err(error) => warn!(%error, "consensus message not logged"),
        }
    }

    /// Hands an input to the core and executes its outputs, and those of the inputs they cause.
    fn feed(&mut self, input: Input) -> Result<(), DriverError> {
        let mut inputs = VecDeque::from([input]);
        while let Some(input) = inputs.pop_front() {
            let Some(consensus) = self.consensus.as_mut() else {
                return Ok(());
            };
            let outputs = consensus.handle(input);
            for output in outputs {
                if let Some(next) = self.execute(output)? {
                    inputs.push_back(next);
                }
            }
        }
        Ok(())
    }

    /// Executes one output; returns the input it answers with, if any.
    fn execute(&mut self, output: Output) -> Result<Option<Input>, DriverError> {
        match output {
            Output::Persist(safety) => {
                let started = Instant::now();
                self.shared
                    .store
                    .save_safety_data(&safety.encode())
                    .map_err(storage)?;
                let took_ms = started.elapsed().as_millis();
                if took_ms > SLOW_SYNC_WARN_MS {
                    warn!(
                        took_ms,
                        "a synced write of the consensus safety data was slow: this validator's \
                         proposals and votes wait for the disk"
                    );
                }
                Ok(None)
            }
            Output::Sign(request) => {
                let message = request.message(&self.shared.chain_id);
                let signature = Signature(self.key.sign(&message).to_bytes());
                Ok(Some(Input::Signed { request, signature }))
            }
            Output::BroadcastProposal { proposal, payload } => {
                self.broadcast(wire::proposal_to_wire(&proposal, payload));
                Ok(None)
            }
            Output::BroadcastVote(vote) => {
                self.broadcast(wire::vote_to_wire(&vote));
                Ok(None)
            }
            Output::ScheduleTimeout {
                timeout,
                duration_ms,
            } => {
                let sender = self.timeouts_tx.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(duration_ms)).await;
                    // A closed channel means the driver stopped; nothing to do.
                    let _ = sender.send(timeout).await;
                });
                Ok(None)
            }
            Output::GetValue { height, round } => {
                // Gather transactions for at least the minimum interval since the last commit, so
                // that at low load blocks grow with the load instead of the block rate (unless
                // half a block already waits: see `ready_to_propose`), and wait a little longer
                // before proposing an empty block.
                let now = Instant::now();
                let earliest =
                    self.last_commit + Duration::from_millis(self.config.block_interval_min_ms);
                let if_empty = now + Duration::from_millis(self.config.empty_block_wait_ms);
                self.waiting_value = Some((height, round, earliest, if_empty));
                if self.ready_to_propose(now) {
                    return self.propose(height, round).map(Some);
                }
                Ok(None)
            }
            Output::ValidateValue {
                height,
                round,
                block_hash,
                payload,
            } => {
                let judged = self.validate(height.0, Some(round), &block_hash, &payload);
                let valid = match judged {
                    Ok(Judged::Valid(prepared)) => {
                        self.log_full_proposal(height.0, round, block_hash, &prepared.block);
                        self.keep_prepared(block_hash, *prepared);
                        true
                    }
                    Ok(Judged::Missing { hashes, proposer }) => {
                        let awaiting = Awaiting {
                            height: height.0,
                            round: Some(round),
                            payload,
                            certificate: None,
                            proposer,
                            attempts: 0,
                        };
                        self.await_transactions(block_hash, awaiting, hashes);
                        return Ok(None);
                    }
                    Err(Invalid(reason)) => {
                        warn!(height = height.0, round = round.0, %reason, "proposed block is invalid");
                        false
                    }
                };
                Ok(Some(Input::ValueValidity {
                    height,
                    block_hash,
                    valid,
                }))
            }
            Output::Decide {
                height,
                block_hash,
                payload,
                certificate,
            } => {
                if !self.prepared.contains_key(&block_hash.0) {
                    match self.validate(height.0, None, &block_hash, &payload) {
                        Ok(Judged::Valid(prepared)) => {
                            self.prepared.insert(block_hash.0, *prepared);
                        }
                        Ok(Judged::Missing { hashes, proposer }) => {
                            // Committed once its transactions arrive (or block sync brings it).
                            let awaiting = Awaiting {
                                height: height.0,
                                round: None,
                                payload,
                                certificate: Some(certificate),
                                proposer,
                                attempts: 0,
                            };
                            self.await_transactions(block_hash, awaiting, hashes);
                            return Ok(None);
                        }
                        Err(Invalid(reason)) => {
                            return Err(certified_but_invalid(height.0, &reason))
                        }
                    }
                }
                self.decided(height.0, &block_hash, &payload, &certificate)?;
                Ok(None)
            }
            Output::Evidence(evidence) => {
                warn!(?evidence, "validator misbehaviour detected");
                Ok(None)
            }
            Output::Rejected(error) => {
                debug!(%error, "consensus input rejected");
                Ok(None)
            }
        }
    }

    /// Commits a decided block this node has judged (it is among the prepared ones) and starts
    /// the next height.
    fn decided(
        &mut self,
        height: u64,
        block_hash: &BlockHash,
        payload: &[u8],
        certificate: &CommitCertificate,
    ) -> Result<(), DriverError> {
        // The next height starts on the decided block before it is written if this validator
        // proposes first there: its proposal leaves a write earlier. Nothing else is handled
        // before the write; safety data saved for the proposal in between may run one height
        // ahead of the stored chain, which a restart handles (the core keeps it until that
        // height, the block comes back from the consensus log or from peers).
        self.stage_decided(height, block_hash, payload, certificate)?;
        if !self.staged.as_ref().is_some_and(|s| self.proposes_after(s)) {
            self.write_staged()?;
        }
        self.start_height()?;
        self.write_staged()
    }

    /// Keeps a proposed block found valid until the height is decided.
    fn keep_prepared(&mut self, block_hash: BlockHash, prepared: Prepared) {
        self.mark_in_block(&prepared);
        if self.prepared.len() >= PREPARED_BLOCKS_MAX {
            self.prepared.pop_first();
        }
        self.prepared.insert(block_hash.0, prepared);
    }

    /// Remembers a proposal by reference until it is judged (see [`Driver::log_full_proposal`]).
    fn keep_unlogged(&mut self, proposal: &SignedProposal) {
        if self.unlogged.len() < UNLOGGED_PROPOSALS_MAX {
            let key = (proposal.proposal.round.0, proposal.proposal.block_hash.0);
            self.unlogged.insert(key, *proposal);
        }
    }

    /// Logs a proposal by reference that was just found valid, with its transactions in place
    /// of the references, before this validator votes for it: after a restart the consensus
    /// log then still holds the block this validator may be locked on, though the mempool
    /// that resolved it is gone (and so may be every other's, after a crash of the network).
    fn log_full_proposal(&mut self, height: u64, round: Round, hash: BlockHash, block: &v1::Block) {
        if let Some(proposal) = self.unlogged.remove(&(round.0, hash.0)) {
            let message = wire::proposal_to_wire(&proposal, block.encode_to_vec());
            self.log_message(height, &message.encode_to_vec());
        }
    }

    /// Asks a peer for the transactions of a block that this node does not hold: the block's
    /// proposer first, then the other peers in turn. A proposal beyond
    /// [`AWAITING_BLOCKS_MAX`] is left unjudged; a decided block always waits.
    fn await_transactions(&mut self, block_hash: BlockHash, awaiting: Awaiting, hashes: Vec<Hash>) {
        if awaiting.certificate.is_none()
            && self.awaiting.len() >= AWAITING_BLOCKS_MAX
            && !self.awaiting.contains_key(&block_hash.0)
        {
            warn!(
                height = awaiting.height,
                "too many blocks wait for transactions; proposal left unjudged"
            );
            return;
        }
        debug!(
            height = awaiting.height,
            missing = hashes.len(),
            attempt = awaiting.attempts + 1,
            "asking peers for a block's transactions"
        );
        let peer = (awaiting.attempts == 0).then_some(awaiting.proposer);
        // A decided block asks until it has its transactions: after the first tries, a little
        // later each time, so that peers that cannot answer are not asked in a tight loop.
        let backoff = Duration::from_millis(
            (u64::from(awaiting.attempts.saturating_sub(1)) * FETCH_BACKOFF_STEP_MS)
                .min(FETCH_BACKOFF_MAX_MS),
        );
        let network = self.shared.network.clone();
        let fetched = self.fetched_tx.clone();
        let hash = block_hash.0;
        tokio::spawn(async move {
            tokio::time::sleep(backoff).await;
            let result = network
                .fetch_transactions(peer, hashes)
                .await
                .map_err(|error| error.to_string());
            // A stopped driver no longer needs the answer.
            let _ = fetched.send((hash, result)).await;
        });
        let mut awaiting = awaiting;
        awaiting.attempts += 1;
        self.awaiting.insert(block_hash.0, awaiting);
    }

    /// Takes transactions a peer sent for an awaiting block (only those the block names,
    /// verified) and judges the block again.
    fn on_fetched(&mut self, (hash, result): Fetched) -> Result<(), DriverError> {
        let Some(awaiting) = self.awaiting.remove(&hash) else {
            return Ok(());
        };
        let block = v1::Block::decode(awaiting.payload.as_slice()).unwrap_or_default();
        let wanted: HashSet<(&[u8], &[u8])> = block
            .transaction_refs
            .iter()
            .map(|r| (r.hash.as_slice(), r.envelope_hash.as_slice()))
            .collect();
        match result {
            Ok(entries) => {
                let envelopes: Vec<v1::SignedTransaction> = entries
                    .iter()
                    .filter_map(|bytes| v1::SignedTransaction::decode(bytes.as_slice()).ok())
                    .filter(|envelope| {
                        transaction_hash(&self.shared.chain_id, &envelope.body).is_ok_and(|h| {
                            wanted.contains(&(h.as_slice(), envelope_hash(envelope).as_slice()))
                        })
                    })
                    .collect();
                let mut arrived = 0usize;
                for verified in verify_transactions(envelopes, &self.shared.chain_id)
                    .into_iter()
                    .flatten()
                {
                    self.fetched.insert(verified.hash, verified);
                    arrived += 1;
                }
                if arrived > 0 {
                    info!(
                        height = awaiting.height,
                        transactions = arrived,
                        "a block's missing transactions arrived from a peer"
                    );
                }
            }
            Err(error) => debug!(%error, "fetching a block's transactions failed"),
        }
        let block_hash = BlockHash(hash);
        let judged = self.validate(
            awaiting.height,
            awaiting.round,
            &block_hash,
            &awaiting.payload,
        );
        match (judged, awaiting.round) {
            (Ok(Judged::Valid(prepared)), Some(round)) => {
                self.log_full_proposal(awaiting.height, round, block_hash, &prepared.block);
                self.keep_prepared(block_hash, *prepared);
                self.feed(Input::ValueValidity {
                    height: Height(awaiting.height),
                    block_hash,
                    valid: true,
                })
            }
            (Ok(Judged::Valid(prepared)), None) => {
                self.prepared.insert(hash, *prepared);
                let certificate = awaiting.certificate.ok_or_else(|| {
                    DriverError::Invariant("a decided block awaits without its certificate".into())
                })?;
                info!(
                    height = awaiting.height,
                    "decided block's transactions fetched"
                );
                self.decided(
                    awaiting.height,
                    &block_hash,
                    &awaiting.payload,
                    &certificate,
                )
            }
            (Ok(Judged::Missing { hashes, .. }), round) => {
                if round.is_none() || awaiting.attempts < TRANSACTION_FETCH_ATTEMPTS {
                    self.await_transactions(block_hash, awaiting, hashes);
                } else {
                    warn!(
                        height = awaiting.height,
                        missing = hashes.len(),
                        "peers did not send a proposal's transactions; left unjudged"
                    );
                }
                Ok(())
            }
            (Err(Invalid(reason)), Some(round)) => {
                warn!(height = awaiting.height, round = round.0, %reason, "proposed block is invalid");
                self.feed(Input::ValueValidity {
                    height: Height(awaiting.height),
                    block_hash,
                    valid: false,
                })
            }
            (Err(Invalid(reason)), None) => Err(certified_but_invalid(awaiting.height, &reason)),
        }
    }

    fn broadcast(&self, message: v1::ConsensusMessage) {
        if let Err(error) = self
            .shared
            .network
            .broadcast_consensus(message.encode_to_vec())
        {
            warn!(%error, "consensus message not sent");
        }
    }

    /// Builds, executes and offers the block for `height`.
    fn propose(&mut self, height: Height, round: Round) -> Result<Input, DriverError> {
        self.waiting_value = None;
        let tip = self.base_tip();
        let time_ms = now_ms().max(tip.time_ms + 1);
        let transactions: Vec<VerifiedTransaction> = self
            .shared
            .mempool
            .batch(
                self.config.block_transactions_max,
                self.config.block_bytes_max,
                time_ms,
            )
            .iter()
            .map(|t| (**t).clone())
            .collect();
        let transactions_refs = if self.config.proposals_by_reference {
            transactions.iter().map(transaction_ref).collect()
        } else {
            Vec::new()
        };
        let prepared = self.execute_block_at(height.0, time_ms, self.public_key(), transactions)?;
        let header = prepared
            .block
            .header
            .as_ref()
            .ok_or_else(|| DriverError::Invariant("built a block without a header".into()))?;
        let hash = block_hash(header).map_err(|e| DriverError::Invariant(e.to_string()))?;
        // Peers hold the transactions already (gossiped at admission): the proposal names them,
        // unless configured to carry them for validators older than references.
        let payload = if self.config.proposals_by_reference {
            v1::Block {
                header: prepared.block.header.clone(),
                transactions: Vec::new(),
                transaction_refs: transactions_refs,
            }
            .encode_to_vec()
        } else {
            prepared.block.encode_to_vec()
        };
        info!(
            height = height.0,
            round = round.0,
            transactions = prepared.block.transactions.len(),
            waiting = self.shared.mempool.len(),
            proposal_bytes = payload.len(),
            block_bytes = prepared.block.encoded_len(),
            "proposing block"
        );
        self.mark_in_block(&prepared);
        self.prepared.insert(hash, prepared);
        Ok(Input::ProposeValue {
            height,
            round,
            block_hash: BlockHash(hash),
            payload,
        })
    }

    /// Executes transactions as block `height` over the committed state and builds its header.
    fn execute_block_at(
        &self,
        height: u64,
        time_ms: u64,
        proposer: [u8; 32],
        transactions: Vec<VerifiedTransaction>,
    ) -> Result<Prepared, DriverError> {
        let tip = self.base_tip();
        let state = self.shared.store.state_on(self.staged.as_ref());
        let context = BlockContext {
            chain_id: self.shared.chain_id.clone(),
            height,
            time_ms,
        };
        let started = Instant::now();
        let outcome = execute_block(&state, &context, &transactions)
            .map_err(|e| DriverError::Invariant(format!("executing block {height}: {e}")))?;
        let executed = started.elapsed();
        // A read that failed inside RocksDB reads as absent: such an outcome is not to be used.
        state.check().map_err(storage)?;
        let BlockOutcome { receipts, writes } = outcome;
        let validator_set_hash = self.validator_set_for(height)?.hash();
        let mut after = Overlay::new(&state as &dyn StateRead);
        after.absorb(writes);
        let next = validator_set_for_height(&after, height + 1).map_err(storage)?;
        let writes = after.into_writes();
        let next_set = wire::validator_set(&next)
            .map_err(|e| DriverError::Invariant(format!("next validator set: {e}")))?;
        let next_validator_set_hash = next_set.hash();
        let next_validators = (next_validator_set_hash != validator_set_hash)
            .then(|| next_set.keys().iter().map(|key| key.0).collect());
        let tree_started = Instant::now();
        let writes_count = writes.len();
        let state_update = self
            .shared
            .store
            .prepare_state_on(writes, self.staged.as_ref())
            .map_err(storage)?;
        debug!(
            height,
            transactions = transactions.len(),
            writes = writes_count,
            execute_us = executed.as_micros() as u64,
            tree_us = tree_started.elapsed().as_micros() as u64,
            "block executed"
        );
        if state_update.height() != height {
            return Err(DriverError::Invariant(format!(
                "the tip moved while block {height} executed"
            )));
        }
        let state_root = state_update.root();
        let hashes: Vec<Hash> = transactions.iter().map(|t| t.hash).collect();
        let header = v1::BlockHeader {
            chain_id: self.shared.chain_id.clone(),
            height,
            parent_hash: tip.block_hash.to_vec(),
            time_ms,
            proposer: proposer.to_vec(),
            transactions_root: merkle_root(&hashes).to_vec(),
            receipts_root: receipts_root(&receipts).to_vec(),
            state_root: state_root.to_vec(),
            validator_set_hash: validator_set_hash.to_vec(),
            next_validator_set_hash: next_validator_set_hash.to_vec(),
            transaction_count: u32::try_from(transactions.len()).unwrap_or(u32::MAX),
        };
        let block = v1::Block {
            header: Some(header),
            transactions: transactions.into_iter().map(|t| t.envelope).collect(),
            transaction_refs: Vec::new(),
        };
        Ok(Prepared {
            block,
            receipts,
            state: state_update,
            next_validators,
        })
    }

    /// Marks the transactions of a block proposed or found valid for the current height as
    /// being decided, so that client admission counts only those waiting for the next block.
    fn mark_in_block(&self, prepared: &Prepared) {
        self.shared
            .mempool
            .set_in_block(&prepared.transaction_hashes());
    }

    /// Checks a block for `height` (proposed in `round`, or synced when `round` is `None`):
    /// decodes it, verifies every signature, re-executes it and compares its header.
    fn validate(
        &self,
        height: u64,
        round: Option<Round>,
        hash: &BlockHash,
        payload: &[u8],
    ) -> Result<Judged, Invalid> {
        if payload.len() > BLOCK_BYTES_MAX {
            return Err(Invalid(format!("block is {} bytes", payload.len())));
        }
        let block = v1::Block::decode(payload)
            .map_err(|e| Invalid(format!("block does not decode: {e}")))?;
        let header = block
            .header
            .clone()
            .ok_or_else(|| Invalid("block has no header".into()))?;
        let computed = block_hash(&header).map_err(|e| Invalid(e.to_string()))?;
        if computed != hash.0 {
            return Err(Invalid("block hash does not match its header".into()));
        }
        let tip = self.base_tip();
        if header.chain_id != self.shared.chain_id
            || header.height != height
            || header.height != tip.height + 1
        {
            return Err(Invalid(format!(
                "header is for chain {} height {}",
                header.chain_id, header.height
            )));
        }
        if header.parent_hash != tip.block_hash {
            return Err(Invalid(
                "parent hash is not the last committed block".into(),
            ));
        }
        if header.time_ms <= tip.time_ms {
            return Err(Invalid("block time does not increase".into()));
        }
        if let Some(round) = round {
            if header.time_ms > now_ms() + self.config.block_time_drift_ms {
                return Err(Invalid("block time is too far in the future".into()));
            }
            let validators = self
                .validators
                .as_ref()
                .ok_or_else(|| Invalid("no validator set".into()))?;
            let proposer = validators
                .key(validators.proposer(Height(height), round))
                .map(|k| k.0.to_vec());
            if proposer.as_deref() != Some(header.proposer.as_slice()) {
                return Err(Invalid("header names another proposer".into()));
            }
        }
        let transactions = if block.transaction_refs.is_empty() {
            check_count(&header, block.transactions.len())?;
            self.verify_once(block.transactions)
                .map_err(|e| Invalid(format!("a transaction fails verification: {e}")))?
        } else {
            let refs = &block.transaction_refs;
            match resolve(
                &header,
                refs,
                block.transactions.len(),
                &self.shared.mempool,
                &self.fetched,
            )? {
                Ok(transactions) => transactions,
                Err(hashes) => {
                    let proposer = header.proposer.as_slice().try_into().unwrap_or([0; 32]);
                    return Ok(Judged::Missing { hashes, proposer });
                }
            }
        };
        let prepared = self
            .execute_block_at(
                height,
                header.time_ms,
                header.proposer.clone().try_into().unwrap_or([0; 32]),
                transactions,
            )
            .map_err(|e| Invalid(e.to_string()))?;
        // The rebuilt block holds the same envelopes; only its header can differ.
        if prepared.block.header.as_ref() != Some(&header) {
            return Err(Invalid(
                "header roots do not match the block's execution".into(),
            ));
        }
        Ok(Judged::Valid(Box::new(prepared)))
    }

    /// Verifies a block's envelopes, each once per node: an envelope identical to one already
    /// verified into the mempool is taken from there; the rest are verified in one batch.
    fn verify_once(
        &self,
        envelopes: Vec<v1::SignedTransaction>,
    ) -> Result<Vec<VerifiedTransaction>, yrd_proto::signing::SigningError> {
        let hashes = envelopes
            .iter()
            .map(|envelope| transaction_hash(&self.shared.chain_id, &envelope.body))
            .collect::<Result<Vec<Hash>, _>>()?;
        let known = self.shared.mempool.get_many(&hashes);
        let mut verified: Vec<Option<VerifiedTransaction>> = Vec::with_capacity(envelopes.len());
        let mut unknown = Vec::new();
        let mut unknown_at = Vec::new();
        for (position, (envelope, known)) in envelopes.into_iter().zip(known).enumerate() {
            match known {
                // Same body and the same signatures: what was verified is what the block holds.
                Some(known) if known.envelope == envelope => verified.push(Some((*known).clone())),
                _ => {
                    verified.push(None);
                    unknown_at.push(position);
                    unknown.push(envelope);
                }
            }
        }
        for (position, result) in unknown_at
            .into_iter()
            .zip(verify_transactions(unknown, &self.shared.chain_id))
        {
            verified[position] = Some(result?);
        }
        Ok(verified.into_iter().flatten().collect())
    }

    /// Commits a decided block with its certificate.
    fn commit(
        &mut self,
        height: u64,
        hash: &BlockHash,
        payload: &[u8],
        certificate: &CommitCertificate,
    ) -> Result<(), DriverError> {
        self.stage_decided(height, hash, payload, certificate)?;
        self.write_staged()
    }

    /// Checks a decided block for writing and moves the node on to the next height in memory:
    /// its transactions leave the mempool, and what executes next executes on top of it. It is
    /// written by [`Driver::write_staged`], which always follows before the driver handles
    /// anything else.
    fn stage_decided(
        &mut self,
        height: u64,
        hash: &BlockHash,
        payload: &[u8],
        certificate: &CommitCertificate,
    ) -> Result<(), DriverError> {
        // Heights are written in order.
        self.write_staged()?;
        let prepared = match self.prepared.remove(&hash.0) {
            Some(prepared) => prepared,
            None => match self.validate(height, None, hash, payload) {
                Ok(Judged::Valid(prepared)) => *prepared,
                Ok(Judged::Missing { hashes, .. }) => {
                    return Err(DriverError::Invariant(format!(
                        "decided block {height} was to be written without {} of its transactions",
                        hashes.len()
                    )))
                }
                Err(Invalid(reason)) => return Err(certified_but_invalid(height, &reason)),
            },
        };
        let transactions = prepared.transaction_hashes();
        let committed = v1::CommittedBlock {
            block: Some(prepared.block),
            receipts: prepared.receipts,
            certificate: Some(wire::certificate_to_wire(certificate)),
        };
        let staged = self
            .shared
            .store
            .stage(CommitBatch {
                committed,
                block_hash: hash.0,
                state: prepared.state,
                next_validators: prepared.next_validators,
            })
            .map_err(storage)?;
        self.shared.mempool.remove_decided(&transactions);
        self.shared.mempool.set_in_block(&[]);
        self.shared.mempool.prune_expired(staged.tip().time_ms);
        self.prepared.clear();
        self.last_progress = Instant::now();
        self.last_commit = self.last_progress;
        self.staged = Some(staged);
        Ok(())
    }

    /// Logs what the database holds on disk and in memory.
    fn log_storage(&self) {
        match self.shared.store.stats() {
            Ok(stats) => info!(
                table_files = stats.table_files,
                table_files_mib = stats.table_files_bytes >> 20,
                open_files_max = stats.open_files_max,
                table_readers_kib = stats.table_readers_bytes >> 10,
                memtables_kib = stats.memtables_bytes >> 10,
                block_cache_kib = stats.block_cache_bytes >> 10,
                block_cache_pinned_kib = stats.block_cache_pinned_bytes >> 10,
                "storage"
            ),
            Err(error) => warn!(%error, "reading the storage statistics failed"),
        }
    }

    /// Writes the staged block, if any, and has it made durable and announced.
    fn write_staged(&mut self) -> Result<(), DriverError> {
        let Some(staged) = self.staged.take() else {
            return Ok(());
        };
        let height = staged.tip().height;
        let transactions = staged.transaction_count();
        let write_started = Instant::now();
        self.shared.store.commit_staged(staged).map_err(storage)?;
        self.shared.mempool.clear_decided();
        let write_us = write_started.elapsed().as_micros() as u64;
        info!(height, transactions, write_us, "committed block");
        match &self.wal_syncer {
            Some(syncer) => syncer.committed(),
            None => {
                let durable = self.shared.store.sync_wal().map_err(storage)?;
                // Nobody listening is fine.
                let _ = self.shared.commits.send(durable);
            }
        }
        Ok(())
    }

    /// Whether this validator proposes first at the height after `staged`, whose validator set
    /// is then the current one: it builds that proposal before writing the staged block, which
    /// takes the write off the height's critical path.
    fn proposes_after(&self, staged: &Staged) -> bool {
        if staged.changes_validators() {
            return false;
        }
        let next = Height(staged.tip().height + 1);
        self.validators.as_ref().is_some_and(|validators| {
            validators.key(validators.proposer(next, Round(0)))
                == Some(&PublicKey(self.public_key()))
        })
    }

    /// Handles a message from the network.
    fn on_network(&mut self, event: NetworkEvent) -> Result<(), DriverError> {
        match event {
            NetworkEvent::Consensus { message: bytes, .. } => {
                let Ok(message) = v1::ConsensusMessage::decode(bytes.as_slice()) else {
                    debug!("undecodable consensus message dropped");
                    return Ok(());
                };
                let Some((input, by_reference)) = self.consensus_input(message) else {
                    return Ok(());
                };
                let height = match &input {
                    Input::Proposal { proposal, .. } => proposal.proposal.height.0,
                    Input::Vote(vote) => vote.vote.height.0,
                    _ => 0,
                };
                match &input {
                    // Logged with its transactions once judged valid (`log_full_proposal`): the
                    // mempool that resolves its references does not survive a restart.
                    Input::Proposal { proposal, .. } if by_reference => {
                        self.keep_unlogged(proposal);
                    }
                    _ => self.log_message(height, &bytes),
                }
                self.feed(input)
            }
            NetworkEvent::Transactions { batch, .. } => {
                let Ok(batch) = v1::TransactionBatch::decode(batch.as_slice()) else {
                    return Ok(());
                };
                if batch.transactions.len() > GOSSIP_BATCH_TRANSACTIONS_MAX {
                    debug!("oversized transaction batch dropped");
                    return Ok(());
                }
                if !self.shared.admission.offer_gossip(batch.transactions) {
                    debug!("admission queue full: gossiped batch dropped");
                }
                Ok(())
            }
            NetworkEvent::PeersChanged { connected } => {
                info!(connected, "peers changed");
                Ok(())
            }
        }
    }

    /// The core's input for a consensus message, or `None` for a malformed one (dropped), and
    /// whether it is a proposal that names its transactions by reference.
    fn consensus_input(&mut self, message: v1::ConsensusMessage) -> Option<(Input, bool)> {
        match message.message? {
            v1::consensus_message::Message::Proposal(proposal) => {
                self.highest_seen = self.highest_seen.max(proposal.height);
                let (proposal, payload) = wire::proposal_from_wire(proposal)
                    .map_err(|error| debug!(%error, "proposal dropped"))
                    .ok()?;
                // The core trusts that the payload hashes to the proposal's hash.
                let block = v1::Block::decode(payload.as_slice()).ok();
                let matches = block
                    .as_ref()
                    .and_then(|b| b.header.as_ref())
                    .and_then(|h| block_hash(h).ok())
                    .is_some_and(|h| h == proposal.proposal.block_hash.0);
                if !matches {
                    debug!("proposal whose payload does not match its hash dropped");
                    return None;
                }
                let by_reference = block.is_some_and(|b| names_transactions(&b));
                Some((Input::Proposal { proposal, payload }, by_reference))
            }
            v1::consensus_message::Message::Vote(vote) => {
                self.highest_seen = self.highest_seen.max(vote.height);
                wire::vote_from_wire(&vote)
                    .map_err(|error| debug!(%error, "vote dropped"))
                    .ok()
                    .map(|vote| (Input::Vote(vote), false))
            }
        }
    }

    /// Proposes now if the core waits for a value and transactions arrived or the wait is over.
    fn answer_waiting_value(&mut self) -> Result<(), DriverError> {
        if let Some((height, round, _, _)) = self.waiting_value {
            if self.ready_to_propose(Instant::now()) {
                let input = self.propose(height, round)?;
                return self.feed(input);
            }
        }
        Ok(())
    }

    /// Whether the awaited block should be proposed now (see [`ProposalWait::ready`]).
    fn ready_to_propose(&self, now: Instant) -> bool {
        let Some((_, _, earliest, if_empty)) = self.waiting_value else {
            return false;
        };
        let mempool = &self.shared.mempool;
        ProposalWait {
            earliest,
            if_empty,
            half_block: self.config.block_transactions_max.div_ceil(2),
        }
        .ready(now, mempool.len(), mempool.accepts_clients())
    }

    /// Catches up from peers: asks one for the committed blocks after the tip.
    ///
    /// The fetch runs in its own task, so consensus goes on while a slow or silent peer is
    /// asked; its answer comes back through `synced` and is applied by [`Driver::apply_synced`].
    fn start_sync(&mut self, synced: &mpsc::Sender<Result<Vec<Vec<u8>>, String>>) {
        if self.sync_in_flight {
            return;
        }
        self.sync_in_flight = true;
        let from = self.shared.store.tip().height + 1;
        let network = self.shared.network.clone();
        let synced = synced.clone();
        tokio::spawn(async move {
            let result = network
                .fetch_blocks(from, SYNC_BATCH_BLOCKS)
                .await
                .map_err(|error| error.to_string());
            // A stopped driver no longer needs the answer.
            let _ = synced.send(result).await;
        });
    }

    /// Applies fetched blocks: skips those already committed here, checks each certificate
    /// against the validator set of its height, re-executes and commits.
    fn apply_synced(&mut self, result: Result<Vec<Vec<u8>>, String>) -> Result<(), DriverError> {
        self.sync_in_flight = false;
        let blocks = match result {
            Ok(blocks) => blocks,
            Err(error) => {
                debug!(%error, "block fetch failed");
                return Ok(());
            }
        };
        for bytes in blocks {
            let height = self.shared.store.tip().height + 1;
            let Ok(committed) = v1::CommittedBlock::decode(bytes.as_slice()) else {
                warn!("peer sent an undecodable block");
                return Ok(());
            };
            let (Some(block), Some(certificate)) = (committed.block, committed.certificate) else {
                warn!("peer sent a block without its certificate");
                return Ok(());
            };
            let Ok(certificate) = wire::certificate_from_wire(&certificate) else {
                warn!("peer sent a malformed certificate");
                return Ok(());
            };
            if certificate.height.0 < height {
                // Committed here by consensus while the fetch was under way.
                continue;
            }
            if certificate.height.0 != height {
                debug!(
                    height,
                    got = certificate.height.0,
                    "peer sent a block for another height"
                );
                return Ok(());
            }
            let validators = self.validator_set_for(height)?;
            if let Err(error) = certificate.verify(&validators, &self.shared.chain_id) {
                warn!(height, %error, "peer sent a block whose certificate does not verify");
                return Ok(());
            }
            if !block.transaction_refs.is_empty() {
                warn!(height, "peer sent a block without its transactions");
                return Ok(());
            }
            let payload = block.encode_to_vec();
            // Decided here and waiting for its transactions: the block brings them, and is
            // committed like one the core is past (starting the next height drops the wait).
            let decided_here = self
                .awaiting
                .get(&certificate.block_hash.0)
                .is_some_and(|a| a.certificate.is_some() && a.height == height);
            match self.consensus.as_ref() {
                Some(consensus) if consensus.height().0 == height && !decided_here => {
                    self.feed(Input::DecidedElsewhere {
                        block_hash: certificate.block_hash,
                        payload,
                        certificate,
                    })?;
                }
                _ => {
                    self.commit(height, &certificate.block_hash, &payload, &certificate)?;
                    self.start_height()?;
                }
            }
            info!(height, "caught up one block from a peer");
        }
        Ok(())
    }

    /// Runs until `shutdown` turns true or an invariant breaks.
    pub async fn run(
        mut self,
        mut events: mpsc::Receiver<NetworkEvent>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), DriverError> {
        let (failed_tx, mut failed_rx) = mpsc::channel(1);
        self.wal_syncer = Some(
            WalSyncer::start(
                Arc::clone(&self.shared.store),
                self.shared.commits.clone(),
                failed_tx,
            )
            .map_err(|e| storage(format!("starting the write-ahead-log sync thread: {e}")))?,
        );
        self.start_height()?;
        let mut tick = tokio::time::interval(Duration::from_millis(TICK_MS));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_sync = Instant::now();
        let mut last_storage_log = Instant::now();
        let admitted = self.shared.admission.admitted();
        let (synced_tx, mut synced_rx) = mpsc::channel(1);
        loop {
            tokio::select! {
                Some(result) = synced_rx.recv() => {
                    self.apply_synced(result)?;
                }
                Some(fetched) = self.fetched_rx.recv() => {
                    self.on_fetched(fetched)?;
                }
                Some(failure) = failed_rx.recv() => {
                    return Err(DriverError::Storage(failure));
                }
                () = admitted.notified() => {
                    self.answer_waiting_value()?;
                }
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        info!("driver stopping");
                        return Ok(());
                    }
                }
                Some(timeout) = self.timeouts_rx.recv() => {
                    self.feed(Input::TimeoutFired(timeout))?;
                }
                event = events.recv() => {
                    match event {
                        Some(event) => self.on_network(event)?,
                        None => return Err(DriverError::Invariant("network stopped".into())),
                    }
                }
                _ = tick.tick() => {
                    self.answer_waiting_value()?;
                    if last_storage_log.elapsed() >= Duration::from_millis(STORAGE_LOG_MS) {
                        last_storage_log = Instant::now();
                        self.log_storage();
                    }
                    let stalled = self.last_progress.elapsed() >= Duration::from_millis(STALL_MS);
                    let behind = self.highest_seen > self.shared.store.tip().height + 1;
                    let observer = self.consensus.is_none();
                    if (behind || stalled || observer) && last_sync.elapsed() >= Duration::from_millis(if behind { 100 } else { 500 }) {
                        last_sync = Instant::now();
                        self.start_sync(&synced_tx);
                    }
                    if stalled {
                        if let Some(consensus) = self.consensus.as_ref() {
                            let outputs = consensus.rebroadcast();
                            for output in outputs {
                                if let Some(input) = self.execute(output)? {
                                    self.feed(input)?;
                                }
                            }
                        }
                        self.last_progress = Instant::now();
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrd_chaincode::testkit::{test_key, Harness};
    use yrd_proto::signing::verify_transaction;
    use yrd_proto::v1::transaction_body::Action;

    const CHAIN: &str = "yrd-test";

    fn body(nonce: u64) -> v1::TransactionBody {
        v1::TransactionBody {
            chain_id: CHAIN.into(),
            nonce,
            valid_until_ms: 1_000,
            action: Some(Action::ConfirmReceivable(v1::ConfirmReceivable {
                receivable_id: "R".into(),
            })),
        }
    }

    fn signed_by(nonce: u64, key: &str) -> VerifiedTransaction {
        let envelope = Harness::sign(&body(nonce), &[&test_key(key)]);
        verify_transaction(envelope, CHAIN).expect("verify")
    }

    fn header_for(transactions: &[VerifiedTransaction]) -> v1::BlockHeader {
        let hashes: Vec<Hash> = transactions.iter().map(|t| t.hash).collect();
        v1::BlockHeader {
            transactions_root: merkle_root(&hashes).to_vec(),
            transaction_count: u32::try_from(transactions.len()).expect("count"),
            ..Default::default()
        }
    }

    fn invalid(result: Result<Result<Vec<VerifiedTransaction>, Vec<Hash>>, Invalid>) -> String {
        match result {
            Err(Invalid(reason)) => reason,
            Ok(_) => panic!("judged valid"),
        }
    }

    #[test]
    fn a_proposal_resolves_from_the_mempool_and_fetched_transactions_by_exact_envelope() {
        let held = signed_by(1, "a");
        let fetched_one = signed_by(2, "a");
        let absent = signed_by(3, "a");
        let mempool = Mempool::new(100, 1 << 20);
        mempool.insert(held.clone(), 100).expect("insert");
        let mut fetched = HashMap::new();
        let block = [held.clone(), fetched_one.clone(), absent.clone()];
        let header = header_for(&block);
        let refs: Vec<v1::TransactionRef> = block.iter().map(transaction_ref).collect();

        // One not at hand: its hash is asked for, nothing else.
        let missing = resolve(&header, &refs, 0, &mempool, &fetched).expect("valid so far");
        let mut expected = vec![fetched_one.hash, absent.hash];
        expected.sort_unstable();
        assert_eq!(missing.err(), Some(expected));
        fetched.insert(fetched_one.hash, fetched_one.clone());
        fetched.insert(absent.hash, absent.clone());
        let resolved = resolve(&header, &refs, 0, &mempool, &fetched)
            .expect("valid")
            .expect("all at hand");
        let envelopes: Vec<_> = resolved.iter().map(|t| t.envelope.clone()).collect();
        let expected: Vec<_> = block.iter().map(|t| t.envelope.clone()).collect();
        assert_eq!(envelopes, expected, "the named envelopes, in order");

        // The same body signed by another key has the same hash but another envelope: the
        // mempool's copy is not taken for it, so every validator stores the proposer's.
        let other = signed_by(1, "b");
        assert_eq!(other.hash, held.hash);
        let refs_other = [transaction_ref(&other)];
        let header_other = header_for(std::slice::from_ref(&other));
        let missing = resolve(&header_other, &refs_other, 0, &mempool, &HashMap::new())
            .expect("valid so far");
        assert_eq!(missing.err(), Some(vec![held.hash]));
    }

    #[test]
    fn only_a_proposal_by_reference_waits_to_be_logged_in_full() {
        let block = [signed_by(1, "a")];
        let header = Some(header_for(&block));
        let by_reference = v1::Block {
            header: header.clone(),
            transactions: Vec::new(),
            transaction_refs: block.iter().map(transaction_ref).collect(),
        };
        let full = v1::Block {
            header,
            transactions: block.iter().map(|t| t.envelope.clone()).collect(),
            transaction_refs: Vec::new(),
        };
        // As `consensus_input` judges a payload: decoded once, then asked.
        let judged = |payload: &[u8]| {
            v1::Block::decode(payload).is_ok_and(|block| names_transactions(&block))
        };
        assert!(judged(&by_reference.encode_to_vec()));
        assert!(!judged(&full.encode_to_vec()));
        assert!(!judged(&[0xff, 0xff, 0xff]));
    }

    #[test]
    fn references_that_disagree_with_the_header_are_invalid_before_any_fetch() {
        let mempool = Mempool::new(100, 1 << 20);
        let none = HashMap::new();
        let block = [signed_by(1, "a"), signed_by(2, "a")];
        let header = header_for(&block);
        let refs: Vec<v1::TransactionRef> = block.iter().map(transaction_ref).collect();

        let reversed: Vec<_> = refs.iter().rev().cloned().collect();
        assert!(invalid(resolve(&header, &reversed, 0, &mempool, &none)).contains("root"));
        assert!(invalid(resolve(&header, &refs[..1], 0, &mempool, &none)).contains("count"));
        assert!(invalid(resolve(&header, &refs, 2, &mempool, &none)).contains("both"));
        let mut short = refs.clone();
        short[1].envelope_hash.truncate(31);
        assert!(invalid(resolve(&header, &short, 0, &mempool, &none)).contains("malformed"));
    }

    #[test]
    fn a_proposer_waits_for_the_interval_unless_half_a_block_waits_or_clients_are_refused() {
        let start = Instant::now();
        let wait = ProposalWait {
            earliest: start + Duration::from_millis(100),
            if_empty: start + Duration::from_millis(500),
            half_block: 250,
        };
        let early = start + Duration::from_millis(10);
        let after_interval = start + Duration::from_millis(150);
        let after_empty_wait = start + Duration::from_millis(600);

        // Within the interval: a few transactions wait for more.
        assert!(!wait.ready(early, 0, true));
        assert!(!wait.ready(early, 1, true));
        assert!(!wait.ready(early, 249, true));
        // Half a block is enough at once, and so is any transaction once clients are refused.
        assert!(wait.ready(early, 250, true));
        assert!(wait.ready(early, 1, false));
        assert!(!wait.ready(early, 0, false), "nothing to propose yet");
        // After the interval any transaction goes; an empty block only after its own wait.
        assert!(wait.ready(after_interval, 1, true));
        assert!(!wait.ready(after_interval, 0, true));
        assert!(wait.ready(after_empty_wait, 0, true));
    }
}
