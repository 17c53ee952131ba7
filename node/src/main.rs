//! The yrd node binary. Storage, networking and gRPC arrive with issue 4; until then this
//! binary only says so.

fn main() {
    eprintln!(
        "yrd-node: the node (storage, network, gRPC, devnet) is not built yet; see README.md"
    );
    std::process::exit(2);
}
