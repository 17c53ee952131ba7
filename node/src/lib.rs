//! The yrd node: RocksDB storage, the permissioned libp2p network, the mempool, the consensus
//! driver that turns consensus outputs into I/O, and the gRPC services members use.

pub mod admission;
pub mod config;
pub mod devnet;
pub mod driver;
pub mod keyfile;
pub mod mempool;
pub mod network;
pub mod node;
pub mod proofs;
pub mod rpc;
pub mod storage;
#[cfg(test)]
mod test_support;
pub mod wal_sync;
pub mod wire;
