//! RocksDB storage of the node: the genesis, committed blocks and their indexes, the ledger
//! state, the chain tip and the consensus safety data.
//!
//! # Layout
//!
//! One database with these column families (all keys and integers big-endian, so key order is
//! numeric order):
//!
//! ```text
//! meta          "schema"         -> u32 format version (STORAGE_FORMAT_VERSION)
//!               "genesis"        -> encoded v1::Genesis
//!               "genesis_sha256" -> SHA-256 of the encoded genesis (32 bytes)
//!               "tip"            -> tip record: u8 version || u64 height || block_hash (32)
//!                                   || state_root (32) || u64 time_ms          (81 bytes)
//!               "vchange/" || u64 height -> the 32-byte keys of the validator set that the
//!                                   block of that height names as next, when it differs
//! blocks        u64 height       -> encoded v1::CommittedBlock (block, receipts, certificate)
//! block_hashes  block hash (32)  -> u64 height
//! transactions  tx hash (32)     -> u64 height || u32 index in the block
//! state         chaincode key    -> chaincode value (the latest state, for execution), but
//!                                   for the history entries (`h/v/`), which only the tree's
//!                                   values hold (format 6; format 5 kept them here too)
//! jmt_nodes, jmt_values          -> the authenticated state tree, every version (see `tree`)
//! consensus     "safety"         -> the consensus safety data, opaque bytes
//! ```
//!
//! # Invariants kept here
//!
//! - **Atomic commits.** A block, its receipts, its transaction index entries, its state writes
//!   and the new tip are written in one `WriteBatch`: after a crash the database holds either
//!   all of a block or none of it, and the tip always names the last stored block.
//! - **Sync policy.** The genesis ([`Store::init_genesis`]) and every safety-data save
//!   ([`Store::save_safety_data`]) are synced WAL writes (`WriteOptions::set_sync(true)`): the
//!   call returns only after the write-ahead log is on stable storage. Safety data is durable
//!   before the caller lets the vote it protects leave the node. A commit
//!   ([`Store::commit_block`]) is written to the WAL without waiting for the disk, so that the
//!   next height can start while the disk catches up; it is durable once [`Store::sync_wal`]
//!   returns, or once any later synced write returns (the WAL is one sequence: a synced write
//!   makes every earlier one durable too). [`Store::durable_height`] says how far that is, and
//!   a node acknowledges a commit to clients only up to it, so what was acknowledged survives
//!   `kill -9` and power loss. A block lost to a power cut before its sync was decided by a
//!   quorum: the node finds it again in its consensus log or from its peers.
//! - **The consensus log does not outlive its height.** The commit of a block deletes the
//!   logged consensus messages of its height and below, in the same write batch.
//! - **The chain only grows by one.** A block is stored only if its height is the tip's height
//!   plus one, its parent hash is the tip's block hash, its hash is its header's hash, and its
//!   state update ([`StateUpdate`], made only by [`Store::prepare_state`] on the tip it extends)
//!   yields the header's state root. A refused block writes nothing.
//! - **The state root is the tree's root.** The tip's state root is the root of the state tree
//!   at the tip's height; [`Store::open`] checks it.
//! - **Everything read from disk is validated.** Lengths are bounded before decoding; a meta
//!   record, index entry or block that does not decode or does not match its key is reported as
//!   [`StoreError::Corrupt`], and the node stops rather than continue on a broken database.
//!   [`Store::open`] also checks that the tip's block is stored and hashes to the tip's hash.
//! - **Bounded memory.** RocksDB runs with LZ4 compression, one shared LRU block cache of
//!   [`BLOCK_CACHE_BYTES`], at most [`WRITE_BUFFERS_MAX`] memtables of [`WRITE_BUFFER_BYTES`] per
//!   column family and [`DB_WRITE_BUFFER_BYTES`] across all of them, at most
//!   [`OPEN_FILES_MAX`] open table files (about 4 KB each outside the cache: index and filter
//!   blocks live in the cache, of the indexes only each table's top level pinned; the bloom
//!   filters, pinned, take about 1.25 bytes per key of the families that have them) and at most
//!   [`WAL_BYTES_MAX`] of write-ahead log. Tree values of [`TREE_VALUE_BLOB_BYTES_MIN`] and
//!   more live in blob files of [`TREE_VALUE_BLOB_FILE_BYTES`], read through the OS page
//!   cache. The tree's node cache holds at most [`tree::NODE_CACHE_NODES`] decoded nodes
//!   (about 85 MB).
//!
//! The transaction index points at the inclusion where the transaction was accepted if there is
//! one (replay protection accepts a transaction at most once), and otherwise at its first
//! inclusion (a rejected copy never moves an existing entry).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{OnceLock, PoisonError, RwLock};

use prost::Message;
use rocksdb::{
    BlockBasedIndexType, BlockBasedOptions, BlockBasedTablePinningTier, Cache, ColumnFamily,
    ColumnFamilyDescriptor, DBCompressionType, DataBlockIndexType, Direction, IteratorMode,
    Options, ReadOptions, SnapshotWithThreadMode, WriteBatch, WriteOptions, DB,
};
use yrd_chaincode::members::genesis_writes;
use yrd_chaincode::state::{StateRead, StateScan, WriteSet};
use yrd_proto::block::block_hash;
use yrd_proto::limits::MESSAGE_BYTES_MAX;
use yrd_proto::signing::{sha256, transaction_hash, Hash};
use yrd_proto::v1;

// ---------------------------------------------------------------- limits and names

/// Version of the on-disk layout described in the module doc.
pub const STORAGE_FORMAT_VERSION: u32 = 7;
/// The earlier formats [`Store::open`] upgrades in place, in one synced write batch that also
/// records [`STORAGE_FORMAT_VERSION`]. Same blocks, same tree, same roots, same receipts.
///
/// - Format 5 also kept every history entry (`h/v/`) in the plain state, beside the tree's
///   values, and a second replay entry per transaction (`x/h/<hash>`, repeating
///   `x/e/<valid until><hash>`). The upgrade drops both with two range deletions.
/// - Formats 5 and 6 stored every tree node in borsh. Format 7 writes internal nodes in a
///   compact encoding (`node_codec`) and still reads the borsh ones, so the upgrade rewrites
///   none; the new number keeps a node of format 6, which cannot read compact nodes, from
///   opening the database.
pub const UPGRADABLE_FORMAT_VERSIONS: [u32; 2] = [5, 6];
/// Capacity of the LRU block cache shared by every column family, in bytes.
pub const BLOCK_CACHE_BYTES: usize = 64 * 1024 * 1024;
/// Size of one memtable, in bytes.
pub const WRITE_BUFFER_BYTES: usize = 16 * 1024 * 1024;
/// Target size of the first level below level 0, in bytes (RocksDB's default is 256 MB). With
/// levels sized from the last one up, RocksDB compacts level 0 straight into the last level
/// until that level outgrows ten times this; the state's keys are spread over the whole key
/// space, so each of those compactions rewrote the whole family, more as it grew (one
/// validator's state and tree values: 22 MB, then 37, 45, 67, 75, 90, 112 MB per compaction in
/// three minutes). A small base brings the middle levels in early, and compactions stay small.
pub const LEVEL_BASE_BYTES: u64 = 32 * 1024 * 1024;
/// Target size of a table file below level 0, in bytes (RocksDB's default is 64 MB): a
/// compaction from one level to the next takes one such file and the files it overlaps.
pub const TARGET_FILE_BYTES: u64 = 8 * 1024 * 1024;
/// Most memtables per column family (one active, one being flushed).
pub const WRITE_BUFFERS_MAX: i32 = 2;
/// Share of each memtable's size given to its bloom filter.
pub const MEMTABLE_BLOOM_RATIO: f64 = 0.05;
/// Size of a partition of a table's index and filter, in bytes.
pub const METADATA_BLOCK_BYTES: usize = 4 * 1024;
/// Most memtable memory across all column families, in bytes.
pub const DB_WRITE_BUFFER_BYTES: usize = 64 * 1024 * 1024;
/// Fewest table files RocksDB keeps open, whatever the process's file limit.
pub const OPEN_FILES_MIN: i32 = 256;
/// Most table files RocksDB keeps open (see [`open_files_budget`]). Past it, RocksDB closes the
/// least recently used table and reopens it when next read: reading its footer and the top
/// levels of its index and filter again on the path of a state read. At 2,500 tx/s offered a
/// validator adds about 40 files a minute (tree-node files of about 14 MB, 8 MB files
/// elsewhere), so 8,192 files last about three and a half hours of full load. An open file
/// costs about 2.3 KB of table reader and 1.4 KB of pinned top-level index and filter
/// (measured by [`Store::stats`] over 240 s at 2,500 tx/s): at most about 30 MB.
pub const OPEN_FILES_MAX: i32 = 8_192;
/// File descriptors left to everything but table files: peers' and clients' sockets, the
/// write-ahead log, the info log, the manifest.
pub const FILE_DESCRIPTORS_RESERVED: u64 = 1_024;
/// Most write-ahead log kept before memtables are flushed, in bytes.
pub const WAL_BYTES_MAX: u64 = 256 * 1024 * 1024;
/// Most RocksDB info log files kept.
pub const INFO_LOG_FILES_MAX: usize = 4;
/// Largest RocksDB info log file, in bytes.
pub const INFO_LOG_FILE_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Largest stored committed block (block, receipts and certificate), in bytes.
pub const STORED_BLOCK_BYTES_MAX: usize = MESSAGE_BYTES_MAX;
/// Largest encoded genesis, in bytes.
pub const GENESIS_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Largest consensus safety-data record, in bytes.
pub const SAFETY_DATA_BYTES_MAX: usize = 64 * 1024;
/// Most blocks [`Store::blocks_bytes_from`] returns in one call.
pub const BLOCKS_PER_RANGE_MAX: usize = 1024;

