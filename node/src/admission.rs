//! Admission of transactions to the mempool, from a client or a peer: stateless verification
//! (size, signatures in one batch, chain id), then a dry run against the committed state that
//! refuses what can never apply (malformed, expired, replayed, unknown signer, missing role).
//!
//! Admission runs on its own thread ([`AdmissionQueue`]), off the consensus driver and the gRPC
//! runtime: it takes client submissions and gossiped batches from one bounded queue and verifies
//! whatever has gathered in one signature batch, so the consensus driver never waits behind
//! signature checks and an overloaded node sheds load before spending work on it.
//!
//! Invariant: a refused transaction changes nothing; an admitted one is in the mempool once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot, Notify};

use yrd_chaincode::{dry_run, BlockContext};
use yrd_proto::signing::{self, Hash, SigningError, VerifiedTransaction};
use yrd_proto::v1::{self, ReasonCode};

use crate::mempool::{AdmitError, Mempool};
use crate::storage::Store;

/// Why a transaction was refused at admission, mapped to a gRPC status by the service.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmissionError {
    /// Malformed, bad signature, wrong chain, expired: `INVALID_ARGUMENT`.
    #[error("{0}")]
    Invalid(String),
    /// Unknown signer or a key lacking the role: `PERMISSION_DENIED`.
    #[error("{0}")]
    PermissionDenied(String),
    /// Already committed: `ALREADY_EXISTS`.
    #[error("transaction is already committed at height {height}")]
    AlreadyCommitted {
        /// Height of its block.
        height: u64,
    },
    /// Mempool full: `RESOURCE_EXHAUSTED`.
    #[error("{0}")]
    Overloaded(String),
    /// The node's storage failed: `INTERNAL`.
    #[error("storage: {0}")]
    Storage(String),
}

impl From<SigningError> for AdmissionError {
    fn from(error: SigningError) -> Self {
        Self::Invalid(error.to_string())
    }
}

/// Milliseconds since the Unix epoch by the local clock (never used by the chaincode).
#[must_use]
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Reasons that make a transaction unable to apply whatever else is committed first.
fn refusal(receipt: &v1::Receipt) -> Option<AdmissionError> {
    let reason = ReasonCode::try_from(receipt.reason).ok()?;
    let detail = format!("{}: {}", reason.as_str_name(), receipt.detail);
    match reason {
        ReasonCode::ReasonMalformed
        | ReasonCode::ReasonWrongChainId
        | ReasonCode::ReasonExpired
        | ReasonCode::ReasonValidityTooLong => Some(AdmissionError::Invalid(detail)),
        ReasonCode::ReasonUnknownSigner | ReasonCode::ReasonRoleNotPermitted => {
            Some(AdmissionError::PermissionDenied(detail))
        }
        ReasonCode::ReasonDuplicateTransaction => {
            Some(AdmissionError::AlreadyCommitted { height: 0 })
        }
        _ => None,
    }
}

/// How much admission checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checks {
    /// Signatures, chain, replay against committed blocks, and a dry run against the committed
    /// state: for client submissions.
    Full,
    /// Signatures, chain and replay against committed blocks, no dry run: for batches gossiped
    /// by peers, which ran the dry run when their client submitted. A transaction that cannot
    /// apply costs a rejected receipt, never a wrong state.
    Peer,
}

/// Verifies and admits envelopes; one result per envelope, in order. A transaction already
/// waiting in the mempool is admitted again without error (submission is idempotent).
/// Signatures are verified in one batch and the dry run shares one block prologue.
pub fn admit(
    store: &Store,
    mempool: &Mempool,
    chain_id: &str,
    envelopes: Vec<v1::SignedTransaction>,
) -> Vec<Result<Hash, AdmissionError>> {
    admit_with(store, mempool, chain_id, envelopes, Checks::Full)
}

