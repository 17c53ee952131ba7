#!/usr/bin/env bash
# Runs every check CI runs: formatting, lints and the whole test suite.
# Installs what a fresh machine lacks before it builds.
set -euo pipefail
cd "$(dirname "$0")/.."

need_component() {
    if ! cargo "$1" --version >/dev/null 2>&1; then
        rustup component add "$2"
    fi
}
need_component fmt rustfmt
need_component clippy clippy

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