const _: () = assert!(GENESIS_BYTES_MAX <= MESSAGE_BYTES_MAX);
const _: () = assert!(yrd_proto::limits::BLOCK_BYTES_MAX <= STORED_BLOCK_BYTES_MAX);

/// Column family of metadata: format version, genesis, tip.
pub const CF_META: &str = "meta";
/// Column family of committed blocks by height.
pub const CF_BLOCKS: &str = "blocks";
/// Column family of block heights by block hash.
pub const CF_BLOCK_HASHES: &str = "block_hashes";
/// Column family of transaction locations by transaction hash.
pub const CF_TRANSACTIONS: &str = "transactions";
/// Column family of the ledger state.
pub const CF_STATE: &str = "state";
/// Column family of the consensus safety data.
pub const CF_CONSENSUS: &str = "consensus";
/// Every column family the store opens.
pub const COLUMN_FAMILIES: [&str; 8] = [
    CF_META,
    CF_BLOCKS,
    CF_BLOCK_HASHES,
    CF_TRANSACTIONS,
    CF_STATE,
    CF_CONSENSUS,
    tree::CF_JMT_NODES,
    tree::CF_JMT_VALUES,
];
/// The column families whose keys are never overwritten or deleted (the key names the height or
/// version, or a hash of the content).
const APPEND_ONLY_FAMILIES: [&str; 4] = [
    CF_BLOCKS,
    CF_BLOCK_HASHES,
    tree::CF_JMT_NODES,
    tree::CF_JMT_VALUES,
];
/// RocksDB's `bottommost_file_compaction_delay` for [`APPEND_ONLY_FAMILIES`], seconds: never.
/// Once no snapshot is older than a file in the last level, RocksDB rewrites the whole file to
/// drop what snapshots kept alive and to zero its sequence numbers. Those families hold nothing
/// to drop, and the tree nodes go to the last level by trivial moves (their keys grow with the
/// height), so the rewrite was their only compaction: every tree node written twice, about a
/// tenth of a validator's CPU at 1,800 tx/s.
const APPEND_ONLY_BOTTOMMOST_COMPACTION_DELAY: &str = "4294967295";
/// A validator-set change: the height whose block names a new next set, and that set's keys.
pub type ValidatorChange = (u64, Vec<[u8; 32]>);
/// Most validator-set changes returned by [`Store::validator_changes_below`].
pub const VALIDATOR_CHANGES_MAX: usize = 4_096;

const META_SCHEMA: &[u8] = b"schema";
const META_GENESIS: &[u8] = b"genesis";
const META_GENESIS_SHA256: &[u8] = b"genesis_sha256";
const META_TIP: &[u8] = b"tip";
const META_VALIDATOR_CHANGE_PREFIX: &[u8] = b"vchange/";
const CONSENSUS_SAFETY: &[u8] = b"safety";
/// Prefix of the consensus message log: `w/<height u64 BE><sequence u32 BE>`.
const CONSENSUS_LOG_PREFIX: &[u8] = b"w/";
/// Most consensus messages logged for one height.
pub const CONSENSUS_LOG_MESSAGES_MAX: u32 = 4_096;

const TIP_RECORD_VERSION: u8 = 1;
const TIP_RECORD_BYTES: usize = 1 + 8 + 32 + 32 + 8;
const TX_LOCATION_BYTES: usize = 8 + 4;

// ---------------------------------------------------------------- types

/// Why a storage operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// RocksDB itself failed (I/O error, lock held by another process, ...).
    #[error("rocksdb: {0}")]
    Rocks(String),
    /// A record on disk is malformed or inconsistent: the node must stop.
    #[error("corrupt database: {0}")]
    Corrupt(String),
    /// The database was written by a node with another storage format.
    #[error("database has storage format {found}; this node reads format {supported}")]
    UnsupportedFormat {
        /// Version found on disk.
        found: u32,
        /// Version this node reads.
        supported: u32,
    },
    /// The database belongs to another chain.
    #[error("genesis mismatch: the database holds genesis {stored}, the node was given {given}")]
    GenesisMismatch {
        /// SHA-256 of the stored genesis, hex.
        stored: String,
        /// SHA-256 of the given genesis, hex.
        given: String,
    },
    /// The genesis document is invalid or too large.
    #[error("invalid genesis: {0}")]
    Genesis(String),
    /// The operation needs the genesis, and `init_genesis` has not run on this database.
    #[error("the database has no genesis yet")]
    NoGenesis,
    /// The block is not the next one.
    #[error("block at height {found_height} is not next; expected height {expected_height}")]
    NotNext {
        /// The tip's height plus one.
        expected_height: u64,
        /// The block's height.
        found_height: u64,
    },
    /// The block does not extend the tip.
    #[error("block parent {found} is not the tip {expected}")]
    ParentMismatch {
        /// The tip's block hash, hex.
        expected: String,
        /// The block's parent hash, hex.
        found: String,
    },
    /// The header's state root is not the root the block's writes give on top of the tip.
    #[error("state root {found} does not follow from the tip; expected {expected}")]
    StateRootMismatch {
        /// The root of the state tree after the block's writes, hex.
        expected: String,
        /// The header's state root, hex.
        found: String,
    },
    /// A height above the tip was asked for.
    #[error("height {height} is not committed; the tip is {tip}")]
    NotCommitted {
        /// The height asked for.
        height: u64,
        /// The tip's height.
        tip: u64,
    },
    /// The block is malformed or inconsistent with its receipts or hash.
    #[error("invalid block at height {height}: {problem}")]
    InvalidBlock {
        /// The block's height.
        height: u64,
        /// What is wrong.
        problem: String,
    },
    /// A record to store is larger than its bound.
    #[error("{what} is {found} bytes; at most {max} may be stored")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size.
        found: usize,
        /// The bound.
        max: usize,
    },
}

fn rocks(context: &str, error: rocksdb::Error) -> StoreError {
    StoreError::Rocks(format!("{context}: {error}"))
}

/// The last committed block: height 0 is the genesis, whose block hash is 32 zero bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainTip {
    /// Height of the last committed block (0 for the genesis).
    pub height: u64,
    /// Hash of its header (`[0; 32]` for the genesis).
    pub block_hash: Hash,
    /// State root after it.
    pub state_root: Hash,
    /// Its block time (the genesis time at height 0), ms since the epoch.
    pub time_ms: u64,
}

impl ChainTip {
    /// The tip of a database without a genesis: all zeros.
    pub const EMPTY: Self = Self {
        height: 0,
        block_hash: [0; 32],
        state_root: [0; 32],
        time_ms: 0,
    };

    fn encode(&self) -> [u8; TIP_RECORD_BYTES] {
        let mut out = [0u8; TIP_RECORD_BYTES];
        out[0] = TIP_RECORD_VERSION;
        out[1..9].copy_from_slice(&self.height.to_be_bytes());
        out[9..41].copy_from_slice(&self.block_hash);
        out[41..73].copy_from_slice(&self.state_root);
        out[73..81].copy_from_slice(&self.time_ms.to_be_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        let record: &[u8; TIP_RECORD_BYTES] = bytes.try_into().map_err(|_| {
            StoreError::Corrupt(format!(
                "tip record is {} bytes; expected {TIP_RECORD_BYTES}",
                bytes.len()
            ))
        })?;
        if record[0] != TIP_RECORD_VERSION {
            return Err(StoreError::Corrupt(format!(
                "tip record version {}; expected {TIP_RECORD_VERSION}",
                record[0]
            )));
        }
        Ok(Self {
            height: u64::from_be_bytes(array(&record[1..9])),
            block_hash: array(&record[9..41]),
            state_root: array(&record[41..73]),
            time_ms: u64::from_be_bytes(array(&record[73..81])),
        })
    }
}

/// Where a transaction was included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxLocation {
    /// Height of the block.
    pub height: u64,
    /// Index of the transaction in the block.
    pub index: u32,
}

impl TxLocation {
    fn encode(&self) -> [u8; TX_LOCATION_BYTES] {
        let mut out = [0u8; TX_LOCATION_BYTES];
        out[..8].copy_from_slice(&self.height.to_be_bytes());
        out[8..].copy_from_slice(&self.index.to_be_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        if bytes.len() != TX_LOCATION_BYTES {
            return Err(StoreError::Corrupt(format!(
                "transaction location is {} bytes; expected {TX_LOCATION_BYTES}",
                bytes.len()
            )));
        }
        Ok(Self {
            height: u64::from_be_bytes(array(&bytes[..8])),
            index: u32::from_be_bytes(array(&bytes[8..])),
        })
    }
}

/// A block's state writes with the state tree update they make on top of one tip. Only
/// [`Store::prepare_state`] makes one, so a commit can check that it extends its tip.
#[derive(Clone)]
pub struct StateUpdate {
    height: u64,
    base: Hash,
    writes: WriteSet,
    root: Hash,
    tree: jmt::storage::TreeUpdateBatch,
}

impl std::fmt::Debug for StateUpdate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateUpdate")
            .field("height", &self.height)
            .field("base", &hex::encode(self.base))
            .field("writes", &self.writes.len())
            .field("root", &hex::encode(self.root))
            .finish_non_exhaustive()
    }
}

