//! The small key-value state interface the chaincode runs against, and an in-memory
//! implementation. The node backs it with RocksDB and a Merkle commitment.
//!
//! Invariant: iteration is always in ascending key order; nothing depends on hash-map order.

use std::collections::BTreeMap;

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
}