/// [`admit`] with the given depth of checks.
pub fn admit_with(
    store: &Store,
    mempool: &Mempool,
    chain_id: &str,
    envelopes: Vec<v1::SignedTransaction>,
    checks: Checks,
) -> Vec<Result<Hash, AdmissionError>> {
    let sizes: Vec<usize> = envelopes.iter().map(prost::Message::encoded_len).collect();
    let mut results: Vec<Result<Hash, AdmissionError>> = Vec::with_capacity(envelopes.len());
    // Transactions still to dry-run, with their position in `results`.
    let mut candidates = Vec::new();
    for (position, verified) in signing::verify_transactions(envelopes, chain_id)
        .into_iter()
        .enumerate()
    {
        let verified = match verified {
            Ok(verified) => verified,
            Err(error) => {
                results.push(Err(error.into()));
                continue;
            }
        };
        results.push(Ok(verified.hash));
        if mempool.contains(&verified.hash) {
            continue;
        }
        match store.transaction_location(&verified.hash) {
            Ok(Some(location)) => {
                results[position] = Err(AdmissionError::AlreadyCommitted {
                    height: location.height,
                });
            }
            Ok(None) => candidates.push((position, verified)),
            Err(error) => results[position] = Err(AdmissionError::Storage(error.to_string())),
        }
    }
    if candidates.is_empty() {
        return results;
    }
    if checks == Checks::Peer {
        for (position, verified) in candidates {
            if let Err(full @ AdmitError::Full { .. }) = mempool.insert(verified, sizes[position]) {
                results[position] = Err(AdmissionError::Overloaded(full.to_string()));
            }
        }
        return results;
    }
    let tip = store.tip();
    let state = store.state();
    let block = BlockContext {
        chain_id: chain_id.to_owned(),
        height: tip.height + 1,
        time_ms: now_ms().max(tip.time_ms + 1),
    };
    let (positions, transactions): (Vec<usize>, Vec<VerifiedTransaction>) =
        candidates.into_iter().unzip();
    let receipts = dry_run(&state, &block, &transactions)
        .map_err(|e| AdmissionError::Storage(e.to_string()))
        .and_then(|receipts| {
            state
                .check()
                .map_err(|e| AdmissionError::Storage(e.to_string()))?;
            Ok(receipts)
        });
    let receipts = match receipts {
        Ok(receipts) => receipts,
        Err(error) => {
            for position in positions {
                results[position] = Err(error.clone());
            }
            return results;
        }
    };
    for ((position, verified), receipt) in positions.into_iter().zip(transactions).zip(receipts) {
        if let Some(refused) = refusal(&receipt) {
            results[position] = Err(refused);
            continue;
        }
        match mempool.insert(verified, sizes[position]) {
            Ok(()) | Err(AdmitError::Duplicate) => {}
            Err(full @ AdmitError::Full { .. }) => {
                results[position] = Err(AdmissionError::Overloaded(full.to_string()));
            }
        }
    }
    results
}

/// Jobs waiting for the admission thread, at most; beyond, submissions are refused and gossip
/// is dropped.
pub const ADMISSION_QUEUE_JOBS: usize = 8_192;
/// Transactions verified together in one signature batch, at most.
pub const ADMISSION_BATCH_MAX: usize = 512;

/// One piece of work for the admission thread.
enum Job {
    /// A client's transactions (one, or a batch), answered on the channel, one result each
    /// in order.
    Client(
        Vec<v1::SignedTransaction>,
        oneshot::Sender<Vec<Result<Hash, AdmissionError>>>,
    ),
    /// A batch gossiped by a peer.
    Peer(Vec<v1::SignedTransaction>),
}

/// The handle to the admission thread: queue client submissions and gossiped batches.
#[derive(Clone, Debug)]
pub struct AdmissionQueue {
    jobs: mpsc::Sender<Job>,
    admitted: Arc<Notify>,
    /// Client submissions accepted for admission and not yet answered: they count against
    /// the mempool's client limit, so that what waits in the queue cannot overfill it.
    pending: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Client(batch, _) => write!(f, "Client({})", batch.len()),
            Self::Peer(batch) => write!(f, "Peer({})", batch.len()),
        }
    }
}

/// The admission thread itself, to wait for its end.
#[derive(Debug)]
pub struct AdmissionThread(std::thread::JoinHandle<()>);

impl AdmissionThread {
    /// Waits until the thread has ended: once every [`AdmissionQueue`] handle is dropped and
    /// the jobs queued before are done. Its handles on the store and the mempool are dropped
    /// by then.
    pub fn join(self) {
        if self.0.join().is_err() {
            tracing::error!("the admission thread panicked");
        }
    }
}