impl StateUpdate {
    /// The state root after the block.
    #[must_use]
    pub fn root(&self) -> Hash {
        self.root
    }

    /// The block's state writes.
    #[must_use]
    pub fn writes(&self) -> &WriteSet {
        &self.writes
    }

    /// The height of the block the update is for.
    #[must_use]
    pub fn height(&self) -> u64 {
        self.height
    }
}

/// A decided, executed block ready to be stored.
#[derive(Clone, Debug)]
pub struct CommitBatch {
    /// The block, one receipt per transaction in block order, and its commit certificate.
    pub committed: v1::CommittedBlock,
    /// The hash of the block's header.
    pub block_hash: Hash,
    /// The block's state writes and tree update, from [`Store::prepare_state`].
    pub state: StateUpdate,
    /// The validator set the header names as next, when it differs from the header's own
    /// (kept so that light clients can follow validator-set changes).
    pub next_validators: Option<Vec<[u8; 32]>>,
}

/// What the store caches of the chain it holds.
#[derive(Clone, Debug)]
struct Chain {
    chain_id: String,
    tip: ChainTip,
}

/// RocksDB's levels per column family (its default `num_levels`).
const LEVELS: usize = 7;

/// What the database holds on disk and in memory ([`Store::stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StorageStats {
    /// Table files of every column family.
    pub table_files: usize,
    /// Their size on disk, bytes.
    pub table_files_bytes: u64,
    /// How many of them RocksDB may keep open ([`open_files_budget`]).
    pub open_files_max: i32,
    /// Memory of the open tables' readers, outside the block cache, bytes.
    pub table_readers_bytes: u64,
    /// Memory of the memtables, bytes.
    pub memtables_bytes: u64,
    /// Memory in the block cache, bytes, pinned entries included.
    pub block_cache_bytes: u64,
    /// Of that, the pinned entries (the top levels of open tables' indexes and filters, and
    /// blocks held by reads in progress), bytes; the cache holds them beyond its capacity.
    pub block_cache_pinned_bytes: u64,
}

/// The node's database. Commits are serialised; reads may run concurrently with them.
pub struct Store {
    db: DB,
    /// The chain held, `None` before `init_genesis`. Held for writing across a commit, so a
    /// reader of the tip or a state snapshot never sees one without the other.
    chain: RwLock<Option<Chain>>,
    /// Recently written and read state-tree nodes.
    nodes: std::sync::Mutex<tree::NodeCache>,
    /// The highest height known to be on stable storage (see [`Store::sync_wal`]).
    durable: AtomicU64,
    /// How many table files RocksDB may keep open ([`open_files_budget`]).
    open_files: i32,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.db.path())
            .field("tip", &self.tip())
            .finish()
    }
}

fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(bytes);
    out
}

fn synced() -> WriteOptions {
    let mut options = WriteOptions::default();
    options.set_sync(true);
    options
}

/// The column families that get no bloom filter, because no read of theirs would skip a file by
/// it. Tree values are read only by reverse seeks, which no whole-key filter serves. Tree nodes
/// and blocks are read by keys they hold (the key a parent node names, a height at or below the
/// tip), and their keys grow with the height, so each key lies in the key range of one file
/// only, which RocksDB picks by the files' bounds without a filter. A filter there would only
/// cost its building at every flush and compaction, a check at every read, and block cache
/// that data blocks could use.
const UNFILTERED_FAMILIES: [&str; 3] = [CF_BLOCKS, tree::CF_JMT_NODES, tree::CF_JMT_VALUES];

/// Smallest tree value, in bytes, that RocksDB keeps in a blob file rather than in the table
/// files of [`tree::CF_JMT_VALUES`]: the history entries go to blobs, the sequences and index
/// entries stay inline.
pub const TREE_VALUE_BLOB_BYTES_MIN: u64 = 128;
/// Size of a blob file of [`tree::CF_JMT_VALUES`], in bytes.
pub const TREE_VALUE_BLOB_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// How many table files RocksDB may keep open when the process may open `soft_limit` files
/// (`None`: no limit): the limit less [`FILE_DESCRIPTORS_RESERVED`], within
/// [`OPEN_FILES_MIN`]..=[`OPEN_FILES_MAX`].
#[must_use]
pub fn open_files_budget(soft_limit: Option<u64>) -> i32 {
    let available = soft_limit.map_or(u64::MAX, |limit| {
        limit.saturating_sub(FILE_DESCRIPTORS_RESERVED)
    });
    i32::try_from(available)
        .unwrap_or(i32::MAX)
        .clamp(OPEN_FILES_MIN, OPEN_FILES_MAX)
}

/// The process's soft limit on open files, `None` if unlimited.
#[must_use]
pub fn file_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// Raises the process's soft limit on open files towards its hard limit, as far as
/// [`OPEN_FILES_MAX`] and [`FILE_DESCRIPTORS_RESERVED`] need (never lowers it), so that
/// [`Store::open`] can keep every table file open. Returns the soft limit in force after.
///
/// # Errors
///
/// If the kernel refuses the new limit.
pub fn raise_file_limit() -> std::io::Result<Option<u64>> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limits = getrlimit(Resource::Nofile);
    let wanted = u64::try_from(OPEN_FILES_MAX).unwrap_or(u64::MAX) + FILE_DESCRIPTORS_RESERVED;
    let Some(current) = limits.current else {
        return Ok(None);
    };
    let target = limits.maximum.map_or(wanted, |maximum| wanted.min(maximum));
    if target <= current {
        return Ok(Some(current));
    }
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(target),
            maximum: limits.maximum,
        },
    )?;
    Ok(file_limit())
}

/// The database and column-family options, with at most `open_files` table files open; see
/// the module doc for why.
fn options(open_files: i32) -> (Options, Vec<ColumnFamilyDescriptor>) {
    let cache = Cache::new_lru_cache(BLOCK_CACHE_BYTES);
    let table = table_options(&cache, true);
    let unfiltered = table_options(&cache, false);

    let mut column = Options::default();
    column.set_compression_type(DBCompressionType::Lz4);
    column.set_bottommost_compression_type(DBCompressionType::Lz4);
    column.set_write_buffer_size(WRITE_BUFFER_BYTES);
    column.set_max_bytes_for_level_base(LEVEL_BASE_BYTES);
    column.set_target_file_size_base(TARGET_FILE_BYTES);
    column.set_max_write_buffer_number(WRITE_BUFFERS_MAX);
    column.set_block_based_table_factory(&table);
    // A bloom filter over each memtable's keys, so a lookup of a key not written recently
    // (most tree-node and state reads) skips the memtables' skip lists.
    column.set_memtable_whole_key_filtering(true);
    column.set_memtable_prefix_bloom_ratio(MEMTABLE_BLOOM_RATIO);

    let mut db = column.clone();
    db.create_if_missing(true);
    db.create_missing_column_families(true);
    db.set_paranoid_checks(true);
    db.set_max_open_files(open_files);
    db.set_db_write_buffer_size(DB_WRITE_BUFFER_BYTES);
    db.set_max_total_wal_size(WAL_BYTES_MAX);
    db.set_keep_log_file_num(INFO_LOG_FILES_MAX);
    db.set_max_log_file_size(INFO_LOG_FILE_BYTES_MAX);

    let families = COLUMN_FAMILIES
        .iter()
        .map(|name| {
            let mut options = column.clone();
            if UNFILTERED_FAMILIES.contains(name) {
                options.set_block_based_table_factory(&unfiltered);
            }
            // Tree nodes are mostly hashes, which do not compress: LZ4 would only cost CPU.
            if *name == tree::CF_JMT_NODES {
                options.set_compression_type(DBCompressionType::None);
                options.set_bottommost_compression_type(DBCompressionType::None);
            }
            // Tree values are written once, never changed or deleted, and read only to serve
            // proofs and histories, while their keys (a key's hash, then the version) are
            // spread over the key space, so leveled compaction rewrote every value again and
            // again as the family grew. Values of some size go to blob files instead, which no
            // compaction rewrites: compactions move the keys and a reference only. Nothing in
            // a blob file ever becomes garbage, so there is no blob garbage collection.
            if *name == tree::CF_JMT_VALUES {
                options.set_enable_blob_files(true);
                options.set_min_blob_size(TREE_VALUE_BLOB_BYTES_MIN);
                options.set_blob_file_size(TREE_VALUE_BLOB_FILE_BYTES);
                options.set_blob_compression_type(DBCompressionType::Lz4);
                options.set_enable_blob_gc(false);
                // Read only by reverse seeks, which no whole-key bloom serves: a memtable bloom
                // (none with a ratio of 0) would only cost an insert into it per value.
                options.set_memtable_prefix_bloom_ratio(0.0);
            }
            ColumnFamilyDescriptor::new(*name, options)
        })
        .collect();
    (db, families)
}

