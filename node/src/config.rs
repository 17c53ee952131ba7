//! Configuration: the node's TOML file and the chain's JSON genesis file, read loosely from
//! disk and then validated once into strong types.
//!
//! Invariant: a [`NodeConfig`] or [`v1::Genesis`] returned from here passed every check; the
//! rest of the node does not re-validate them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use yrd_proto::v1;

/// Largest configuration or genesis file accepted, in bytes.
const CONFIG_FILE_BYTES_MAX: u64 = 4 * 1024 * 1024;
/// Largest `rpc.connections_max` accepted: each connection may hold a file descriptor and
/// half a megabyte of unread requests.
const RPC_CONNECTIONS_MAX: usize = 4_096;
/// Largest `rpc.calls_max` accepted.
const RPC_CALLS_MAX: usize = 16_384;

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Reading failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The content is invalid.
    #[error("{path}: {problem}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        problem: String,
    },
}

/// The node's configuration file (`config.toml`). Relative paths are relative to the file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Path of the genesis file.
    pub genesis: PathBuf,
    /// Path of the node's key file: its validator and network identity.
    pub key_file: PathBuf,
    /// Folder of the RocksDB database.
    pub data_dir: PathBuf,
    /// libp2p listen address, e.g. `/ip4/0.0.0.0/tcp/7001`.
    pub p2p_listen: String,
    /// gRPC listen address, e.g. `127.0.0.1:7100`.
    pub grpc_listen: SocketAddr,
    /// Peers to dial: multiaddresses ending in `/p2p/<peer id>`.
    #[serde(default)]
    pub peers: Vec<String>,
    /// Hex ed25519 public keys of observer nodes allowed to connect (validators always are).
    #[serde(default)]
    pub observers: Vec<String>,
    /// Mempool bounds.
    #[serde(default)]
    pub mempool: MempoolConfig,
    /// Block building and consensus timing.
    #[serde(default)]
    pub consensus: ConsensusConfig,
    /// Bounds on the gRPC server's clients.
    #[serde(default)]
    pub rpc: RpcConfig,
}

/// Bounds on what clients can make the gRPC server hold (`rpc::limits`), whoever they are.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RpcConfig {
    /// Most client connections open at once; a connection beyond it is closed at once. Each
    /// holds at most `rpc::limits::CONNECTION_WINDOW_BYTES` of unread request bytes.
    pub connections_max: usize,
    /// Most calls in progress at once across all connections, from their arrival until their
    /// response is sent; a call that waits for a commit counts only while its request is
    /// received. A call beyond it is refused with RESOURCE_EXHAUSTED. Each holds at most one
    /// request (`SubmitBatch`: 256 KiB) or one response.
    pub calls_max: usize,
    /// Of those, most calls at once whose answer can run to megabytes: `GetBlock`, the
    /// registry's `GetCreditReport`, `ListCreditReports`, `GetReceivable` and `GetFund`, and
    /// `GetHistory` and `GetHeaders`.
    pub large_calls_max: usize,
    /// Of those, most block streams (`StreamBlocks`) at once. A stream lasts as long as its
    /// client wants and buffers up to 16 blocks while its client reads slowly.
    #[serde(default = "default_streams_max")]
    pub streams_max: usize,
}

fn default_streams_max() -> usize {
    32
}

impl Default for RpcConfig {
    fn default() -> Self {
        Self {
            connections_max: 256,
            calls_max: 256,
            large_calls_max: 32,
            streams_max: default_streams_max(),
        }
    }
}

/// Mempool bounds.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MempoolConfig {
    /// Most transactions waiting.
    pub transactions_max: usize,
    /// Most encoded bytes waiting.
    pub bytes_max: usize,
    /// Client submissions are refused with RESOURCE_EXHAUSTED, before any work is spent on
    /// them, while this many transactions wait for a block or are being admitted (those in the
    /// block being decided are not counted): the queue, and so the commit latency, stays short
    /// under overload.
    /// Gossip from peers may fill the rest, up to `transactions_max`.
    #[serde(default = "default_client_transactions_max")]
    pub client_transactions_max: usize,
}

fn default_block_interval_min_ms() -> u64 {
    100
}

fn default_proposals_by_reference() -> bool {
    true
}

fn default_client_transactions_max() -> usize {
    500
}

impl Default for MempoolConfig {
    fn default() -> Self {
        Self {
            transactions_max: 50_000,
            bytes_max: 64 * 1024 * 1024,
            client_transactions_max: default_client_transactions_max(),
        }
    }
}

