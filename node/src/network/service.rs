//! The swarm task: owns the libp2p `Swarm` and is the only place that touches it. It turns
//! handle commands into gossip publishes and sync requests, and swarm events into
//! [`NetworkEvent`]s.
//!
//! Invariants: it never awaits the node (events go out with `try_send`, drops are counted);
//! pending fetches and requests being served are bounded; a configured peer that is not
//! connected is dialled again every [`REDIAL_INTERVAL_MS`].

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::allow_block_list::{self, AllowedPeers};
use libp2p::gossipsub::{
    self, IdentTopic, MessageAcceptance, MessageAuthenticity, MessageId, ValidationMode,
};
use libp2p::identity::{ed25519, Keypair};
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport, ResponseChannel};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{DialError, ListenError, NetworkBehaviour, SwarmEvent};
use libp2p::{noise, ping, tcp, yamux, Multiaddr, PeerId, Swarm};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, trace, warn};
use yrd_proto::{limits, v1};

use super::codec::{self, SyncCodec, SYNC_PROTOCOL};
use super::{
    BlockSource, Command, NetworkConfig, NetworkError, NetworkEvent, Shared, Topic,
    ALLOWED_KEYS_MAX, EVENT_SLOTS_RESERVED_FOR_CONSENSUS, FETCHES_PENDING_MAX, FETCH_TIMEOUT_MS,
    GOSSIP_DUPLICATE_CACHE_MS, GOSSIP_HEARTBEAT_MS, IDLE_CONNECTION_TIMEOUT_MS, LISTEN_TIMEOUT_MS,
    PING_INTERVAL_MS, REDIAL_INTERVAL_MS, SYNC_BLOCKS_MAX, SYNC_SERVE_BYTES_TARGET,
    SYNC_SERVING_MAX, TRANSACTIONS_FETCH_MAX,
};

/// Bytes a gossip message envelope (topic, author key, sequence number, signature, framing)
/// may take on top of its data.
const GOSSIP_ENVELOPE_BYTES_MAX: usize = 4 * 1024;
/// Largest data of one gossip message: what fits in `MESSAGE_BYTES_MAX` with its envelope.
pub(super) const GOSSIP_DATA_BYTES_MAX: usize =
    limits::MESSAGE_BYTES_MAX - GOSSIP_ENVELOPE_BYTES_MAX;
/// Least time between two warnings about dropped events, in milliseconds.
const DROP_WARNING_INTERVAL_MS: u64 = 5_000;

/// The behaviours of a node, polled in field order. Consensus messages and transaction
/// batches travel on two separate gossipsub instances (two protocols, so two send queues per
/// connection): a flood of transactions can fill its own queue, never the one consensus
/// messages wait in.
#[derive(NetworkBehaviour)]
struct Behaviour {
    allowed: allow_block_list::Behaviour<AllowedPeers>,
    gossipsub: gossipsub::Behaviour,
    transactions: gossipsub::Behaviour,
    sync: request_response::Behaviour<SyncCodec>,
    ping: ping::Behaviour,
}

/// Protocol prefix of the transaction-gossip instance (the consensus one keeps the default).
const TRANSACTION_GOSSIP_PROTOCOL_PREFIX: &str = "/yrd/txgossip";

/// A fetch waiting for its answer.
struct PendingFetch {
    peer: PeerId,
    /// Most entries the answer may hold: blocks or transactions asked for.
    max_entries: usize,
    reply: oneshot::Sender<Result<Vec<Vec<u8>>, NetworkError>>,
}

/// The result of serving one block request, back from the blocking thread.
struct Served {
    channel: ResponseChannel<Vec<Vec<u8>>>,
    /// `None` when the block source failed: the request is then refused.
    blocks: Option<Vec<Vec<u8>>>,
}