/// The table options of every family, sharing one block cache; `bloom` adds a bloom filter.
fn table_options(cache: &Cache, bloom: bool) -> BlockBasedOptions {
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(cache);
    // Index and filter blocks count against the cache. Indexes are partitioned (a small top
    // level per table, pinned, over 4 KB partitions loaded on demand) and cached at high
    // priority: a whole index block of a large table runs to hundreds of KB, and once the tree
    // nodes' data blocks pushed them out of the cache, every state read re-read and
    // re-checksummed them (execution of a block slowed from 20 ms to 700 ms after 90 s at
    // 1,800 tx/s).
    //
    // Bloom filters are whole per table and pinned in the cache for as long as the table is
    // open. Most reads they serve miss (a new record's key, a new transaction's replay entry
    // and location), so every read checks one filter per level and per level-0 file. A
    // partitioned filter costs three steps per check (a seek in its top level, a cache lookup
    // of the partition, then the probe): 5.9 % of a validator's CPU 20 to 35 s into a run at
    // 5,000 tx/s offered, and about half of its RocksDB reads late in a long run. A pinned
    // whole filter is the probe alone: 1.8 % in the same run. The filters grow with the data,
    // about 1.25 bytes per key (10 bits), and only the families with filters have them: the
    // plain state, the transaction locations, block hashes, metadata and the consensus log,
    // about 12 MB for ten million keys.
    //
    // Of the indexes, only the top levels are pinned. RocksDB's pinning of level 0 applies to
    // every file written by a flush, and the tree nodes' files are never rewritten after their
    // flush (they move down the levels as they are), so each of them pinned its whole index
    // for as long as it was open: about 80 KB per file, linear in the size of the database.
    table.set_cache_index_and_filter_blocks(true);
    table.set_cache_index_and_filter_blocks_with_high_priority(true);
    table.set_pin_l0_filter_and_index_blocks_in_cache(false);
    table.set_index_type(BlockBasedIndexType::TwoLevelIndexSearch);
    table.set_partition_filters(false);
    table.set_metadata_block_size(METADATA_BLOCK_BYTES);
    table.set_pin_top_level_index_and_filter(true);
    table.set_unpartitioned_pinning_tier(BlockBasedTablePinningTier::All);
    // Most lookups are point lookups by hash or height: a bloom filter per table (except in
    // `UNFILTERED_FAMILIES`), and a hash index in each data block, so a lookup finds its key
    // without a binary search.
    if bloom {
        table.set_bloom_filter(10.0, false);
    }
    table.set_data_block_index_type(DataBlockIndexType::BinaryAndHash);
    table.set_data_block_hash_ratio(0.75);
    table
}

fn decode_genesis(bytes: &[u8]) -> Result<v1::Genesis, StoreError> {
    if bytes.len() > GENESIS_BYTES_MAX {
        return Err(StoreError::Corrupt(format!(
            "stored genesis is {} bytes; at most {GENESIS_BYTES_MAX}",
            bytes.len()
        )));
    }
    v1::Genesis::decode(bytes)
        .map_err(|error| StoreError::Corrupt(format!("stored genesis does not decode: {error}")))
}

fn decode_block(height: u64, bytes: &[u8]) -> Result<v1::CommittedBlock, StoreError> {
    if bytes.len() > STORED_BLOCK_BYTES_MAX {
        return Err(StoreError::Corrupt(format!(
            "block {height} is {} bytes; at most {STORED_BLOCK_BYTES_MAX}",
            bytes.len()
        )));
    }
    let committed = v1::CommittedBlock::decode(bytes)
        .map_err(|error| StoreError::Corrupt(format!("block {height} does not decode: {error}")))?;
    let found = committed
        .block
        .as_ref()
        .and_then(|block| block.header.as_ref())
        .map(|header| header.height);
    if found != Some(height) {
        return Err(StoreError::Corrupt(format!(
            "block stored at height {height} has header height {found:?}"
        )));
    }
    Ok(committed)
}

/// The key range of the consensus log of every height below `height`.
fn consensus_log_range(height: u64) -> (Vec<u8>, Vec<u8>) {
    let mut from = CONSENSUS_LOG_PREFIX.to_vec();
    from.extend_from_slice(&0u64.to_be_bytes());
    let mut to = CONSENSUS_LOG_PREFIX.to_vec();
    to.extend_from_slice(&height.to_be_bytes());
    (from, to)
}

// ---------------------------------------------------------------- the store

