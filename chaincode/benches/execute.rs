//! Benchmark: chaincode execution cost per transaction for a realistic mix of the three
//! registries, without signature checks, and the batch signature-verification rate of this
//! machine. Prints its figures; run with
//! `cargo bench -p yrd-chaincode --bench execute` (add `-- --quick` for a short run).

use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use yrd_chaincode::testkit::{Harness, Party};
use yrd_chaincode::{execute_block, BlockContext};
use yrd_proto::signing::{verify_transaction, verify_transactions, VerifiedTransaction};
use yrd_proto::v1::{self, transaction_body::Action, QueryPurpose, ReportKind};

const DAY_MS: u64 = 86_400_000;

/// One business cycle: 16 transactions over the three registries, each accepted.
fn cycle(h: &mut Harness, i: u64, envelopes: &mut Vec<v1::SignedTransaction>) {
    let (core, supplier, supplier_b, bank_a, bank_b, market, bureau) = (
        h.core.clone(),
        h.supplier.clone(),
        h.supplier_b.clone(),
        h.bank_a.clone(),
        h.bank_b.clone(),
        h.market.clone(),
        h.bureau.clone(),
    );
    let day = u32::try_from(h.time_ms / DAY_MS).unwrap_or(0) + 90;
    let receivable = format!("AR{i}");
    let mut push = |h: &mut Harness, action: Action, signers: &[&Party]| {
        let keys: Vec<&SigningKey> = signers.iter().map(|p| &p.key).collect();
        let body = h.body(action);
        envelopes.push(Harness::sign(&body, &keys));
    };
    let mut invoice = [0u8; 32];
    invoice[..8].copy_from_slice(&i.to_be_bytes());
    push(
        h,
        Action::RegisterReceivable(v1::RegisterReceivable {
            receivable_id: receivable.clone(),
            debtor_uscc: core.id(),
            creditor_uscc: supplier.id(),
            face_fen: 1_000_000,
            due_day: day,
            invoice_hashes: vec![invoice.to_vec()],
            contract_hash: vec![7; 32],
        }),
        &[&supplier],
    );
    push(
        h,
        Action::ConfirmReceivable(v1::ConfirmReceivable {
            receivable_id: receivable.clone(),
        }),
        &[&core],
    );
    push(
        h,
        Action::TransferReceivable(v1::TransferReceivable {
            unit_id: receivable.clone(),
            to_uscc: supplier_b.id(),
            amount_fen: 400_000,
        }),
        &[&supplier],
    );
    push(
        h,
        Action::PledgeReceivable(v1::PledgeReceivable {
            unit_id: format!("{receivable}#1"),
            pledgee_uscc: bank_a.id(),
            secured_amount_fen: 300_000,
        }),
        &[&supplier_b, &bank_a],
    );
    push(
        h,
        Action::FactorReceivable(v1::FactorReceivable {
            unit_id: receivable.clone(),
            factor_uscc: bank_b.id(),
            advance_fen: 500_000,
        }),
        &[&supplier, &bank_b],
    );
    push(
        h,
        Action::ReleaseReceivableFinancing(v1::ReleaseReceivableFinancing {
            unit_id: format!("{receivable}#1"),
        }),
        &[&bank_a],
    );
    push(
        h,
        Action::RecordReceivablePayment(v1::RecordReceivablePayment {
            receivable_id: receivable.clone(),
            amount_fen: 1_000_000,
        }),
        &[&core],
    );
    push(
        h,
        Action::RegisterHolding(v1::RegisterHolding {
            fund_id: "FUND".into(),
            holder_uscc: supplier.id(),
            units: 100,
        }),
        &[&market],
    );
    push(
        h,
        Action::TransferFundUnits(v1::TransferFundUnits {
            fund_id: "FUND".into(),
            to_uscc: supplier_b.id(),
            units: 10,
        }),
        &[&supplier, &market],
    );
    push(
        h,
        Action::PledgeFundUnits(v1::PledgeFundUnits {
            fund_id: "FUND".into(),
            pledgor_uscc: supplier.id(),
            pledgee_uscc: bank_a.id(),
            units: 20,
        }),
        &[&supplier, &bank_a, &market],
    );
    push(
        h,
        Action::ReleaseFundPledge(v1::ReleaseFundPledge { pledge_id: i + 1 }),
        &[&bank_a],
    );
    let report = format!("CR{i}");
    push(
        h,
        Action::RecordCreditReport(v1::RecordCreditReport {
            report_id: report.clone(),
            subject_uscc: core.id(),
            kind: ReportKind::Loan as i32,
            document_sha256: invoice.to_vec(),
            negative: false,
            event_end_day: 0,
            summary: "loan of 10m CNY, performing".into(),
        }),
        &[&bureau],
    );
    push(
        h,
        Action::AmendCreditReport(v1::AmendCreditReport {
            report_id: report.clone(),
            document_sha256: vec![1; 32],
            negative: false,
            event_end_day: 0,
            summary: "loan of 10m CNY, repaid".into(),
        }),
        &[&bureau],
    );
    push(
        h,
        Action::GrantAuthorization(v1::GrantAuthorization {
            grantee_uscc: bank_a.id(),
            purpose: QueryPurpose::LoanApproval as i32,
            expires_at_ms: h.time_ms + 30 * DAY_MS,
        }),
        &[&core],
    );
    push(
        h,
        Action::RecordCreditQuery(v1::RecordCreditQuery {
            report_id: report.clone(),
            purpose: QueryPurpose::LoanApproval as i32,
        }),
        &[&bank_a],
    );
    push(
        h,
        Action::FileObjection(v1::FileObjection {
            report_id: report,
            reason: "amount is wrong".into(),
        }),
        &[&core],
    );
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(str::to_owned)
        })
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let cycles: u64 = if quick { 500 } else { 6_250 };
    let block_txs = 2_000;
    let mut h = Harness::new();
    let market = h.market.clone();
    let core = h.core.clone();
    let setup = h.submit(
        Action::RegisterFund(v1::RegisterFund {
            fund_id: "FUND".into(),
            manager_uscc: core.id(),
            filing_number: "SX0001".into(),
            total_units: u64::MAX / 2,
        }),
        &[&market],
    );
    assert!(setup.accepted, "fund registration: {}", setup.detail);

    let mut envelopes = Vec::new();
    for i in 0..cycles {
        cycle(&mut h, i, &mut envelopes);
    }
    let count = envelopes.len();

    // Signature verification, measured on its own: single and batch.
    let sample: Vec<_> = envelopes.iter().take(4_000).cloned().collect();
    let signatures: usize = sample.iter().map(|e| e.signatures.len()).sum();
    let start = Instant::now();
    for envelope in &sample {
        verify_transaction(envelope.clone(), yrd_chaincode::testkit::CHAIN_ID).expect("verify");
    }
    let single = start.elapsed();
    let start = Instant::now();
    for chunk in sample.chunks(256) {
        for result in verify_transactions(chunk.to_vec(), yrd_chaincode::testkit::CHAIN_ID) {
            result.expect("verify");
        }
    }
    let batch = start.elapsed();

    let verified: Vec<VerifiedTransaction> =
        verify_transactions(envelopes, yrd_chaincode::testkit::CHAIN_ID)
            .into_iter()
            .map(|r| r.expect("verify"))
            .collect();

    // Execution, one block at a time, without signature checks; state applied between blocks.
    let mut block_times = Vec::new();
    let mut per_tx = Vec::new();
    let mut rejected = 0usize;
    let mut apply_total = Duration::ZERO;
    let started = Instant::now();
    for chunk in verified.chunks(block_txs) {
        h.height += 1;
        let block = BlockContext {
            chain_id: yrd_chaincode::testkit::CHAIN_ID.into(),
            height: h.height,
            time_ms: h.time_ms,
        };
        let start = Instant::now();
        let outcome = execute_block(&h.state, &block, chunk).expect("execute");
        let elapsed = start.elapsed();
        block_times.push(elapsed);
        per_tx.push(elapsed / u32::try_from(chunk.len()).unwrap_or(1));
        rejected += outcome.receipts.iter().filter(|r| !r.accepted).count();
        let start = Instant::now();
        h.state.apply(&outcome.writes);
        apply_total += start.elapsed();
        h.time_ms += 1_000;
    }
    let total = started.elapsed() - apply_total;
    block_times.sort();
    per_tx.sort();

    println!(
        "yrd chaincode execution benchmark ({} mode)",
        if quick { "quick" } else { "full" }
    );
    println!("  transactions            {count} ({rejected} rejected), mix of 16 kinds over 3 registries");
    println!(
        "  blocks                  {} of up to {block_txs} transactions",
        block_times.len()
    );
    println!(
        "  execution, one core     {:.0} tx/s",
        count as f64 / total.as_secs_f64()
    );
    println!(
        "  cost per transaction    {:.2} us mean, p50 {:.2} us, p99 {:.2} us (per-block means)",
        total.as_secs_f64() * 1e6 / count as f64,
        percentile(&per_tx, 0.5).as_secs_f64() * 1e6,
        percentile(&per_tx, 0.99).as_secs_f64() * 1e6
    );
    println!(
        "  block execution         p50 {:.2} ms, p99 {:.2} ms",
        percentile(&block_times, 0.5).as_secs_f64() * 1e3,
        percentile(&block_times, 0.99).as_secs_f64() * 1e3
    );
    println!(
        "  state apply (in memory) {:.2} us per transaction",
        apply_total.as_secs_f64() * 1e6 / count as f64
    );
    println!("  state keys at the end   {}", h.state.len());
    println!(
        "  signatures, single      {:.0} sig/s (verify_strict)",
        signatures as f64 / single.as_secs_f64()
    );
    println!(
        "  signatures, batch       {:.0} sig/s (batches of 256 transactions)",
        signatures as f64 / batch.as_secs_f64()
    );
    println!("  peak RSS                {:.1} MiB", peak_rss_mib());
    assert_eq!(rejected, 0, "the benchmark mix must be accepted in full");
}
