//! The authenticated state: a Jellyfish Merkle Tree (crate `jmt`, SHA-256) kept in two column
//! families of the node's database, one tree version per block height (version 0 is the
//! genesis state).
//!
//! ```text
//! jmt_nodes   u64 BE version || borsh(NibblePath) -> node (`node_codec`: internal compact)
//! jmt_values  SHA-256(key) || u64 BE version    -> 0x00 (deleted) | 0x01 || value
//! ```
//!
//! Every version is kept, so a proof can be served for any committed height; nothing is pruned.
//! The replay-protection index (`x/`) and the history counts (`h/c/`) are left out of the tree
//! (`yrd_chaincode::keys::is_authenticated`), and so are a block's writes of versioned records,
//! whose history entries prove them (`yrd_chaincode::keys::is_tree_key`); the genesis state
//! puts every authenticated key in.
//! The plain `state` column family stays the executor's fast view of the latest state; this
//! tree is written in the same write batch, so the two never disagree after a crash. The
//! history entries (`h/v/`) are the exception: written once and never changed, they are kept
//! here only, and the store's state snapshots read them from `jmt_values`.

use std::sync::{Mutex, PoisonError};

use jmt::storage::{LeafNode, NibblePath, Node, NodeKey, TreeReader, TreeUpdateBatch};
use jmt::{JellyfishMerkleTree, KeyHash, OwnedValue, RootHash, Sha256Jmt, Version};
use rocksdb::{ColumnFamily, Direction, IteratorMode, ReadOptions, WriteBatch, DB};
use yrd_chaincode::state::WriteSet;
use yrd_proto::signing::Hash;
use yrd_proto::v1;

use super::StoreError;

/// Column family of tree nodes.
pub const CF_JMT_NODES: &str = "jmt_nodes";
/// Column family of versioned values by key hash.
pub const CF_JMT_VALUES: &str = "jmt_values";

/// Largest stored tree node, in bytes (an internal node has at most 16 children of ~50 bytes).
const NODE_BYTES_MAX: usize = 4 * 1024;

/// Only nodes this close to the root are cached: every update walks through them, while deeper
/// nodes are rarely read again soon.
pub const NODE_CACHE_DEPTH_NIBBLES: usize = 4;
/// Most tree nodes kept in memory ([`NodeCache`]): one per path within
/// [`NODE_CACHE_DEPTH_NIBBLES`] of the root (1 + 16 + 256 + 4,096 + 65,536). A decoded internal
/// node takes about 1.1 KB whatever its number of children (`jmt` boxes all 16 slots), so the
/// cache stays under about 85 MB.
pub const NODE_CACHE_NODES: usize = 69_905;

/// The latest tree node at each path near the root. Every update walks through these paths and
/// reads the node each one holds at the latest version, so keeping that one node per path saves
/// the RocksDB reads and decoding of the upper levels. A node never changes once written (its
/// key names its version), so a cached node is always right: a read for another version of a
/// path misses and goes to the database. Bounded by the number of such paths: one slot per path,
/// found by arithmetic on the path's nibbles, so a lookup neither hashes nor compares paths.
pub struct NodeCache {
    slots: Vec<Option<(Version, Node)>>,
    len: usize,
}

impl Default for NodeCache {
    fn default() -> Self {
        Self {
            slots: std::iter::repeat_with(|| None)
                .take(NODE_CACHE_NODES)
                .collect(),
            len: 0,
        }
    }
}

impl std::fmt::Debug for NodeCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeCache")
            .field("nodes", &self.len)
            .finish()
    }
}

impl NodeCache {
    /// The slot of a path within [`NODE_CACHE_DEPTH_NIBBLES`] of the root: the paths of `n`
    /// nibbles come after all shorter ones (`(16^n - 1) / 15` of them), in nibble order.
    fn slot(path: &NibblePath) -> Option<usize> {
        let nibbles = path.num_nibbles();
        if nibbles > NODE_CACHE_DEPTH_NIBBLES {
            return None;
        }
        let shorter = ((1usize << (4 * nibbles)) - 1) / 15;
        let within = (0..nibbles).fold(0usize, |index, i| {
            (index << 4) | usize::from(u8::from(path.get_nibble(i)))
        });
        Some(shorter + within)
    }

