//! A local network on loopback: generates keys, a genesis with validators and demo members, and
//! one configuration per node; then (in `yrd-node devnet`) starts the validator processes,
//! shows the network committing a short demo workload, and stops its processes on exit.
//!
//! Ports: node `i` listens for peers on `base_port + 2 i` and for gRPC on `base_port + 2 i + 1`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _};
use ed25519_dalek::SigningKey;
use serde::Serialize;

use crate::config::{
    ConsensusConfig, GenesisFile, GenesisKey, GenesisMember, GenesisValidator, MempoolConfig,
    NodeConfig, RpcConfig,
};
use crate::{keyfile, network};

/// Chain id of a devnet.
pub const DEVNET_CHAIN_ID: &str = "yrd-devnet";

/// One node of a generated network.
#[derive(Clone, Debug, Serialize)]
pub struct NodeLayout {
    /// Its folder.
    pub dir: PathBuf,
    /// Its configuration file.
    pub config: PathBuf,
    /// Its gRPC endpoint, `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// Whether it is a validator.
    pub validator: bool,
}

/// A member whose key the devnet generated, for demos and tests.
#[derive(Clone, Debug, Serialize)]
pub struct MemberLayout {
    /// Short name (`bank0`, `bureau`, `market`, `core`, `supplier`, `regulator`, ...).
    pub name: String,
    /// USCC.
    pub uscc: String,
    /// Its key file.
    pub key_file: PathBuf,
}

/// What `generate` made.
#[derive(Clone, Debug, Serialize)]
pub struct Layout {
    /// The nodes, validators first.
    pub nodes: Vec<NodeLayout>,
    /// The demo members.
    pub members: Vec<MemberLayout>,
    /// The genesis file.
    pub genesis: PathBuf,
}

/// A valid USCC for devnet member `number` (area code 310000, Shanghai).
fn devnet_uscc(number: u32) -> String {
    let first = format!("91310000MA{number:07}");
    let check = yrd_chaincode::uscc::check_character(&first).unwrap_or('0');
    format!("{first}{check}")
}

fn roles_for(kind: &str) -> Vec<String> {
    let names: &[&str] = match kind {
        "bank" => &[
            "credit_reporter",
            "credit_querier",
            "financier",
            "enterprise",
        ],
        "bureau" => &["credit_reporter", "credit_querier"],
        "equity_market" => &["registrar"],
        "enterprise" => &["enterprise"],
        _ => &["supervisor"],
    };
    names.iter().map(|s| (*s).to_owned()).collect()
}

fn new_key(path: &Path) -> anyhow::Result<SigningKey> {
    let key = keyfile::generate();
    keyfile::write(path, &key)?;
    Ok(key)
}

/// Most extra enterprise members (`firm0..`) of a devnet.
pub const FIRMS_MAX: usize = 1_000;

/// Generates keys, genesis and configurations for `validators` validators and `observers`
/// observers under `dir`, which must not hold a network yet.
pub fn generate(
    dir: &Path,
    validators: usize,
    observers: usize,
    base_port: u16,
) -> anyhow::Result<Layout> {
    generate_with_firms(dir, validators, observers, base_port, 0)
}

