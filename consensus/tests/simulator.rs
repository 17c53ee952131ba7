//! The deterministic simulator's entry points (issue 3). Every seed fixes a validator count
//! (`SIZES[seed % 3]`: 4, 7, 10), a fault kind (`FAULTS[(seed / 3) % 12]`) and all randomness
//! (xoshiro256** seeded by splitmix64); the oracle checks every step.
//!
//! How a run works (`sim/world.rs`): one event queue ordered by (virtual time, sequence number)
//! carries message deliveries, timeouts, delayed validity answers, gossip ticks, restarts and
//! repartitions. Each validator is the production `Consensus` driven by a small host that
//! executes outputs in order: `Persist` stores the encoded safety data (the only thing that
//! survives a crash besides the decided chain and the host's log of the height's messages),
//! `Sign` signs with a cheap deterministic scheme (`sim/scheme.rs`), and a crash may strike right
//! after a `Persist` or right after a message left. Before GST the network drops, delays,
//! duplicates, reorders and partitions; after GST it delivers within 8-12 ms. Up to f keys are
//! Byzantine: an equivocating proposer that also votes for what it showed each peer and
//! withholds its precommits from some, a double voter, a silent validator, and twins. Stalled
//! hosts re-send `Consensus::rebroadcast` and, later, ask peers for decided blocks with their
//! certificates.
//!
//! The oracle (`sim/oracle.rs`) is written apart from the production code: its own byte layout,
//! its own quorum count. After every decision, signature and evidence report it checks agreement
//! among honest validators, that decided blocks were proposed and valid, that certificates verify,
//! that no honest key signs two different messages for one (height, round, step), and that
//! evidence only accuses Byzantine keys. After GST every honest validator must decide a new height
//! at least every `LIVENESS_BOUND_MS` of virtual time.
//!
//! * default: `YRD_SIM_SEEDS` seeds (2,100) of `YRD_SIM_HEIGHTS` heights (100), split over three
//!   tests by validator count, starting at `YRD_SIM_START` (0);
//! * `YRD_SIM_SECONDS=N`: keep running new seeds for N seconds per test;
//! * `YRD_SIM_SEED=S`: replay one seed verbosely (`replay_one_seed`); add `YRD_SIM_TRACE_NODE=i`
//!   to print every input and output of node i;
//! * `YRD_SIM_BREAK_LOCKING=1` or `YRD_SIM_BREAK_SIGNING_GUARD=1` with `YRD_SIM_SEED`: replay a
//!   seed of the oracle's self-tests (honest validators deliberately broken).

mod sim;

use std::time::{Duration, Instant};

use sim::{env_u64, replay_command, run, run_seeds, Scenario};
use yrd_consensus::round::BreakForTesting;

const DEFAULT_SEEDS: u64 = 2_100;
const DEFAULT_HEIGHTS: u64 = 100;

fn heights() -> u64 {
    env_u64("YRD_SIM_HEIGHTS").unwrap_or(DEFAULT_HEIGHTS)
}

/// Runs every seed `s` with `s % 3 == size_slot` (one validator count).
fn simulate(size_slot: u64) {
    let started = Instant::now();
    let heights = heights();
    let start = env_u64("YRD_SIM_START").unwrap_or(0);
    let (seeds, deadline): (Box<dyn Iterator<Item = u64>>, _) = match env_u64("YRD_SIM_SECONDS") {
        Some(seconds) => (
            Box::new((start..).filter(move |s| s % 3 == size_slot)),
            Some(started + Duration::from_secs(seconds)),
        ),
        None => {
            let total = env_u64("YRD_SIM_SEEDS").unwrap_or(DEFAULT_SEEDS);
            (
                Box::new((start..start + total).filter(move |s| s % 3 == size_slot)),
                None,
            )
        }
    };
    match run_seeds(seeds, heights, BreakForTesting::default(), deadline) {
        Ok(mut summary) => {
            let n = sim::world::SIZES[size_slot as usize];
            println!(
                "{}",
                summary.line(&format!("simulator n={n}"), started.elapsed())
            );
            println!("  seeds per fault kind: {:?}", summary.per_fault);
        }
        Err((seed, scenario, message)) => panic!(
            "simulator FAILED at seed {seed} (n={}, fault={:?}): {message}\n  replay: {}",
            scenario.n,
            scenario.fault,
            replay_command(seed, heights, BreakForTesting::default())
        ),
    }
}