    fn get(&self, key: &NodeKey) -> Option<Node> {
        let slot = Self::slot(key.nibble_path())?;
        self.slots[slot]
            .as_ref()
            .filter(|(version, _)| *version == key.version())
            .map(|(_, node)| node.clone())
    }

    /// Whether a node under this key is kept: only those near the root.
    fn keeps(key: &NodeKey) -> bool {
        key.nibble_path().num_nibbles() <= NODE_CACHE_DEPTH_NIBBLES
    }

    /// Caches a node unless its path holds a later one; callers check [`NodeCache::keeps`]
    /// first, before cloning it.
    fn insert(&mut self, key: &NodeKey, node: Node) {
        let Some(slot) = Self::slot(key.nibble_path()) else {
            return;
        };
        match &mut self.slots[slot] {
            Some(held) if held.0 < key.version() => *held = (key.version(), node),
            Some(_) => {}
            empty @ None => {
                *empty = Some((key.version(), node));
                self.len += 1;
            }
        }
    }

    /// Adds the nodes of a committed update.
    pub(super) fn insert_update(cache: &Mutex<Self>, update: &TreeUpdateBatch) {
        let mut cache = cache.lock().unwrap_or_else(PoisonError::into_inner);
        for (key, node) in update.node_batch.nodes() {
            if Self::keeps(key) {
                cache.insert(key, node.clone());
            }
        }
    }

    /// How many nodes are cached.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether none is.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The key hash of a state key.
#[must_use]
pub fn key_hash(key: &[u8]) -> KeyHash {
    KeyHash::with::<sha2::Sha256>(key)
}

/// The database key of a tree node: its version big-endian, then its nibble path. Versions
/// are block heights, so every block's nodes sort after all earlier blocks' nodes: the column
/// family grows at its end, and compaction merges files that do not overlap instead of
/// rewriting the whole tree for every block (borsh's little-endian version scattered each
/// block's nodes over the key space).
fn node_db_key(node_key: &NodeKey) -> std::io::Result<Vec<u8>> {
    let mut key = Vec::with_capacity(8 + 8 + 4 + 32);
    key.extend_from_slice(&node_key.version().to_be_bytes());
    borsh::to_writer(&mut key, node_key.nibble_path())?;
    Ok(key)
}

fn value_key(key_hash: &KeyHash, version: Version) -> [u8; 40] {
    let mut out = [0u8; 40];
    out[..32].copy_from_slice(&key_hash.0);
    out[32..].copy_from_slice(&version.to_be_bytes());
    out
}

/// Where a reverse iterator over [`CF_JMT_VALUES`] starts, and its bounds, to find the value
/// of `key_hash` at `max_version`: its latest version at or below it.
pub(super) fn value_seek(key_hash: &KeyHash, max_version: Version) -> (ReadOptions, [u8; 40]) {
    let mut options = ReadOptions::default();
    options.set_iterate_lower_bound(key_hash.0.to_vec());
    (options, value_key(key_hash, max_version))
}

/// An entry of a RocksDB iterator, key and value.
pub(super) type IteratorItem = Result<(Box<[u8]>, Box<[u8]>), rocksdb::Error>;

/// The value of `key_hash` from the first entry of the reverse iterator of [`value_seek`]:
/// `None` if there is no entry of that key or its latest one is a deletion.
pub(super) fn decode_value(
    key_hash: &KeyHash,
    first: Option<IteratorItem>,
) -> Result<Option<OwnedValue>, StoreError> {
    let Some(item) = first else {
        return Ok(None);
    };
    let (key, value) = item.map_err(|error| super::rocks("read a tree value", error))?;
    if key.len() != 40 || key[..32] != key_hash.0 {
        return Ok(None);
    }
    match value.split_first() {
        Some((0, [])) => Ok(None),
        Some((1, bytes)) => Ok(Some(bytes.to_vec())),
        _ => Err(StoreError::Corrupt(format!(
            "tree value of {} has a bad tag",
            hex::encode(key_hash.0)
        ))),
    }
}

/// Reads tree nodes and values straight from the database. Only committed versions are read:
/// commits are serialised by the store, and a version is read only once its root is stored.
pub(super) struct Reader<'a> {
    pub(super) db: &'a DB,
    pub(super) nodes: &'a ColumnFamily,
    pub(super) values: &'a ColumnFamily,
    pub(super) cache: &'a Mutex<NodeCache>,
    /// The tree update of a staged block, read before the database (see `Store::stage`).
    pub(super) staged: Option<&'a TreeUpdateBatch>,
}