/// As [`generate`], with `firms` more enterprise members named `firm0`, `firm1`, ... (at most
/// [`FIRMS_MAX`]), each with a key of its own: a workload signed by many members.
pub fn generate_with_firms(
    dir: &Path,
    validators: usize,
    observers: usize,
    base_port: u16,
    firms: usize,
) -> anyhow::Result<Layout> {
    if !(4..=32).contains(&validators) {
        bail!("a devnet has 4 to 32 validators");
    }
    if firms > FIRMS_MAX {
        bail!("a devnet has at most {FIRMS_MAX} firms");
    }
    if dir.join("genesis.json").exists() {
        bail!("{} already holds a network", dir.display());
    }
    let nodes_total = validators + observers;
    let last_port = u32::from(base_port) + 2 * nodes_total as u32;
    if base_port < 1024 || last_port > u32::from(u16::MAX) {
        bail!("ports {base_port}..{last_port} are out of range");
    }
    std::fs::create_dir_all(dir.join("members"))?;
    let mut node_keys = Vec::new();
    for index in 0..nodes_total {
        let node_dir = dir.join(format!("node{index}"));
        std::fs::create_dir_all(&node_dir)?;
        node_keys.push(new_key(&node_dir.join("node-key.json"))?);
    }
    let mut members = Vec::new();
    let mut genesis_members = Vec::new();
    let mut add_member =
        |name: String, display: String, kind: &str, number: u32| -> anyhow::Result<String> {
            let key_file = dir.join("members").join(format!("{name}.json"));
            let key = new_key(&key_file)?;
            let uscc = devnet_uscc(number);
            genesis_members.push(GenesisMember {
                uscc: uscc.clone(),
                name: display,
                kind: kind.to_owned(),
                keys: vec![GenesisKey {
                    public_key: hex::encode(key.verifying_key().to_bytes()),
                    roles: roles_for(kind),
                }],
            });
            members.push(MemberLayout {
                name,
                uscc: uscc.clone(),
                key_file,
            });
            Ok(uscc)
        };
    let mut genesis_validators = Vec::new();
    for (index, key) in node_keys.iter().take(validators).enumerate() {
        let operator = add_member(
            format!("bank{index}"),
            format!("Devnet Bank {index}"),
            "bank",
            index as u32 + 1,
        )?;
        genesis_validators.push(GenesisValidator {
            public_key: hex::encode(key.verifying_key().to_bytes()),
            operator_uscc: operator,
        });
    }
    let extra = [
        ("bureau", "Devnet Credit Bureau", "bureau"),
        ("market", "Devnet Equity Market", "equity_market"),
        ("core", "Devnet Core Enterprise", "enterprise"),
        ("supplier", "Devnet Supplier", "enterprise"),
        ("supplier2", "Devnet Second Supplier", "enterprise"),
        ("regulator", "Devnet Regulator", "regulator"),
    ];
    for (offset, (name, display, kind)) in extra.iter().enumerate() {
        add_member(
            (*name).to_owned(),
            (*display).to_owned(),
            kind,
            100 + offset as u32,
        )?;
    }
    for index in 0..firms {
        add_member(
            format!("firm{index}"),
            format!("Devnet Firm {index}"),
            "enterprise",
            // Cannot overflow: firms <= FIRMS_MAX.
            200 + index as u32,
        )?;
    }
    let genesis_file = GenesisFile {
        chain_id: DEVNET_CHAIN_ID.to_owned(),
        genesis_time_ms: crate::admission::now_ms(),
        validators: genesis_validators,
        members: genesis_members,
    };
    genesis_file
        .to_genesis()
        .map_err(|e| anyhow::anyhow!("generated genesis is invalid: {e}"))?;
    let genesis = dir.join("genesis.json");
    std::fs::write(&genesis, serde_json::to_string_pretty(&genesis_file)?)?;

    let p2p_port = |index: usize| base_port as usize + 2 * index;
    let peer_address = |index: usize| -> anyhow::Result<String> {
        let peer_id = network::peer_id_of(&node_keys[index].verifying_key().to_bytes())?;
        Ok(format!(
            "/ip4/127.0.0.1/tcp/{}/p2p/{peer_id}",
            p2p_port(index)
        ))
    };
    let observer_keys: Vec<String> = node_keys[validators..]
        .iter()
        .map(|k| hex::encode(k.verifying_key().to_bytes()))
        .collect();
    let mut nodes = Vec::new();
    for index in 0..nodes_total {
        let node_dir = dir.join(format!("node{index}"));
        let grpc_port = p2p_port(index) + 1;
        let config = NodeConfig {
            genesis: PathBuf::from("../genesis.json"),
            key_file: PathBuf::from("node-key.json"),
            data_dir: PathBuf::from("data"),
            p2p_listen: format!("/ip4/127.0.0.1/tcp/{}", p2p_port(index)),
            grpc_listen: format!("127.0.0.1:{grpc_port}").parse()?,
            peers: (0..nodes_total)
                .filter(|&other| other != index)
                .map(peer_address)
                .collect::<Result<_, _>>()?,
            observers: observer_keys.clone(),
            mempool: MempoolConfig::default(),
            consensus: ConsensusConfig::default(),
            rpc: RpcConfig::default(),
        };
        let config_path = node_dir.join("config.toml");
        std::fs::write(&config_path, toml::to_string_pretty(&config)?)?;
        nodes.push(NodeLayout {
            dir: node_dir,
            config: config_path,
            endpoint: format!("http://127.0.0.1:{grpc_port}"),
            validator: index < validators,
        });
    }
    let layout = Layout {
        nodes,
        members,
        genesis,
    };
    std::fs::write(
        dir.join("layout.json"),
        serde_json::to_string_pretty(&layout)?,
    )?;
    Ok(layout)
}