#[test]
fn simulate_4_validators() {
    simulate(0);
}

#[test]
fn simulate_7_validators() {
    simulate(1);
}

#[test]
fn simulate_10_validators() {
    simulate(2);
}

/// The same seed gives the same trace.
#[test]
fn same_seed_same_trace() {
    for seed in [0u64, 7, 20, 33, 35] {
        let scenario = Scenario::from_seed(seed, 30);
        let a = run(scenario, false).expect("seed passes");
        let b = run(scenario, false).expect("seed passes");
        assert_eq!(
            a.trace_hash, b.trace_hash,
            "seed {seed} is not deterministic"
        );
        println!(
            "seed {seed} ({:?}, n={}): trace hash {:016x}",
            scenario.fault, scenario.n, a.trace_hash
        );
    }
}

/// Runs the default seeds with `breaks` in honest validators and expects the oracle to report
/// a failure containing `expected`.
fn expect_caught(breaks: BreakForTesting, what: &str, expected: &str) {
    let heights = heights();
    let total = env_u64("YRD_SIM_SEEDS").unwrap_or(DEFAULT_SEEDS);
    match run_seeds(0..total, heights, breaks, None) {
        Ok(mut summary) => {
            let line = summary.line("broken", Duration::ZERO);
            panic!("the oracle missed {what}: {line}")
        }
        Err((seed, scenario, message)) => {
            println!(
                "{what} caught at seed {seed} (n={}, fault={:?}): {message}\n  replay: {}",
                scenario.n,
                scenario.fault,
                replay_command(seed, heights, breaks)
            );
            assert!(
                message.contains(expected),
                "unexpected failure kind: {message}"
            );
        }
    }
}

/// The oracle can fail: with the locking rule (L23, L29) broken in honest validators, the
/// default seeds produce two honest validators deciding different blocks at one height.
#[test]
fn broken_locking_is_caught() {
    let breaks = BreakForTesting {
        ignore_lock: true,
        ..BreakForTesting::default()
    };
    expect_caught(breaks, "a broken locking rule", "AGREEMENT VIOLATED");
}

/// The oracle can fail: without the signing guard, a validator restarted from its safety data
/// signs a second, different message for a (height, round, step) it already signed.
#[test]
fn broken_signing_guard_is_caught() {
    let breaks = BreakForTesting {
        skip_signing_guard: true,
        ..BreakForTesting::default()
    };
    expect_caught(
        breaks,
        "a missing signing guard",
        "signed two different messages",
    );
}

/// Replays `YRD_SIM_SEED` verbosely (does nothing without it).
#[test]
fn replay_one_seed() {
    let Some(seed) = env_u64("YRD_SIM_SEED") else {
        return;
    };
    let mut scenario = Scenario::from_seed(seed, heights());
    scenario.breaks = BreakForTesting {
        ignore_lock: env_u64("YRD_SIM_BREAK_LOCKING").unwrap_or(0) != 0,
        skip_signing_guard: env_u64("YRD_SIM_BREAK_SIGNING_GUARD").unwrap_or(0) != 0,
    };
    println!("replaying {scenario:?}");
    match run(scenario, true) {
        Ok(outcome) => println!(
            "seed {seed}: ok, trace hash {:016x}, {} events, {} virtual ms",
            outcome.trace_hash, outcome.events, outcome.virtual_ms
        ),
        Err(message) => panic!("seed {seed} FAILED: {message}"),
    }
}