fn corrupt(what: String) -> anyhow::Error {
    anyhow::Error::msg(what)
}

impl TreeReader for Reader<'_> {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        if let Some(node) = self
            .staged
            .and_then(|staged| staged.node_batch.get_node(node_key))
        {
            return Ok(Some(node.clone()));
        }
        if let Some(node) = self
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(node_key)
        {
            return Ok(Some(node));
        }
        let key = node_db_key(node_key)?;
        let Some(bytes) = self.db.get_pinned_cf(self.nodes, key)? else {
            return Ok(None);
        };
        if bytes.len() > NODE_BYTES_MAX {
            return Err(corrupt(format!(
                "tree node at version {} is {} bytes; at most {NODE_BYTES_MAX}",
                node_key.version(),
                bytes.len()
            )));
        }
        let node = super::node_codec::decode_node(&bytes).map_err(|error| {
            corrupt(format!(
                "tree node at version {} does not decode: {error}",
                node_key.version()
            ))
        })?;
        if NodeCache::keeps(node_key) {
            self.cache
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(node_key, node.clone());
        }
        Ok(Some(node))
    }

    fn get_value_option(
        &self,
        max_version: Version,
        key_hash: KeyHash,
    ) -> anyhow::Result<Option<OwnedValue>> {
        let (options, seek) = value_seek(&key_hash, max_version);
        let mut iterator = self.db.iterator_cf_opt(
            self.values,
            options,
            IteratorMode::From(&seek, Direction::Reverse),
        );
        Ok(decode_value(&key_hash, iterator.next())?)
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        // Only tree restoration asks for it, and the node never restores a tree from chunks.
        Err(corrupt(
            "the rightmost leaf is not indexed in this store".to_owned(),
        ))
    }
}

