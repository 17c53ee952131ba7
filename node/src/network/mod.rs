//! The permissioned libp2p network of a node: TCP, Noise and Yamux; gossipsub for consensus
//! messages and transaction batches; request-response `/yrd/sync/1` for committed blocks.
//!
//! Invariants it keeps:
//! - Only the configured keys get in. A node's libp2p identity is its ed25519 key, and a peer
//!   whose key is not in [`NetworkConfig::allowed_keys`] is refused right after the Noise
//!   handshake, before any protocol runs on the connection.
//! - Every queue is bounded: commands from [`NetworkHandle`] (full means
//!   [`NetworkError::Backpressure`]), events to the node (a slow consumer loses events, counted,
//!   transaction batches first; the swarm never waits on it), pending block fetches, block
//!   requests being served.
//! - Every byte from a peer is bounded before it is read: gossip messages by
//!   `limits::MESSAGE_BYTES_MAX`, sync requests by [`REQUEST_BYTES_MAX`] and responses by
//!   `MESSAGE_BYTES_MAX`.
//! - The network does not decode consensus messages, batches or blocks; it moves bytes, and
//!   says which allowed key authored (gossip) or served (sync) them.

mod codec;
mod service;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use libp2p::identity::{ed25519, PublicKey};
use libp2p::{Multiaddr, PeerId};
use tokio::sync::{mpsc, oneshot};

pub use codec::{REQUEST_BYTES_MAX, RESPONSE_BYTES_MAX, SYNC_PROTOCOL};

/// Capacity of the queue of consensus broadcasts and block fetches to the swarm task.
pub const COMMAND_QUEUE_CAPACITY: usize = 1_024;
/// Capacity of the queue of transaction broadcasts to the swarm task (apart from consensus, so
/// a flood of transactions never holds back a vote).
pub const TRANSACTION_QUEUE_CAPACITY: usize = 1_024;
/// Capacity of the queue of events to the node.
pub const EVENT_QUEUE_CAPACITY: usize = 4_096;
/// Free event slots kept for consensus messages and peer changes: a transaction batch is
/// dropped when fewer slots than this are free.
pub const EVENT_SLOTS_RESERVED_FOR_CONSENSUS: usize = 1_024;
/// Most block fetches waiting for an answer at once.
pub const FETCHES_PENDING_MAX: usize = 64;
/// Most transactions asked for in one fetch: those of one block.
pub const TRANSACTIONS_FETCH_MAX: usize = yrd_proto::limits::BLOCK_TRANSACTIONS_MAX;
/// Most blocks asked for, or served, in one sync exchange.
pub const SYNC_BLOCKS_MAX: u32 = 64;
/// Bytes of blocks a node aims to serve in one sync response (one block may overshoot it,
/// never beyond [`RESPONSE_BYTES_MAX`]).
pub const SYNC_SERVE_BYTES_TARGET: usize = 16 * 1024 * 1024;
/// Most block requests being served at once; more are refused.
pub const SYNC_SERVING_MAX: usize = 8;
/// How long a block fetch may take, in milliseconds.
pub const FETCH_TIMEOUT_MS: u64 = 15_000;
/// How often configured peers that are not connected are dialled again, in milliseconds.
pub const REDIAL_INTERVAL_MS: u64 = 1_000;
/// How long a connection with nothing to do stays open, in milliseconds.
pub const IDLE_CONNECTION_TIMEOUT_MS: u64 = 60_000;
/// Interval of ping keep-alives, in milliseconds.
pub const PING_INTERVAL_MS: u64 = 15_000;
/// Gossipsub heartbeat, in milliseconds.
pub const GOSSIP_HEARTBEAT_MS: u64 = 500;
/// How long a gossip message id is remembered, in milliseconds: copies of one publish arriving
/// again within this time are dropped (message id = SHA-256 of author, sequence number, bytes).
pub const GOSSIP_DUPLICATE_CACHE_MS: u64 = 10_000;
/// How long `start` waits for the listener to come up, in milliseconds.
pub const LISTEN_TIMEOUT_MS: u64 = 5_000;
/// Most allowed keys.
pub const ALLOWED_KEYS_MAX: usize = 1_024;

const _: () = assert!(EVENT_SLOTS_RESERVED_FOR_CONSENSUS < EVENT_QUEUE_CAPACITY);
const _: () = assert!(SYNC_SERVE_BYTES_TARGET <= RESPONSE_BYTES_MAX);
const _: () = assert!(yrd_proto::limits::BLOCK_BYTES_MAX <= RESPONSE_BYTES_MAX);
// Gossipsub keeps `history_length` (5) heartbeats of messages; ids must outlive them.
const _: () = assert!(GOSSIP_DUPLICATE_CACHE_MS > 5 * GOSSIP_HEARTBEAT_MS);