impl Store {
    /// Opens the database at `path`, creating it and its column families if missing, and
    /// restores the tip. Checks the format version, that the genesis and the tip are both
    /// present or both absent, and that the tip's block is stored with the tip's hash.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let open_files = open_files_budget(file_limit());
        let (options, families) = options(open_files);
        let db = DB::open_cf_descriptors(&options, path, families)
            .map_err(|error| rocks(&format!("open {}", path.display()), error))?;
        let store = Self {
            db,
            chain: RwLock::new(None),
            nodes: std::sync::Mutex::new(tree::NodeCache::default()),
            durable: AtomicU64::new(0),
            open_files,
        };
        // Not settable before opening through the crate's options; a mutable option, so it is
        // set on every open (and so on databases created before it).
        for name in APPEND_ONLY_FAMILIES {
            store
                .db
                .set_options_cf(
                    store.cf(name)?,
                    &[(
                        "bottommost_file_compaction_delay",
                        APPEND_ONLY_BOTTOMMOST_COMPACTION_DELAY,
                    )],
                )
                .map_err(|error| rocks(&format!("set the options of {name}"), error))?;
        }
        let loaded = store.load_chain()?;
        if let Some((_, format)) = &loaded {
            store.upgrade_format(*format)?;
        }
        let chain = loaded.map(|(chain, _)| chain);
        // What was read back from disk at opening is as durable as it gets.
        let height = chain.as_ref().map_or(0, |chain| chain.tip.height);
        store.durable.store(height, Ordering::Release);
        *store.chain.write().unwrap_or_else(PoisonError::into_inner) = chain;
        Ok(store)
    }

    fn cf(&self, name: &'static str) -> Result<&ColumnFamily, StoreError> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| StoreError::Rocks(format!("column family {name} is not open")))
    }

    fn get(&self, family: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.db
            .get_cf(self.cf(family)?, key)
            .map_err(|error| rocks(&format!("read {family}"), error))
    }

    /// Upgrades a database of format `from`, one of the [`UPGRADABLE_FORMAT_VERSIONS`], to
    /// [`STORAGE_FORMAT_VERSION`] in one synced write batch. From format 5, the plain state's
    /// copies of the history entries (the tree's values keep them) and the replay entries by
    /// hash (those by expiry say the same) are dropped; from either, the new format is
    /// recorded. Does nothing to a database of the current format.
    fn upgrade_format(&self, from: u32) -> Result<(), StoreError> {
        if !UPGRADABLE_FORMAT_VERSIONS.contains(&from) {
            return Ok(());
        }
        let mut batch = WriteBatch::default();
        let changes = if from == 5 {
            for prefix in [
                yrd_chaincode::keys::HISTORY_ENTRY_PREFIX,
                yrd_chaincode::keys::APPLIED_BY_HASH_PREFIX,
            ] {
                let end = prefix_upper_bound(prefix).expect("the prefix is not all 0xff");
                batch.delete_range_cf(self.cf(CF_STATE)?, prefix, &end);
            }
            "history entries in the state tree only, one replay entry per transaction, \
             internal tree nodes written compact from now on"
        } else {
            "internal tree nodes written compact from now on"
        };
        batch.put_cf(
            self.cf(CF_META)?,
            META_SCHEMA,
            STORAGE_FORMAT_VERSION.to_be_bytes(),
        );
        self.db
            .write_opt(batch, &synced())
            .map_err(|error| rocks("upgrade the storage format", error))?;
        tracing::info!(
            from,
            to = STORAGE_FORMAT_VERSION,
            changes,
            "storage format upgraded"
        );
        Ok(())
    }

    /// Reads the meta records and checks they agree with each other and with the blocks: the
    /// chain, and the storage format it is stored in (the current one or an upgradable one).
    fn load_chain(&self) -> Result<Option<(Chain, u32)>, StoreError> {
        let schema = self.get(CF_META, META_SCHEMA)?;
        let genesis = self.get(CF_META, META_GENESIS)?;
        let genesis_sha256 = self.get(CF_META, META_GENESIS_SHA256)?;
        let tip = self.get(CF_META, META_TIP)?;
        let (schema, genesis, genesis_sha256, tip) = match (schema, genesis, genesis_sha256, tip) {
            (None, None, None, None) => return Ok(None),
            (Some(schema), Some(genesis), Some(genesis_sha256), Some(tip)) => {
                (schema, genesis, genesis_sha256, tip)
            }
            (schema, genesis, genesis_sha256, tip) => {
                return Err(StoreError::Corrupt(format!(
                    "incomplete meta records: schema {}, genesis {}, genesis hash {}, tip {}",
                    presence(&schema),
                    presence(&genesis),
                    presence(&genesis_sha256),
                    presence(&tip)
                )))
            }
        };
        let schema: [u8; 4] = schema.as_slice().try_into().map_err(|_| {
            StoreError::Corrupt(format!(
                "schema record is {} bytes; expected 4",
                schema.len()
            ))
        })?;
        let found = u32::from_be_bytes(schema);
        if found != STORAGE_FORMAT_VERSION && !UPGRADABLE_FORMAT_VERSIONS.contains(&found) {
            return Err(StoreError::UnsupportedFormat {
                found,
                supported: STORAGE_FORMAT_VERSION,
            });
        }
        if genesis_sha256 != sha256(&genesis) {
            return Err(StoreError::Corrupt(
                "the stored genesis does not match its stored hash".to_owned(),
            ));
        }
        let genesis = decode_genesis(&genesis)?;
        let tip = ChainTip::decode(&tip)?;
        if tip.height == 0 {
            if tip.block_hash != [0; 32] {
                return Err(StoreError::Corrupt(
                    "tip at height 0 has a non-zero block hash".to_owned(),
                ));
            }
        } else {
            let committed = self.block(tip.height)?.ok_or_else(|| {
                StoreError::Corrupt(format!("the tip's block {} is missing", tip.height))
            })?;
            let stored_hash = committed
                .block
                .and_then(|block| block.header)
                .map(|header| block_hash(&header))
                .transpose()
                .map_err(|error| {
                    StoreError::Corrupt(format!("tip block {} hash: {error}", tip.height))
                })?;
            if stored_hash != Some(tip.block_hash) {
                return Err(StoreError::Corrupt(format!(
                    "the tip's block {} does not hash to the tip's hash {}",
                    tip.height,
                    hex::encode(tip.block_hash)
                )));
            }
        }
        let tree_root = self.tree_reader()?.root(tip.height)?;
        if tree_root != tip.state_root {
            return Err(StoreError::Corrupt(format!(
                "the state tree's root at height {} is {}, not the tip's state root {}",
                tip.height,
                hex::encode(tree_root),
                hex::encode(tip.state_root)
            )));
        }
        Ok(Some((
            Chain {
                chain_id: genesis.chain_id,
                tip,
            },
            found,
        )))
    }

    /// Initialises the database from `genesis`, or checks it against the stored one.
    ///
    /// On the first start: validates the genesis, writes its state, stores it and its SHA-256,
    /// the state tree's version 0, and the tip `{height 0, block_hash [0; 32], state_root = the
    /// tree's root, time_ms = genesis_time_ms}`, in one synced write batch.
    /// On later starts: refuses a genesis whose hash differs from the stored one.
    pub fn init_genesis(&self, genesis: &v1::Genesis) -> Result<(), StoreError> {
        let encoded = genesis.encode_to_vec();
        let given = sha256(&encoded);
        let mut chain = self.chain.write().unwrap_or_else(PoisonError::into_inner);
        if chain.is_some() {
            let stored = self
                .get(CF_META, META_GENESIS_SHA256)?
                .ok_or_else(|| StoreError::Corrupt("the genesis hash is missing".to_owned()))?;
            if stored != given {
                return Err(StoreError::GenesisMismatch {
                    stored: hex::encode(stored),
                    given: hex::encode(given),
                });
            }
            return Ok(());
        }
        if encoded.len() > GENESIS_BYTES_MAX {
            return Err(StoreError::TooLarge {
                what: "genesis",
                found: encoded.len(),
                max: GENESIS_BYTES_MAX,
            });
        }
        let writes =
            genesis_writes(genesis).map_err(|error| StoreError::Genesis(error.to_string()))?;
        let (state_root, update) = self.tree_reader()?.apply(&writes, 0)?;
        let tip = ChainTip {
            height: 0,
            block_hash: [0; 32],
            state_root,
            time_ms: genesis.genesis_time_ms,
        };
        let mut batch = WriteBatch::default();
        self.put_writes(&mut batch, &writes)?;
        tree::put_update(
            &mut batch,
            self.cf(tree::CF_JMT_NODES)?,
            self.cf(tree::CF_JMT_VALUES)?,
            &update,
        )?;
        let meta = self.cf(CF_META)?;
        batch.put_cf(meta, META_SCHEMA, STORAGE_FORMAT_VERSION.to_be_bytes());
        batch.put_cf(meta, META_GENESIS, &encoded);
        batch.put_cf(meta, META_GENESIS_SHA256, given);
        batch.put_cf(meta, META_TIP, tip.encode());
        self.db
            .write_opt(batch, &synced())
            .map_err(|error| rocks("write genesis", error))?;
        *chain = Some(Chain {
            chain_id: genesis.chain_id.clone(),
            tip,
        });
        Ok(())
    }

    fn tree_reader(&self) -> Result<tree::Reader<'_>, StoreError> {
        Ok(tree::Reader {
            db: &self.db,
            nodes: self.cf(tree::CF_JMT_NODES)?,
            values: self.cf(tree::CF_JMT_VALUES)?,
            cache: &self.nodes,
            staged: None,
        })
    }

    /// Computes the state tree update of `writes` as the block after the current tip, without
    /// writing anything.
    pub fn prepare_state(&self, writes: WriteSet) -> Result<StateUpdate, StoreError> {
        self.prepare_state_on(writes, None)
    }

    /// Computes the state tree update of `writes` as the block after `staged` (a decided block
    /// not yet written, see [`Store::stage`]) or, without one, after the current tip.
    pub fn prepare_state_on(
        &self,
        writes: WriteSet,
        staged: Option<&Staged>,
    ) -> Result<StateUpdate, StoreError> {
        let written = {
            let chain = self.chain.read().unwrap_or_else(PoisonError::into_inner);
            chain.as_ref().ok_or(StoreError::NoGenesis)?.tip
        };
        let mut reader = self.tree_reader()?;
        let tip = match staged {
            Some(staged) => {
                staged.extends(&written)?;
                reader.staged = Some(&staged.batch.state.tree);
                staged.tip
            }
            None => written,
        };
        let height = tip.height + 1;
        let (root, tree) = reader.apply(&writes, height)?;
        Ok(StateUpdate {
            height,
            base: tip.block_hash,
            writes,
            root,
            tree,
        })
    }

    /// Adds `writes` to the plain state, except the history entries: those are written once
    /// and never changed, and the state tree's values already hold each of them, so
    /// [`StateSnapshot`] reads them from there.
    fn put_writes(&self, batch: &mut WriteBatch, writes: &WriteSet) -> Result<(), StoreError> {
        let state = self.cf(CF_STATE)?;
        for (key, value) in writes {
            if yrd_chaincode::keys::is_history_entry(key) {
                continue;
            }
            match value {
                Some(value) => batch.put_cf(state, key, value),
                None => batch.delete_cf(state, key),
            }
        }
        Ok(())
    }

    /// The stored genesis, `None` before `init_genesis`.
    pub fn genesis(&self) -> Result<Option<v1::Genesis>, StoreError> {
        self.get(CF_META, META_GENESIS)?
            .map(|bytes| decode_genesis(&bytes))
            .transpose()
    }

    /// The chain id of the stored genesis, `None` before `init_genesis`.
    pub fn chain_id(&self) -> Option<String> {
        self.chain
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|chain| chain.chain_id.clone())
    }

    /// The last committed block; [`ChainTip::EMPTY`] before `init_genesis`.
    pub fn tip(&self) -> ChainTip {
        self.chain
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map_or(ChainTip::EMPTY, |chain| chain.tip)
    }

    /// Checks a decided block as [`Store::commit_block`] would, without writing it, so that the
    /// next block can be executed on top of it ([`Store::state_on`], [`Store::prepare_state_on`])
    /// before it is written with [`Store::commit_staged`].
    pub fn stage(&self, batch: CommitBatch) -> Result<Staged, StoreError> {
        let guard = self.chain.read().unwrap_or_else(PoisonError::into_inner);
        let chain = guard.as_ref().ok_or(StoreError::NoGenesis)?;
        let (header, _) = check_block(chain, &batch)?;
        let tip = tip_after(&header, &batch);
        Ok(Staged {
            batch,
            tip,
            base: chain.tip.block_hash,
        })
    }

    /// Writes a staged block ([`Store::commit_block`]).
    pub fn commit_staged(&self, staged: Staged) -> Result<(), StoreError> {
        self.commit_block(staged.batch)
    }

    /// The state after `staged` (its writes over the current tip's state), or after the current
    /// tip without one. A staged block that does not extend the tip reads as a read failure
    /// ([`StateView::check`]).
    pub fn state_on<'a>(&'a self, staged: Option<&'a Staged>) -> StateView<'a> {
        let snapshot = self.state();
        let writes = staged.map(|staged| {
            if let Err(error) = staged.extends(&snapshot.tip) {
                snapshot.fail(error.to_string());
            }
            &staged.batch.state.writes
        });
        StateView {
            tip: staged.map_or(snapshot.tip, |staged| staged.tip),
            snapshot,
            writes,
        }
    }

    /// Stores the next block with its receipts, transaction index and state writes, moves the
    /// tip to it and forgets the consensus log of its height and below, in one write batch. A
    /// block that does not extend the tip, whose hash or state root does not check, or whose
    /// receipts do not match its transactions is refused and nothing is written.
    ///
    /// The write does not wait for the disk: the block is readable when this returns and
    /// durable once [`Store::sync_wal`] (or any later synced write) returns.
    pub fn commit_block(&self, batch: CommitBatch) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        let mut guard = self.chain.write().unwrap_or_else(PoisonError::into_inner);
        let chain = guard.as_ref().ok_or(StoreError::NoGenesis)?;
        let (header, locations) = check_block(chain, &batch)?;
        let checked = started.elapsed();
        let tip = tip_after(&header, &batch);
        let encoded = batch.committed.encode_to_vec();
        if encoded.len() > STORED_BLOCK_BYTES_MAX {
            return Err(StoreError::TooLarge {
                what: "committed block",
                found: encoded.len(),
                max: STORED_BLOCK_BYTES_MAX,
            });
        }

        let mut write = WriteBatch::default();
        let height_key = tip.height.to_be_bytes();
        write.put_cf(self.cf(CF_BLOCKS)?, height_key, &encoded);
        write.put_cf(self.cf(CF_BLOCK_HASHES)?, batch.block_hash, height_key);
        let transactions = self.cf(CF_TRANSACTIONS)?;
        for (tx_hash, entry) in &locations {
            // An accepted inclusion always wins; a rejected copy never moves an existing entry.
            if entry.accepted || self.get(CF_TRANSACTIONS, tx_hash)?.is_none() {
                write.put_cf(transactions, tx_hash, entry.location.encode());
            }
        }
        self.put_writes(&mut write, &batch.state.writes)?;
        tree::put_update(
            &mut write,
            self.cf(tree::CF_JMT_NODES)?,
            self.cf(tree::CF_JMT_VALUES)?,
            &batch.state.tree,
        )?;
        if let Some(keys) = &batch.next_validators {
            write.put_cf(
                self.cf(CF_META)?,
                validator_change_key(tip.height),
                keys.concat(),
            );
        }
        write.put_cf(self.cf(CF_META)?, META_TIP, tip.encode());
        let (log_from, log_to) = consensus_log_range(tip.height + 1);
        write.delete_range_cf(self.cf(CF_CONSENSUS)?, log_from, log_to);
        let built = started.elapsed();
        let write_bytes = write.size_in_bytes();
        self.db
            .write(write)
            .map_err(|error| rocks(&format!("write block {}", tip.height), error))?;
        tracing::debug!(
            height = tip.height,
            check_us = checked.as_micros() as u64,
            batch_us = (built - checked).as_micros() as u64,
            write_us = (started.elapsed() - built).as_micros() as u64,
            write_bytes,
            "block written"
        );
        tree::NodeCache::insert_update(&self.nodes, &batch.state.tree);
        if let Some(chain) = guard.as_mut() {
            chain.tip = tip;
        }
        Ok(())
    }

    /// Makes every write so far durable (an fsync of the write-ahead log), and returns the
    /// height now known to be on stable storage ([`Store::durable_height`]).
    pub fn sync_wal(&self) -> Result<u64, StoreError> {
        // Read before the sync: every block up to this tip is in the log being synced.
        let height = self.tip().height;
        self.db
            .flush_wal(true)
            .map_err(|error| rocks("sync the write-ahead log", error))?;
        Ok(self.durable.fetch_max(height, Ordering::AcqRel).max(height))
    }

    /// The highest committed height known to be on stable storage: at most the tip's, and
    /// behind it while a commit waits for [`Store::sync_wal`].
    pub fn durable_height(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    /// What the database holds on disk and in memory, for the node's periodic storage log.
    ///
    /// # Errors
    ///
    /// If RocksDB cannot list its files or answer a property.
    pub fn stats(&self) -> Result<StorageStats, StoreError> {
        let mut stats = StorageStats {
            open_files_max: self.open_files,
            ..StorageStats::default()
        };
        for name in COLUMN_FAMILIES {
            for level in 0..LEVELS {
                let files = self.property(name, &format!("rocksdb.num-files-at-level{level}"))?;
                stats.table_files += usize::try_from(files).unwrap_or(usize::MAX);
            }
            stats.table_files_bytes += self.property(name, "rocksdb.live-sst-files-size")?;
            stats.table_readers_bytes +=
                self.property(name, "rocksdb.estimate-table-readers-mem")?;
            stats.memtables_bytes += self.property(name, "rocksdb.cur-size-all-mem-tables")?;
        }
        // One block cache serves every family: any family answers for it.
        stats.block_cache_bytes = self.property(CF_STATE, "rocksdb.block-cache-usage")?;
        stats.block_cache_pinned_bytes =
            self.property(CF_STATE, "rocksdb.block-cache-pinned-usage")?;
        Ok(stats)
    }

    /// RocksDB's integer `property` of column family `name`, 0 if it has none.
    fn property(&self, name: &'static str, property: &str) -> Result<u64, StoreError> {
        self.db
            .property_int_value_cf(self.cf(name)?, property)
            .map_err(|error| rocks(&format!("read {property} of {name}"), error))
            .map(Option::unwrap_or_default)
    }

    /// The committed block at `height`, `None` if not stored (the genesis has no block).
    pub fn block(&self, height: u64) -> Result<Option<v1::CommittedBlock>, StoreError> {
        self.get(CF_BLOCKS, &height.to_be_bytes())?
            .map(|bytes| decode_block(height, &bytes))
            .transpose()
    }

    /// The encoded committed block at `height`, for serving sync without re-encoding. The bytes
    /// are checked to decode to a block of that height before they are returned.
    pub fn block_bytes(&self, height: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(bytes) = self.get(CF_BLOCKS, &height.to_be_bytes())? else {
            return Ok(None);
        };
        decode_block(height, &bytes)?;
        Ok(Some(bytes))
    }

    /// Encoded committed blocks from `from_height` (at least 1) on, in height order: at most
    /// `max_blocks` (and [`BLOCKS_PER_RANGE_MAX`]), and no more than `max_bytes` in total except
    /// that the first block is always returned if it exists.
    pub fn blocks_bytes_from(
        &self,
        from_height: u64,
        max_blocks: u32,
        max_bytes: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let tip = self.tip();
        let max_blocks = usize::try_from(max_blocks)
            .unwrap_or(usize::MAX)
            .min(BLOCKS_PER_RANGE_MAX);
        let mut blocks = Vec::new();
        let mut total_bytes = 0usize;
        let mut height = from_height.max(1);
        while height <= tip.height && blocks.len() < max_blocks {
            let bytes = self.block_bytes(height)?.ok_or_else(|| {
                StoreError::Corrupt(format!("block {height} below the tip is missing"))
            })?;
            total_bytes = total_bytes.saturating_add(bytes.len());
            if total_bytes > max_bytes && !blocks.is_empty() {
                break;
            }
            blocks.push(bytes);
            height += 1;
        }
        Ok(blocks)
    }

    /// The height of the block with this hash, `None` if unknown.
    pub fn height_of_block(&self, block_hash: &Hash) -> Result<Option<u64>, StoreError> {
        self.get(CF_BLOCK_HASHES, block_hash)?
            .map(|bytes| -> Result<u64, StoreError> {
                let bytes: [u8; 8] = bytes.as_slice().try_into().map_err(|_| {
                    StoreError::Corrupt(format!(
                        "height of block {} is {} bytes; expected 8",
                        hex::encode(block_hash),
                        bytes.len()
                    ))
                })?;
                Ok(u64::from_be_bytes(bytes))
            })
            .transpose()
    }

    /// Where the transaction with this hash was included, `None` if never.
    pub fn transaction_location(&self, tx_hash: &Hash) -> Result<Option<TxLocation>, StoreError> {
        self.get(CF_TRANSACTIONS, tx_hash)?
            .map(|bytes| TxLocation::decode(&bytes))
            .transpose()
    }

    /// A consistent snapshot of the state at the current tip, for execution and queries.
    pub fn state(&self) -> StateSnapshot<'_> {
        // The read lock keeps a commit from landing between the snapshot and the tip.
        let chain = self.chain.read().unwrap_or_else(PoisonError::into_inner);
        let snapshot = self.db.snapshot();
        let tip = chain.as_ref().map_or(ChainTip::EMPTY, |chain| chain.tip);
        drop(chain);
        StateSnapshot {
            snapshot,
            family: self.db.cf_handle(CF_STATE),
            values: self.db.cf_handle(tree::CF_JMT_VALUES),
            tip,
            failure: OnceLock::new(),
        }
    }

    /// Saves the consensus safety data with a synced write: durable when this returns, and so
    /// is every commit before it.
    pub fn save_safety_data(&self, bytes: &[u8]) -> Result<(), StoreError> {
        if bytes.len() > SAFETY_DATA_BYTES_MAX {
            return Err(StoreError::TooLarge {
                what: "safety data",
                found: bytes.len(),
                max: SAFETY_DATA_BYTES_MAX,
            });
        }
        // Read before the write: the synced write makes every block up to this tip durable.
        let height = self.tip().height;
        let started = std::time::Instant::now();
        self.db
            .put_cf_opt(self.cf(CF_CONSENSUS)?, CONSENSUS_SAFETY, bytes, &synced())
            .map_err(|error| rocks("write safety data", error))?;
        tracing::debug!(
            sync_us = started.elapsed().as_micros() as u64,
            "safety data saved"
        );
        self.durable.fetch_max(height, Ordering::AcqRel);
        Ok(())
    }

    /// The last saved consensus safety data, `None` if never saved.
    pub fn load_safety_data(&self) -> Result<Option<Vec<u8>>, StoreError> {
        let bytes = self.get(CF_CONSENSUS, CONSENSUS_SAFETY)?;
        if let Some(bytes) = &bytes {
            if bytes.len() > SAFETY_DATA_BYTES_MAX {
                return Err(StoreError::Corrupt(format!(
                    "safety data is {} bytes; at most {SAFETY_DATA_BYTES_MAX}",
                    bytes.len()
                )));
            }
        }
        Ok(bytes)
    }

    /// Logs a consensus message received or sent for `height` (the `sequence`-th of the height),
    /// so that a validator restarted from its safety data can hand the proposals and votes of
    /// its height back to the core (the block it is locked on among them). The write is not
    /// synced on its own: the synced safety-data write that precedes any vote makes it durable.
    pub fn log_consensus_message(
        &self,
        height: u64,
        sequence: u32,
        message: &[u8],
    ) -> Result<(), StoreError> {
        if sequence >= CONSENSUS_LOG_MESSAGES_MAX || message.len() > STORED_BLOCK_BYTES_MAX {
            return Err(StoreError::TooLarge {
                what: "consensus log",
                found: sequence as usize,
                max: CONSENSUS_LOG_MESSAGES_MAX as usize,
            });
        }
        let mut key = CONSENSUS_LOG_PREFIX.to_vec();
        key.extend_from_slice(&height.to_be_bytes());
        key.extend_from_slice(&sequence.to_be_bytes());
        self.db
            .put_cf(self.cf(CF_CONSENSUS)?, key, message)
            .map_err(|error| rocks("write consensus log", error))
    }

    /// The consensus messages logged for `height`, in the order they were logged.
    pub fn consensus_messages(&self, height: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut prefix = CONSENSUS_LOG_PREFIX.to_vec();
        prefix.extend_from_slice(&height.to_be_bytes());
        let mut messages = Vec::new();
        for item in self.db.prefix_iterator_cf(self.cf(CF_CONSENSUS)?, &prefix) {
            let (key, value) = item.map_err(|error| rocks("read consensus log", error))?;
            if !key.starts_with(&prefix) || messages.len() >= CONSENSUS_LOG_MESSAGES_MAX as usize {
                break;
            }
            messages.push(value.to_vec());
        }
        Ok(messages)
    }

    /// The value of `key` at `height` (at most the tip's) and its proof against that height's
    /// state root.
    pub fn state_proof(
        &self,
        key: &[u8],
        height: u64,
    ) -> Result<(Option<Vec<u8>>, v1::StateProof), StoreError> {
        let tip = self.tip();
        if height > tip.height {
            return Err(StoreError::NotCommitted {
                height,
                tip: tip.height,
            });
        }
        self.tree_reader()?.prove(key, height)
    }

    /// The header of the block at `height` as hashed, with its commit certificate.
    pub fn certified_header(&self, height: u64) -> Result<v1::CertifiedHeader, StoreError> {
        let committed = self.block(height)?.ok_or(StoreError::NotCommitted {
            height,
            tip: self.tip().height,
        })?;
        let header = committed
            .block
            .and_then(|block| block.header)
            .ok_or_else(|| StoreError::Corrupt(format!("block {height} has no header")))?;
        let certificate = committed
            .certificate
            .ok_or_else(|| StoreError::Corrupt(format!("block {height} has no certificate")))?;
        Ok(v1::CertifiedHeader {
            header: header.encode_to_vec(),
            certificate: Some(certificate),
        })
    }

    /// The validator-set changes at heights below `height`, in height order: each height whose
    /// block names a new next set, with that set's keys. At most [`VALIDATOR_CHANGES_MAX`].
    pub fn validator_changes_below(&self, height: u64) -> Result<Vec<ValidatorChange>, StoreError> {
        let meta = self.cf(CF_META)?;
        let mut options = ReadOptions::default();
        options.set_iterate_upper_bound(validator_change_key(height));
        let iterator = self.db.iterator_cf_opt(
            meta,
            options,
            IteratorMode::From(META_VALIDATOR_CHANGE_PREFIX, Direction::Forward),
        );
        let mut changes = Vec::new();
        for item in iterator {
            let (key, value) = item.map_err(|error| rocks("read validator changes", error))?;
            let Some(rest) = key.strip_prefix(META_VALIDATOR_CHANGE_PREFIX) else {
                break;
            };
            let at: [u8; 8] = rest.try_into().map_err(|_| {
                StoreError::Corrupt(format!("validator change key {key:?} has a bad length"))
            })?;
            if value.is_empty()
                || value.len() % 32 != 0
                || value.len() / 32 > yrd_proto::limits::VALIDATORS_MAX
            {
                return Err(StoreError::Corrupt(format!(
                    "validator change at {} is {} bytes",
                    u64::from_be_bytes(at),
                    value.len()
                )));
            }
            let keys = value.chunks_exact(32).map(array::<32>).collect();
            changes.push((u64::from_be_bytes(at), keys));
            if changes.len() > VALIDATOR_CHANGES_MAX {
                return Err(StoreError::TooLarge {
                    what: "validator change list",
                    found: changes.len(),
                    max: VALIDATOR_CHANGES_MAX,
                });
            }
        }
        Ok(changes)
    }

    /// Writes raw bytes into a column family, for corruption tests.
    #[cfg(test)]
    fn put_raw(&self, family: &'static str, key: &[u8], value: &[u8]) {
        self.db
            .put_cf(self.cf(family).expect("column family"), key, value)
            .expect("raw put");
    }
}

