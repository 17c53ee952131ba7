#!/usr/bin/env bash
# Runs every check CI runs: formatting, lints and the whole test suite, including the
# multi-process tests of the node. Installs what a fresh machine lacks before it builds.
set -euo pipefail
cd "$(dirname "$0")/.."

deploy/prerequisites.sh

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The multi-process tests start the yrd-node binary: build every target first. (Building all
# targets of the workspace, as the tests do, resolves features once, so RocksDB is compiled
# once for lints, tests and the binaries.)
cargo build --workspace --all-targets --locked
cargo test --workspace --locked