/// Block building and consensus timing.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsensusConfig {
    /// Most transactions per block. A block's execution and commit time grows with it, and a
    /// transaction waits about two block times, so this bounds the commit latency under load.
    pub block_transactions_max: usize,
    /// Most transaction bytes per block.
    pub block_bytes_max: usize,
    /// How long a proposer with an empty mempool waits for transactions before proposing an
    /// empty block, ms. Must stay well below `timeout_propose_ms`.
    pub empty_block_wait_ms: u64,
    /// Least time between the last commit and the next proposal while fewer than half of
    /// `block_transactions_max` transactions wait and clients are still admitted, ms: at low
    /// load, blocks then carry more transactions instead of coming faster, which spreads each
    /// block's fixed cost. Once half a block waits, or the node refuses clients, it proposes
    /// at once.
    #[serde(default = "default_block_interval_min_ms")]
    pub block_interval_min_ms: u64,
    /// Base propose timeout, ms (grows by half of it per round).
    pub timeout_propose_ms: u64,
    /// Base prevote and precommit timeouts, ms (grow by half per round).
    pub timeout_vote_ms: u64,
    /// Largest allowed lead of a proposed block time over the local clock, ms.
    pub block_time_drift_ms: u64,
    /// Whether this validator's proposals name their transactions (hash and envelope hash)
    /// instead of carrying them; peers take them from their mempools or fetch them. Validators
    /// older than this option cannot read such proposals: while some still run, set it to
    /// `false` on the upgraded ones, and back to `true` once every validator is upgraded.
    /// Proposals of either kind are always accepted.
    #[serde(default = "default_proposals_by_reference")]
    pub proposals_by_reference: bool,
}

impl Default for ConsensusConfig {
    fn default() -> Self {
        Self {
            block_transactions_max: 500,
            block_bytes_max: 8 * 1024 * 1024,
            empty_block_wait_ms: 500,
            block_interval_min_ms: default_block_interval_min_ms(),
            timeout_propose_ms: 3_000,
            timeout_vote_ms: 1_000,
            block_time_drift_ms: 5_000,
            proposals_by_reference: default_proposals_by_reference(),
        }
    }
}

fn read_bounded(path: &Path) -> Result<String, ConfigError> {
    let io = |source| ConfigError::Io {
        path: path.display().to_string(),
        source,
    };
    let length = std::fs::metadata(path).map_err(io)?.len();
    if length > CONFIG_FILE_BYTES_MAX {
        return Err(ConfigError::Invalid {
            path: path.display().to_string(),
            problem: format!("{length} bytes, more than the {CONFIG_FILE_BYTES_MAX} allowed"),
        });
    }
    std::fs::read_to_string(path).map_err(io)
}

impl NodeConfig {
    /// Reads and validates a configuration file; relative paths become relative to its folder.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let invalid = |problem: String| ConfigError::Invalid {
            path: path.display().to_string(),
            problem,
        };
        let text = read_bounded(path)?;
        let mut config: NodeConfig = toml::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        for field in [
            &mut config.genesis,
            &mut config.key_file,
            &mut config.data_dir,
        ] {
            if field.is_relative() {
                *field = base.join(&*field);
            }
        }
        config.validate().map_err(invalid)?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        self.p2p_listen
            .parse::<libp2p::Multiaddr>()
            .map_err(|e| format!("p2p_listen: {e}"))?;
        for peer in &self.peers {
            let address: libp2p::Multiaddr =
                peer.parse().map_err(|e| format!("peer {peer}: {e}"))?;
            if !address
                .iter()
                .any(|p| matches!(p, libp2p::multiaddr::Protocol::P2p(_)))
            {
                return Err(format!("peer {peer} must end in /p2p/<peer id>"));
            }
        }
        for observer in &self.observers {
            parse_key_hex(observer)
                .ok_or_else(|| format!("observer key {observer} is not 32 bytes of hex"))?;
        }
        let c = &self.consensus;
        if c.block_transactions_max == 0
            || c.block_transactions_max > yrd_proto::limits::BLOCK_TRANSACTIONS_MAX
        {
            return Err(format!(
                "consensus.block_transactions_max must be 1 to {}",
                yrd_proto::limits::BLOCK_TRANSACTIONS_MAX
            ));
        }
        if c.block_bytes_max == 0 || c.block_bytes_max > yrd_proto::limits::BLOCK_BYTES_MAX / 2 {
            return Err(format!(
                "consensus.block_bytes_max must be 1 to {}",
                yrd_proto::limits::BLOCK_BYTES_MAX / 2
            ));
        }
        if c.block_interval_min_ms * 2 > c.timeout_propose_ms {
            return Err(
                "consensus.block_interval_min_ms must be at most half of timeout_propose_ms".into(),
            );
        }
        if c.empty_block_wait_ms * 2 > c.timeout_propose_ms {
            return Err(
                "consensus.empty_block_wait_ms must be at most half of timeout_propose_ms".into(),
            );
        }
        if c.timeout_vote_ms == 0 || c.timeout_propose_ms == 0 {
            return Err("consensus timeouts must be positive".into());
        }
        if self.mempool.transactions_max == 0
            || self.mempool.bytes_max < yrd_proto::limits::TRANSACTION_BYTES_MAX
        {
            return Err("mempool bounds are too small".into());
        }
        if self.mempool.client_transactions_max == 0
            || self.mempool.client_transactions_max > self.mempool.transactions_max
        {
            return Err("mempool.client_transactions_max must be 1 to transactions_max".into());
        }
        let r = &self.rpc;
        if r.connections_max == 0 || r.connections_max > RPC_CONNECTIONS_MAX {
            return Err(format!(
                "rpc.connections_max must be 1 to {RPC_CONNECTIONS_MAX}"
            ));
        }
        if r.calls_max == 0 || r.calls_max > RPC_CALLS_MAX {
            return Err(format!("rpc.calls_max must be 1 to {RPC_CALLS_MAX}"));
        }
        if r.large_calls_max == 0 || r.large_calls_max > r.calls_max {
            return Err("rpc.large_calls_max must be 1 to calls_max".into());
        }
        if r.streams_max == 0 || r.streams_max > r.calls_max {
            return Err("rpc.streams_max must be 1 to calls_max".into());
        }
        Ok(())
    }
}