fn validator_change_key(height: u64) -> Vec<u8> {
    let mut key = META_VALIDATOR_CHANGE_PREFIX.to_vec();
    key.extend_from_slice(&height.to_be_bytes());
    key
}

fn presence(value: &Option<Vec<u8>>) -> &'static str {
    if value.is_some() {
        "present"
    } else {
        "missing"
    }
}

/// Where a block includes a transaction, and whether it was accepted there.
#[derive(Clone, Copy, Debug)]
struct IndexEntry {
    location: TxLocation,
    accepted: bool,
}

/// The index entries of a block's transactions, one per distinct hash.
type BlockTxIndex = BTreeMap<Hash, IndexEntry>;

/// The tip a checked block makes once written.
fn tip_after(header: &v1::BlockHeader, batch: &CommitBatch) -> ChainTip {
    ChainTip {
        height: header.height,
        block_hash: batch.block_hash,
        state_root: batch.state.root,
        time_ms: header.time_ms,
    }
}

/// Checks that `batch` extends `chain`'s tip; returns its header and the index entries of its
/// transactions.
fn check_block(
    chain: &Chain,
    batch: &CommitBatch,
) -> Result<(v1::BlockHeader, BlockTxIndex), StoreError> {
    let tip = &chain.tip;
    let block = batch
        .committed
        .block
        .as_ref()
        .ok_or_else(|| StoreError::InvalidBlock {
            height: tip.height + 1,
            problem: "no block".to_owned(),
        })?;
    let header = block
        .header
        .as_ref()
        .ok_or_else(|| StoreError::InvalidBlock {
            height: tip.height + 1,
            problem: "no header".to_owned(),
        })?;
    let invalid = |problem: String| StoreError::InvalidBlock {
        height: header.height,
        problem,
    };
    if !block.transaction_refs.is_empty() {
        return Err(invalid(
            "a stored block carries its transactions, not references to them".to_owned(),
        ));
    }
    let expected_height = tip.height + 1;
    if header.height != expected_height {
        return Err(StoreError::NotNext {
            expected_height,
            found_height: header.height,
        });
    }
    if header.parent_hash.as_slice() != tip.block_hash.as_slice() {
        return Err(StoreError::ParentMismatch {
            expected: hex::encode(tip.block_hash),
            found: hex::encode(&header.parent_hash),
        });
    }
    if header.chain_id != chain.chain_id {
        return Err(invalid(format!(
            "chain id {:?}; this chain is {:?}",
            header.chain_id, chain.chain_id
        )));
    }
    let hash = block_hash(header).map_err(|error| invalid(format!("header hash: {error}")))?;
    if hash != batch.block_hash {
        return Err(invalid(format!(
            "block hash given {} but the header hashes to {}",
            hex::encode(batch.block_hash),
            hex::encode(hash)
        )));
    }
    if batch.state.height != header.height || batch.state.base != tip.block_hash {
        return Err(invalid(format!(
            "its state update was prepared for height {} on block {}",
            batch.state.height,
            hex::encode(batch.state.base)
        )));
    }
    if header.state_root.as_slice() != batch.state.root.as_slice() {
        return Err(StoreError::StateRootMismatch {
            expected: hex::encode(batch.state.root),
            found: hex::encode(&header.state_root),
        });
    }
    let changes_set = header.next_validator_set_hash != header.validator_set_hash;
    match &batch.next_validators {
        Some(keys) => {
            let keys = keys.iter().copied().map(yrd_consensus::PublicKey).collect();
            let named = yrd_consensus::ValidatorSet::new(keys)
                .map_err(|error| invalid(format!("next validator set: {error}")))?
                .hash();
            if !changes_set || named.as_slice() != header.next_validator_set_hash.as_slice() {
                return Err(invalid(
                    "the next validator set given is not the one the header names".to_owned(),
                ));
            }
        }
        None if changes_set => {
            return Err(invalid(
                "the header names a new validator set but none was given".to_owned(),
            ));
        }
        None => {}
    }
    let receipts = &batch.committed.receipts;
    if receipts.len() != block.transactions.len() {
        return Err(invalid(format!(
            "{} transactions but {} receipts",
            block.transactions.len(),
            receipts.len()
        )));
    }
    let mut locations = BTreeMap::new();
    for (index, (transaction, receipt)) in block.transactions.iter().zip(receipts).enumerate() {
        let tx_hash = transaction_hash(&chain.chain_id, &transaction.body)
            .map_err(|error| invalid(format!("transaction {index} hash: {error}")))?;
        if receipt.tx_hash.as_slice() != tx_hash.as_slice() {
            return Err(invalid(format!(
                "receipt {index} is for {} but transaction {index} hashes to {}",
                hex::encode(&receipt.tx_hash),
                hex::encode(tx_hash)
            )));
        }
        let index = u32::try_from(index)
            .map_err(|_| invalid(format!("transaction index {index} exceeds u32")))?;
        let location = TxLocation {
            height: header.height,
            index,
        };
        // Within a block, the accepted copy wins, else the first.
        let replace = match locations.get(&tx_hash) {
            None => true,
            Some(IndexEntry { accepted, .. }) => !accepted && receipt.accepted,
        };
        if replace {
            locations.insert(
                tx_hash,
                IndexEntry {
                    location,
                    accepted: receipt.accepted,
                },
            );
        }
    }
    Ok((header.clone(), locations))
}

