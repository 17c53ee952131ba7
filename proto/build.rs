//! Compiles the protobuf definitions with protox (no `protoc` binary needed) and generates the
//! prost messages and tonic services. The encoded descriptor set is kept for gRPC reflection.

use std::path::PathBuf;

const PROTO_FILES: [&str; 6] = [
    "proto/yrd/v1/transaction.proto",
    "proto/yrd/v1/ledger.proto",
    "proto/yrd/v1/state.proto",
    "proto/yrd/v1/service.proto",
    "proto/yrd/v1/consensus.proto",
    "proto/yrd/v1/proof.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for file in PROTO_FILES {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(PROTO_FILES, ["proto"])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("yrd_descriptor.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
