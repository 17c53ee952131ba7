#!/usr/bin/env bash
# Runs every check CI runs: formatting, lints and the whole test suite, including the
# multi-process tests of the node. Installs what a fresh machine lacks before it builds.
set -euo pipefail
cd "$(dirname "$0")/.."

deploy/prerequisites.sh

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The multi-process tests start the yrd-node binary: build it first.
cargo build --workspace --bins --locked
cargo test --workspace --locked