// ---------------------------------------------------------------- state snapshots

/// A consistent, read-only view of the state at one tip, backed by a RocksDB snapshot.
///
/// History entries (`h/v/`) are read from the state tree's values, the only place they are
/// stored; scans do not list them (no caller scans the history).
///
/// `StateRead` cannot return errors, so a RocksDB read failure is recorded and reads as absent;
/// callers must call [`StateSnapshot::check`] after using the snapshot and discard whatever they
/// computed from it if it reports a failure.
pub struct StateSnapshot<'a> {
    snapshot: SnapshotWithThreadMode<'a, DB>,
    family: Option<&'a ColumnFamily>,
    /// The state tree's values, where history entries are read from.
    values: Option<&'a ColumnFamily>,
    tip: ChainTip,
    failure: OnceLock<String>,
}

impl std::fmt::Debug for StateSnapshot<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateSnapshot")
            .field("tip", &self.tip)
            .field("failure", &self.failure.get())
            .finish()
    }
}

impl StateSnapshot<'_> {
    /// The tip this snapshot is the state after.
    #[must_use]
    pub fn tip(&self) -> ChainTip {
        self.tip
    }

    /// The first read failure this snapshot met, if any: then every result computed from it is
    /// unreliable.
    pub fn check(&self) -> Result<(), StoreError> {
        match self.failure.get() {
            Some(failure) => Err(StoreError::Rocks(failure.clone())),
            None => Ok(()),
        }
    }

    fn fail(&self, failure: String) {
        tracing::error!(%failure, "state read failed");
        // Only the first failure is kept; later ones are logged.
        let _ = self.failure.set(failure);
    }

    fn family(&self) -> Option<&ColumnFamily> {
        if self.family.is_none() {
            self.fail(format!("column family {CF_STATE} is not open"));
        }
        self.family
    }

    /// A history entry, from the state tree's values at the snapshot's height (the plain
    /// state does not hold them, see [`Store::put_writes`]).
    fn history_entry(&self, key: &[u8]) -> Option<Vec<u8>> {
        let Some(values) = self.values else {
            self.fail(format!("column family {} is not open", tree::CF_JMT_VALUES));
            return None;
        };
        let key_hash = tree::key_hash(key);
        let (options, seek) = tree::value_seek(&key_hash, self.tip.height);
        let mut iterator = self.snapshot.iterator_cf_opt(
            values,
            options,
            IteratorMode::From(&seek, Direction::Reverse),
        );
        match tree::decode_value(&key_hash, iterator.next()) {
            Ok(value) => value,
            Err(error) => {
                self.fail(format!("read history entry {}: {error}", hex::encode(key)));
                None
            }
        }
    }
}