/// What the network needs to start.
#[derive(Clone)]
pub struct NetworkConfig {
    /// The chain id; it names the gossip topics, so nodes of different chains never mix.
    pub chain_id: String,
    /// The node's ed25519 secret key. Its libp2p identity derives from it, so a validator's
    /// consensus key is its network identity.
    pub secret_key: [u8; 32],
    /// Address to listen on, e.g. `/ip4/127.0.0.1/tcp/7001` (port 0 picks a free port).
    pub listen: Multiaddr,
    /// Addresses to dial, each ending in `/p2p/<PeerId>`; redialled every
    /// [`REDIAL_INTERVAL_MS`] while not connected. The node's own address is skipped.
    pub peers: Vec<Multiaddr>,
    /// Ed25519 public keys of the validators and configured observers; every other peer is
    /// refused.
    pub allowed_keys: Vec<[u8; 32]>,
}

impl std::fmt::Debug for NetworkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkConfig")
            .field("chain_id", &self.chain_id)
            .field("secret_key", &"<redacted>")
            .field("listen", &self.listen)
            .field("peers", &self.peers)
            .field("allowed_keys", &self.allowed_keys.len())
            .finish()
    }
}

/// What the network hands to the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkEvent {
    /// The bytes of a `v1::ConsensusMessage`, authored by the peer with ed25519 key `from`.
    Consensus {
        /// The ed25519 public key of the author.
        from: [u8; 32],
        /// The encoded message (decoding it is the caller's job).
        message: Vec<u8>,
    },
    /// The bytes of a `v1::TransactionBatch`, delivered by the peer with ed25519 key `from`
    /// (batches are not forwarded, so that peer is the one that published it).
    Transactions {
        /// The ed25519 public key of the peer that delivered the batch.
        from: [u8; 32],
        /// The encoded batch.
        batch: Vec<u8>,
    },
    /// The number of connected peers changed.
    PeersChanged {
        /// Distinct peers connected now.
        connected: usize,
    },
}

/// Where the network reads the committed blocks it serves to peers.
pub trait BlockSource: Send + Sync + 'static {
    /// Encoded `v1::CommittedBlock` values from `from_height` on, in height order, at most
    /// `max_blocks` and about `max_bytes` (one block may overshoot). Called on a blocking
    /// thread.
    fn blocks_from(&self, from_height: u64, max_blocks: u32, max_bytes: usize) -> Vec<Vec<u8>>;

    /// Encoded `v1::SignedTransaction` values of those of `hashes` this node holds (waiting
    /// or committed), in any order, about `max_bytes` at most. Called on a blocking thread.
    /// None by default.
    fn transactions(&self, hashes: &[[u8; 32]], max_bytes: usize) -> Vec<Vec<u8>> {
        let _ = (hashes, max_bytes);
        Vec::new()
    }
}

/// Everything that can go wrong in the network.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// The node's secret key is not a valid ed25519 secret key.
    #[error("invalid ed25519 secret key: {reason}")]
    InvalidSecretKey {
        /// Why it was refused.
        reason: String,
    },
    /// An allowed key is not a valid ed25519 public key.
    #[error("invalid ed25519 public key {key}: {reason}")]
    InvalidPublicKey {
        /// The key, in hex.
        key: String,
        /// Why it was refused.
        reason: String,
    },
    /// More allowed keys than [`ALLOWED_KEYS_MAX`].
    #[error("{count} allowed keys exceed the limit of {max}")]
    TooManyAllowedKeys {
        /// Keys given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The chain id is empty or too long.
    #[error("chain id of {length} bytes is empty or longer than {max} bytes")]
    InvalidChainId {
        /// Its length.
        length: usize,
        /// The limit.
        max: usize,
    },
    /// A peer address does not end in `/p2p/<PeerId>`.
    #[error("peer address {address} does not end in /p2p/<PeerId>")]
    PeerAddressWithoutPeerId {
        /// The address.
        address: Multiaddr,
    },
    /// The transport or a behaviour could not be built.
    #[error("cannot build the network: {reason}")]
    Setup {
        /// What failed.
        reason: String,
    },
    /// The node could not listen on its address.
    #[error("cannot listen on {address}: {reason}")]
    Listen {
        /// The listen address.
        address: Multiaddr,
        /// What failed.
        reason: String,
    },
    /// A message to broadcast is larger than a peer accepts.
    #[error("message of {length} bytes exceeds the limit of {max} bytes")]
    MessageTooLarge {
        /// Its length.
        length: usize,
        /// The limit.
        max: usize,
    },
    /// A queue to the swarm task is full; try again later.
    #[error("network queue full")]
    Backpressure,
    /// No peer is connected to ask.
    #[error("no connected peer")]
    NoPeers,
    /// A block fetch failed.
    #[error("block fetch from {peer} failed: {reason}")]
    FetchFailed {
        /// The peer asked.
        peer: PeerId,
        /// What failed.
        reason: String,
    },
    /// A block fetch got no answer in time.
    #[error("block fetch got no answer within {timeout_ms} ms")]
    FetchTimeout {
        /// The timeout.
        timeout_ms: u64,
    },
    /// The swarm task has stopped.
    #[error("the network task has stopped")]
    Stopped,
}

