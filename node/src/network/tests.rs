//! Multi-node tests of the network on 127.0.0.1: gossip delivery, block sync, and refusal of a
//! peer whose key is not allowed. Every wait has a deadline; none relies on a sleep to order
//! events (retries only re-send until the first delivery).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use tokio::sync::mpsc;
use tokio::time::{timeout_at, Instant};

use super::*;

const DEADLINE: Duration = Duration::from_secs(20);
const RETRY_INTERVAL: Duration = Duration::from_millis(200);
const CHAIN_ID: &str = "yrd-test";

/// Serves blocks `1..=TEST_BLOCKS`; block `h` is the bytes `block-<h>`. Holds the
/// transactions whose hash starts with an even byte; the one with hash `h` is the bytes of the
/// serving node's seed followed by `h`.
struct TestBlocks(u8);

const TEST_BLOCKS: u64 = 100;

fn test_block(height: u64) -> Vec<u8> {
    format!("block-{height}").into_bytes()
}

impl BlockSource for TestBlocks {
    fn blocks_from(&self, from_height: u64, max_blocks: u32, _max_bytes: usize) -> Vec<Vec<u8>> {
        (from_height.max(1)..=TEST_BLOCKS)
            .take(max_blocks as usize)
            .map(test_block)
            .collect()
    }

    fn transactions(&self, hashes: &[[u8; 32]], _max_bytes: usize) -> Vec<Vec<u8>> {
        hashes
            .iter()
            .filter(|hash| hash[0] % 2 == 0)
            .map(|hash| [&[self.0][..], &hash[..]].concat())
            .collect()
    }
}

