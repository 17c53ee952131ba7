//! The mempool: verified transactions waiting for a block, bounded in count and bytes,
//! de-duplicated by hash, handed out in arrival order.
//!
//! Invariants: `len() <= transactions_max` and `bytes() <= bytes_max` at all times; a hash is
//! held at most once; the transactions marked as in the block being decided are held; nothing
//! enters without having passed stateless verification (the caller holds a
//! `VerifiedTransaction`, which only `yrd_proto::signing` makes).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use yrd_proto::signing::{Hash, VerifiedTransaction};

/// Why a transaction was not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmitError {
    /// The mempool holds as many transactions or bytes as allowed.
    #[error("mempool is full ({transactions} transactions, {bytes} bytes)")]
    Full {
        /// Transactions held.
        transactions: usize,
        /// Bytes held.
        bytes: usize,
    },
    /// The same transaction is already waiting.
    #[error("transaction is already in the mempool")]
    Duplicate,
}

/// A waiting transaction.
struct Entry {
    transaction: Arc<VerifiedTransaction>,
    bytes: usize,
    sequence: u64,
}

#[derive(Default)]
struct Inner {
    by_hash: HashMap<Hash, Entry>,
    /// Arrival order: sequence -> hash. Ordered, so block contents never depend on hash order.
    order: BTreeMap<u64, Hash>,
    bytes: usize,
    next_sequence: u64,
    /// The waiting transactions that are in the block being decided (a subset of `by_hash`).
    in_block: HashSet<Hash>,
    /// The transactions of a block decided but not yet written: no longer waiting, and not
    /// admitted again until the block is written (then replay protection refuses them).
    decided: HashSet<Hash>,
}

/// The bounded mempool, shared by the gRPC service, the network and the consensus driver.
pub struct Mempool {
    inner: Mutex<Inner>,
    transactions_max: usize,
    bytes_max: usize,
    client_transactions_max: usize,
}

impl Mempool {
    /// An empty mempool with its bounds.
    #[must_use]
    pub fn new(transactions_max: usize, bytes_max: usize) -> Self {
        Self::with_client_limit(transactions_max, bytes_max, transactions_max)
    }

