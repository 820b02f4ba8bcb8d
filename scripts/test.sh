#!/usr/bin/env bash
# The test command: formatting, lints, then every unit and integration test,
# closing with one line of totals.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# A one-node Slurm cluster for the Slurm executor's tests (tests/slurm.rs),
# from Debian's packages, as root; without it those tests skip (and fail
# under CI=true).
scripts/slurm-cluster.sh start ||
  echo "test: no Slurm cluster here; tests/slurm.rs will skip (and fail under CI=true)" >&2
# The CUDA kernels compile (nvcc from PyPI) and assemble for three GPU generations.
scripts/cuda-toolkit.sh --check >/dev/null
cargo fmt --all -- --check
cargo clippy --locked --workspace --all-targets -- -D warnings
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --locked --workspace --all-targets 2>&1 | tee "$log"
cargo test --locked --workspace --doc 2>&1 | tee -a "$log" >/dev/null
totals=$(awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } } END { printf "%d %d", p, f }' "$log")
passed=${totals% *}
failed=${totals#* }
echo
echo "tests: ${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
