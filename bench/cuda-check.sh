#!/usr/bin/env bash
# The CUDA checks, on a machine with an NVIDIA GPU, its driver, cuBLAS and
# the Rust crate registry (not a test: CI has no GPU). Prints what it measures; the last
# line is one JSON object.
#   1. builds seki with --features cuda (nvcc from $CUDA_HOME, the PATH, or
#      scripts/cuda-toolkit.sh) for the GPU's compute capability;
#   2. runs the GPU tests: every custom op's output and gradients on CUDA
#      against the CPU ops (src/eval/candle/ops/gpu.rs);
#   3. times the DARTS proxy training step (6 cells, 16 channels, batch 64,
#      32x32x3) on the GPU and on the CPU: `seki bench-train --device ...`;
#   4. with Fashion-MNIST present, trains and scores DARTS_V2 on the GPU end
#      to end (`seki eval`, 1 epoch on 10k images).
# Usage: bench/cuda-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
gpu=$(nvidia-smi --query-gpu=name,driver_version,compute_cap --format=csv,noheader | head -1)
echo "gpu: $gpu" >&2
cap=${CUDA_COMPUTE_CAP:-$(echo "$gpu" | awk -F', ' '{ print $3 }' | tr -d .)}
if [ -z "${CUDA_HOME:-}" ] && ! command -v nvcc >/dev/null 2>&1; then
  CUDA_HOME=$(scripts/cuda-toolkit.sh)
  export CUDA_HOME LD_LIBRARY_PATH=$CUDA_HOME/lib:${LD_LIBRARY_PATH:-}
fi
[ -n "${CUDA_HOME:-}" ] && export PATH=$CUDA_HOME/bin:$PATH
export CUDA_COMPUTE_CAP=$cap
cargo build --release --features cuda
cargo test --release --features cuda --lib -- eval::candle::ops::gpu 2>&1 | tail -5
bin=${CARGO_TARGET_DIR:-target}/release/seki
gpu_run=$("$bin" bench-train --device cuda --steps 50 --warmup 5)
cpu_run=$("$bin" bench-train --device cpu)
echo "bench-train cuda: $gpu_run" >&2
echo "bench-train cpu:  $cpu_run" >&2
eval_run='{}'
if [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  cfg=$(mktemp --suffix .toml) arch=$(mktemp)
  trap 'rm -f "$cfg" "$arch"' EXIT
  python3 -c 'import json, sys
for line in open("knowledge/architectures.jsonl"):
    r = json.loads(line)
    if r["id"] == "darts-v2": sys.stdout.write(r["arch"])' >"$arch"
  cat >"$cfg" <<'TOML'
[evaluator.candle]
device = "cuda"
epochs = 1
train_subset = 10000
cells = 5
channels = 16
TOML
  eval_run=$("$bin" --config "$cfg" eval --space darts --evaluator candle --arch @"$arch" --json)
  echo "eval: $eval_run" >&2
fi
python3 - "$gpu_run" "$cpu_run" "$eval_run" "$gpu" <<'PY'
import json, sys
g, c, e = (json.loads(a) for a in sys.argv[1:4])
print(json.dumps({
    "gpu": sys.argv[4],
    "cuda_train_images_per_second": round(g["train_images_per_second"], 1),
    "cuda_infer_images_per_second": round(g["infer_images_per_second"], 1),
    "cpu_train_images_per_second": round(c["train_images_per_second"], 1),
    "train_speedup_cuda_over_cpu": round(g["train_images_per_second"] / c["train_images_per_second"], 2),
    "eval_valid_accuracy": e.get("valid_accuracy"),
    "eval_train_seconds": e.get("train_seconds"),
}))
PY
