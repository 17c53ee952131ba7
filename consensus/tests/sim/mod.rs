//! The deterministic simulator: scenarios derived from seeds, the runner over many seeds, and
//! the summary line. See `world` for one run and `oracle` for the checks.

pub mod oracle;
pub mod rng;
pub mod scheme;
pub mod world;

use std::time::{Duration, Instant};

use yrd_consensus::round::BreakForTesting;

pub use world::{run, Fault, Outcome, Scenario, DELAY_MEAN_MS, LIVENESS_BOUND_MS};

/// Reads a numeric environment variable.
pub fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// Totals over many seeds.
#[derive(Debug, Default)]
pub struct Summary {
    /// Seeds run.
    pub seeds: u64,
    /// Heights decided (per honest validator, summed over seeds).
    pub heights: u64,
    /// Events processed.
    pub events: u64,
    /// Combined trace hash.
    pub trace_hash: u64,
    /// Commit latencies of no-fault runs, in ms.
    pub latencies_ms: Vec<u64>,
    /// Evidence reports checked.
    pub evidence: u64,
    /// Prevotes for a value other than the voter's lock.
    pub lock_changes: u64,
    /// Longest post-GST wait for a decision, in virtual ms.
    pub max_gap_after_gst_ms: u64,
    /// Seeds per fault kind.
    pub per_fault: std::collections::BTreeMap<Fault, u64>,
}

impl Summary {
    fn add(&mut self, scenario: &Scenario, outcome: Outcome) {
        self.seeds += 1;
        self.heights += outcome.heights;
        self.events += outcome.events;
        self.trace_hash = self
            .trace_hash
            .rotate_left(5)
            .wrapping_add(outcome.trace_hash);
        self.latencies_ms.extend(outcome.latencies_ms);
        self.evidence += outcome.evidence;
        self.lock_changes += outcome.lock_changes;
        self.max_gap_after_gst_ms = self.max_gap_after_gst_ms.max(outcome.max_gap_after_gst_ms);
        *self.per_fault.entry(scenario.fault).or_default() += 1;
    }

    /// One line for the log.
    pub fn line(&mut self, label: &str, wall: Duration) -> String {
        self.latencies_ms.sort_unstable();
        let count = self.latencies_ms.len().max(1) as f64;
        let mean = self.latencies_ms.iter().sum::<u64>() as f64 / count;
        let pct = |p: f64| {
            let i = ((self.latencies_ms.len() as f64 - 1.0) * p)
                .round()
                .max(0.0) as usize;
            self.latencies_ms.get(i).copied().unwrap_or(0) as f64
        };
        let delay = DELAY_MEAN_MS as f64;
        format!(
            "{label}: seeds={} heights={} events={} evidence={} lock_changes={} trace_hash={:016x} \
             no-fault commit latency in message delays (mean delay {DELAY_MEAN_MS} ms): \
             mean={:.2} p50={:.2} p99={:.2}; longest post-GST wait for a decision {} virtual ms \
             (bound {LIVENESS_BOUND_MS}); wall={:.1}s",
            self.seeds,
            self.heights,
            self.events,
            self.evidence,
            self.lock_changes,
            self.trace_hash,
            mean / delay,
            pct(0.5) / delay,
            pct(0.99) / delay,
            self.max_gap_after_gst_ms,
            wall.as_secs_f64()
        )
    }
}

/// The command that replays `seed`.
pub fn replay_command(seed: u64, heights: u64, breaks: BreakForTesting) -> String {
    let mut broken = String::new();
    if breaks.ignore_lock {
        broken.push_str(" YRD_SIM_BREAK_LOCKING=1");
    }
    if breaks.skip_signing_guard {
        broken.push_str(" YRD_SIM_BREAK_SIGNING_GUARD=1");
    }
    format!(
        "YRD_SIM_SEED={seed} YRD_SIM_HEIGHTS={heights}{broken} cargo test -p yrd-consensus \
         --test simulator -- --nocapture replay_one_seed"
    )
}

/// Runs the seeds `seeds` (until `deadline`, if any, for open-ended runs) and returns the
/// summary, or the first failing seed with its complaint.
pub fn run_seeds(
    seeds: impl Iterator<Item = u64>,
    heights: u64,
    breaks: BreakForTesting,
    deadline: Option<Instant>,
) -> Result<Summary, (u64, Scenario, String)> {
    let mut summary = Summary::default();
    for seed in seeds {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let mut scenario = Scenario::from_seed(seed, heights);
        scenario.breaks = breaks;
        match run(scenario, false) {
            Ok(outcome) => summary.add(&scenario, outcome),
            Err(message) => return Err((seed, scenario, message)),
        }
    }
    Ok(summary)
}