/// The state of the swarm task.
pub(super) struct Service {
    swarm: Swarm<Behaviour>,
    listen: Multiaddr,
    consensus_topic: IdentTopic,
    transactions_topic: IdentTopic,
    /// Ed25519 key of each allowed peer.
    keys: HashMap<PeerId, [u8; 32]>,
    /// Configured peers to keep connected, and where to dial them.
    dial_targets: Vec<(PeerId, Multiaddr)>,
    /// Peers with at least one connection on which a ping came back, ordered so that fetches
    /// rotate predictably.
    connected: BTreeSet<PeerId>,
    fetch_cursor: usize,
    pending_fetches: HashMap<OutboundRequestId, PendingFetch>,
    serving: usize,
    served_tx: mpsc::Sender<Served>,
    served_rx: mpsc::Receiver<Served>,
    source: Arc<dyn BlockSource>,
    commands: mpsc::Receiver<Command>,
    transactions: mpsc::Receiver<Command>,
    events: mpsc::Sender<NetworkEvent>,
    shared: Arc<Shared>,
    last_drop_warning: Option<Instant>,
}

impl Service {
    /// Validates the configuration and builds the swarm (not yet listening).
    pub(super) fn new(
        config: NetworkConfig,
        source: Arc<dyn BlockSource>,
        commands: mpsc::Receiver<Command>,
        transactions: mpsc::Receiver<Command>,
        events: mpsc::Sender<NetworkEvent>,
        shared: Arc<Shared>,
    ) -> Result<Self, NetworkError> {
        let chain_id_length = config.chain_id.len();
        if chain_id_length == 0 || chain_id_length > limits::CHAIN_ID_BYTES_MAX {
            return Err(NetworkError::InvalidChainId {
                length: chain_id_length,
                max: limits::CHAIN_ID_BYTES_MAX,
            });
        }
        if config.allowed_keys.len() > ALLOWED_KEYS_MAX {
            return Err(NetworkError::TooManyAllowedKeys {
                count: config.allowed_keys.len(),
                max: ALLOWED_KEYS_MAX,
            });
        }
        let mut secret = config.secret_key;
        let secret = ed25519::SecretKey::try_from_bytes(&mut secret).map_err(|e| {
            NetworkError::InvalidSecretKey {
                reason: e.to_string(),
            }
        })?;
        let keypair = Keypair::from(ed25519::Keypair::from(secret));
        let local_peer_id = keypair.public().to_peer_id();

        let mut keys = HashMap::with_capacity(config.allowed_keys.len());
        for key in &config.allowed_keys {
            keys.insert(super::peer_id_of(key)?, *key);
        }
        let mut dial_targets = Vec::with_capacity(config.peers.len());
        for address in &config.peers {
            let peer = match address.iter().last() {
                Some(Protocol::P2p(peer)) => peer,
                _ => {
                    return Err(NetworkError::PeerAddressWithoutPeerId {
                        address: address.clone(),
                    })
                }
            };
            if peer == local_peer_id {
                continue;
            }
            if !keys.contains_key(&peer) {
                warn!(%peer, %address, "configured peer is not an allowed key; it will be refused");
            }
            dial_targets.push((peer, address.clone()));
        }

        let consensus_topic = IdentTopic::new(format!("yrd/{}/consensus/1", config.chain_id));
        let transactions_topic = IdentTopic::new(format!("yrd/{}/transactions/1", config.chain_id));
        let gossip_config = |prefix: Option<&'static str>| {
            let mut builder = gossipsub::ConfigBuilder::default();
            if let Some(prefix) = prefix {
                // Transaction batches: every transaction in one carries its own signatures and
                // is verified at admission, so the gossip signature of each copy is not checked
                // (publishing still signs, for nodes that check). Copies are not forwarded: a
                // batch is flood-published to every connected validator, so on a fully
                // connected set a forwarded copy is always a duplicate, received and decrypted
                // for nothing. A validator cut off from the publisher gets the transactions in
                // the proposals of the others instead.
                builder
                    .protocol_id_prefix(prefix)
                    .validation_mode(ValidationMode::None)
                    .validate_messages();
            } else {
                builder.validation_mode(ValidationMode::Strict);
            }
            builder
                .message_id_fn(|message: &gossipsub::Message| {
                    // One id per publish (author, sequence number, bytes): copies of one publish
                    // arriving over several paths are dropped, while a deliberate re-send of the same
                    // bytes (the consensus rebroadcast after a stall) is delivered again. Transaction
                    // batches are received without their author and sequence number (validation
                    // `None`), so their id is that of the bytes: a batch is never sent twice.
                    let mut hasher = Sha256::new();
                    if let Some(source) = &message.source {
                        hasher.update(source.to_bytes());
                    }
                    hasher.update(message.sequence_number.unwrap_or(0).to_be_bytes());
                    hasher.update(&message.data);
                    MessageId::from(hasher.finalize().to_vec())
                })
                .max_transmit_size(limits::MESSAGE_BYTES_MAX)
                .heartbeat_interval(Duration::from_millis(GOSSIP_HEARTBEAT_MS))
                .duplicate_cache_time(Duration::from_millis(GOSSIP_DUPLICATE_CACHE_MS))
                .mesh_n(4)
                .mesh_n_low(1)
                .mesh_n_high(8)
                .mesh_outbound_min(1)
                .flood_publish(true)
                .build()
                .map_err(|e| NetworkError::Setup {
                    reason: format!("gossipsub config: {e}"),
                })
        };
        let consensus_config = gossip_config(None)?;
        let transactions_config = gossip_config(Some(TRANSACTION_GOSSIP_PROTOCOL_PREFIX))?;