/// Events the node lost because it read them too slowly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DroppedEvents {
    /// Consensus messages and peer changes dropped.
    pub consensus: u64,
    /// Transaction batches dropped.
    pub transactions: u64,
}

/// Counters shared by the swarm task and the handles.
#[derive(Debug, Default)]
struct Shared {
    connected_peers: AtomicUsize,
    dropped_consensus: AtomicU64,
    dropped_transactions: AtomicU64,
}

/// Which gossip topic a broadcast goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Topic {
    Consensus,
    Transactions,
}

/// A request from a handle to the swarm task.
enum Command {
    Publish {
        topic: Topic,
        data: Vec<u8>,
    },
    FetchBlocks {
        from_height: u64,
        max_blocks: u32,
        reply: oneshot::Sender<Result<Vec<Vec<u8>>, NetworkError>>,
    },
    FetchTransactions {
        /// The ed25519 key of the peer to ask first, if connected.
        peer: Option<[u8; 32]>,
        hashes: Vec<[u8; 32]>,
        reply: oneshot::Sender<Result<Vec<Vec<u8>>, NetworkError>>,
    },
}

/// A cheap handle on the running network.
#[derive(Clone)]
pub struct NetworkHandle {
    commands: mpsc::Sender<Command>,
    transactions: mpsc::Sender<Command>,
    shared: Arc<Shared>,
    local_peer_id: PeerId,
    listen_address: Multiaddr,
}

impl std::fmt::Debug for NetworkHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkHandle")
            .field("local_peer_id", &self.local_peer_id)
            .field("listen_address", &self.listen_address)
            .finish_non_exhaustive()
    }
}

impl NetworkHandle {
    /// Broadcasts the bytes of a `v1::ConsensusMessage` to the peers (not to this node).
    /// A full queue gives [`NetworkError::Backpressure`]; with no peer yet the message is
    /// dropped quietly.
    pub fn broadcast_consensus(&self, message: Vec<u8>) -> Result<(), NetworkError> {
        Self::publish(&self.commands, Topic::Consensus, message)
    }

    /// Broadcasts the bytes of a `v1::TransactionBatch` to the peers (not to this node).
    pub fn broadcast_transactions(&self, batch: Vec<u8>) -> Result<(), NetworkError> {
        Self::publish(&self.transactions, Topic::Transactions, batch)
    }

