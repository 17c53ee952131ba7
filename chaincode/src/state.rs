//! The small key-value state interface the chaincode runs against, and an in-memory
//! implementation. The node backs it with RocksDB and a Merkle commitment.
//!
//! Invariant: iteration is always in ascending key order; nothing depends on hash-map order.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

/// Reads of the ledger state.
pub trait StateRead {
    /// The value under `key`, if any.
    fn get(&self, key: &[u8]) -> Option<Vec<u8>>;
}

/// Ordered scans of the ledger state.
pub trait StateScan: StateRead {
    /// Up to `limit` entries whose key starts with `prefix`, in ascending key order.
    fn scan_prefix(&self, prefix: &[u8], limit: usize) -> Vec<(Vec<u8>, Vec<u8>)>;

    /// Up to `limit` entries with `start <= key < end`, in ascending key order.
    fn scan_range(&self, start: &[u8], end: &[u8], limit: usize) -> Vec<(Vec<u8>, Vec<u8>)>;
}

/// State changes: `Some(value)` puts, `None` deletes. Ordered by key, so applying and hashing it
/// is deterministic.
pub type WriteSet = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// An in-memory state, used by tests, benchmarks and tools.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryState {
    entries: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl MemoryState {
    /// An empty state.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies a write set.
    pub fn apply(&mut self, writes: &WriteSet) {
        for (key, value) in writes {
            match value {
                Some(value) => {
                    self.entries.insert(key.clone(), value.clone());
                }
                None => {
                    self.entries.remove(key);
                }
            }
        }
    }

    /// Number of keys held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the state is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every entry in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&Vec<u8>, &Vec<u8>)> {
        self.entries.iter()
    }
}

impl StateRead for MemoryState {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.entries.get(key).cloned()
    }
}

impl StateScan for MemoryState {
    fn scan_prefix(&self, prefix: &[u8], limit: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.entries
            .range(prefix.to_vec()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .take(limit)
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect()
    }

    fn scan_range(&self, start: &[u8], end: &[u8], limit: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        if start >= end {
            return Vec::new();
        }
        self.entries
            .range(start.to_vec()..end.to_vec())
            .take(limit)
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect()
    }
}

/// Pending writes layered over a base state: reads see the writes first.
#[derive(Debug)]
pub struct Overlay<'a, S: ?Sized> {
    base: &'a S,
    writes: WriteSet,
}

impl<'a, S: StateRead + ?Sized> Overlay<'a, S> {
    /// An overlay with no writes yet.
    pub fn new(base: &'a S) -> Self {
        Self {
            base,
            writes: WriteSet::new(),
        }
    }

    /// Records a put.
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.writes.insert(key, Some(value));
    }

    /// Records a delete.
    pub fn delete(&mut self, key: Vec<u8>) {
        self.writes.insert(key, None);
    }

    /// Moves another write set on top of this overlay's writes.
    pub fn absorb(&mut self, writes: WriteSet) {
        self.writes.extend(writes);
    }

    /// The writes recorded so far.
    #[must_use]
    pub fn writes(&self) -> &WriteSet {
        &self.writes
    }

    /// Ends the overlay, returning its writes.
    #[must_use]
    pub fn into_writes(self) -> WriteSet {
        self.writes
    }
}

impl<S: StateRead + ?Sized> StateRead for Overlay<'_, S> {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        match self.writes.get(key) {
            Some(value) => value.clone(),
            None => self.base.get(key),
        }
    }
}

/// Most reads a [`ReadCache`] keeps; reads past it go to the base every time. A block's
/// execution or an admission batch reads a few thousand keys.
pub const READ_CACHE_ENTRIES_MAX: usize = 16_384;

/// Remembers the reads of a base state that does not change while the cache lives: the state
/// a block executes on, or the committed state an admission batch is dry-run against. The
/// transactions of a block read the same few records again and again (the signers' key and
/// member records, the validator set, a fund), each a RocksDB lookup through every level.
/// Writes never reach the base (they stay in the [`Overlay`] above the cache), so a cached
/// read is always the base's answer. Bounded by [`READ_CACHE_ENTRIES_MAX`] entries.
pub struct ReadCache<'a, S: ?Sized> {
    base: &'a S,
    reads: RefCell<HashMap<Vec<u8>, Option<Vec<u8>>>>,
}