impl Reader<'_> {
    fn tree(&self) -> Sha256Jmt<'_, Self> {
        JellyfishMerkleTree::new(self)
    }

    /// The root and node updates of applying `writes` as version `version` on top of
    /// `version - 1` (or on an empty tree for version 0).
    pub(super) fn apply(
        &self,
        writes: &WriteSet,
        version: Version,
    ) -> Result<(Hash, TreeUpdateBatch), StoreError> {
        let failed = |error: anyhow::Error| {
            StoreError::Corrupt(format!("state tree update at version {version}: {error:#}"))
        };
        // Genesis puts every authenticated key in the tree; a block leaves out the records
        // proven through their history entries (`yrd_chaincode::keys::is_tree_key`).
        let in_tree = if version == 0 {
            yrd_chaincode::keys::is_authenticated
        } else {
            yrd_chaincode::keys::is_tree_key
        };
        let set: Vec<(KeyHash, Option<OwnedValue>)> = writes
            .iter()
            .filter(|(key, _)| in_tree(key))
            .map(|(key, value)| (key_hash(key), value.clone()))
            .collect();
        let (root, batch) = if !set.is_empty() && set.iter().all(|(_, value)| value.is_some()) {
            // Puts only, the usual block: the batch insertion builds each touched node once,
            // about twice as fast as inserting key by key. Both give the same tree.
            let puts: Vec<(KeyHash, OwnedValue)> = set
                .into_iter()
                .filter_map(|(key, value)| value.map(|value| (key, value)))
                .collect();
            let (roots, batch) = self
                .tree()
                .batch_put_value_sets(vec![puts], None, version)
                .map_err(failed)?;
            let root = roots.first().copied().ok_or_else(|| {
                StoreError::Corrupt(format!("state tree update at version {version}: no root"))
            })?;
            (root, batch)
        } else {
            self.tree().put_value_set(set, version).map_err(failed)?
        };
        Ok((root.0, batch))
    }

    /// The value of `key` at `version` and its proof.
    pub(super) fn prove(
        &self,
        key: &[u8],
        version: Version,
    ) -> Result<(Option<Vec<u8>>, v1::StateProof), StoreError> {
        let (value, proof) =
            self.tree()
                .get_with_proof(key_hash(key), version)
                .map_err(|error| {
                    StoreError::Corrupt(format!("state proof at version {version}: {error:#}"))
                })?;
        let proof = yrd_verify::state_proof_from_jmt(&proof)
            .map_err(|error| StoreError::Corrupt(format!("state proof encoding: {error}")))?;
        Ok((value, proof))
    }

    /// The root of `version`.
    pub(super) fn root(&self, version: Version) -> Result<Hash, StoreError> {
        let root: RootHash = self.tree().get_root_hash(version).map_err(|error| {
            StoreError::Corrupt(format!("state root of version {version}: {error:#}"))
        })?;
        Ok(root.0)
    }
}

