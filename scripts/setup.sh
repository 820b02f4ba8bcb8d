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
# Fashion-MNIST for the candle evaluator (Debian's dataset-fashion-mnist
# installs it to /usr/share/datasets/fashion-mnist/).
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y dataset-fashion-mnist >/dev/null 2>&1 \
      || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y dataset-fashion-mnist >/dev/null; }
  else
    echo "setup: warning: Fashion-MNIST missing; run as root: apt-get install dataset-fashion-mnist" >&2
  fi
fi
echo "setup: ok"
