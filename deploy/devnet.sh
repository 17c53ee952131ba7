#!/usr/bin/env bash
# Starts a local 4-validator network on loopback and shows it committing: builds the node if
# needed (installing what a fresh machine lacks), then runs `yrd-node devnet`, which generates
# keys, a genesis and configurations in ./devnet (or reuses them), starts the validators,
# submits a demo workload, prints the receipts, and runs until Ctrl-C, stopping its processes.
# Extra arguments go to `yrd-node devnet` (see `--help`): e.g. --base-port 7000 --observers 1.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/prerequisites.sh
# Same build as deploy/test.sh, so the two share one compilation of RocksDB.
cargo build --workspace --all-targets --locked
exec "${CARGO_TARGET_DIR:-target}/debug/yrd-node" devnet "$@"
