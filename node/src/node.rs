//! Starting a node from its configuration: storage, mempool, network, consensus driver and
//! gRPC services wired together, running until a shutdown signal.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Context as _;
use prost::Message as _;
use tokio::sync::{broadcast, watch};
use tracing::{error, info, warn};

use crate::admission::AdmissionQueue;
use crate::config::{parse_key_hex, GenesisFile, NodeConfig};
use crate::driver::{Driver, Shared};
use crate::keyfile;
use crate::mempool::Mempool;
use crate::network::{self, BlockSource, NetworkConfig};
use crate::rpc;
use crate::storage::{self, Store};

/// Committed heights buffered for subscribers (waiting clients, block streams).
const COMMIT_NOTICES: usize = 1_024;
/// Largest batch of encoded blocks served to a syncing peer, in bytes.
const SYNC_BYTES_MAX: usize = 16 * 1024 * 1024;

/// Serves committed blocks to syncing peers from the store, and transactions asked for by
/// hash (to validators resolving a proposal) from the mempool or the store.
struct StoreBlocks {
    store: Arc<Store>,
    mempool: Arc<Mempool>,
}

impl BlockSource for StoreBlocks {
    fn blocks_from(&self, from_height: u64, max_blocks: u32, max_bytes: usize) -> Vec<Vec<u8>> {
        self.store
            .blocks_bytes_from(from_height, max_blocks, max_bytes.min(SYNC_BYTES_MAX))
            .unwrap_or_else(|e| {
                error!(%e, "reading blocks for a peer failed");
                Vec::new()
            })
    }

    fn transactions(&self, hashes: &[[u8; 32]], max_bytes: usize) -> Vec<Vec<u8>> {
        let mut found = Vec::new();
        let mut bytes = 0usize;
        let mut committed: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
        for (hash, waiting) in hashes.iter().zip(self.mempool.get_many(hashes)) {
            match waiting {
                Some(transaction) => {
                    let encoded = transaction.envelope.encode_to_vec();
                    bytes += encoded.len();
                    found.push(encoded);
                }
                // Decided meanwhile: read from its block.
                None => match self.store.transaction_location(hash) {
                    Ok(Some(location)) => committed
                        .entry(location.height)
                        .or_default()
                        .push(location.index),
                    Ok(None) => {}
                    Err(error) => error!(%error, "reading a transaction for a peer failed"),
                },
            }
            if bytes > max_bytes {
                return found;
            }
        }
        for (height, indexes) in committed {
            let block = match self.store.block(height) {
                Ok(Some(block)) => block,
                Ok(None) => continue,
                Err(error) => {
                    error!(%error, height, "reading a block for a peer failed");
                    continue;
                }
            };
            let transactions = block.block.map(|b| b.transactions).unwrap_or_default();
            for index in indexes {
                if let Some(envelope) = transactions.get(index as usize) {
                    let encoded = envelope.encode_to_vec();
                    bytes += encoded.len();
                    found.push(encoded);
                    if bytes > max_bytes {
                        return found;
                    }
                }
            }
        }
        found
    }
}

/// Runs the node described by the configuration file at `path` until SIGINT or SIGTERM.
pub async fn run(path: &Path) -> anyhow::Result<()> {
    let config = NodeConfig::load(path)?;
    let key = keyfile::read(&config.key_file)?;
    let genesis = GenesisFile::load(&config.genesis)?;
    match storage::raise_file_limit() {
        Ok(limit) => info!(?limit, "open-file limit"),
        Err(error) => warn!(
            %error,
            "could not raise the open-file limit: RocksDB keeps fewer table files open"
        ),
    }
    let store = Arc::new(
        Store::open(&config.data_dir)
            .with_context(|| format!("opening {}", config.data_dir.display()))?,
    );
    store.init_genesis(&genesis)?;
    let tip = store.tip();
    info!(chain = %genesis.chain_id, height = tip.height, "database open");

    let mut allowed_keys: Vec<[u8; 32]> = Vec::new();
    let current = yrd_chaincode::members::validator_set_for_height(&store.state(), tip.height + 1)?;
    for record in genesis.validators.iter().chain(current.iter()) {
        if let Ok(public_key) = <[u8; 32]>::try_from(record.public_key.as_slice()) {
            if !allowed_keys.contains(&public_key) {
                allowed_keys.push(public_key);
            }
        }
    }
    for observer in &config.observers {
        allowed_keys.extend(parse_key_hex(observer));
    }
    let network_config = NetworkConfig {
        chain_id: genesis.chain_id.clone(),
        secret_key: key.to_bytes(),
        listen: config.p2p_listen.parse()?,
        peers: config
            .peers
            .iter()
            .map(|p| p.parse())
            .collect::<Result<_, _>>()?,
        allowed_keys,
    };
    let mempool = Arc::new(Mempool::with_client_limit(
        config.mempool.transactions_max,
        config.mempool.bytes_max,
        config.mempool.client_transactions_max,
    ));
    let source = StoreBlocks {
        store: Arc::clone(&store),
        mempool: Arc::clone(&mempool),
    };
    let grpc_listener = rpc::bind(config.grpc_listen).await?;
    let (network, events, network_task) = network::start(network_config, Arc::new(source)).await?;
    let (commits, _) = broadcast::channel(COMMIT_NOTICES);
    let gossip = rpc::start_gossip(network.clone());
    // The thread ends with the process; nothing waits for it.
    let (admission, _admission_thread) = AdmissionQueue::start(
        Arc::clone(&store),
        Arc::clone(&mempool),
        genesis.chain_id.clone(),
        gossip,
    )
    .context("starting the admission thread")?;
    let shared = Shared {
        chain_id: genesis.chain_id.clone(),
        store,
        mempool,
        network,
        commits,
        is_validator: Arc::new(AtomicBool::new(false)),
        node_public_key: key.verifying_key().to_bytes(),
        admission,
    };
    let (shutdown, shutdown_signal) = watch::channel(false);
    let services = rpc::Services::new(shared.clone());
    let grpc = tokio::spawn(rpc::serve(
        services,
        grpc_listener,
        config.rpc.clone(),
        shutdown_signal.clone(),
    ));
    info!(grpc = %config.grpc_listen, p2p = %config.p2p_listen, "node started");
    let driver = tokio::spawn(
        Driver::new(shared, key, config.consensus.clone()).run(events, shutdown_signal),
    );

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let outcome = tokio::select! {
        _ = tokio::signal::ctrl_c() => Ok(()),
        _ = terminate.recv() => Ok(()),
        result = driver => match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(anyhow::anyhow!("node stopped: {e}")),
            Err(e) => Err(anyhow::anyhow!("consensus driver panicked: {e}")),
        },
    };
    let _ = shutdown.send(true);
    network_task.abort();
    if let Ok(Ok(Err(e))) = tokio::time::timeout(std::time::Duration::from_secs(5), grpc).await {
        error!(%e, "gRPC server failed");
    }
    outcome
}
