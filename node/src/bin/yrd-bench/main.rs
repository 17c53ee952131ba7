//! `yrd-bench`: starts a local devnet, offers it a pre-signed mix of independent transactions
//! (open loop at a fixed rate, or closed loop with concurrent `SubmitAndWait` workers) and
//! reports committed throughput, commit latency, validator memory and CPU, and the machine's
//! signature verification rates.

mod procfs;
mod workload;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use tonic::transport::Channel;
use yrd_node::admission::now_ms;
use yrd_node::devnet::{self, status, Layout, NodeLayout, Processes, DEVNET_CHAIN_ID};
use yrd_proto::v1::{self, ledger_client::LedgerClient, transaction_body::Action};

use crate::workload::{Members, Signed};

/// Most transactions pre-signed for one run (about 600 bytes each in memory, so at most about
/// 1.8 GB): enough for 20 minutes at 2,500 tx/s offered.
const PRESIGN_MAX: usize = 3_000_000;
/// Transactions pre-signed per second of a closed-loop window: the 10,000 tx/s of the target.
const CLOSED_LOOP_PRESIGN_PER_SEC: u64 = 10_000;
/// Envelopes verified for the signature measurement.
const VERIFY_SAMPLE: usize = 4_096;
/// Batch size of the batch verification measurement.
const VERIFY_BATCH: usize = 256;
/// Deadline of one Submit or SubmitAndWait call.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait after the window for admitted transactions to commit.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);
/// Largest gRPC message the block stream accepts.
const MESSAGE_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Command line.
#[derive(Parser)]
#[command(
    name = "yrd-bench",
    version,
    about = "Measures a local yrd devnet: throughput, latency, memory, CPU, signature checks"
)]
struct Args {
    /// Folder of the network (generated unless it holds a layout.json).
    #[arg(long)]
    dir: PathBuf,
    /// First port: node i uses BASE+2i (peers) and BASE+2i+1 (gRPC).
    #[arg(long, default_value_t = 7400)]
    base_port: u16,
    /// Number of validators when generating (4 to 32).
    #[arg(long, default_value_t = 4)]
    validators: usize,
    /// Number of extra enterprise members (`firm0..`) when generating, each signing with a key
    /// of its own (at most 1,000).
    #[arg(long, default_value_t = 64)]
    firms: usize,
    /// Length of the measurement window in seconds.
    #[arg(long, default_value_t = 20)]
    duration_secs: u64,
    /// Open loop: transactions offered per second.
    #[arg(long, default_value_t = 500, conflicts_with = "closed_loop")]
    rate: u64,
    /// Open loop: transactions sent per `SubmitBatch` call to one validator, at most; 1 sends
    /// each with its own `Submit` call.
    #[arg(long, default_value_t = 1, conflicts_with = "closed_loop",
          value_parser = clap::value_parser!(u16).range(1..=256))]
    batch: u16,
    /// Open loop with `--batch` above 1: longest a transaction waits for others to share its
    /// call, in milliseconds. The wait counts in its latency.
    #[arg(long, default_value_t = 10, conflicts_with = "closed_loop")]
    batch_linger_ms: u64,
    /// Closed loop: concurrent SubmitAndWait workers instead of a fixed rate.
    #[arg(long)]
    closed_loop: bool,
    /// Number of closed-loop workers.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Every this many seconds of the window, prints the committed throughput and validator CPU
    /// per transaction of that interval, and the largest validator's resident memory as it ends
    /// (to stderr, and as `intervals` in the JSON); 0 for none. For long runs, to see the trend.
    #[arg(long, default_value_t = 0)]
    interval_secs: u64,
    /// Prints the result as one JSON object.
    #[arg(long)]
    json: bool,
}

/// Outcome counters shared by the submitting tasks.
#[derive(Default)]
struct Counters {
    /// Calls answered with a transaction hash (admitted).
    admitted: AtomicU64,
    /// Calls refused with RESOURCE_EXHAUSTED.
    resource_exhausted: AtomicU64,
    /// Other failed calls.
    errors: AtomicU64,
}