    fn publish(
        queue: &mpsc::Sender<Command>,
        topic: Topic,
        data: Vec<u8>,
    ) -> Result<(), NetworkError> {
        if data.len() > service::GOSSIP_DATA_BYTES_MAX {
            return Err(NetworkError::MessageTooLarge {
                length: data.len(),
                max: service::GOSSIP_DATA_BYTES_MAX,
            });
        }
        queue
            .try_send(Command::Publish { topic, data })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => NetworkError::Backpressure,
                mpsc::error::TrySendError::Closed(_) => NetworkError::Stopped,
            })
    }

    /// Asks one connected peer (a different one on each call, in turn) for the committed blocks
    /// from `from_height` on, at most `max_blocks` (capped at [`SYNC_BLOCKS_MAX`]). Returns the
    /// encoded `v1::CommittedBlock` values of its `v1::BlocksResponse`, unverified.
    pub async fn fetch_blocks(
        &self,
        from_height: u64,
        max_blocks: u32,
    ) -> Result<Vec<Vec<u8>>, NetworkError> {
        let (reply, answer) = oneshot::channel();
        self.request(
            Command::FetchBlocks {
                from_height,
                max_blocks: max_blocks.min(SYNC_BLOCKS_MAX),
                reply,
            },
            answer,
        )
        .await
    }

    /// Asks `peer` (by ed25519 key) if it is connected, else another connected peer in turn,
    /// for the transactions with these hashes (at most [`TRANSACTIONS_FETCH_MAX`]). Returns the
    /// encoded `v1::SignedTransaction` values it holds, unverified and in any order.
    pub async fn fetch_transactions(
        &self,
        peer: Option<[u8; 32]>,
        hashes: Vec<[u8; 32]>,
    ) -> Result<Vec<Vec<u8>>, NetworkError> {
        if hashes.len() > TRANSACTIONS_FETCH_MAX {
            return Err(NetworkError::MessageTooLarge {
                length: hashes.len(),
                max: TRANSACTIONS_FETCH_MAX,
            });
        }
        let (reply, answer) = oneshot::channel();
        self.request(
            Command::FetchTransactions {
                peer,
                hashes,
                reply,
            },
            answer,
        )
        .await
    }

    /// Queues a fetch and waits for its answer.
    async fn request(
        &self,
        command: Command,
        answer: oneshot::Receiver<Result<Vec<Vec<u8>>, NetworkError>>,
    ) -> Result<Vec<Vec<u8>>, NetworkError> {
        self.commands.try_send(command).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => NetworkError::Backpressure,
            mpsc::error::TrySendError::Closed(_) => NetworkError::Stopped,
        })?;
        // The request itself times out after FETCH_TIMEOUT_MS in the swarm; this one only
        // guards against a swarm task that stalls.
        let guard = Duration::from_millis(FETCH_TIMEOUT_MS + 2_000);
        match tokio::time::timeout(guard, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(NetworkError::Stopped),
            Err(_) => Err(NetworkError::FetchTimeout {
                timeout_ms: FETCH_TIMEOUT_MS,
            }),
        }
    }

    /// Distinct peers connected now.
    pub fn connected_peers(&self) -> usize {
        self.shared.connected_peers.load(Ordering::Relaxed)
    }

    /// This node's libp2p identity.
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    /// The address the node listens on (with the real port when port 0 was asked for),
    /// ending in `/p2p/<PeerId>` so that it can be handed to other nodes as a peer address.
    pub fn listen_address(&self) -> Multiaddr {
        self.listen_address.clone()
    }

    /// Events lost so far because the node read them too slowly.
    pub fn dropped_events(&self) -> DroppedEvents {
        DroppedEvents {
            consensus: self.shared.dropped_consensus.load(Ordering::Relaxed),
            transactions: self.shared.dropped_transactions.load(Ordering::Relaxed),
        }
    }
}

/// The libp2p identity of the holder of an ed25519 public key.
pub fn peer_id_of(public_key: &[u8; 32]) -> Result<PeerId, NetworkError> {
    let key = ed25519::PublicKey::try_from_bytes(public_key).map_err(|e| {
        NetworkError::InvalidPublicKey {
            key: hex::encode(public_key),
            reason: e.to_string(),
        }
    })?;
    Ok(PublicKey::from(key).to_peer_id())
}

/// Starts the network: builds the swarm, listens, and spawns the swarm task, which dials the
/// configured peers and keeps redialling them. Returns once the node listens.
///
/// The task stops when every [`NetworkHandle`] is dropped (or when its `JoinHandle` is
/// aborted).
pub async fn start(
    config: NetworkConfig,
    source: Arc<dyn BlockSource>,
) -> Result<
    (
        NetworkHandle,
        mpsc::Receiver<NetworkEvent>,
        tokio::task::JoinHandle<()>,
    ),
    NetworkError,
> {
    let (command_tx, command_rx) = mpsc::channel(COMMAND_QUEUE_CAPACITY);
    let (transaction_tx, transaction_rx) = mpsc::channel(TRANSACTION_QUEUE_CAPACITY);
    let (event_tx, event_rx) = mpsc::channel(EVENT_QUEUE_CAPACITY);
    let shared = Arc::new(Shared::default());
    let mut service = service::Service::new(
        config,
        source,
        command_rx,
        transaction_rx,
        event_tx,
        shared.clone(),
    )?;
    let listen_address = service.listen().await?;
    let local_peer_id = service.local_peer_id();
    let task = tokio::spawn(service.run());
    let handle = NetworkHandle {
        commands: command_tx,
        transactions: transaction_tx,
        shared,
        local_peer_id,
        listen_address,
    };
    Ok((handle, event_rx, task))
}

#[cfg(test)]
mod tests;