struct Node {
    key: [u8; 32],
    handle: NetworkHandle,
    events: mpsc::Receiver<NetworkEvent>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn secret(seed: u8) -> [u8; 32] {
    [seed; 32]
}

fn public(seed: u8) -> [u8; 32] {
    SigningKey::from_bytes(&secret(seed))
        .verifying_key()
        .to_bytes()
}

async fn start_node(seed: u8, allowed: &[u8], peers: &[&Node]) -> Node {
    start_node_on(
        seed,
        allowed,
        peers,
        "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
    )
    .await
}

async fn start_node_on(seed: u8, allowed: &[u8], peers: &[&Node], listen: Multiaddr) -> Node {
    let config = NetworkConfig {
        chain_id: CHAIN_ID.to_owned(),
        secret_key: secret(seed),
        listen,
        peers: peers.iter().map(|n| n.handle.listen_address()).collect(),
        allowed_keys: allowed.iter().map(|&s| public(s)).collect(),
    };
    let (handle, events, task) = start(config, Arc::new(TestBlocks(seed))).await.unwrap();
    assert_eq!(handle.local_peer_id(), peer_id_of(&public(seed)).unwrap());
    Node {
        key: public(seed),
        handle,
        events,
        task,
    }
}

/// Waits until `node` has `count` peers, reading its events; panics at the deadline.
async fn wait_peers(node: &mut Node, count: usize, deadline: Instant) {
    while node.handle.connected_peers() != count {
        match timeout_at(deadline, node.events.recv()).await {
            Ok(Some(_)) => {}
            Ok(None) => panic!("event channel closed"),
            Err(_) => panic!(
                "node has {} peers, not {count}, at the deadline",
                node.handle.connected_peers()
            ),
        }
    }
}

/// Three nodes that allow each other; node 2 dials node 1, node 3 dials nodes 1 and 2.
async fn three_nodes() -> [Node; 3] {
    let allowed = [1, 2, 3];
    let a = start_node(1, &allowed, &[]).await;
    let b = start_node(2, &allowed, &[&a]).await;
    let c = start_node(3, &allowed, &[&a, &b]).await;
    let mut nodes = [a, b, c];
    let deadline = Instant::now() + DEADLINE;
    for node in &mut nodes {
        wait_peers(node, 2, deadline).await;
    }
    nodes
}

/// The gossip payload a test event carries, if it is of the wanted kind.
fn gossip_of(event: &NetworkEvent, consensus: bool) -> Option<(&[u8; 32], &[u8])> {
    match (event, consensus) {
        (NetworkEvent::Consensus { from, message }, true) => Some((from, message)),
        (NetworkEvent::Transactions { from, batch }, false) => Some((from, batch)),
        _ => None,
    }
}

/// Broadcasts `prefix-<n>` from `sender` every RETRY_INTERVAL (gossip needs the peers'
/// subscriptions first, and a publish before them is dropped) until each receiver delivered one
/// such message from the sender's key.
async fn broadcast_until_delivered(sender: &Node, receivers: &mut [Node], consensus: bool) {
    let prefix = if consensus { "vote" } else { "batch" };
    let deadline = Instant::now() + DEADLINE;
    let mut delivered = vec![false; receivers.len()];
    let mut attempt = 0u32;
    let mut retry = tokio::time::interval(RETRY_INTERVAL);
    while delivered.contains(&false) {
        tokio::select! {
            _ = retry.tick() => {
                let data = format!("{prefix}-{attempt}").into_bytes();
                attempt += 1;
                if consensus {
                    sender.handle.broadcast_consensus(data).unwrap();
                } else {
                    sender.handle.broadcast_transactions(data).unwrap();
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                panic!("{prefix}: delivered to {delivered:?} at the deadline");
            }
            (index, event) = next_event(receivers) => {
                let Some(event) = event else { panic!("event channel closed") };
                if let Some((from, data)) = gossip_of(&event, consensus) {
                    assert_eq!(from, &sender.key, "author key");
                    assert!(data.starts_with(prefix.as_bytes()), "payload {data:?}");
                    delivered[index] = true;
                }
            }
        }
    }
}

/// The next event of any of the nodes, with the node's index.
async fn next_event(nodes: &mut [Node]) -> (usize, Option<NetworkEvent>) {
    let futures = nodes
        .iter_mut()
        .map(|n| Box::pin(n.events.recv()))
        .collect::<Vec<_>>();
    let (event, index, _) = futures::future::select_all(futures).await;
    (index, event)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consensus_broadcast_reaches_the_other_nodes() {
    let [a, b, c] = three_nodes().await;
    broadcast_until_delivered(&a, &mut [b, c], true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_batch_reaches_the_other_nodes() {
    let [a, b, c] = three_nodes().await;
    broadcast_until_delivered(&c, &mut [a, b], false).await;
}

/// Consensus messages are forwarded; transaction batches are not: node 3 is connected to
/// node 2 only, and gets node 1's votes through it but never node 1's batches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consensus_messages_are_forwarded_and_transaction_batches_are_not() {
    let allowed = [1, 2, 3];
    let mut a = start_node(1, &allowed, &[]).await;
    let mut b = start_node(2, &allowed, &[&a]).await;
    let mut c = start_node(3, &allowed, &[&b]).await;
    let deadline = Instant::now() + DEADLINE;
    wait_peers(&mut a, 1, deadline).await;
    wait_peers(&mut b, 2, deadline).await;
    wait_peers(&mut c, 1, deadline).await;

    // Node 2 holds a batch of node 1's before node 1's votes reach node 3 through node 2.
    broadcast_until_delivered(&a, std::slice::from_mut(&mut b), false).await;
    let deadline = Instant::now() + DEADLINE;
    let mut attempt = 0u32;
    let mut retry = tokio::time::interval(RETRY_INTERVAL);
    loop {
        tokio::select! {
            _ = retry.tick() => {
                a.handle.broadcast_consensus(format!("vote-{attempt}").into_bytes()).unwrap();
                a.handle.broadcast_transactions(format!("batch-{attempt}").into_bytes()).unwrap();
                attempt += 1;
            }
            _ = tokio::time::sleep_until(deadline) => panic!("no vote reached node 3"),
            event = c.events.recv() => match event {
                Some(NetworkEvent::Consensus { message, .. }) => {
                    assert!(message.starts_with(b"vote-"));
                    break;
                }
                Some(NetworkEvent::Transactions { batch, .. }) => {
                    panic!("node 2 forwarded a batch: {batch:?}")
                }
                Some(NetworkEvent::PeersChanged { .. }) => {}
                None => panic!("event channel closed"),
            },
            // Node 2 keeps receiving; its events are not the point.
            _ = b.events.recv() => {}
        }
    }
    // Batches sent together with the votes that got through would have come by now.
    let watch_until = Instant::now() + Duration::from_secs(1);
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(watch_until) => break,
            event = c.events.recv() => {
                if let Some(NetworkEvent::Transactions { batch, .. }) = event {
                    panic!("node 2 forwarded a batch: {batch:?}");
                }
            }
            _ = b.events.recv() => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_blocks_returns_the_served_blocks() {
    let [a, _b, _c] = three_nodes().await;
    // Two calls ask the two peers in turn; both serve the same test chain.
    for _ in 0..2 {
        let blocks = a.handle.fetch_blocks(10, 5).await.unwrap();
        assert_eq!(blocks, (10..15).map(test_block).collect::<Vec<_>>());
    }
    // Capped at SYNC_BLOCKS_MAX, and the tail of the chain.
    let blocks = a.handle.fetch_blocks(1, 1_000).await.unwrap();
    assert_eq!(blocks.len(), SYNC_BLOCKS_MAX as usize);
    let blocks = a.handle.fetch_blocks(98, 10).await.unwrap();
    assert_eq!(blocks, (98..=100).map(test_block).collect::<Vec<_>>());
    let blocks = a.handle.fetch_blocks(500, 10).await.unwrap();
    assert!(blocks.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_transactions_asks_the_named_peer_and_returns_what_it_holds() {
    let [a, _b, _c] = three_nodes().await;
    let hashes: Vec<[u8; 32]> = (0..10u8).map(|i| [i; 32]).collect();
    let held: Vec<&[u8; 32]> = hashes.iter().filter(|h| h[0] % 2 == 0).collect();
    for seed in [3, 2, 3] {
        let answer = a
            .handle
            .fetch_transactions(Some(public(seed)), hashes.clone())
            .await
            .unwrap();
        assert_eq!(answer.len(), held.len());
        for (entry, hash) in answer.iter().zip(&held) {
            assert_eq!(entry[0], seed, "answered by the peer named");
            assert_eq!(&entry[1..], &hash[..]);
        }
    }
    // Without a connected peer named, some peer answers.
    let answer = a
        .handle
        .fetch_transactions(Some(public(9)), hashes.clone())
        .await
        .unwrap();
    assert_eq!(answer.len(), held.len());
    assert!(matches!(
        a.handle
            .fetch_transactions(None, vec![[0; 32]; TRANSACTIONS_FETCH_MAX + 1])
            .await,
        Err(NetworkError::MessageTooLarge { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_without_peers_fails() {
    let lonely = start_node(1, &[1], &[]).await;
    assert!(matches!(
        lonely.handle.fetch_blocks(1, 1).await,
        Err(NetworkError::NoPeers)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_key_is_not_allowed_cannot_connect() {
    let [a, b, c] = three_nodes().await;
    // The stranger allows everyone and dials everyone; nobody allows it.
    let mut stranger = start_node(4, &[1, 2, 3, 4], &[&a, &b, &c]).await;
    let mut members = [a, b, c];
    let watch_until = Instant::now() + Duration::from_secs(3);
    let mut retry = tokio::time::interval(RETRY_INTERVAL);
    let mut attempt = 0u32;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(watch_until) => break,
            _ = retry.tick() => {
                let data = format!("forged-{attempt}").into_bytes();
                attempt += 1;
                // With no peer the publish is dropped inside the network: not an error.
                stranger.handle.broadcast_consensus(data.clone()).unwrap();
                stranger.handle.broadcast_transactions(data).unwrap();
                assert_eq!(stranger.handle.connected_peers(), 0);
            }
            event = stranger.events.recv() => {
                panic!("the stranger got an event: {event:?}");
            }
            (index, event) = next_event(&mut members) => match event {
                // A member may still report reaching its two peers; never a third.
                Some(NetworkEvent::PeersChanged { connected }) => {
                    assert!(connected <= 2, "member {index} now has {connected} peers");
                }
                Some(event) => panic!("member {index} delivered {event:?}"),
                None => panic!("event channel closed"),
            },
        }
    }
    assert_eq!(stranger.handle.connected_peers(), 0);
    for member in &members {
        assert_eq!(member.handle.connected_peers(), 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_peer_is_dialled_again() {
    let [mut a, mut b, mut c] = three_nodes().await;
    // The listen address without its /p2p/<PeerId> suffix, to restart on the same port.
    let listen: Multiaddr = b
        .handle
        .listen_address()
        .iter()
        .filter(|p| !matches!(p, libp2p::multiaddr::Protocol::P2p(_)))
        .collect();
    b.task.abort();
    let _ = (&mut b.task).await;
    drop(b);
    let deadline = Instant::now() + DEADLINE;
    wait_peers(&mut a, 1, deadline).await;
    wait_peers(&mut c, 1, deadline).await;

    // Restarted with no peers of its own: node 3 must dial it again.
    let mut b = start_node_on(2, &[1, 2, 3], &[], listen).await;
    wait_peers(&mut c, 2, deadline).await;
    wait_peers(&mut b, 1, deadline).await;
    broadcast_until_delivered(&c, std::slice::from_mut(&mut b), true).await;
}

#[test]
fn peer_id_of_rejects_an_invalid_key_and_matches_the_libp2p_identity() {
    let secret_key = libp2p::identity::ed25519::SecretKey::try_from_bytes(secret(9)).unwrap();
    let keypair = libp2p::identity::ed25519::Keypair::from(secret_key);
    let expected = libp2p::identity::PublicKey::from(keypair.public()).to_peer_id();
    assert_eq!(peer_id_of(&public(9)).unwrap(), expected);
    // Not a point on the curve (y = 2 has no x).
    let mut invalid = [0u8; 32];
    invalid[0] = 2;
    assert!(matches!(
        peer_id_of(&invalid),
        Err(NetworkError::InvalidPublicKey { .. })
    ));
}

#[tokio::test]
async fn configuration_errors_are_reported() {
    let base = NetworkConfig {
        chain_id: CHAIN_ID.to_owned(),
        secret_key: secret(1),
        listen: "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
        peers: Vec::new(),
        allowed_keys: vec![public(1)],
    };
    let no_peer_id = NetworkConfig {
        peers: vec!["/ip4/127.0.0.1/tcp/1".parse().unwrap()],
        ..base.clone()
    };
    assert!(matches!(
        start(no_peer_id, Arc::new(TestBlocks(0))).await,
        Err(NetworkError::PeerAddressWithoutPeerId { .. })
    ));
    let empty_chain = NetworkConfig {
        chain_id: String::new(),
        ..base.clone()
    };
    assert!(matches!(
        start(empty_chain, Arc::new(TestBlocks(0))).await,
        Err(NetworkError::InvalidChainId { .. })
    ));
    let too_large = start(base, Arc::new(TestBlocks(0))).await.unwrap().0;
    assert!(matches!(
        too_large.broadcast_consensus(vec![0; service::GOSSIP_DATA_BYTES_MAX + 1]),
        Err(NetworkError::MessageTooLarge { .. })
    ));
}
