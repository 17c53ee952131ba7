//! The pre-signed workload: a mix of independent transactions of the three registries that can
//! be offered in any order, and the signature verification measurements over it.

use std::time::Instant;

use anyhow::Context as _;
use ed25519_dalek::SigningKey;
use yrd_node::devnet::{Layout, DEVNET_CHAIN_ID};
use yrd_proto::signing::{
    sha256, sign_transaction, transaction_hash, verify_transaction, verify_transactions,
};
use yrd_proto::v1::{self, transaction_body::Action};

/// One pre-signed transaction.
pub struct Signed {
    /// Its hash (the signed digest), as receipts carry it.
    pub hash: [u8; 32],
    /// The envelope to submit.
    pub envelope: v1::SignedTransaction,
}

/// A member's USCC and key.
pub struct Member {
    /// USCC.
    pub uscc: String,
    /// Signing key.
    pub key: SigningKey,
}

/// The members the workload signs with.
pub struct Members {
    /// The validator operators `bank0..`.
    pub banks: Vec<Member>,
    /// The credit bureau.
    pub bureau: Member,
    /// The equity market.
    pub market: Member,
    /// The core enterprise.
    pub core: Member,
    /// The first supplier.
    pub supplier: Member,
    /// The second supplier.
    pub supplier2: Member,
    /// The extra enterprises `firm0..` (none in a devnet generated without them).
    pub firms: Vec<Member>,
}

fn member(layout: &Layout, name: &str) -> anyhow::Result<Member> {
    let found = layout
        .members
        .iter()
        .find(|m| m.name == name)
        .with_context(|| format!("the devnet has no member {name}"))?;
    Ok(Member {
        uscc: found.uscc.clone(),
        key: yrd_node::keyfile::read(&found.key_file)
            .with_context(|| format!("reading the key of {name}"))?,
    })
}

/// The members named `<prefix>0`, `<prefix>1`, ... up to the first number missing.
fn numbered(layout: &Layout, prefix: &str) -> anyhow::Result<Vec<Member>> {
    let mut found = Vec::new();
    for index in 0.. {
        let name = format!("{prefix}{index}");
        if !layout.members.iter().any(|m| m.name == name) {
            break;
        }
        found.push(member(layout, &name)?);
    }
    Ok(found)
}

impl Members {
    /// Reads the member keys of a devnet layout.
    pub fn load(layout: &Layout) -> anyhow::Result<Self> {
        let banks = numbered(layout, "bank")?;
        anyhow::ensure!(!banks.is_empty(), "the devnet has no bank members");
        let firms = numbered(layout, "firm")?;
        Ok(Self {
            banks,
            bureau: member(layout, "bureau")?,
            market: member(layout, "market")?,
            core: member(layout, "core")?,
            supplier: member(layout, "supplier")?,
            supplier2: member(layout, "supplier2")?,
            firms,
        })
    }
}

/// Signs `body` with `keys` and computes its hash.
pub fn sign(body: &v1::TransactionBody, keys: &[&SigningKey]) -> anyhow::Result<Signed> {
    let envelope = sign_transaction(body, keys)?;
    let hash = transaction_hash(&body.chain_id, &envelope.body)?;
    Ok(Signed { hash, envelope })
}

