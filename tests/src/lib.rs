//! Test support for multi-process tests: a cluster of `yrd-node` processes on loopback with
//! free ports and its own folder, started, killed (`SIGKILL`) and restarted one by one, and
//! removed with its processes when dropped.
//!
//! The `yrd-node` binary is looked up in `YRD_NODE_BIN`, else beside the test executable's
//! target folder (`target/<profile>/yrd-node`); `deploy/test.sh` builds it before the tests.
//! The member CLI `yrd` is found the same way ([`cli_binary`], `YRD_CLI_BIN`).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use yrd_proto::v1::{self, ledger_client::LedgerClient, registry_client::RegistryClient};

/// The `yrd-node` binary under test.
#[must_use]
pub fn node_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("YRD_NODE_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/yrd-node
    let profile_dir = exe.parent().and_then(Path::parent).expect("target folder");
    let path = profile_dir.join("yrd-node");
    assert!(
        path.exists(),
        "{} is missing: build it first (cargo build -p yrd-node --bins), or set YRD_NODE_BIN",
        path.display()
    );
    path
}

/// The member CLI binary `yrd` under test: `YRD_CLI_BIN`, else `target/<profile>/yrd` beside
/// the test executable's target folder.
#[must_use]
pub fn cli_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("YRD_CLI_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/yrd
    let profile_dir = exe.parent().and_then(Path::parent).expect("target folder");
    let path = profile_dir.join("yrd");
    assert!(
        path.exists(),
        "{} is missing: build it first (cargo build -p yrd-node --bins), or set YRD_CLI_BIN",
        path.display()
    );
    path
}

/// Where free port ranges are looked for: below the kernel's ephemeral range, so that no
/// outgoing connection on the machine can take a port of a node that is down for a restart.
/// Above that range if too little lies below it, and anywhere from 10,000 to 60,000 if there is
/// no room on either side.
fn port_window() -> (u16, u16) {
    let (low, high) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut parts = text.split_whitespace().map(str::parse::<u16>);
            Some((parts.next()?.ok()?, parts.next()?.ok()?))
        })
        .unwrap_or((32_768, 60_999));
    if low >= 12_000 {
        (10_000, low)
    } else if high < 63_000 {
        (high.saturating_add(1).max(10_000), 65_000)
    } else {
        (10_000, 60_000)
    }
}

/// A number that differs between calls and between processes, to spread the ranges of tests
/// that run at the same time.
fn spread() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u64(CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    hasher.finish()
}

/// A base port such that the `count` ports from it are free now, outside the kernel's
/// ephemeral range (see [`port_window`]).
#[must_use]
pub fn free_port_range(count: u16) -> u16 {
    let (low, high) = port_window();
    let span = u64::from(high.saturating_sub(low).saturating_sub(count).max(1));
    for _ in 0..500 {
        let base = low + u16::try_from(spread() % span).expect("within the window");
        let free = (base..base + count).all(|port| TcpListener::bind(("127.0.0.1", port)).is_ok());
        if free {
            return base;
        }
    }
    panic!("no free port range of {count} ports in {low}..{high}");
}

/// How long the harness waits for a node's gRPC endpoint to accept a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the harness waits for a node to answer a query (status, block), connection
/// included, before it counts as not answering.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// One node process.
pub struct Node {
    /// Its configuration file.
    pub config: PathBuf,
    /// Its gRPC endpoint.
    pub endpoint: String,
    /// Its log file.
    pub log: PathBuf,
    /// Its folder.
    pub dir: PathBuf,
    child: Option<Child>,
}

/// A network of node processes in its own folder.
pub struct Cluster {
    /// The network's folder.
    pub dir: PathBuf,
    /// The nodes, validators first.
    pub nodes: Vec<Node>,
    layout: serde_json::Value,
}