    /// An empty mempool that refuses client submissions once `client_transactions_max`
    /// transactions wait (see [`Mempool::accepts_clients`]).
    #[must_use]
    pub fn with_client_limit(
        transactions_max: usize,
        bytes_max: usize,
        client_transactions_max: usize,
    ) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            transactions_max,
            bytes_max,
            client_transactions_max: client_transactions_max.min(transactions_max),
        }
    }

    /// Whether a client submission may be admitted now: fewer than the client limit wait for a
    /// block, not counting those in the block being decided ([`Mempool::set_in_block`]).
    /// Checked before any verification, so an overloaded node refuses cheaply.
    ///
    /// Not counting the block being decided lets the next block's transactions gather while
    /// the validators agree on this one, so under load every block is full. Counting it would
    /// stop admission for a whole block time after each full block, then propose a small block
    /// from what came in during the minimum interval: blocks would alternate between full and
    /// small, and the network would idle while it refused clients.
    #[must_use]
    pub fn accepts_clients(&self) -> bool {
        self.client_room() > 0
    }

    /// How many more client transactions may wait for a block now: the client limit less
    /// those waiting, not counting the block being decided (see [`Mempool::accepts_clients`]).
    #[must_use]
    pub fn client_room(&self) -> usize {
        let inner = self.lock();
        let waiting = inner.by_hash.len() - inner.in_block.len();
        self.client_transactions_max.saturating_sub(waiting)
    }

    /// Marks the waiting transactions among `hashes` as the block being decided (the one this
    /// node proposed or found valid for the current height), replacing the previous mark; an
    /// empty slice clears it, as after a commit.
    pub fn set_in_block(&self, hashes: &[Hash]) {
        let mut inner = self.lock();
        let held: HashSet<Hash> = hashes
            .iter()
            .filter(|hash| inner.by_hash.contains_key(*hash))
            .copied()
            .collect();
        inner.in_block = held;
    }

    /// How many waiting transactions are marked as the block being decided.
    #[must_use]
    pub fn in_block(&self) -> usize {
        self.lock().in_block.len()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // breaks the bounds, so a poisoned lock is still usable.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Admits a verified transaction of `bytes` encoded bytes.
    pub fn insert(&self, transaction: VerifiedTransaction, bytes: usize) -> Result<(), AdmitError> {
        let mut inner = self.lock();
        if inner.by_hash.contains_key(&transaction.hash)
            || inner.decided.contains(&transaction.hash)
        {
            return Err(AdmitError::Duplicate);
        }
        if inner.by_hash.len() >= self.transactions_max || inner.bytes + bytes > self.bytes_max {
            return Err(AdmitError::Full {
                transactions: inner.by_hash.len(),
                bytes: inner.bytes,
            });
        }
        let sequence = inner.next_sequence;
        inner.next_sequence += 1;
        inner.order.insert(sequence, transaction.hash);
        inner.bytes += bytes;
        inner.by_hash.insert(
            transaction.hash,
            Entry {
                transaction: Arc::new(transaction),
                bytes,
                sequence,
            },
        );
        Ok(())
    }

    /// Whether a hash is waiting.
    #[must_use]
    pub fn contains(&self, hash: &Hash) -> bool {
        self.lock().by_hash.contains_key(hash)
    }

    /// The waiting transactions with these hashes, `None` for each one not waiting; one lock for
    /// the lot.
    #[must_use]
    pub fn get_many(&self, hashes: &[Hash]) -> Vec<Option<Arc<VerifiedTransaction>>> {
        let inner = self.lock();
        hashes
            .iter()
            .map(|hash| inner.by_hash.get(hash).map(|e| Arc::clone(&e.transaction)))
            .collect()
    }

    /// Up to `transactions_max` transactions and about `bytes_max` bytes, oldest first, skipping
    /// those whose validity ends before `block_time_ms`. They stay in the mempool until removed.
    #[must_use]
    pub fn batch(
        &self,
        transactions_max: usize,
        bytes_max: usize,
        block_time_ms: u64,
    ) -> Vec<Arc<VerifiedTransaction>> {
        let inner = self.lock();
        let mut batch = Vec::new();
        let mut bytes = 0usize;
        for hash in inner.order.values() {
            if batch.len() >= transactions_max {
                break;
            }
            let Some(entry) = inner.by_hash.get(hash) else {
                continue;
            };
            if entry.transaction.body.valid_until_ms < block_time_ms {
                continue;
            }
            if bytes + entry.bytes > bytes_max {
                break;
            }
            bytes += entry.bytes;
            batch.push(Arc::clone(&entry.transaction));
        }
        batch
    }

    /// Removes transactions (committed, or found invalid).
    pub fn remove(&self, hashes: &[Hash]) {
        let mut inner = self.lock();
        for hash in hashes {
            if let Some(entry) = inner.by_hash.remove(hash) {
                inner.order.remove(&entry.sequence);
                inner.bytes -= entry.bytes;
                inner.in_block.remove(hash);
            }
        }
    }

    /// Removes the transactions of a decided block that is not written yet, and refuses them
    /// as duplicates until [`Mempool::clear_decided`] (called once the block is written, when
    /// the state's replay protection refuses them instead). Replaces the previous set.
    pub fn remove_decided(&self, hashes: &[Hash]) {
        self.remove(hashes);
        self.lock().decided = hashes.iter().copied().collect();
    }

    /// Forgets the decided block's transactions (see [`Mempool::remove_decided`]).
    pub fn clear_decided(&self) {
        self.lock().decided.clear();
    }

    /// Drops every transaction whose validity ended before `block_time_ms`; returns how many.
    pub fn prune_expired(&self, block_time_ms: u64) -> usize {
        let expired: Vec<Hash> = {
            let inner = self.lock();
            inner
                .by_hash
                .iter()
                .filter(|(_, entry)| entry.transaction.body.valid_until_ms < block_time_ms)
                .map(|(hash, _)| *hash)
                .collect()
        };
        self.remove(&expired);
        expired.len()
    }

    /// Transactions waiting.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().by_hash.len()
    }

    /// Whether nothing waits.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Encoded bytes waiting.
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrd_chaincode::testkit::{test_key, Harness};
    use yrd_proto::signing::verify_transaction;
    use yrd_proto::v1::{self, transaction_body::Action};

    fn transaction(nonce: u64, valid_until_ms: u64) -> VerifiedTransaction {
        let body = v1::TransactionBody {
            chain_id: "yrd-test".into(),
            nonce,
            valid_until_ms,
            action: Some(Action::ConfirmReceivable(v1::ConfirmReceivable {
                receivable_id: "R".into(),
            })),
        };
        let envelope = Harness::sign(&body, &[&test_key("k")]);
        verify_transaction(envelope, "yrd-test").expect("verify")
    }

    #[test]
    fn bounded_deduplicated_and_ordered() {
        let mempool = Mempool::new(3, 10_000);
        for nonce in 0..3 {
            mempool
                .insert(transaction(nonce, 100), 100)
                .expect("insert");
        }
        assert_eq!(
            mempool.insert(transaction(0, 100), 100),
            Err(AdmitError::Duplicate)
        );
        assert!(matches!(
            mempool.insert(transaction(9, 100), 100),
            Err(AdmitError::Full { .. })
        ));
        let batch = mempool.batch(10, 10_000, 0);
        assert_eq!(
            batch.iter().map(|t| t.body.nonce).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        mempool.remove(&[batch[1].hash]);
        assert_eq!(mempool.len(), 2);
        assert_eq!(mempool.bytes(), 200);
        assert_eq!(mempool.batch(1, 10_000, 0).len(), 1);
        assert_eq!(mempool.batch(10, 150, 0).len(), 1);
    }

    #[test]
    fn byte_bound_and_expiry() {
        let mempool = Mempool::new(100, 250);
        mempool.insert(transaction(1, 50), 100).expect("insert");
        mempool.insert(transaction(2, 500), 100).expect("insert");
        assert!(matches!(
            mempool.insert(transaction(3, 500), 100),
            Err(AdmitError::Full { .. })
        ));
        assert_eq!(
            mempool.batch(10, 1_000, 60).len(),
            1,
            "expired transactions are not proposed"
        );
        assert_eq!(mempool.prune_expired(60), 1);
        assert_eq!(mempool.len(), 1);
    }

    #[test]
    fn client_limit_does_not_count_the_block_being_decided() {
        let mempool = Mempool::with_client_limit(100, 100_000, 2);
        let first = transaction(1, 500);
        let second = transaction(2, 500);
        let (first_hash, second_hash) = (first.hash, second.hash);
        mempool.insert(first, 100).expect("insert");
        mempool.insert(second, 100).expect("insert");
        assert!(!mempool.accepts_clients(), "two wait, the limit is two");
        // Both go into the block being decided: new ones may gather for the next block.
        mempool.set_in_block(&[first_hash, second_hash, [7; 32]]);
        assert_eq!(mempool.in_block(), 2, "only held transactions are marked");
        assert!(mempool.accepts_clients());
        assert_eq!(mempool.client_room(), 2);
        mempool.insert(transaction(3, 500), 100).expect("insert");
        assert_eq!(mempool.client_room(), 1);
        mempool.insert(transaction(4, 500), 100).expect("insert");
        assert!(!mempool.accepts_clients(), "two wait for the next block");
        assert_eq!(mempool.client_room(), 0);
        // The block commits: its transactions leave, and with them their mark.
        mempool.remove(&[first_hash]);
        assert_eq!(mempool.in_block(), 1);
        mempool.set_in_block(&[]);
        assert_eq!(mempool.in_block(), 0);
        assert_eq!(mempool.len(), 3);
        assert!(!mempool.accepts_clients());
    }

    #[test]
    fn a_decided_block_is_not_admitted_again_until_written() {
        let mempool = Mempool::new(100, 100_000);
        let first = transaction(1, 500);
        let again = transaction(1, 500);
        let hash = first.hash;
        mempool.insert(first, 100).expect("insert");
        mempool.remove_decided(&[hash]);
        assert_eq!(mempool.len(), 0, "decided transactions no longer wait");
        assert!(matches!(
            mempool.insert(again, 100),
            Err(AdmitError::Duplicate)
        ));
        mempool.clear_decided();
        mempool
            .insert(transaction(1, 500), 100)
            .expect("admitted once written (the state refuses a replay then)");
    }
}
