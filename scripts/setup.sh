#!/usr/bin/env bash
# Install or fetch what seki needs, idempotently. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo is missing; install Rust from https://rustup.rs" >&2
  exit 1
fi

# Crates (offline afterwards).
cargo fetch --locked >/dev/null

# The NAS-Bench-201 table is read from ../shared/ (beside the checkout); it is
# not copied into the repository.
table=../shared/benchmarks/nb201/nb201-cifar10.csv
if [ ! -f "$table" ]; then
  echo "setup: warning: $table not found; pass --table PATH or set evaluator.nb201.table in config.toml" >&2
fi
echo "setup: ok"