impl Cluster {
    /// Generates a network of `validators` validators and `observers` observers (not started).
    #[must_use]
    pub fn generate(name: &str, validators: usize, observers: usize) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "yrd-{name}-{}-{}",
            std::process::id(),
            free_port_range(1)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let base = free_port_range(u16::try_from(2 * (validators + observers)).expect("nodes"));
        let output = Command::new(node_binary())
            .args(["devnet", "--generate-only", "--dir"])
            .arg(&dir)
            .args([
                "--validators",
                &validators.to_string(),
                "--observers",
                &observers.to_string(),
                "--base-port",
                &base.to_string(),
            ])
            .output()
            .expect("run yrd-node devnet");
        assert!(
            output.status.success(),
            "devnet generation failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let layout: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("layout.json")).expect("layout"),
        )
        .expect("layout json");
        let nodes = layout["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| {
                let node_dir = PathBuf::from(n["dir"].as_str().expect("dir"));
                Node {
                    config: PathBuf::from(n["config"].as_str().expect("config")),
                    endpoint: n["endpoint"].as_str().expect("endpoint").to_owned(),
                    log: node_dir.join("node.log"),
                    dir: node_dir,
                    child: None,
                }
            })
            .collect();
        Self { dir, nodes, layout }
    }

    /// Generates and starts every node.
    #[must_use]
    pub fn start(name: &str, validators: usize, observers: usize) -> Self {
        let mut cluster = Self::generate(name, validators, observers);
        for index in 0..cluster.nodes.len() {
            cluster.start_node(index);
        }
        cluster
    }

    /// Starts node `index` (again).
    pub fn start_node(&mut self, index: usize) {
        let node = &mut self.nodes[index];
        assert!(node.child.is_none(), "node {index} is running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .expect("log");
        let child = Command::new(node_binary())
            .args(["start", "--config"])
            .arg(&node.config)
            .env("YRD_LOG", "info,libp2p=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start node");
        node.child = Some(child);
    }

    /// Kills node `index` with SIGKILL and reaps it.
    pub fn kill(&mut self, index: usize) {
        if let Some(mut child) = self.nodes[index].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether node `index` is running.
    pub fn is_running(&mut self, index: usize) -> bool {
        match self.nodes[index].child.as_mut() {
            Some(child) => child.try_wait().ok().flatten().is_none(),
            None => false,
        }
    }

    /// Waits until node `index` has exited and returns how, or `None` if it still runs after
    /// `limit` (or was never started).
    pub fn wait_exit(&mut self, index: usize, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        let child = self.nodes[index].child.as_mut()?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.nodes[index].child = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Node `index`'s whole log.
    #[must_use]
    pub fn log(&self, index: usize) -> String {
        std::fs::read_to_string(&self.nodes[index].log).unwrap_or_default()
    }

    /// The last lines of node `index`'s log, for failure messages.
    #[must_use]
    pub fn log_tail(&self, index: usize) -> String {
        let text = self.log(index);
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// The key and USCC of a generated member (`bank0`, `bureau`, `market`, `core`, `supplier`,
    /// `supplier2`, `regulator`).
    #[must_use]
    pub fn member(&self, name: &str) -> (String, SigningKey) {
        let member = self.layout["members"]
            .as_array()
            .expect("members")
            .iter()
            .find(|m| m["name"] == name)
            .expect("member");
        let key =
            yrd_node::keyfile::read(Path::new(member["key_file"].as_str().expect("key file")))
                .expect("key");
        (member["uscc"].as_str().expect("uscc").to_owned(), key)
    }

    /// The node key of node `index`.
    #[must_use]
    pub fn node_key(&self, index: usize) -> SigningKey {
        yrd_node::keyfile::read(&self.nodes[index].dir.join("node-key.json")).expect("node key")
    }

    /// A channel to node `index`'s gRPC endpoint, or `None` if it does not connect within
    /// [`CONNECT_TIMEOUT`].
    pub async fn channel(&self, index: usize) -> Option<tonic::transport::Channel> {
        connect(&self.nodes[index].endpoint).await
    }

    /// A ledger client of node `index`.
    pub async fn ledger(&self, index: usize) -> Option<LedgerClient<tonic::transport::Channel>> {
        self.channel(index).await.map(LedgerClient::new)
    }

    /// A registry client of node `index`.
    pub async fn registry(
        &self,
        index: usize,
    ) -> Option<RegistryClient<tonic::transport::Channel>> {
        self.channel(index).await.map(RegistryClient::new)
    }

    /// The status of node `index`, if it answers within [`QUERY_TIMEOUT`].
    pub async fn status(&self, index: usize) -> Option<v1::StatusResponse> {
        status_of(&self.nodes[index].endpoint).await
    }

    /// Waits until node `index` has committed `height`, or panics after `limit` with its log.
    pub async fn wait_height(
        &self,
        index: usize,
        height: u64,
        limit: Duration,
    ) -> v1::StatusResponse {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.status(index).await {
                if status.height >= height {
                    return status;
                }
            }
            assert!(
                Instant::now() < deadline,
                "node {index} did not reach height {height} within {limit:?}; log:\n{}",
                self.log_tail(index)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The committed block at `height` on node `index`, if it answers within
    /// [`QUERY_TIMEOUT`].
    pub async fn block(&self, index: usize, height: u64) -> Option<v1::CommittedBlock> {
        let request = v1::GetBlockRequest {
            selector: Some(v1::get_block_request::Selector::Height(height)),
        };
        query_ledger(&self.nodes[index].endpoint, |mut client| async move {
            client.get_block(request).await
        })
        .await
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for index in 0..self.nodes.len() {
            self.kill(index);
        }
        if std::thread::panicking() {
            eprintln!("test failed: network folder kept at {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A channel to the gRPC `endpoint`, or `None` if it does not connect within
/// [`CONNECT_TIMEOUT`].
pub async fn connect(endpoint: &str) -> Option<tonic::transport::Channel> {
    tonic::transport::Endpoint::from_shared(endpoint.to_owned())
        .expect("endpoint")
        .connect_timeout(CONNECT_TIMEOUT)
        .connect()
        .await
        .ok()
}

/// The answer of the ledger service at `endpoint` to `call`, if it connects and answers within
/// [`QUERY_TIMEOUT`].
async fn query_ledger<T, F, Answer>(endpoint: &str, call: F) -> Option<T>
where
    F: FnOnce(LedgerClient<tonic::transport::Channel>) -> Answer,
    Answer: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let query = async {
        let client = LedgerClient::new(connect(endpoint).await?);
        call(client).await.ok().map(tonic::Response::into_inner)
    };
    tokio::time::timeout(QUERY_TIMEOUT, query)
        .await
        .ok()
        .flatten()
}

/// The status of the node at `endpoint`, if it answers within [`QUERY_TIMEOUT`].
async fn status_of(endpoint: &str) -> Option<v1::StatusResponse> {
    query_ledger(endpoint, |mut client| async move {
        client.get_status(v1::StatusRequest {}).await
    })
    .await
}

/// Milliseconds since the epoch.
#[must_use]
pub fn now_ms() -> u64 {
    yrd_node::admission::now_ms()
}

/// Submits `envelope` to node `index`, waits (at most a minute) until it is committed, and
/// requires that it was accepted; panics with the node's log otherwise.
pub async fn submit_and_wait(
    cluster: &Cluster,
    index: usize,
    envelope: v1::SignedTransaction,
) -> v1::TransactionResult {
    let mut client = cluster.ledger(index).await.expect("connect");
    let mut request = tonic::Request::new(v1::SubmitRequest {
        transaction: Some(envelope),
    });
    request.set_timeout(Duration::from_secs(60));
    let result = client
        .submit_and_wait(request)
        .await
        .unwrap_or_else(|s| panic!("submit: {s}; log:\n{}", cluster.log_tail(index)))
        .into_inner();
    assert!(
        result.receipt.as_ref().is_some_and(|r| r.accepted),
        "rejected: {:?}",
        result.receipt
    );
    result
}

/// A basic credit report `report_id` about `subject_uscc`, its document hash all `1` bytes.
#[must_use]
pub fn record_report(report_id: &str, subject_uscc: String) -> v1::transaction_body::Action {
    v1::transaction_body::Action::RecordCreditReport(v1::RecordCreditReport {
        report_id: report_id.into(),
        subject_uscc,
        kind: v1::ReportKind::Basic as i32,
        document_sha256: vec![1; 32],
        negative: false,
        event_end_day: 0,
        summary: "first".into(),
    })
}

/// An amendment of report `report_id` with `summary`, its document hash all `byte` bytes.
#[must_use]
pub fn amend_report(report_id: &str, summary: &str, byte: u8) -> v1::transaction_body::Action {
    v1::transaction_body::Action::AmendCreditReport(v1::AmendCreditReport {
        report_id: report_id.into(),
        document_sha256: vec![byte; 32],
        negative: false,
        event_end_day: 0,
        summary: summary.into(),
    })
}

/// A signed transaction for the devnet chain.
#[must_use]
pub fn sign(
    action: v1::transaction_body::Action,
    keys: &[&SigningKey],
    nonce: u64,
) -> v1::SignedTransaction {
    let body = v1::TransactionBody {
        chain_id: yrd_node::devnet::DEVNET_CHAIN_ID.into(),
        nonce,
        valid_until_ms: now_ms() + 600_000,
        action: Some(action),
    };
    yrd_proto::signing::sign_transaction(&body, keys).expect("sign")
}

/// A node whose key is neither a validator nor an observer of the cluster, dialling every node.
pub struct Intruder {
    child: Child,
    endpoint: String,
}

impl Intruder {
    /// Starts the intruder beside `cluster`, in `cluster.dir/intruder`.
    #[must_use]
    pub fn start(cluster: &Cluster) -> Self {
        let dir = cluster.dir.join("intruder");
        std::fs::create_dir_all(&dir).expect("dir");
        let key_file = dir.join("node-key.json");
        yrd_node::keyfile::write(&key_file, &yrd_node::keyfile::generate()).expect("key");
        let mut config =
            yrd_node::config::NodeConfig::load(&cluster.nodes[0].config).expect("config");
        let mut peers = Vec::new();
        for (index, node) in cluster.nodes.iter().enumerate() {
            let node_config = yrd_node::config::NodeConfig::load(&node.config).expect("config");
            let peer_id =
                yrd_node::network::peer_id_of(&cluster.node_key(index).verifying_key().to_bytes())
                    .expect("peer id");
            peers.push(format!("{}/p2p/{peer_id}", node_config.p2p_listen));
        }
        let base = free_port_range(2);
        config.key_file = key_file;
        config.data_dir = dir.join("data");
        config.p2p_listen = format!("/ip4/127.0.0.1/tcp/{base}");
        config.grpc_listen = format!("127.0.0.1:{}", base + 1).parse().expect("addr");
        config.peers = peers;
        let config_path = dir.join("config.toml");
        std::fs::write(&config_path, toml_string(&config)).expect("write config");
        let log = std::fs::File::create(dir.join("node.log")).expect("log");
        let child = Command::new(node_binary())
            .args(["start", "--config"])
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start intruder");
        Self {
            child,
            endpoint: format!("http://127.0.0.1:{}", base + 1),
        }
    }

    /// The intruder's status, once its gRPC answers (waits up to 30 s).
    pub async fn status(&self) -> Option<v1::StatusResponse> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = status_of(&self.endpoint).await {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }
}

impl Drop for Intruder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn toml_string(config: &yrd_node::config::NodeConfig) -> String {
    yrd_node::config::to_toml(config)
}