        let allowed_peers = keys.keys().copied().collect::<Vec<_>>();
        let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(|e| NetworkError::Setup {
                reason: format!("tcp/noise/yamux: {e}"),
            })?
            .with_behaviour(|key| {
                let mut allowed = allow_block_list::Behaviour::<AllowedPeers>::default();
                for peer in allowed_peers {
                    allowed.allow_peer(peer);
                }
                let mut gossipsub = gossipsub::Behaviour::new(
                    MessageAuthenticity::Signed(key.clone()),
                    consensus_config,
                )?;
                gossipsub.subscribe(&consensus_topic)?;
                let mut transactions = gossipsub::Behaviour::new(
                    MessageAuthenticity::Signed(key.clone()),
                    transactions_config,
                )?;
                transactions.subscribe(&transactions_topic)?;
                let sync = request_response::Behaviour::with_codec(
                    SyncCodec,
                    [(SYNC_PROTOCOL, ProtocolSupport::Full)],
                    request_response::Config::default()
                        .with_request_timeout(Duration::from_millis(FETCH_TIMEOUT_MS))
                        .with_max_concurrent_streams(SYNC_SERVING_MAX + FETCHES_PENDING_MAX),
                );
                let ping = ping::Behaviour::new(
                    ping::Config::new().with_interval(Duration::from_millis(PING_INTERVAL_MS)),
                );
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(Behaviour {
                    allowed,
                    gossipsub,
                    transactions,
                    sync,
                    ping,
                })
            })
            .map_err(|e| NetworkError::Setup {
                reason: format!("behaviour: {e}"),
            })?
            .with_swarm_config(|c| {
                c.with_idle_connection_timeout(Duration::from_millis(IDLE_CONNECTION_TIMEOUT_MS))
            })
            .build();