/// Reads the layout of a generated network.
pub fn load_layout(dir: &Path) -> anyhow::Result<Layout> {
    let text = std::fs::read_to_string(dir.join("layout.json"))
        .with_context(|| format!("{} holds no devnet", dir.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)?;
    let nodes = value["nodes"]
        .as_array()
        .context("layout has no nodes")?
        .iter()
        .map(|n| NodeLayout {
            dir: PathBuf::from(n["dir"].as_str().unwrap_or_default()),
            config: PathBuf::from(n["config"].as_str().unwrap_or_default()),
            endpoint: n["endpoint"].as_str().unwrap_or_default().to_owned(),
            validator: n["validator"].as_bool().unwrap_or(false),
        })
        .collect();
    let members = value["members"]
        .as_array()
        .context("layout has no members")?
        .iter()
        .map(|m| MemberLayout {
            name: m["name"].as_str().unwrap_or_default().to_owned(),
            uscc: m["uscc"].as_str().unwrap_or_default().to_owned(),
            key_file: PathBuf::from(m["key_file"].as_str().unwrap_or_default()),
        })
        .collect();
    Ok(Layout {
        nodes,
        members,
        genesis: dir.join("genesis.json"),
    })
}

/// How long to wait for a freshly started network to commit its first block.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The status of the node at `endpoint`, if it answers.
pub async fn status(endpoint: &str) -> Option<yrd_proto::v1::StatusResponse> {
    let mut client = yrd_proto::v1::ledger_client::LedgerClient::connect(endpoint.to_owned())
        .await
        .ok()?;
    client
        .get_status(yrd_proto::v1::StatusRequest {})
        .await
        .ok()
        .map(tonic::Response::into_inner)
}

/// Node processes of a local network, killed when dropped.
#[derive(Default)]
pub struct Processes(Vec<tokio::process::Child>);

impl Processes {
    /// Starts `executable start --config <node config>` for each node, appending its output to
    /// `node.log` in the node's folder.
    pub fn start(executable: &Path, nodes: &[&NodeLayout]) -> anyhow::Result<Self> {
        let mut processes = Self::default();
        for (index, node) in nodes.iter().enumerate() {
            let log_path = node.dir.join("node.log");
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .with_context(|| format!("opening {}", log_path.display()))?;
            let child = tokio::process::Command::new(executable)
                .args(["start", "--config"])
                .arg(&node.config)
                .stdin(std::process::Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("starting node {index}"))?;
            processes.0.push(child);
        }
        Ok(processes)
    }

    /// Waits until every node of `nodes` (started in this order) has committed a block; fails
    /// if one exits or [`START_TIMEOUT`] passes. Returns the heights seen.
    pub async fn wait_committing(&mut self, nodes: &[&NodeLayout]) -> anyhow::Result<Vec<u64>> {
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            let mut heights = Vec::new();
            for node in nodes {
                heights.push(status(&node.endpoint).await.map_or(0, |s| s.height));
            }
            if heights.iter().all(|&h| h >= 1) {
                return Ok(heights);
            }
            for (index, child) in self.0.iter_mut().enumerate() {
                if let Some(exit) = child.try_wait()? {
                    bail!(
                        "node {index} exited ({exit}); see {}",
                        nodes[index].dir.join("node.log").display()
                    );
                }
            }
            if tokio::time::Instant::now() > deadline {
                bail!("the network did not commit within {START_TIMEOUT:?}; see the node logs");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Kills every process and waits (up to 5 s each) for it to exit.
    pub async fn stop(&mut self) {
        for child in &mut self.0 {
            let _ = child.start_kill();
        }
        for child in &mut self.0 {
            let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
        }
        self.0.clear();
    }

    /// The process ids of the running processes.
    #[must_use]
    pub fn pids(&self) -> Vec<u32> {
        self.0
            .iter()
            .filter_map(tokio::process::Child::id)
            .collect()
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.start_kill();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::TempDir;

    #[test]
    fn firms_are_enterprise_members_with_keys_of_their_own() {
        let temp = TempDir::new("devnet-firms");
        let dir = temp.path().join("net");
        let layout = generate_with_firms(&dir, 4, 0, 39_000, 3).expect("generate");
        let firms: Vec<&MemberLayout> = layout
            .members
            .iter()
            .filter(|m| m.name.starts_with("firm"))
            .collect();
        let names: Vec<&str> = firms.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["firm0", "firm1", "firm2"]);
        let genesis: GenesisFile =
            serde_json::from_str(&std::fs::read_to_string(&layout.genesis).expect("genesis file"))
                .expect("genesis");
        for firm in &firms {
            let member = genesis
                .members
                .iter()
                .find(|g| g.uscc == firm.uscc)
                .expect("every firm is in the genesis");
            assert_eq!(member.kind, "enterprise");
            assert!(firm.key_file.exists());
        }
        let keys: std::collections::HashSet<&str> = genesis
            .members
            .iter()
            .map(|m| m.keys[0].public_key.as_str())
            .collect();
        assert_eq!(keys.len(), genesis.members.len(), "one key per member");
        assert_eq!(
            load_layout(&dir).expect("reload").members.len(),
            layout.members.len()
        );
        let too_many = temp.path().join("too-many");
        assert!(generate_with_firms(&too_many, 4, 0, 39_000, FIRMS_MAX + 1).is_err());
        assert!(!too_many.exists(), "a refused layout writes nothing");
    }
}