/// Adds a tree update's nodes and values to a write batch. Stale-node indexes are dropped:
/// every version is kept.
pub(super) fn put_update(
    batch: &mut WriteBatch,
    nodes: &ColumnFamily,
    values: &ColumnFamily,
    update: &TreeUpdateBatch,
) -> Result<(), StoreError> {
    let (mut value, mut scratch) = (Vec::new(), Vec::new());
    for (node_key, node) in update.node_batch.nodes() {
        let key = node_db_key(node_key)
            .map_err(|error| StoreError::Corrupt(format!("encode tree node key: {error}")))?;
        value.clear();
        super::node_codec::encode_node(node, &mut value, &mut scratch)
            .map_err(|error| StoreError::Corrupt(format!("encode tree node: {error}")))?;
        batch.put_cf(nodes, key, &value);
    }
    for ((version, key_hash), value) in update.node_batch.values() {
        let key = value_key(key_hash, *version);
        match value {
            Some(value) => {
                let mut stored = Vec::with_capacity(1 + value.len());
                stored.push(1);
                stored.extend_from_slice(value);
                batch.put_cf(values, key, stored);
            }
            None => batch.put_cf(values, key, [0u8]),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jmt::ValueHash;

    /// A node key from its version and nibbles (each below 16), through its borsh encoding:
    /// `jmt` builds nibble paths only inside the crate.
    fn key(version: Version, nibbles: &[u8]) -> NodeKey {
        let packed: Vec<u8> = nibbles
            .chunks(2)
            .map(|pair| (pair[0] << 4) | pair.get(1).copied().unwrap_or(0))
            .collect();
        let mut bytes = version.to_le_bytes().to_vec();
        bytes.extend_from_slice(&(nibbles.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&(packed.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&packed);
        let key: NodeKey = borsh::from_slice(&bytes).expect("a node key");
        assert_eq!(key.nibble_path().num_nibbles(), nibbles.len());
        key
    }

    fn leaf(byte: u8) -> Node {
        Node::Leaf(LeafNode::new(KeyHash([byte; 32]), ValueHash([byte; 32])))
    }

    #[test]
    fn node_keys_sort_by_version_first() {
        let ordered = [
            key(1, &[15, 15, 15, 15, 15]),
            key(2, &[]),
            key(2, &[0]),
            key(255, &[3, 4]),
            key(256, &[]),
            key(65_536, &[1]),
        ];
        let encoded: Vec<Vec<u8>> = ordered
            .iter()
            .map(|node_key| node_db_key(node_key).expect("encode"))
            .collect();
        for pair in encoded.windows(2) {
            assert!(
                pair[0] < pair[1],
                "{:?} sorts before {:?}",
                pair[0],
                pair[1]
            );
        }
        // Distinct paths of one version stay distinct.
        assert_ne!(
            node_db_key(&key(7, &[1])).expect("encode"),
            node_db_key(&key(7, &[1, 0])).expect("encode")
        );
    }

    #[test]
    fn the_node_cache_keeps_the_latest_node_of_each_path_near_the_root() {
        let mut cache = NodeCache::default();
        assert!(NodeCache::keeps(&key(1, &[1, 2, 3, 4])));
        assert!(!NodeCache::keeps(&key(1, &[1, 2, 3, 4, 5])));

        cache.insert(&key(1, &[1, 2]), leaf(1));
        assert_eq!(cache.get(&key(1, &[1, 2])), Some(leaf(1)));
        assert_eq!(cache.get(&key(2, &[1, 2])), None, "another version misses");
        assert_eq!(cache.get(&key(1, &[1, 3])), None, "another path misses");

        // A later version of the path replaces the node; an earlier one never does.
        cache.insert(&key(3, &[1, 2]), leaf(3));
        cache.insert(&key(2, &[1, 2]), leaf(2));
        assert_eq!(cache.get(&key(3, &[1, 2])), Some(leaf(3)));
        assert_eq!(cache.get(&key(1, &[1, 2])), None);
        assert_eq!(cache.get(&key(2, &[1, 2])), None);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn every_path_near_the_root_has_a_slot_of_its_own() {
        let mut seen = vec![false; NODE_CACHE_NODES];
        let paths: Vec<Vec<u8>> = (0..=NODE_CACHE_DEPTH_NIBBLES)
            .flat_map(|nibbles| {
                (0..1usize << (4 * nibbles)).map(move |index| {
                    (0..nibbles)
                        .rev()
                        .map(|digit| ((index >> (4 * digit)) & 0xf) as u8)
                        .collect()
                })
            })
            .collect();
        assert_eq!(paths.len(), NODE_CACHE_NODES);
        for path in &paths {
            let slot = NodeCache::slot(key(1, path).nibble_path()).expect("a slot");
            assert!(!seen[slot], "two paths share slot {slot}");
            seen[slot] = true;
        }
        assert!(seen.iter().all(|taken| *taken));
        assert_eq!(
            NodeCache::slot(key(1, &[1, 2, 3, 4, 5]).nibble_path()),
            None
        );
    }

    #[test]
    fn the_node_cache_never_holds_more_than_its_bound() {
        let mut cache = NodeCache::default();
        for a in 0..16u8 {
            for b in 0..16u8 {
                for c in 0..16u8 {
                    for d in 0..16u8 {
                        cache.insert(&key(1, &[a, b, c, d]), Node::Null);
                        cache.insert(&key(1, &[a, b, c, d, 0]), Node::Null);
                    }
                    cache.insert(&key(1, &[a, b, c]), Node::Null);
                }
                cache.insert(&key(1, &[a, b]), Node::Null);
            }
            cache.insert(&key(1, &[a]), Node::Null);
        }
        cache.insert(&key(1, &[]), Node::Null);
        cache.insert(&key(2, &[]), Node::Null);
        assert_eq!(cache.len(), NODE_CACHE_NODES);
        assert_eq!(cache.get(&key(1, &[1, 2, 3, 4, 0])), None);
        assert_eq!(cache.get(&key(2, &[])), Some(Node::Null));
    }
}