/// Transaction number `index` of the mix; `run` makes ids unique across runs on one network.
fn transaction<'a>(
    members: &'a Members,
    fund_id: &str,
    run: u64,
    index: u64,
    valid_until_ms: u64,
    today: u32,
) -> anyhow::Result<Signed> {
    // Each kind of transaction comes once in 6; `round` counts its turns, so the members that
    // take turns at one kind are all used (`index` itself is fixed modulo 6 within a kind).
    let round = usize::try_from(index / 6).unwrap_or(0);
    let bank = &members.banks[round % members.banks.len()];
    // An enterprise of the run: a different firm for every transaction of a round, when the
    // devnet has firms; else the two suppliers and the core enterprise.
    let firm = |offset: usize, fallback: &'a Member| -> &'a Member {
        if members.firms.is_empty() {
            fallback
        } else {
            &members.firms[(round * 6 + offset) % members.firms.len()]
        }
    };
    let (action, key) = match index % 6 {
        0 | 3 => {
            let creditor = if index % 6 == 3 {
                firm(3, &members.supplier2)
            } else {
                firm(0, &members.supplier)
            };
            let id = format!("AR-{run}-{index}");
            (
                Action::RegisterReceivable(v1::RegisterReceivable {
                    receivable_id: id.clone(),
                    debtor_uscc: members.core.uscc.clone(),
                    creditor_uscc: creditor.uscc.clone(),
                    face_fen: 1_000_000 + index,
                    due_day: today + 90,
                    invoice_hashes: vec![sha256(format!("invoice-{id}").as_bytes()).to_vec()],
                    contract_hash: sha256(format!("contract-{run}").as_bytes()).to_vec(),
                }),
                &creditor.key,
            )
        }
        1 | 4 => {
            let (issuer, subject) = if index % 6 == 1 {
                (&members.bureau, firm(1, &members.core))
            } else {
                (bank, firm(4, &members.supplier2))
            };
            let id = format!("CR-{run}-{index}");
            (
                Action::RecordCreditReport(v1::RecordCreditReport {
                    report_id: id.clone(),
                    subject_uscc: subject.uscc.clone(),
                    kind: v1::ReportKind::Loan as i32,
                    document_sha256: sha256(id.as_bytes()).to_vec(),
                    negative: index % 12 == 4,
                    event_end_day: 0,
                    summary: "working-capital loan, performing".into(),
                }),
                &issuer.key,
            )
        }
        2 => {
            let (subject, grantee) = if index % 12 == 2 {
                (firm(2, &members.core), bank)
            } else {
                (firm(2, &members.supplier), &members.bureau)
            };
            let purposes = [
                v1::QueryPurpose::LoanApproval,
                v1::QueryPurpose::PostLoanManagement,
                v1::QueryPurpose::GuaranteeApproval,
                v1::QueryPurpose::SupplyChainFinance,
            ];
            let purpose = purposes[round % purposes.len()];
            (
                Action::GrantAuthorization(v1::GrantAuthorization {
                    grantee_uscc: grantee.uscc.clone(),
                    purpose: purpose as i32,
                    expires_at_ms: valid_until_ms + 30 * 86_400_000 + index,
                }),
                &subject.key,
            )
        }
        _ => {
            let holders = [&members.supplier, &members.supplier2, &members.core];
            let holder = firm(5, holders[round % holders.len()]);
            (
                Action::RegisterHolding(v1::RegisterHolding {
                    fund_id: fund_id.to_owned(),
                    holder_uscc: holder.uscc.clone(),
                    units: 1 + index % 10,
                }),
                &members.market.key,
            )
        }
    };
    let body = v1::TransactionBody {
        chain_id: DEVNET_CHAIN_ID.into(),
        nonce: run.wrapping_mul(1_000_000).wrapping_add(index),
        valid_until_ms,
        action: Some(action),
    };
    sign(&body, &[key])
}

/// Pre-signs `count` transactions of the mix on two threads.
pub fn presign(
    members: &Members,
    fund_id: &str,
    run: u64,
    count: usize,
    valid_until_ms: u64,
) -> anyhow::Result<Vec<Signed>> {
    let today = u32::try_from(valid_until_ms / 86_400_000).unwrap_or(0);
    let threads = std::thread::available_parallelism()
        .map_or(2, usize::from)
        .clamp(1, 8);
    let chunk = count.div_ceil(threads).max(1);
    let parts: Vec<anyhow::Result<Vec<Signed>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                scope.spawn(move || {
                    let start = thread * chunk;
                    let end = (start + chunk).min(count);
                    (start..end)
                        .map(|index| {
                            transaction(members, fund_id, run, index as u64, valid_until_ms, today)
                        })
                        .collect::<anyhow::Result<Vec<Signed>>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a signing thread panicked")))
            })
            .collect()
    });
    let mut all = Vec::with_capacity(count);
    for part in parts {
        all.extend(part?);
    }
    Ok(all)
}

/// Signatures per second: (batch verification in batches of `batch`, one by one).
pub fn verify_rates(sample: &[Signed], batch: usize) -> anyhow::Result<(f64, f64)> {
    anyhow::ensure!(!sample.is_empty(), "no transactions to verify");
    let signatures: usize = sample.iter().map(|s| s.envelope.signatures.len()).sum();
    let started = Instant::now();
    for chunk in sample.chunks(batch.max(1)) {
        let envelopes = chunk.iter().map(|s| s.envelope.clone()).collect();
        let results = verify_transactions(envelopes, DEVNET_CHAIN_ID);
        anyhow::ensure!(
            results.iter().all(Result::is_ok),
            "a pre-signed transaction failed batch verification"
        );
    }
    let batch_rate = signatures as f64 / started.elapsed().as_secs_f64();
    let single_sample = &sample[..sample.len().min(1024)];
    let single_signatures: usize = single_sample
        .iter()
        .map(|s| s.envelope.signatures.len())
        .sum();
    let started = Instant::now();
    for signed in single_sample {
        verify_transaction(signed.envelope.clone(), DEVNET_CHAIN_ID)
            .context("a pre-signed transaction failed verification")?;
    }
    let single_rate = single_signatures as f64 / started.elapsed().as_secs_f64();
    Ok((batch_rate, single_rate))
}