impl StateRead for StateSnapshot<'_> {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        if yrd_chaincode::keys::is_history_entry(key) {
            return self.history_entry(key);
        }
        let family = self.family()?;
        match self.snapshot.get_cf(family, key) {
            Ok(value) => value,
            Err(error) => {
                self.fail(format!("read state key {}: {error}", hex::encode(key)));
                None
            }
        }
    }
}

/// The smallest key greater than every key starting with `prefix`, `None` if there is none
/// (the prefix is empty or all `0xff`).
fn prefix_upper_bound(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut bound = prefix.to_vec();
    while let Some(last) = bound.pop() {
        if last < u8::MAX {
            bound.push(last + 1);
            return Some(bound);
        }
    }
    None
}

impl StateSnapshot<'_> {
    /// Up to `limit` entries from `start` on, below `end` if given, in key order.
    fn scan(&self, start: &[u8], end: Option<Vec<u8>>, limit: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        let Some(family) = self.family() else {
            return Vec::new();
        };
        if limit == 0 {
            return Vec::new();
        }
        let mut options = ReadOptions::default();
        if let Some(bound) = end.clone() {
            options.set_iterate_upper_bound(bound);
        }
        let iterator = self.snapshot.iterator_cf_opt(
            family,
            options,
            IteratorMode::From(start, Direction::Forward),
        );
        let mut entries = Vec::new();
        for item in iterator {
            match item {
                Ok((key, value)) => {
                    if end.as_deref().is_some_and(|end| &*key >= end) {
                        break;
                    }
                    entries.push((key.into_vec(), value.into_vec()));
                    if entries.len() >= limit {
                        break;
                    }
                }
                Err(error) => {
                    self.fail(format!("scan state from {}: {error}", hex::encode(start)));
                    break;
                }
            }
        }
        entries
    }
}

impl StateScan for StateSnapshot<'_> {
    fn scan_prefix(&self, prefix: &[u8], limit: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut entries = self.scan(prefix, prefix_upper_bound(prefix), limit);
        // Without an upper bound (an all-0xff prefix), stop at the first key outside it.
        if let Some(outside) = entries.iter().position(|(key, _)| !key.starts_with(prefix)) {
            entries.truncate(outside);
        }
        entries
    }

    fn scan_range(&self, start: &[u8], end: &[u8], limit: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        if start >= end {
            return Vec::new();
        }
        self.scan(start, Some(end.to_vec()), limit)
    }
}

/// A decided block checked for writing but not yet written ([`Store::stage`]).
pub struct Staged {
    batch: CommitBatch,
    tip: ChainTip,
    /// The hash of the tip it was checked against.
    base: Hash,
}

impl std::fmt::Debug for Staged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Staged")
            .field("tip", &self.tip)
            .finish_non_exhaustive()
    }
}

impl Staged {
    /// The tip the block makes once written.
    #[must_use]
    pub fn tip(&self) -> ChainTip {
        self.tip
    }

    /// The block's transaction count.
    #[must_use]
    pub fn transaction_count(&self) -> usize {
        self.batch
            .committed
            .block
            .as_ref()
            .map_or(0, |block| block.transactions.len())
    }

    /// Whether the block changes the validator set.
    #[must_use]
    pub fn changes_validators(&self) -> bool {
        self.batch.next_validators.is_some()
    }

    /// Whether the block still sits right on `tip` (nothing was written since it was staged).
    fn extends(&self, tip: &ChainTip) -> Result<(), StoreError> {
        if tip.block_hash == self.base && tip.height + 1 == self.tip.height {
            Ok(())
        } else {
            Err(StoreError::InvalidBlock {
                height: self.tip.height,
                problem: format!(
                    "staged on a tip at height {} that is no longer the tip ({})",
                    self.tip.height - 1,
                    tip.height
                ),
            })
        }
    }
}

/// The state after the tip, or after a staged block ([`Store::state_on`]): the staged block's
/// writes read over a snapshot of the tip's state. Same failure rule as [`StateSnapshot`].
pub struct StateView<'a> {
    snapshot: StateSnapshot<'a>,
    writes: Option<&'a WriteSet>,
    tip: ChainTip,
}

impl std::fmt::Debug for StateView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateView")
            .field("tip", &self.tip)
            .field("staged", &self.writes.is_some())
            .finish_non_exhaustive()
    }
}

impl StateView<'_> {
    /// The tip this view is the state after (the staged block's, if any).
    #[must_use]
    pub fn tip(&self) -> ChainTip {
        self.tip
    }

    /// See [`StateSnapshot::check`].
    pub fn check(&self) -> Result<(), StoreError> {
        self.snapshot.check()
    }

    /// Merges the staged writes with `limit + (staged writes in range)` entries of the snapshot
    /// (enough: each staged write hides at most one of them), then keeps the first `limit`.
    fn merged<'k>(
        in_range: impl Iterator<Item = (&'k Vec<u8>, &'k Option<Vec<u8>>)> + Clone,
        base: impl FnOnce(usize) -> Vec<(Vec<u8>, Vec<u8>)>,
        limit: usize,
    ) -> Vec<(Vec<u8>, Vec<u8>)> {
        let staged = in_range.clone().count();
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> =
            base(limit.saturating_add(staged)).into_iter().collect();
        for (key, value) in in_range {
            match value {
                Some(value) => {
                    merged.insert(key.clone(), value.clone());
                }
                None => {
                    merged.remove(key);
                }
            }
        }
        merged.into_iter().take(limit).collect()
    }
}

impl StateRead for StateView<'_> {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        match self.writes.and_then(|writes| writes.get(key)) {
            Some(value) => value.clone(),
            None => self.snapshot.get(key),
        }
    }
}

impl StateScan for StateView<'_> {
    fn scan_prefix(&self, prefix: &[u8], limit: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        let Some(writes) = self.writes else {
            return self.snapshot.scan_prefix(prefix, limit);
        };
        let in_range = writes
            .range::<[u8], _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(key, _)| key.starts_with(prefix));
        Self::merged(in_range, |n| self.snapshot.scan_prefix(prefix, n), limit)
    }

    fn scan_range(&self, start: &[u8], end: &[u8], limit: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        let Some(writes) = self.writes else {
            return self.snapshot.scan_range(start, end, limit);
        };
        if start >= end {
            return Vec::new();
        }
        let in_range = writes.range::<[u8], _>((
            std::ops::Bound::Included(start),
            std::ops::Bound::Excluded(end),
        ));
        Self::merged(in_range, |n| self.snapshot.scan_range(start, end, n), limit)
    }
}

mod node_codec;
pub mod tree;

#[cfg(test)]
pub(crate) mod tests;