        let (served_tx, served_rx) = mpsc::channel(SYNC_SERVING_MAX);
        Ok(Self {
            swarm,
            listen: config.listen,
            consensus_topic,
            transactions_topic,
            keys,
            dial_targets,
            connected: BTreeSet::new(),
            fetch_cursor: 0,
            pending_fetches: HashMap::new(),
            serving: 0,
            served_tx,
            served_rx,
            source,
            commands,
            transactions,
            events,
            shared,
            last_drop_warning: None,
        })
    }

    pub(super) fn local_peer_id(&self) -> PeerId {
        *self.swarm.local_peer_id()
    }

    /// Starts listening and waits for the listener's address; returns it with `/p2p/<self>`.
    pub(super) async fn listen(&mut self) -> Result<Multiaddr, NetworkError> {
        let address = self.listen.clone();
        let listen_error = |reason: String| NetworkError::Listen {
            address: address.clone(),
            reason,
        };
        self.swarm
            .listen_on(self.listen.clone())
            .map_err(|e| listen_error(e.to_string()))?;
        let deadline = tokio::time::sleep(Duration::from_millis(LISTEN_TIMEOUT_MS));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => {
                    return Err(listen_error(format!("no listen address within {LISTEN_TIMEOUT_MS} ms")));
                }
                event = self.swarm.select_next_some() => match event {
                    SwarmEvent::NewListenAddr { address, .. } => {
                        info!(%address, peer = %self.local_peer_id(), "listening");
                        return Ok(address.with(Protocol::P2p(self.local_peer_id())));
                    }
                    SwarmEvent::ListenerClosed { reason, .. } => {
                        return Err(listen_error(match reason {
                            Ok(()) => "listener closed".to_owned(),
                            Err(e) => e.to_string(),
                        }));
                    }
                    SwarmEvent::ListenerError { error, .. } => {
                        return Err(listen_error(error.to_string()));
                    }
                    other => self.on_swarm_event(other),
                },
            }
        }
    }

    /// The swarm task's loop; returns when every handle is dropped.
    pub(super) async fn run(mut self) {
        let mut redial = tokio::time::interval(Duration::from_millis(REDIAL_INTERVAL_MS));
        redial.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut transactions_open = true;
        loop {
            // Not biased: every ready branch gets its turn, so no source starves the others;
            // consensus has its own queue, so it never waits behind transactions.
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    None => break,
                },
                served = self.served_rx.recv() => {
                    if let Some(served) = served {
                        self.on_served(served);
                    }
                }
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                _ = redial.tick() => self.redial(),
                command = self.transactions.recv(), if transactions_open => match command {
                    Some(command) => self.on_command(command),
                    None => transactions_open = false,
                },
            }
        }
        debug!("network task stopped: every handle dropped");
    }

    fn redial(&mut self) {
        for (peer, address) in &self.dial_targets {
            if self.swarm.is_connected(peer) {
                continue;
            }
            let options = DialOpts::peer_id(*peer)
                .addresses(vec![address.clone()])
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            match self.swarm.dial(options) {
                Ok(()) => trace!(%peer, %address, "dialling"),
                Err(DialError::DialPeerConditionFalse(_)) => {}
                Err(e) => debug!(%peer, %address, error = %e, "cannot dial"),
            }
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Publish { topic, data } => {
                let behaviour = self.swarm.behaviour_mut();
                let published = match topic {
                    Topic::Consensus => behaviour
                        .gossipsub
                        .publish(self.consensus_topic.clone(), data),
                    Topic::Transactions => behaviour
                        .transactions
                        .publish(self.transactions_topic.clone(), data),
                };
                match published {
                    Ok(_) => {}
                    Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {
                        debug!("no peer to publish to yet; message dropped");
                    }
                    Err(gossipsub::PublishError::Duplicate) => {
                        debug!("same bytes published recently; message dropped");
                    }
                    Err(e) => warn!(error = %e, "cannot publish gossip message"),
                }
            }
            Command::FetchBlocks {
                from_height,
                max_blocks,
                reply,
            } => self.fetch(
                None,
                v1::BlocksRequest {
                    from_height,
                    max_blocks: max_blocks.min(SYNC_BLOCKS_MAX),
                    transaction_hashes: Vec::new(),
                },
                reply,
            ),
            Command::FetchTransactions {
                peer,
                hashes,
                reply,
            } => {
                let preferred = peer.and_then(|key| super::peer_id_of(&key).ok());
                self.fetch(
                    preferred,
                    v1::BlocksRequest {
                        from_height: 0,
                        max_blocks: 0,
                        transaction_hashes: hashes.iter().map(|h| h.to_vec()).collect(),
                    },
                    reply,
                );
            }
        }
    }

    fn fetch(
        &mut self,
        preferred: Option<PeerId>,
        request: v1::BlocksRequest,
        reply: oneshot::Sender<Result<Vec<Vec<u8>>, NetworkError>>,
    ) {
        if self.pending_fetches.len() >= FETCHES_PENDING_MAX {
            let _ = reply.send(Err(NetworkError::Backpressure));
            return;
        }
        let peer = match preferred.filter(|peer| self.connected.contains(peer)) {
            Some(peer) => peer,
            None => match self
                .connected
                .iter()
                .nth(self.fetch_cursor % self.connected.len().max(1))
            {
                Some(peer) => {
                    self.fetch_cursor = self.fetch_cursor.wrapping_add(1);
                    *peer
                }
                None => {
                    let _ = reply.send(Err(NetworkError::NoPeers));
                    return;
                }
            },
        };
        let max_entries = answer_entries_max(&request);
        debug!(
            %peer,
            from_height = request.from_height,
            max_blocks = request.max_blocks,
            transactions = request.transaction_hashes.len(),
            "fetching"
        );
        let request_id = self.swarm.behaviour_mut().sync.send_request(&peer, request);
        self.pending_fetches.insert(
            request_id,
            PendingFetch {
                peer,
                max_entries,
                reply,
            },
        );
    }

    fn on_served(&mut self, served: Served) {
        self.serving = self.serving.saturating_sub(1);
        let Some(blocks) = served.blocks else {
            // Dropping the channel closes the stream; the peer asks someone else.
            return;
        };
        if self
            .swarm
            .behaviour_mut()
            .sync
            .send_response(served.channel, blocks)
            .is_err()
        {
            debug!("block request closed before its answer was sent");
        }
    }

    fn serve(
        &mut self,
        peer: PeerId,
        request: v1::BlocksRequest,
        channel: ResponseChannel<Vec<Vec<u8>>>,
    ) {
        if self.serving >= SYNC_SERVING_MAX {
            // Dropping the channel closes the stream: the peer asks someone else.
            warn!(%peer, "too many block requests being served; request refused");
            return;
        }
        let hashes = match transaction_hashes(&request) {
            Ok(hashes) => hashes,
            Err(reason) => {
                warn!(%peer, %reason, "malformed transaction request refused");
                return;
            }
        };
        self.serving += 1;
        let source = self.source.clone();
        let served = self.served_tx.clone();
        let max_blocks = request.max_blocks.min(SYNC_BLOCKS_MAX);
        let max_entries = answer_entries_max(&request);
        let from_height = request.from_height;
        debug!(%peer, from_height, max_blocks, transactions = hashes.len(), "serving");
        tokio::task::spawn_blocking(move || {
            let blocks = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                if hashes.is_empty() {
                    source.blocks_from(from_height, max_blocks, SYNC_SERVE_BYTES_TARGET)
                } else {
                    source.transactions(&hashes, SYNC_SERVE_BYTES_TARGET)
                }
            }));
            let blocks = match blocks {
                Ok(blocks) => Some(trim_response(blocks, max_entries)),
                Err(_) => {
                    warn!(from_height, "block source panicked; block request refused");
                    None
                }
            };
            // Capacity is SYNC_SERVING_MAX and at most that many are in flight: never full.
            if served.try_send(Served { channel, blocks }).is_err() {
                warn!("network task gone; block request dropped");
            }
        });
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(event))
            | SwarmEvent::Behaviour(BehaviourEvent::Transactions(event)) => self.on_gossip(event),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => self.on_sync(event),
            SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event {
                peer,
                result: Ok(_),
                ..
            })) => self.on_ping_answered(peer),
            SwarmEvent::Behaviour(BehaviourEvent::Ping(_)) => {}
            SwarmEvent::Behaviour(BehaviourEvent::Allowed(never)) => match never {},
            SwarmEvent::ConnectionEstablished {
                peer_id, endpoint, ..
            } => {
                debug!(peer = %peer_id, address = %endpoint.get_remote_address(), "connection established");
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                cause,
                ..
            } => self.on_disconnected(peer_id, cause),
            SwarmEvent::IncomingConnectionError {
                send_back_addr,
                error,
                peer_id,
                ..
            } => match error {
                ListenError::Denied { cause } => {
                    warn!(peer = ?peer_id, address = %send_back_addr, %cause, "refused connection from a peer whose key is not allowed");
                }
                other => {
                    debug!(peer = ?peer_id, address = %send_back_addr, error = %other, "incoming connection failed")
                }
            },
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => match error {
                DialError::Denied { cause } => {
                    warn!(peer = ?peer_id, %cause, "refused connection to a peer whose key is not allowed");
                }
                other => debug!(peer = ?peer_id, error = %other, "dial failed"),
            },
            SwarmEvent::NewListenAddr { address, .. } => info!(%address, "listening"),
            SwarmEvent::ListenerClosed { reason, .. } => {
                warn!(reason = ?reason, "listener closed");
            }
            SwarmEvent::ListenerError { error, .. } => warn!(%error, "listener error"),
            _ => {}
        }
    }

    /// A peer counts as connected once a ping came back: the remote has accepted the
    /// connection too (a peer that refuses us closes it right after the handshake, before any
    /// protocol runs).
    fn on_ping_answered(&mut self, peer: PeerId) {
        if self.swarm.is_connected(&peer) && self.connected.insert(peer) {
            info!(%peer, "peer connected");
            self.peers_changed();
        }
    }

    fn on_disconnected(&mut self, peer: PeerId, cause: Option<libp2p::swarm::ConnectionError>) {
        if self.connected.remove(&peer) {
            match cause {
                Some(cause) => info!(%peer, %cause, "peer disconnected"),
                None => info!(%peer, "peer disconnected"),
            }
            self.peers_changed();
        }
    }

    fn on_gossip(&mut self, event: gossipsub::Event) {
        let gossipsub::Event::Message {
            propagation_source,
            message_id,
            message,
        } = event
        else {
            return;
        };
        if message.topic == self.transactions_topic.hash() {
            // Delivered, never forwarded (see the transaction gossip's configuration).
            self.swarm
                .behaviour_mut()
                .transactions
                .report_message_validation_result(
                    &message_id,
                    &propagation_source,
                    MessageAcceptance::Ignore,
                );
        }
        // Consensus messages are validated strictly: they carry their author and the author's
        // signature. Transaction batches are not (their author is not read), so they count as
        // from the peer that delivered them, whose key the connection authenticated.
        let author = match message.source {
            Some(source) if message.topic == self.consensus_topic.hash() => source,
            _ => propagation_source,
        };
        let Some(from) = self.keys.get(&author).copied() else {
            warn!(%author, via = %propagation_source, "gossip message from a key that is not allowed; dropped");
            return;
        };
        let event = if message.topic == self.consensus_topic.hash() {
            NetworkEvent::Consensus {
                from,
                message: message.data,
            }
        } else if message.topic == self.transactions_topic.hash() {
            NetworkEvent::Transactions {
                from,
                batch: message.data,
            }
        } else {
            debug!(topic = %message.topic, "gossip message on an unknown topic; dropped");
            return;
        };
        self.emit(event);
    }

    fn on_sync(&mut self, event: request_response::Event<v1::BlocksRequest, Vec<Vec<u8>>>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => self.serve(peer, request, channel),
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    let Some(pending) = self.pending_fetches.remove(&request_id) else {
                        return;
                    };
                    let result = if response.len() > pending.max_entries {
                        Err(NetworkError::FetchFailed {
                            peer: pending.peer,
                            reason: format!(
                                "{} entries sent for at most {} asked",
                                response.len(),
                                pending.max_entries
                            ),
                        })
                    } else {
                        Ok(response)
                    };
                    let _ = pending.reply.send(result);
                }
            },
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => {
                if let Some(pending) = self.pending_fetches.remove(&request_id) {
                    let error = match error {
                        request_response::OutboundFailure::Timeout => NetworkError::FetchTimeout {
                            timeout_ms: FETCH_TIMEOUT_MS,
                        },
                        other => NetworkError::FetchFailed {
                            peer: pending.peer,
                            reason: other.to_string(),
                        },
                    };
                    let _ = pending.reply.send(Err(error));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                debug!(%peer, %error, "block request from peer failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn peers_changed(&mut self) {
        let connected = self.connected.len();
        self.shared
            .connected_peers
            .store(connected, Ordering::Relaxed);
        self.emit(NetworkEvent::PeersChanged { connected });
    }

    /// Hands an event to the node without ever waiting: a transaction batch only when enough
    /// room is left for consensus messages, anything else when there is room at all.
    fn emit(&mut self, event: NetworkEvent) {
        let is_transactions = matches!(event, NetworkEvent::Transactions { .. });
        if is_transactions && self.events.capacity() <= EVENT_SLOTS_RESERVED_FOR_CONSENSUS {
            self.shared
                .dropped_transactions
                .fetch_add(1, Ordering::Relaxed);
            self.warn_dropped();
            return;
        }
        match self.events.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                let counter = if is_transactions {
                    &self.shared.dropped_transactions
                } else {
                    &self.shared.dropped_consensus
                };
                counter.fetch_add(1, Ordering::Relaxed);
                self.warn_dropped();
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                trace!("event receiver dropped; event discarded");
            }
        }
    }

    fn warn_dropped(&mut self) {
        let now = Instant::now();
        let due = self.last_drop_warning.is_none_or(|last| {
            now.duration_since(last) >= Duration::from_millis(DROP_WARNING_INTERVAL_MS)
        });
        if due {
            self.last_drop_warning = Some(now);
            warn!(
                consensus = self.shared.dropped_consensus.load(Ordering::Relaxed),
                transactions = self.shared.dropped_transactions.load(Ordering::Relaxed),
                "node reads network events too slowly; events dropped so far"
            );
        }
    }
}