impl AdmissionQueue {
    /// Starts the admission thread over `store` and `mempool`. Client transactions it admits
    /// are passed to `gossip`; every admission wakes [`AdmissionQueue::admitted`].
    pub fn start(
        store: Arc<Store>,
        mempool: Arc<Mempool>,
        chain_id: String,
        gossip: mpsc::Sender<v1::SignedTransaction>,
    ) -> std::io::Result<(Self, AdmissionThread)> {
        let (jobs, mut queue) = mpsc::channel::<Job>(ADMISSION_QUEUE_JOBS);
        let admitted = Arc::new(Notify::new());
        let notify = Arc::clone(&admitted);
        let thread = std::thread::Builder::new()
            .name("yrd-admission".into())
            .spawn(move || {
                while let Some(first) = queue.blocking_recv() {
                    let mut jobs = vec![first];
                    let mut count = job_len(&jobs[0]);
                    while count < ADMISSION_BATCH_MAX {
                        match queue.try_recv() {
                            Ok(job) => {
                                count += job_len(&job);
                                jobs.push(job);
                            }
                            Err(_) => break,
                        }
                    }
                    run_jobs(&store, &mempool, &chain_id, &gossip, jobs);
                    notify.notify_one();
                }
            })?;
        let queue = Self {
            jobs,
            admitted,
            pending: Arc::new(AtomicUsize::new(0)),
        };
        Ok((queue, AdmissionThread(thread)))
    }

    /// Admits a client's transaction: refused at once with `Overloaded` when the transactions
    /// waiting in the mempool and the submissions being admitted fill its client limit, or
    /// the queue is full.
    pub async fn submit(
        &self,
        mempool: &Mempool,
        transaction: v1::SignedTransaction,
    ) -> Result<Hash, AdmissionError> {
        self.submit_batch(mempool, vec![transaction])
            .await?
            .pop()
            .unwrap_or_else(|| Err(AdmissionError::Storage("admission returned nothing".into())))
    }

    /// Admits a client's transactions together: one result per transaction, in order. Those
    /// that find no room under the mempool's client limit (the last ones of the batch) are
    /// refused with `Overloaded` before any work is spent on them. The whole call fails with
    /// `Overloaded`, and nothing is admitted, when there is room for none of them or the queue
    /// is full.
    pub async fn submit_batch(
        &self,
        mempool: &Mempool,
        mut transactions: Vec<v1::SignedTransaction>,
    ) -> Result<Vec<Result<Hash, AdmissionError>>, AdmissionError> {
        if transactions.is_empty() {
            return Ok(Vec::new());
        }
        // Held until answered (or the client goes away): counts against the client limit.
        let slot = reserve(mempool, &self.pending, transactions.len())?;
        let beyond = transactions.split_off(slot.count);
        let taken = transactions.len();
        let (reply, answer) = oneshot::channel();
        self.jobs
            .try_send(Job::Client(transactions, reply))
            .map_err(|_| {
                AdmissionError::Overloaded(
                    "the node is overloaded: the admission queue is full; retry later".into(),
                )
            })?;
        let mut results = answer.await.unwrap_or_else(|_| {
            vec![Err(AdmissionError::Storage("admission stopped".into())); taken]
        });
        results.extend(beyond.iter().map(|_| {
            Err(AdmissionError::Overloaded(
                "the node is overloaded: no room for this transaction of the batch; retry later"
                    .into(),
            ))
        }));
        Ok(results)
    }

    /// Queues a batch gossiped by a peer; dropped when the queue is full (the peer that
    /// admitted it still holds it).
    pub fn offer_gossip(&self, batch: Vec<v1::SignedTransaction>) -> bool {
        self.jobs.try_send(Job::Peer(batch)).is_ok()
    }

    /// Woken after each admission round.
    #[must_use]
    pub fn admitted(&self) -> Arc<Notify> {
        Arc::clone(&self.admitted)
    }
}

/// Client submissions' places in the mempool's client limit while they are being admitted.
struct Slot {
    pending: Arc<AtomicUsize>,
    /// Places held.
    count: usize,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.pending.fetch_sub(self.count, Ordering::AcqRel);
    }
}

/// Takes places for up to `wanted` client submissions, as many as there is room for, or
/// refuses them all at once, before any work is spent on them, when the transactions waiting
/// in the mempool and the submissions already being admitted (`pending`) fill the mempool's
/// client limit. Counting the pending ones keeps the waiting line within the limit: checking
/// the mempool alone let every submission that came in while a signature batch was verified
/// pass, and the line grew past one block.
fn reserve(
    mempool: &Mempool,
    pending: &Arc<AtomicUsize>,
    wanted: usize,
) -> Result<Slot, AdmissionError> {
    let ahead = pending.fetch_add(wanted, Ordering::AcqRel);
    let count = mempool.client_room().saturating_sub(ahead).min(wanted);
    // What is not taken is given back at once.
    pending.fetch_sub(wanted - count, Ordering::AcqRel);
    let slot = Slot {
        pending: Arc::clone(pending),
        count,
    };
    if count > 0 {
        Ok(slot)
    } else {
        Err(AdmissionError::Overloaded(format!(
            "the node is overloaded: {} transactions are waiting and {ahead} more are being \
             admitted; retry later",
            mempool.len()
        )))
    }
}