impl Counters {
    /// Counts the outcome of one call.
    fn count<T>(&self, result: &Result<T, tonic::Status>) {
        self.count_code(match result {
            Ok(_) => tonic::Code::Ok,
            Err(status) => status.code(),
        });
    }

    /// Counts the outcome of one transaction by its status code.
    fn count_code(&self, code: tonic::Code) {
        let counter = match code {
            tonic::Code::Ok => &self.admitted,
            tonic::Code::ResourceExhausted => &self.resource_exhausted,
            _ => &self.errors,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts the outcomes of one `SubmitBatch` call of `sent` transactions.
    fn count_batch(&self, sent: usize, result: Result<v1::SubmitBatchResponse, tonic::Status>) {
        match result {
            Ok(response) => {
                let outcomes = response.outcomes;
                for outcome in &outcomes {
                    self.count_code(tonic::Code::from(outcome.code));
                }
                // Transactions the node gave no outcome for are errors.
                for _ in outcomes.len()..sent {
                    self.count_code(tonic::Code::Internal);
                }
            }
            Err(status) => {
                for _ in 0..sent {
                    self.count_code(status.code());
                }
            }
        }
    }
}

/// What the block stream saw of our transactions.
#[derive(Default)]
struct Commits {
    /// When the block holding each transaction arrived.
    seen: HashMap<[u8; 32], Instant>,
    /// Receipts of our transactions that were not accepted.
    rejected: u64,
    /// Why the stream ended early, if it did.
    failure: Option<String>,
    /// When each block arrived, with its height, in order.
    blocks: Vec<(Instant, u64)>,
}

/// The longest wait between two consecutive blocks that both arrived within `from..=to`, and
/// the height of the block that ended it: a stall shows here, and the height says where to look
/// in the validators' logs.
fn largest_block_gap(
    blocks: &[(Instant, u64)],
    from: Instant,
    to: Instant,
) -> Option<(Duration, u64)> {
    blocks
        .windows(2)
        .filter(|pair| pair[0].0 >= from && pair[1].0 <= to)
        .map(|pair| (pair[1].0.saturating_duration_since(pair[0].0), pair[1].1))
        .max_by_key(|(gap, _)| *gap)
}

/// The figures of a run.
struct Report {
    /// The result object printed with `--json`.
    json: serde_json::Value,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("yrd-bench: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let mut processes = Processes::default();
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let outcome = tokio::select! {
            result = run(&args, &mut processes) => result,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
            _ = terminate.recv() => Err(anyhow::anyhow!("terminated")),
        };
        eprintln!("stopping the validators");
        processes.stop().await;
        let report = outcome?;
        if args.json {
            println!("{}", report.json);
        } else {
            print_human(&report.json);
        }
        anyhow::Ok(())
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("yrd-bench: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The figures in the order they are printed for people, with their units.
const HUMAN_ORDER: &[(&str, &str)] = &[
    ("mode", ""),
    ("transactions_per_call", ""),
    ("validators", ""),
    ("window_secs", "s"),
    ("offered_tps", "tx/s"),
    ("committed_tps", "tx/s"),
    ("latency_ms_p50", "ms"),
    ("latency_ms_p99", "ms"),
    ("rss_mib_max", "MiB"),
    ("block_gap_ms_max", "ms"),
    ("block_gap_height", ""),
    ("validator_cpu_seconds", "s"),
    ("load_generator_cpu_seconds", "s"),
    ("cpu_seconds_per_tx", "s"),
    ("signature_batch_verify_per_sec", "sig/s"),
    ("signature_single_verify_per_sec", "sig/s"),
    ("submitted", ""),
    ("admitted", ""),
    ("committed", ""),
    ("committed_in_window", ""),
    ("rejected_receipts", ""),
    ("refused_resource_exhausted", ""),
    ("errors", ""),
];

/// Prints the result object one figure a line.
fn print_human(json: &serde_json::Value) {
    for (key, unit) in HUMAN_ORDER {
        let value = &json[*key];
        let text = value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_owned);
        println!("{key:<34} {text} {unit}");
    }
}

/// A connected client of `endpoint`.
async fn client(endpoint: &str) -> anyhow::Result<LedgerClient<Channel>> {
    Ok(LedgerClient::connect(endpoint.to_owned())
        .await
        .with_context(|| format!("connecting to {endpoint}"))?
        .max_decoding_message_size(MESSAGE_BYTES_MAX))
}

/// Loads or generates the network in `args.dir`.
fn layout(args: &Args) -> anyhow::Result<Layout> {
    if args.dir.join("layout.json").exists() {
        eprintln!("reusing the network in {}", args.dir.display());
        devnet::load_layout(&args.dir)
    } else {
        let layout =
            devnet::generate_with_firms(&args.dir, args.validators, 0, args.base_port, args.firms)?;
        eprintln!(
            "generated a network of {} validators and {} firms in {}",
            args.validators,
            args.firms,
            args.dir.display()
        );
        Ok(layout)
    }
}

/// Starts the validators of `layout` and waits until each has committed a block.
async fn start_validators(layout: &Layout, processes: &mut Processes) -> anyhow::Result<()> {
    let executable = std::env::current_exe()?.with_file_name("yrd-node");
    anyhow::ensure!(
        executable.exists(),
        "{} is missing: build it (cargo build -p yrd-node --bins)",
        executable.display()
    );
    let validators: Vec<&NodeLayout> = layout.nodes.iter().filter(|n| n.validator).collect();
    *processes = Processes::start(&executable, &validators)?;
    eprintln!("started {} validators", validators.len());
    let heights = processes.wait_committing(&validators).await?;
    eprintln!("all validators are committing (heights {heights:?})");
    Ok(())
}

/// Registers the fund the workload registers holdings of, and waits for it to commit.
async fn setup(endpoint: &str, members: &Members, fund_id: &str, run: u64) -> anyhow::Result<()> {
    let body = v1::TransactionBody {
        chain_id: DEVNET_CHAIN_ID.into(),
        nonce: run,
        valid_until_ms: now_ms() + 300_000,
        action: Some(Action::RegisterFund(v1::RegisterFund {
            fund_id: fund_id.to_owned(),
            manager_uscc: members.core.uscc.clone(),
            filing_number: format!("SX-BENCH-{run}"),
            total_units: u64::MAX / 2,
        })),
    };
    let signed = workload::sign(&body, &[&members.market.key])?;
    let mut request = tonic::Request::new(v1::SubmitRequest {
        transaction: Some(signed.envelope),
    });
    request.set_timeout(Duration::from_secs(30));
    let result = client(endpoint)
        .await?
        .submit_and_wait(request)
        .await
        .context("registering the benchmark fund")?
        .into_inner();
    let receipt = result.receipt.unwrap_or_default();
    anyhow::ensure!(
        receipt.accepted,
        "registering the benchmark fund was rejected: {}",
        receipt.detail
    );
    Ok(())
}

/// Follows the blocks of `endpoint` from `from_height` and records when each of `ours` committed,
/// until `stop` fires.
async fn track_commits(
    mut client: LedgerClient<Channel>,
    from_height: u64,
    ours: Arc<HashMap<[u8; 32], usize>>,
    committed: Arc<AtomicU64>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> Commits {
    let mut commits = Commits::default();
    let mut stream = match client
        .stream_blocks(v1::StreamBlocksRequest { from_height })
        .await
    {
        Ok(response) => response.into_inner(),
        Err(status) => {
            commits.failure = Some(format!("StreamBlocks: {status}"));
            return commits;
        }
    };
    loop {
        tokio::select! {
            _ = &mut stop => break,
            message = stream.message() => match message {
                Ok(Some(block)) => {
                    let arrived = Instant::now();
                    let height = block
                        .block
                        .as_ref()
                        .and_then(|block| block.header.as_ref())
                        .map_or(0, |header| header.height);
                    commits.blocks.push((arrived, height));
                    for receipt in &block.receipts {
                        let Ok(hash) = <[u8; 32]>::try_from(receipt.tx_hash.as_slice()) else {
                            continue;
                        };
                        if ours.contains_key(&hash) && commits.seen.insert(hash, arrived).is_none() {
                            committed.fetch_add(1, Ordering::Relaxed);
                            if !receipt.accepted {
                                commits.rejected += 1;
                            }
                        }
                    }
                }
                Ok(None) => {
                    commits.failure = Some("the block stream ended".into());
                    break;
                }
                Err(status) => {
                    commits.failure = Some(format!("the block stream failed: {status}"));
                    break;
                }
            }
        }
    }
    commits
}

/// Every `secs` seconds until `stop` fires (never when `secs` is 0): the seconds since the
/// start, committed transactions per second and validator CPU seconds per committed
/// transaction over the interval, and the largest validator's resident memory as it ends (a
/// reading, not a maximum over the interval: `rss_mib_max` of the run is that), printed to
/// stderr and returned.
async fn report_intervals(
    secs: u64,
    pids: Vec<u32>,
    clock_ticks: u64,
    committed: Arc<AtomicU64>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> Vec<serde_json::Value> {
    let mut intervals = Vec::new();
    if secs == 0 {
        return intervals;
    }
    let started = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_secs(secs));
    ticker.tick().await;
    let (mut last_committed, mut last_cpu) =
        (committed.load(Ordering::Relaxed), procfs::cpu_ticks(&pids));
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = ticker.tick() => {
                let now_committed = committed.load(Ordering::Relaxed);
                let now_cpu = procfs::cpu_ticks(&pids);
                let count = now_committed.saturating_sub(last_committed);
                let cpu = now_cpu.saturating_sub(last_cpu) as f64 / clock_ticks as f64;
                let rss_kib = pids.iter().filter_map(|&pid| procfs::rss_kib(pid)).max().unwrap_or(0);
                let elapsed = started.elapsed().as_secs_f64().round();
                let tps = count as f64 / secs as f64;
                let cpu_per_tx = if count == 0 { None } else { Some(cpu / count as f64) };
                eprintln!(
                    "{elapsed:>6.0} s  {tps:>8.1} tx/s  {}  rss {:.0} MiB",
                    cpu_per_tx.map_or_else(|| "-".to_owned(), |c| format!("{:.5} CPU s/tx", c)),
                    rss_kib as f64 / 1024.0
                );
                intervals.push(serde_json::json!({
                    "end_secs": elapsed,
                    "committed_tps": round3(tps),
                    "cpu_seconds_per_tx": cpu_per_tx.map(|c| (c * 1e6).round() / 1e6),
                    "rss_mib_max": round3(rss_kib as f64 / 1024.0),
                }));
                (last_committed, last_cpu) = (now_committed, now_cpu);
            }
        }
    }
    intervals
}

/// How the open loop groups transactions into calls.
#[derive(Clone, Copy)]
struct Batching {
    /// Transactions per call, at most; 1 for `Submit`.
    size: usize,
    /// Longest a transaction waits for others to share its call.
    linger: Duration,
}

/// Offers `transactions` at `rate` per second round robin over `clients` until `window` has
/// passed, each with its own `Submit` or, with `batching.size` above 1, in `SubmitBatch` calls
/// per client; returns when each offered transaction was due (its submit start), by index.
async fn open_loop(
    transactions: &[Signed],
    clients: &[LedgerClient<Channel>],
    rate: u64,
    batching: Batching,
    window: Duration,
    counters: &Arc<Counters>,
) -> Vec<Option<Instant>> {
    let mut started_at = vec![None; transactions.len()];
    let mut tasks = tokio::task::JoinSet::new();
    let period = Duration::from_secs_f64((1.0 / rate.max(1) as f64).max(0.001));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Per client: the transactions waiting for its next batch, and when the first was due.
    let mut waiting: Vec<(Vec<usize>, Option<Instant>)> = vec![(Vec::new(), None); clients.len()];
    let send = |tasks: &mut tokio::task::JoinSet<()>, client: usize, indices: Vec<usize>| {
        let mut client = clients[client].clone();
        let counters = Arc::clone(counters);
        if let [index] = indices[..] {
            if batching.size == 1 {
                let mut request = tonic::Request::new(v1::SubmitRequest {
                    transaction: Some(transactions[index].envelope.clone()),
                });
                request.set_timeout(REQUEST_TIMEOUT);
                tasks.spawn(async move {
                    let result = client.submit(request).await;
                    counters.count(&result);
                });
                return;
            }
        }
        let mut request = tonic::Request::new(v1::SubmitBatchRequest {
            transactions: indices
                .iter()
                .map(|&i| transactions[i].envelope.clone())
                .collect(),
        });
        request.set_timeout(REQUEST_TIMEOUT);
        tasks.spawn(async move {
            let result = client.submit_batch(request).await;
            counters.count_batch(indices.len(), result.map(tonic::Response::into_inner));
        });
    };
    let start = Instant::now();
    let mut next = 0;
    while next < transactions.len() {
        ticker.tick().await;
        let now = Instant::now();
        let elapsed = now.duration_since(start);
        if elapsed >= window {
            break;
        }
        let due = ((elapsed.as_secs_f64() * rate as f64) as usize + 1).min(transactions.len());
        while next < due {
            let client = next % clients.len();
            started_at[next] = Some(now);
            let (indices, since) = &mut waiting[client];
            indices.push(next);
            since.get_or_insert(now);
            if indices.len() >= batching.size {
                *since = None;
                send(&mut tasks, client, std::mem::take(indices));
            }
            next += 1;
        }
        for (client, (indices, since)) in waiting.iter_mut().enumerate() {
            if since.is_some_and(|since| now.duration_since(since) >= batching.linger) {
                *since = None;
                send(&mut tasks, client, std::mem::take(indices));
            }
        }
        while tasks.try_join_next().is_some() {}
    }
    for (client, (indices, _)) in waiting.into_iter().enumerate() {
        if !indices.is_empty() {
            send(&mut tasks, client, indices);
        }
    }
    while tasks.join_next().await.is_some() {}
    started_at
}

/// Offers `transactions` with `concurrency` SubmitAndWait workers until `window` has passed;
/// returns the submit start of each offered transaction, by index.
async fn closed_loop(
    transactions: &Arc<Vec<Signed>>,
    clients: &[LedgerClient<Channel>],
    concurrency: usize,
    window: Duration,
    counters: &Arc<Counters>,
) -> Vec<Option<Instant>> {
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + window;
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..concurrency.max(1) {
        let mut client = clients[worker % clients.len()].clone();
        let transactions = Arc::clone(transactions);
        let next = Arc::clone(&next);
        let counters = Arc::clone(counters);
        workers.spawn(async move {
            let mut started = Vec::new();
            while Instant::now() < deadline {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(signed) = transactions.get(index) else {
                    break;
                };
                let mut request = tonic::Request::new(v1::SubmitRequest {
                    transaction: Some(signed.envelope.clone()),
                });
                request.set_timeout(REQUEST_TIMEOUT);
                started.push((index, Instant::now()));
                let result = client.submit_and_wait(request).await;
                counters.count(&result);
            }
            started
        });
    }
    let mut started_at = vec![None; transactions.len()];
    while let Some(result) = workers.join_next().await {
        for (index, at) in result.unwrap_or_default() {
            started_at[index] = Some(at);
        }
    }
    started_at
}

/// The `q` quantile of sorted `values`, or 0.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Rounds to three decimals for printing.
fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// The whole benchmark; `processes` receives the validators so the caller can stop them.
async fn run(args: &Args, processes: &mut Processes) -> anyhow::Result<Report> {
    anyhow::ensure!(args.duration_secs > 0, "--duration-secs must be positive");
    let layout = layout(args)?;
    let members = Members::load(&layout)?;
    start_validators(&layout, processes).await?;
    let endpoints: Vec<String> = layout
        .nodes
        .iter()
        .filter(|n| n.validator)
        .map(|n| n.endpoint.clone())
        .collect();
    let mut clients = Vec::new();
    for endpoint in &endpoints {
        clients.push(client(endpoint).await?);
    }

    let run = now_ms();
    let fund_id = format!("FUND-BENCH-{run}");
    setup(&endpoints[0], &members, &fund_id, run).await?;
    eprintln!("registered fund {fund_id}");

    let per_sec = if args.closed_loop {
        CLOSED_LOOP_PRESIGN_PER_SEC
    } else {
        args.rate
    };
    let wanted = usize::try_from(per_sec.saturating_mul(args.duration_secs))
        .unwrap_or(PRESIGN_MAX)
        .clamp(1, PRESIGN_MAX);
    let count = wanted.max(VERIFY_SAMPLE);
    let valid_until_ms = now_ms() + 55 * 60 * 1000;
    let signing_started = Instant::now();
    let mut transactions = {
        let members = &members;
        let fund_id = fund_id.as_str();
        tokio::task::block_in_place(|| {
            workload::presign(members, fund_id, run + 1, count, valid_until_ms)
        })?
    };
    eprintln!(
        "pre-signed {count} transactions in {:.1} s",
        signing_started.elapsed().as_secs_f64()
    );
    let (batch_rate, single_rate) = tokio::task::block_in_place(|| {
        workload::verify_rates(&transactions[..VERIFY_SAMPLE.min(count)], VERIFY_BATCH)
    })?;
    eprintln!("signature verification: {batch_rate:.0} sig/s in batches of {VERIFY_BATCH}, {single_rate:.0} sig/s one by one");
    transactions.truncate(wanted);
    let transactions = Arc::new(transactions);
    let index: Arc<HashMap<[u8; 32], usize>> = Arc::new(
        transactions
            .iter()
            .enumerate()
            .map(|(i, s)| (s.hash, i))
            .collect(),
    );

    let height = status(&endpoints[0])
        .await
        .context("the first validator does not answer")?
        .height;
    let committed = Arc::new(AtomicU64::new(0));
    let (stop_tracker, stop) = tokio::sync::oneshot::channel();
    let tracker = tokio::spawn(track_commits(
        clients[0].clone(),
        height + 1,
        Arc::clone(&index),
        Arc::clone(&committed),
        stop,
    ));

    let pids = processes.pids();
    let clock_ticks = procfs::clock_ticks_per_second();
    let (stop_sampler, sampler_stop) = tokio::sync::oneshot::channel();
    let sampler = tokio::spawn(procfs::sample_rss(pids.clone(), sampler_stop));

    let window = Duration::from_secs(args.duration_secs);
    let counters = Arc::new(Counters::default());
    eprintln!(
        "offering for {} s: {}",
        args.duration_secs,
        if args.closed_loop {
            format!("closed loop, {} workers", args.concurrency)
        } else {
            format!("open loop, {} tx/s, {} per call", args.rate, args.batch)
        }
    );
    // The load generator's own CPU time too: it shares the machine with the validators.
    let own = [std::process::id()];
    let cpu_before = (procfs::cpu_ticks(&pids), procfs::cpu_ticks(&own));
    let window_start = Instant::now();
    let window_end = window_start + window;
    // The CPU time is read at the end of the window, even while the last calls still run.
    let cpu_at_end = {
        let pids = pids.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(window_end.into()).await;
            (procfs::cpu_ticks(&pids), procfs::cpu_ticks(&own))
        })
    };
    let (stop_intervals, intervals_stop) = tokio::sync::oneshot::channel();
    let intervals = tokio::spawn(report_intervals(
        args.interval_secs,
        pids.clone(),
        clock_ticks,
        Arc::clone(&committed),
        intervals_stop,
    ));
    let started_at = if args.closed_loop {
        closed_loop(&transactions, &clients, args.concurrency, window, &counters).await
    } else {
        let batching = Batching {
            size: usize::from(args.batch),
            linger: Duration::from_millis(args.batch_linger_ms),
        };
        open_loop(
            &transactions,
            &clients,
            args.rate,
            batching,
            window,
            &counters,
        )
        .await
    };
    let cpu_after = cpu_at_end.await.context("the CPU sampler failed")?;
    let _ = stop_intervals.send(());
    let intervals = intervals.await.context("the interval reporter failed")?;
    let offered_window = window_end.duration_since(window_start).as_secs_f64();

    let admitted = counters.admitted.load(Ordering::Relaxed);
    let drain_deadline = Instant::now() + DRAIN_TIMEOUT;
    while committed.load(Ordering::Relaxed) < admitted && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop_tracker.send(());
    let _ = stop_sampler.send(());
    let commits = tracker.await.context("the block tracker failed")?;
    let rss_max_kib = sampler.await.context("the sampler failed")?;
    if let Some(failure) = &commits.failure {
        eprintln!("warning: {failure}");
    }

    let submitted = started_at.iter().filter(|s| s.is_some()).count();
    let mut latencies = Vec::new();
    let mut committed_in_window = 0_u64;
    for (hash, seen) in &commits.seen {
        if *seen <= window_end {
            committed_in_window += 1;
        }
        if let Some(start) = index.get(hash).and_then(|&i| started_at[i]) {
            latencies.push(seen.saturating_duration_since(start).as_secs_f64() * 1000.0);
        }
    }
    latencies.sort_by(f64::total_cmp);
    let block_gap = largest_block_gap(&commits.blocks, window_start, window_end);
    let committed_total = commits.seen.len() as u64;
    let cpu_seconds = cpu_after.0.saturating_sub(cpu_before.0) as f64 / clock_ticks as f64;
    let own_cpu_seconds = cpu_after.1.saturating_sub(cpu_before.1) as f64 / clock_ticks as f64;
    let json = serde_json::json!({
        "mode": if args.closed_loop { "closed_loop" } else { "open_loop" },
        "transactions_per_call": if args.closed_loop { 1 } else { args.batch },
        "validators": endpoints.len(),
        "window_secs": offered_window,
        "committed_tps": round3(committed_in_window as f64 / offered_window),
        "offered_tps": round3(submitted as f64 / offered_window),
        "latency_ms_p50": round3(quantile(&latencies, 0.50)),
        "latency_ms_p99": round3(quantile(&latencies, 0.99)),
        "rss_mib_max": round3(rss_max_kib as f64 / 1024.0),
        "block_gap_ms_max": block_gap.map(|(gap, _)| round3(gap.as_secs_f64() * 1000.0)),
        "block_gap_height": block_gap.map(|(_, height)| height),
        "cpu_seconds_per_tx": if committed_in_window == 0 {
            serde_json::Value::Null
        } else {
            serde_json::json!((cpu_seconds / committed_in_window as f64 * 1e6).round() / 1e6)
        },
        "validator_cpu_seconds": round3(cpu_seconds),
        "load_generator_cpu_seconds": round3(own_cpu_seconds),
        "signature_batch_verify_per_sec": batch_rate.round(),
        "signature_single_verify_per_sec": single_rate.round(),
        "submitted": submitted,
        "admitted": admitted,
        "committed": committed_total,
        "committed_in_window": committed_in_window,
        "rejected_receipts": commits.rejected,
        "refused_resource_exhausted": counters.resource_exhausted.load(Ordering::Relaxed),
        "errors": counters.errors.load(Ordering::Relaxed),
        "intervals": intervals,
    });
    Ok(Report { json })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_block_gap_is_the_longest_wait_within_the_window() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let blocks = [
            (at(0), 1),
            (at(900), 2), // a 900 ms wait that starts before the window
            (at(1_000), 3),
            (at(1_400), 4),
            (at(1_500), 5),
            (at(3_000), 6), // a 1,500 ms wait that ends after the window
        ];
        assert_eq!(
            largest_block_gap(&blocks, at(500), at(2_000)),
            Some((Duration::from_millis(400), 4))
        );
        assert_eq!(
            largest_block_gap(&blocks, at(0), at(3_000)),
            Some((Duration::from_millis(1_500), 6))
        );
        assert_eq!(largest_block_gap(&blocks, at(1_600), at(2_000)), None);
        assert_eq!(largest_block_gap(&[], at(0), at(1)), None);
    }
}