/// Parses 32 bytes of hex.
#[must_use]
pub fn parse_key_hex(text: &str) -> Option<[u8; 32]> {
    hex::decode(text.trim()).ok()?.try_into().ok()
}

/// The genesis file (`genesis.json`): keys in hex, enums by name.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisFile {
    /// The chain id.
    pub chain_id: String,
    /// Genesis time, ms since the epoch.
    pub genesis_time_ms: u64,
    /// The initial validators.
    pub validators: Vec<GenesisValidator>,
    /// The initial members.
    pub members: Vec<GenesisMember>,
}

/// A validator in the genesis file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisValidator {
    /// Hex ed25519 consensus key.
    pub public_key: String,
    /// USCC of the operating member.
    pub operator_uscc: String,
}

/// A member in the genesis file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisMember {
    /// USCC.
    pub uscc: String,
    /// Name.
    pub name: String,
    /// `bank`, `bureau`, `equity_market`, `enterprise` or `regulator`.
    pub kind: String,
    /// Keys and roles.
    pub keys: Vec<GenesisKey>,
}

/// A member key in the genesis file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisKey {
    /// Hex ed25519 public key.
    pub public_key: String,
    /// Role names: `credit_reporter`, `credit_querier`, `financier`, `registrar`, `enterprise`, `supervisor`.
    pub roles: Vec<String>,
}

fn member_kind(name: &str) -> Option<v1::MemberKind> {
    v1::MemberKind::from_str_name(&format!("MEMBER_KIND_{}", name.to_uppercase()))
        .filter(|k| *k != v1::MemberKind::Unspecified)
}

fn role(name: &str) -> Option<v1::Role> {
    v1::Role::from_str_name(&format!("ROLE_{}", name.to_uppercase()))
        .filter(|r| *r != v1::Role::Unspecified)
}

