//! Wire and storage formats of the yrd ledger: the protobuf messages and gRPC services, the
//! limits on every length that crosses a wire or a disk, and transaction signing.
//!
//! This crate is the wire boundary: business code builds its domain types from these messages
//! with `TryFrom` (in `yrd-chaincode`) and never works on raw protobuf.

pub mod block;
mod ed25519_batch;
pub mod limits;
pub mod signing;

/// Generated protobuf messages and gRPC services of package `yrd.v1`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/yrd.v1.rs"));
}

/// The encoded `FileDescriptorSet` of every yrd protobuf file, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/yrd_descriptor.bin"));

pub use prost::Message;
