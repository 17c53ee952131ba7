//! `yrd-node`: runs a yrd node (`start`), makes a node key (`init`), or starts a local
//! 4-validator network that shows itself committing (`devnet`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use ed25519_dalek::SigningKey;
use yrd_node::devnet::{self, status, Layout, Processes};
use yrd_node::{admission::now_ms, keyfile, network};
use yrd_proto::v1::{self, ledger_client::LedgerClient, transaction_body::Action};

#[derive(Parser)]
#[command(
    name = "yrd-node",
    version,
    about = "The yrd node of the Yangtze River Delta credit chain"
)]
struct Cli {
    #[command(subcommand)]
    command: Command_,
}

#[derive(Subcommand)]
enum Command_ {
    /// Makes a node key file in DIR and prints its public key and peer id.
    Init {
        /// Folder for the node's files.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Runs a node from its configuration file until SIGINT or SIGTERM.
    Start {
        /// The node's config.toml.
        #[arg(long)]
        config: PathBuf,
    },
    /// Starts a local network on loopback: generates keys, genesis and configurations in DIR
    /// (or reuses those already there), starts the validators, submits a short demo workload,
    /// and runs until interrupted, stopping its processes on exit.
    Devnet {
        /// Folder of the network.
        #[arg(long, default_value = "devnet")]
        dir: PathBuf,
        /// Number of validators (4 to 32).
        #[arg(long, default_value_t = 4)]
        validators: usize,
        /// Number of observer nodes.
        #[arg(long, default_value_t = 0)]
        observers: usize,
        /// First port: node i uses BASE+2i (peers) and BASE+2i+1 (gRPC).
        #[arg(long, default_value_t = 7000)]
        base_port: u16,
        /// Only generate the files; start nothing.
        #[arg(long)]
        generate_only: bool,
        /// Skip the demo workload.
        #[arg(long)]
        no_demo: bool,
    },
}

/// mimalloc instead of the system allocator: the node allocates from many threads (gRPC,
/// libp2p, RocksDB callbacks, admission, the driver), where glibc's per-thread arenas fragment
/// and hold memory; mimalloc keeps the resident size close to what is in use, and is faster.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("YRD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,libp2p=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("yrd-node: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command_::Init { dir } => init(&dir),
            Command_::Start { config } => {
                init_tracing();
                yrd_node::node::run(&config).await
            }
            Command_::Devnet {
                dir,
                validators,
                observers,
                base_port,
                generate_only,
                no_demo,
            } => {
                run_devnet(
                    &dir,
                    validators,
                    observers,
                    base_port,
                    generate_only,
                    no_demo,
                )
                .await
            }
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("yrd-node: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("node-key.json");
    let key = keyfile::generate();
    keyfile::write(&path, &key)?;
    let public_key = key.verifying_key().to_bytes();
    println!("key file   {}", path.display());
    println!("public key {}", hex::encode(public_key));
    println!("peer id    {}", network::peer_id_of(&public_key)?);
    Ok(())
}

async fn run_devnet(
    dir: &Path,
    validators: usize,
    observers: usize,
    base_port: u16,
    generate_only: bool,
    no_demo: bool,
) -> anyhow::Result<()> {
    let layout = if dir.join("layout.json").exists() {
        println!("reusing the network in {}", dir.display());
        devnet::load_layout(dir)?
    } else {
        let layout = devnet::generate(dir, validators, observers, base_port)?;
        println!(
            "generated a network of {validators} validators and {observers} observers in {}",
            dir.display()
        );
        layout
    };
    if generate_only {
        return Ok(());
    }
    let executable = std::env::current_exe()?;
    let nodes: Vec<&devnet::NodeLayout> = layout.nodes.iter().collect();
    let mut processes = Processes::start(&executable, &nodes)?;
    for (index, node) in layout.nodes.iter().enumerate() {
        println!(
            "node{index}  {}  {}  gRPC {}  log {}",
            if node.validator {
                "validator"
            } else {
                "observer "
            },
            node.config.display(),
            node.endpoint,
            node.dir.join("node.log").display()
        );
    }
    let heights = processes.wait_committing(&nodes).await?;
    println!("all nodes are committing (heights {heights:?})");
    if !no_demo {
        demo(&layout).await?;
    }
    println!("network running; press Ctrl-C to stop it");
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut ticker = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
            _ = ticker.tick() => {
                let mut line = Vec::new();
                for node in &layout.nodes {
                    line.push(status(&node.endpoint).await.map_or_else(|| "down".to_owned(), |s| s.height.to_string()));
                }
                println!("heights: {}", line.join(" "));
            }
        }
    }
    println!("stopping the network");
    drop(processes);
    Ok(())
}