impl GenesisFile {
    /// Converts to the wire genesis, then validates it with the chaincode's own rules.
    pub fn to_genesis(&self) -> Result<v1::Genesis, String> {
        let key =
            |text: &str| hex::decode(text.trim()).map_err(|_| format!("key {text} is not hex"));
        let validators = self
            .validators
            .iter()
            .map(|v| {
                Ok(v1::ValidatorRecord {
                    public_key: key(&v.public_key)?,
                    operator_uscc: v.operator_uscc.clone(),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let members = self
            .members
            .iter()
            .map(|m| {
                let kind = member_kind(&m.kind)
                    .ok_or_else(|| format!("member {}: unknown kind {}", m.uscc, m.kind))?;
                let keys = m
                    .keys
                    .iter()
                    .map(|k| {
                        let roles = k
                            .roles
                            .iter()
                            .map(|r| {
                                role(r)
                                    .map(|r| r as i32)
                                    .ok_or_else(|| format!("member {}: unknown role {r}", m.uscc))
                            })
                            .collect::<Result<Vec<_>, String>>()?;
                        Ok(v1::MemberKey {
                            public_key: key(&k.public_key)?,
                            roles,
                        })
                    })
                    .collect::<Result<Vec<_>, String>>()?;
                Ok(v1::RegisterMember {
                    uscc: m.uscc.clone(),
                    name: m.name.clone(),
                    kind: kind as i32,
                    keys,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let genesis = v1::Genesis {
            chain_id: self.chain_id.clone(),
            genesis_time_ms: self.genesis_time_ms,
            validators,
            members,
        };
        yrd_chaincode::members::genesis_writes(&genesis).map_err(|e| e.to_string())?;
        Ok(genesis)
    }

    /// Reads and validates a genesis file.
    pub fn load(path: &Path) -> Result<v1::Genesis, ConfigError> {
        let invalid = |problem: String| ConfigError::Invalid {
            path: path.display().to_string(),
            problem,
        };
        let text = read_bounded(path)?;
        let file: GenesisFile = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        file.to_genesis().map_err(invalid)
    }
}

/// Writes a configuration as TOML.
#[must_use]
pub fn to_toml(config: &NodeConfig) -> String {
    toml::to_string_pretty(config).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_enums() {
        assert_eq!(
            member_kind("equity_market"),
            Some(v1::MemberKind::EquityMarket)
        );
        assert_eq!(member_kind("unspecified"), None);
        assert_eq!(role("credit_reporter"), Some(v1::Role::CreditReporter));
        assert_eq!(role("root"), None);
    }

    /// A configuration of defaults, with no peers.
    fn defaults() -> NodeConfig {
        NodeConfig {
            genesis: "g".into(),
            key_file: "k".into(),
            data_dir: "d".into(),
            p2p_listen: "/ip4/127.0.0.1/tcp/7001".into(),
            grpc_listen: "127.0.0.1:7100".parse().expect("addr"),
            peers: vec![],
            observers: vec![],
            mempool: MempoolConfig::default(),
            consensus: ConsensusConfig::default(),
            rpc: RpcConfig::default(),
        }
    }

    #[test]
    fn consensus_defaults_are_valid() {
        let config = NodeConfig {
            peers: vec!["/ip4/127.0.0.1/tcp/7002".into()],
            ..defaults()
        };
        assert!(config
            .validate()
            .expect_err("peer without id")
            .contains("/p2p/"));
        let config = NodeConfig {
            peers: vec![],
            ..config
        };
        assert!(config.validate().is_ok());
    }

    #[test]
    fn rpc_bounds_are_checked_and_default_when_absent() {
        let rpc: RpcConfig = toml::from_str(
            "connections_max = 8\ncalls_max = 4\nlarge_calls_max = 4\nstreams_max = 2\n",
        )
        .expect("parse");
        assert_eq!(rpc.connections_max, 8);
        let config = NodeConfig { rpc, ..defaults() };
        assert!(config.validate().is_ok());
        for (rpc, problem) in [
            (
                RpcConfig {
                    connections_max: 0,
                    ..RpcConfig::default()
                },
                "connections_max",
            ),
            (
                RpcConfig {
                    calls_max: 0,
                    ..RpcConfig::default()
                },
                "calls_max",
            ),
            (
                RpcConfig {
                    calls_max: 4,
                    large_calls_max: 5,
                    ..RpcConfig::default()
                },
                "large_calls_max",
            ),
            (
                RpcConfig {
                    calls_max: 4,
                    large_calls_max: 4,
                    streams_max: 5,
                    ..RpcConfig::default()
                },
                "streams_max",
            ),
            (
                RpcConfig {
                    connections_max: RPC_CONNECTIONS_MAX + 1,
                    ..RpcConfig::default()
                },
                "connections_max",
            ),
        ] {
            let config = NodeConfig {
                rpc,
                ..config.clone()
            };
            let error = config.validate().expect_err("out of bounds");
            assert!(error.contains(problem), "{error}");
        }
        let older = "genesis = \"g\"\nkey_file = \"k\"\ndata_dir = \"d\"\n\
                     p2p_listen = \"/ip4/127.0.0.1/tcp/7001\"\ngrpc_listen = \"127.0.0.1:7100\"\n";
        let older: NodeConfig = toml::from_str(older).expect("a file without [rpc]");
        assert_eq!(older.rpc.calls_max, RpcConfig::default().calls_max);
    }

    #[test]
    fn proposals_name_their_transactions_unless_configured_not_to() {
        let section = "block_transactions_max = 300\nblock_bytes_max = 8388608\n\
                       empty_block_wait_ms = 500\ntimeout_propose_ms = 3000\n\
                       timeout_vote_ms = 1000\nblock_time_drift_ms = 5000\n";
        let older: ConsensusConfig = toml::from_str(section).expect("a section without it");
        assert!(older.proposals_by_reference);
        assert!(ConsensusConfig::default().proposals_by_reference);
        let upgrading: ConsensusConfig =
            toml::from_str(&format!("{section}proposals_by_reference = false\n")).expect("parse");
        assert!(!upgrading.proposals_by_reference);
    }
}