impl<'a, S: StateRead + ?Sized> ReadCache<'a, S> {
    /// An empty cache over `base`.
    pub fn new(base: &'a S) -> Self {
        Self {
            base,
            reads: RefCell::new(HashMap::new()),
        }
    }

    /// How many reads are kept.
    #[must_use]
    pub fn len(&self) -> usize {
        self.reads.borrow().len()
    }

    /// Whether no read is kept.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.reads.borrow().is_empty()
    }
}

impl<S: ?Sized> std::fmt::Debug for ReadCache<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadCache")
            .field("reads", &self.reads.borrow().len())
            .finish_non_exhaustive()
    }
}

impl<S: StateRead + ?Sized> StateRead for ReadCache<'_, S> {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        if let Some(value) = self.reads.borrow().get(key) {
            return value.clone();
        }
        let value = self.base.get(key);
        let mut reads = self.reads.borrow_mut();
        if reads.len() < READ_CACHE_ENTRIES_MAX {
            reads.insert(key.to_vec(), value.clone());
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_reads_its_writes_then_the_base() {
        let mut base = MemoryState::new();
        base.apply(&WriteSet::from([
            (b"a".to_vec(), Some(b"1".to_vec())),
            (b"b".to_vec(), Some(b"2".to_vec())),
        ]));
        let mut overlay = Overlay::new(&base);
        overlay.put(b"a".to_vec(), b"9".to_vec());
        overlay.delete(b"b".to_vec());
        assert_eq!(overlay.get(b"a"), Some(b"9".to_vec()));
        assert_eq!(overlay.get(b"b"), None);
        assert_eq!(base.get(b"b"), Some(b"2".to_vec()));
        assert_eq!(base.scan_prefix(b"", 1).len(), 1);
        assert_eq!(base.scan_range(b"a", b"b", 10).len(), 1);
        assert_eq!(base.scan_range(b"a", b"c", 10).len(), 2);
        assert_eq!(base.scan_range(b"b", b"a", 10).len(), 0);
    }

    /// Counts the reads that reach it.
    struct Counting<'a> {
        state: &'a MemoryState,
        reads: std::cell::Cell<usize>,
    }

    impl StateRead for Counting<'_> {
        fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
            self.reads.set(self.reads.get() + 1);
            self.state.get(key)
        }
    }

    #[test]
    fn a_read_cache_answers_as_its_base_and_reads_each_key_once() {
        let mut state = MemoryState::new();
        state.apply(&WriteSet::from([(b"a".to_vec(), Some(b"1".to_vec()))]));
        let base = Counting {
            state: &state,
            reads: std::cell::Cell::new(0),
        };
        let cache = ReadCache::new(&base);
        for _ in 0..3 {
            assert_eq!(cache.get(b"a"), Some(b"1".to_vec()));
            assert_eq!(cache.get(b"missing"), None);
        }
        assert_eq!(
            base.reads.get(),
            2,
            "a repeated read, present or absent, is answered from the cache"
        );
        assert_eq!(cache.len(), 2);

        // Writes stay in the overlay above the cache, so a later read of the cache still
        // gives the base's value.
        let mut overlay = Overlay::new(&cache);
        overlay.put(b"a".to_vec(), b"2".to_vec());
        overlay.put(b"missing".to_vec(), b"3".to_vec());
        assert_eq!(overlay.get(b"a"), Some(b"2".to_vec()));
        assert_eq!(overlay.get(b"missing"), Some(b"3".to_vec()));
        assert_eq!(cache.get(b"a"), Some(b"1".to_vec()));
    }

    #[test]
    fn a_read_cache_stops_keeping_reads_at_its_bound() {
        let state = MemoryState::new();
        let base = Counting {
            state: &state,
            reads: std::cell::Cell::new(0),
        };
        let cache = ReadCache::new(&base);
        for index in 0..READ_CACHE_ENTRIES_MAX + 10 {
            assert_eq!(cache.get(&index.to_be_bytes()), None);
        }
        assert_eq!(cache.len(), READ_CACHE_ENTRIES_MAX);
        let reads = base.reads.get();
        // A key past the bound is read from the base every time; a kept one is not.
        assert_eq!(cache.get(&(READ_CACHE_ENTRIES_MAX + 5).to_be_bytes()), None);
        assert_eq!(base.reads.get(), reads + 1);
        assert_eq!(cache.get(&0usize.to_be_bytes()), None);
        assert_eq!(base.reads.get(), reads + 1);
    }
}