fn job_len(job: &Job) -> usize {
    match job {
        Job::Client(batch, _) => batch.len(),
        Job::Peer(batch) => batch.len(),
    }
}

/// Verifies every job's transactions in one batch and answers the clients.
fn run_jobs(
    store: &Store,
    mempool: &Mempool,
    chain_id: &str,
    gossip: &mpsc::Sender<v1::SignedTransaction>,
    jobs: Vec<Job>,
) {
    let mut envelopes = Vec::new();
    let mut replies = Vec::new();
    let mut gossiped = Vec::new();
    for job in jobs {
        match job {
            Job::Client(transactions, reply) => {
                replies.push((envelopes.len(), transactions.clone(), reply));
                envelopes.extend(transactions);
            }
            Job::Peer(batch) => gossiped.extend(batch),
        }
    }
    if !gossiped.is_empty() {
        admit_with(store, mempool, chain_id, gossiped, Checks::Peer);
    }
    let results = admit(store, mempool, chain_id, envelopes);
    for (first, transactions, reply) in replies {
        let answers = transactions
            .into_iter()
            .enumerate()
            .map(|(offset, transaction)| {
                let result = results.get(first + offset).cloned().unwrap_or_else(|| {
                    Err(AdmissionError::Storage("admission returned nothing".into()))
                });
                if result.is_ok() {
                    // A full gossip queue only delays spreading: this node proposes it itself.
                    let _ = gossip.try_send(transaction);
                }
                result
            })
            .collect();
        // A client that went away no longer needs the answer.
        let _ = reply.send(answers);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrd_chaincode::testkit::{loan_report, test_key, Harness, CHAIN_ID};
    use yrd_proto::signing::verify_transaction;

    use crate::storage::tests::genesis_store;
    use crate::test_support::TempDir;
    use yrd_proto::v1::transaction_body::Action;

    fn transaction(nonce: u64) -> VerifiedTransaction {
        let body = v1::TransactionBody {
            chain_id: "yrd-test".into(),
            nonce,
            valid_until_ms: u64::MAX,
            action: Some(Action::ConfirmReceivable(v1::ConfirmReceivable {
                receivable_id: "R".into(),
            })),
        };
        verify_transaction(Harness::sign(&body, &[&test_key("k")]), "yrd-test").expect("verify")
    }

    #[test]
    fn clients_are_refused_at_the_client_limit_while_peers_fill_the_rest() {
        let mempool = Mempool::with_client_limit(4, 1 << 20, 2);
        let pending = Arc::new(AtomicUsize::new(0));
        assert!(reserve(&mempool, &pending, 1).is_ok());
        mempool.insert(transaction(1), 100).expect("insert");
        assert!(reserve(&mempool, &pending, 1).is_ok());
        mempool.insert(transaction(2), 100).expect("insert");
        // At the client limit: refused before any verification, with RESOURCE_EXHAUSTED's error.
        assert!(matches!(
            reserve(&mempool, &pending, 1),
            Err(AdmissionError::Overloaded(_))
        ));
        assert_eq!(
            pending.load(Ordering::Acquire),
            0,
            "a refusal holds no place"
        );
        // Gossip from peers may still fill the mempool up to its own bound, and no further.
        mempool.insert(transaction(3), 100).expect("insert");
        mempool.insert(transaction(4), 100).expect("insert");
        assert!(mempool.insert(transaction(5), 100).is_err());
        assert_eq!(mempool.len(), 4);
    }

    #[test]
    fn submissions_being_admitted_count_against_the_client_limit() {
        let mempool = Mempool::with_client_limit(100, 1 << 20, 2);
        let pending = Arc::new(AtomicUsize::new(0));
        let first = reserve(&mempool, &pending, 1).expect("room for two");
        let second = reserve(&mempool, &pending, 1).expect("room for two");
        // Nothing waits in the mempool yet, but two are being admitted: the line is full.
        assert!(matches!(
            reserve(&mempool, &pending, 1),
            Err(AdmissionError::Overloaded(_))
        ));
        // The first is answered (admitted): it now waits in the mempool instead.
        mempool.insert(transaction(1), 100).expect("insert");
        drop(first);
        assert!(
            reserve(&mempool, &pending, 1).is_err(),
            "one waits, one is being admitted"
        );
        // The second is answered with a refusal: its place is free again.
        drop(second);
        let third = reserve(&mempool, &pending, 1).expect("one waits, one place is free");
        assert_eq!(pending.load(Ordering::Acquire), 1);
        drop(third);
        assert_eq!(pending.load(Ordering::Acquire), 0);
    }

    #[test]
    fn a_batch_takes_what_room_there_is_and_no_more() {
        let mempool = Mempool::with_client_limit(100, 1 << 20, 5);
        let pending = Arc::new(AtomicUsize::new(0));
        mempool.insert(transaction(1), 100).expect("insert");
        let one = reserve(&mempool, &pending, 1).expect("room");
        // Five places, one taken by a waiting transaction, one by a submission being
        // admitted: a batch of seven gets the three left.
        let batch = reserve(&mempool, &pending, 7).expect("room for three");
        assert_eq!(batch.count, 3);
        assert_eq!(
            pending.load(Ordering::Acquire),
            4,
            "what was not taken is given back"
        );
        assert!(matches!(
            reserve(&mempool, &pending, 2),
            Err(AdmissionError::Overloaded(_))
        ));
        assert_eq!(
            pending.load(Ordering::Acquire),
            4,
            "a refusal holds no place"
        );
        drop(batch);
        drop(one);
        assert_eq!(pending.load(Ordering::Acquire), 0);
        assert_eq!(reserve(&mempool, &pending, 9).expect("room").count, 4);
    }

    /// Credit reports about the core enterprise by the bureau, valid for a minute from now.
    fn reports(harness: &mut Harness, ids: &[&str]) -> Vec<v1::SignedTransaction> {
        ids.iter()
            .map(|id| {
                let mut body = harness.body(loan_report(id, &harness.core));
                body.valid_until_ms = now_ms() + 60_000;
                Harness::sign(&body, &[&harness.bureau.key])
            })
            .collect()
    }

    #[tokio::test]
    async fn a_batch_is_admitted_up_to_the_client_limit_and_the_rest_refused_untouched() {
        let dir = TempDir::new("admission-batch");
        let (store, mut harness) = genesis_store(&dir);
        let mempool = Arc::new(Mempool::with_client_limit(100, 1 << 20, 2));
        let (gossip, mut gossiped) = mpsc::channel(16);
        let store = Arc::new(store);
        let (queue, thread) = AdmissionQueue::start(
            Arc::clone(&store),
            Arc::clone(&mempool),
            CHAIN_ID.into(),
            gossip,
        )
        .expect("start");
        let batch = reports(&mut harness, &["CR-1", "CR-2", "CR-3"]);
        let refused = verify_transaction(batch[2].clone(), CHAIN_ID)
            .expect("valid")
            .hash;
        let results = queue
            .submit_batch(&mempool, batch)
            .await
            .expect("room for two");
        assert_eq!(results.len(), 3);
        assert!(results[0].is_ok() && results[1].is_ok(), "{results:?}");
        assert!(
            matches!(results[2], Err(AdmissionError::Overloaded(_))),
            "{results:?}"
        );
        assert_eq!(mempool.len(), 2);
        assert!(
            !mempool.contains(&refused),
            "the one beyond the room is not admitted"
        );
        for _ in 0..2 {
            assert!(
                gossiped.recv().await.is_some(),
                "admitted ones are gossiped"
            );
        }
        assert!(gossiped.try_recv().is_err(), "the refused one is not");
        // No room left: the whole call is refused and changes nothing.
        let more = reports(&mut harness, &["CR-4"]);
        assert!(matches!(
            queue.submit_batch(&mempool, more).await,
            Err(AdmissionError::Overloaded(_))
        ));
        assert_eq!(mempool.len(), 2);
        assert!(queue
            .submit_batch(&mempool, Vec::new())
            .await
            .expect("empty")
            .is_empty());
        // The admission thread ends once its queue is gone, and with it its handle on the
        // store, which must be closed before the folder is removed.
        drop(queue);
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .expect("joined");
        assert_eq!(
            Arc::strong_count(&store),
            1,
            "the thread let go of the store"
        );
        drop(store);
    }
}