fn member(layout: &Layout, name: &str) -> anyhow::Result<(String, SigningKey)> {
    let member = layout
        .members
        .iter()
        .find(|m| m.name == name)
        .with_context(|| format!("no member {name}"))?;
    Ok((member.uscc.clone(), keyfile::read(&member.key_file)?))
}

/// Submits one transaction of each registry (and a few more) and prints its receipt.
async fn demo(layout: &Layout) -> anyhow::Result<()> {
    let (bank, bank_key) = member(layout, "bank0")?;
    let (_bureau, bureau_key) = member(layout, "bureau")?;
    let (_market, market_key) = member(layout, "market")?;
    let (core, core_key) = member(layout, "core")?;
    let (supplier, supplier_key) = member(layout, "supplier")?;
    let today = u32::try_from(now_ms() / 86_400_000).unwrap_or(0);
    let run = now_ms();
    let receivable = format!("AR-{run}");
    let report = format!("CR-{run}");
    let fund = format!("FUND-{run}");
    let steps: Vec<(&str, Action, Vec<&SigningKey>)> = vec![
        (
            "register a receivable",
            Action::RegisterReceivable(v1::RegisterReceivable {
                receivable_id: receivable.clone(),
                debtor_uscc: core.clone(),
                creditor_uscc: supplier.clone(),
                face_fen: 50_000_000,
                due_day: today + 90,
                invoice_hashes: vec![yrd_proto::signing::sha256(receivable.as_bytes()).to_vec()],
                contract_hash: vec![1; 32],
            }),
            vec![&supplier_key],
        ),
        (
            "the debtor confirms it",
            Action::ConfirmReceivable(v1::ConfirmReceivable {
                receivable_id: receivable.clone(),
            }),
            vec![&core_key],
        ),
        (
            "the supplier pledges it to a bank",
            Action::PledgeReceivable(v1::PledgeReceivable {
                unit_id: receivable.clone(),
                pledgee_uscc: bank.clone(),
                secured_amount_fen: 40_000_000,
            }),
            vec![&supplier_key, &bank_key],
        ),
        (
            "a second pledge of the same receivable",
            Action::FactorReceivable(v1::FactorReceivable {
                unit_id: receivable.clone(),
                factor_uscc: bank.clone(),
                advance_fen: 1,
            }),
            vec![&supplier_key, &bank_key],
        ),
        (
            "a bureau records a credit report",
            Action::RecordCreditReport(v1::RecordCreditReport {
                report_id: report.clone(),
                subject_uscc: core.clone(),
                kind: v1::ReportKind::Loan as i32,
                document_sha256: vec![2; 32],
                negative: false,
                event_end_day: 0,
                summary: "working-capital loan, performing".into(),
            }),
            vec![&bureau_key],
        ),
        (
            "the market registers a fund",
            Action::RegisterFund(v1::RegisterFund {
                fund_id: fund.clone(),
                manager_uscc: core.clone(),
                filing_number: "SX-DEMO".into(),
                total_units: 1_000_000,
            }),
            vec![&market_key],
        ),
        (
            "and a holding",
            Action::RegisterHolding(v1::RegisterHolding {
                fund_id: fund.clone(),
                holder_uscc: supplier.clone(),
                units: 10_000,
            }),
            vec![&market_key],
        ),
        (
            "a three-party pledge of fund units",
            Action::PledgeFundUnits(v1::PledgeFundUnits {
                fund_id: fund,
                pledgor_uscc: supplier,
                pledgee_uscc: bank,
                units: 4_000,
            }),
            vec![&supplier_key, &bank_key, &market_key],
        ),
    ];
    let endpoint = layout.nodes.first().context("no nodes")?.endpoint.clone();
    let mut client = LedgerClient::connect(endpoint.clone()).await?;
    println!("demo workload, submitted to {endpoint}:");
    for (nonce, (what, action, keys)) in steps.into_iter().enumerate() {
        let body = v1::TransactionBody {
            chain_id: devnet::DEVNET_CHAIN_ID.into(),
            nonce: run + nonce as u64,
            valid_until_ms: now_ms() + 300_000,
            action: Some(action),
        };
        let envelope = yrd_proto::signing::sign_transaction(&body, &keys)?;
        let mut request = tonic::Request::new(v1::SubmitRequest {
            transaction: Some(envelope),
        });
        request.set_timeout(Duration::from_secs(30));
        let result = client.submit_and_wait(request).await?.into_inner();
        let receipt = result.receipt.unwrap_or_default();
        let outcome = if receipt.accepted {
            "accepted".to_owned()
        } else {
            format!(
                "rejected {} ({})",
                v1::ReasonCode::try_from(receipt.reason).map_or("?", |r| r.as_str_name()),
                receipt.detail
            )
        };
        println!("  height {:>4}  {what}: {outcome}", result.height);
    }
    Ok(())
}