/// Keeps at most `max_blocks` blocks and stops before the encoded response would exceed
/// `RESPONSE_BYTES_MAX`.
/// Most entries an answer to `request` holds: one per block asked for (at most
/// [`SYNC_BLOCKS_MAX`]), or one per transaction asked for.
fn answer_entries_max(request: &v1::BlocksRequest) -> usize {
    if request.transaction_hashes.is_empty() {
        request.max_blocks.min(SYNC_BLOCKS_MAX) as usize
    } else {
        request.transaction_hashes.len()
    }
}

/// The transaction hashes a request asks for (none for a block request): at most
/// [`TRANSACTIONS_FETCH_MAX`], each of 32 bytes.
fn transaction_hashes(request: &v1::BlocksRequest) -> Result<Vec<[u8; 32]>, String> {
    if request.transaction_hashes.len() > TRANSACTIONS_FETCH_MAX {
        return Err(format!(
            "{} transactions asked for, at most {TRANSACTIONS_FETCH_MAX}",
            request.transaction_hashes.len()
        ));
    }
    request
        .transaction_hashes
        .iter()
        .map(|hash| {
            <[u8; 32]>::try_from(hash.as_slice())
                .map_err(|_| format!("a transaction hash of {} bytes", hash.len()))
        })
        .collect()
}

fn trim_response(mut blocks: Vec<Vec<u8>>, max_entries: usize) -> Vec<Vec<u8>> {
    blocks.truncate(max_entries);
    let mut total = 0usize;
    let mut keep = 0usize;
    for block in &blocks {
        let entry = codec::response_entry_bytes(block.len());
        if total + entry > codec::RESPONSE_BYTES_MAX {
            break;
        }
        total += entry;
        keep += 1;
    }
    if keep < blocks.len() {
        debug!(
            kept = keep,
            offered = blocks.len(),
            "block response trimmed to its byte limit"
        );
    }
    blocks.truncate(keep);
    blocks
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod unit_tests {
    use super::*;

    #[test]
    fn trim_keeps_count_and_byte_limits() {
        let blocks = vec![vec![0u8; 10]; 5];
        assert_eq!(trim_response(blocks.clone(), 3).len(), 3);
        let big = vec![vec![0u8; codec::RESPONSE_BYTES_MAX / 2]; 3];
        assert_eq!(trim_response(big, 64).len(), 1);
    }
}
