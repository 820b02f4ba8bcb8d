#!/usr/bin/env bash
# Train and run the same DARTS proxy network (DARTS_V2 cells, 6 cells, 16
# initial channels, batch 64, 32x32x3 input) with seki (candle, CPU) and with
# PyTorch (CPU, 2 threads, NCHW and channels_last); print images/s and the
# seki/PyTorch ratios. The last line is one JSON object with train_ratio_nchw,
# train_ratio_channels_last, infer_ratio_nchw, infer_ratio_channels_last.
# Not a test. Usage: [REPEATS=3] bench/train-vs-pytorch.sh [THREADS] [STEPS] (2, 40);
# the two alternate REPEATS times and the figures are medians.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
steps=${2:-40}

# A Python with a current PyTorch: $TORCH_PYTHON if set, else a virtual
# environment under target/ with torch from PyPI (its default wheel runs on
# the CPU; it brings CUDA libraries along, ~3 GB once).
venv=${TORCH_VENV:-target/torch-venv}
py=${TORCH_PYTHON:-$venv/bin/python}
if ! "$py" -c 'import torch' 2>/dev/null; then
  if [ -n "${TORCH_PYTHON:-}" ]; then
    echo "train-vs-pytorch: $TORCH_PYTHON cannot import torch" >&2
    exit 1
  fi
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check torch numpy
fi
echo "pytorch: $("$py" -c 'import torch; print(torch.__version__, torch.__config__.parallel_info().splitlines()[0])')" >&2

cargo build --release --quiet
seki_bin=${CARGO_TARGET_DIR:-target}/release/seki
# The same environment the evaluation worker gets (see src/eval/candle/worker.rs).
export CANDLE_NUM_THREADS=${CANDLE_NUM_THREADS:-1} MALLOC_MMAP_THRESHOLD_=33554432 \
  MALLOC_TRIM_THRESHOLD_=1073741824 MALLOC_TOP_PAD_=268435456
# Alternate the two REPEATS times (default 3) so that load on the machine
# hits both alike; figures are the medians over the rounds.
repeats=${REPEATS:-3}
runs=()
for ((i = 1; i <= repeats; i++)); do
  seki=$(RAYON_NUM_THREADS=$threads "$seki_bin" bench-train --cells 6 --channels 16 --batch 64 --size 32 --steps "$steps" --spans)
  torch=$(OMP_NUM_THREADS=$threads "$py" bench/train_pytorch.py "$threads" "$steps")
  echo "round $i seki:    $seki"
  echo "round $i pytorch: $torch"
  runs+=("$seki" "$torch")
done
python3 - "${runs[@]}" <<'PY'
import json, statistics, sys
rounds = [(json.loads(a), json.loads(b)) for a, b in zip(sys.argv[1::2], sys.argv[2::2])]
med = lambda xs: statistics.median(xs)
s = {k: med([r[0][k] for r in rounds]) for k in ("train_images_per_second", "infer_images_per_second")}
t = {k: med([r[1][k] for r in rounds]) for k in ("train_nchw", "train_channels_last", "infer_nchw", "infer_channels_last")}
ratios = lambda a, b: dict(
    train_ratio_nchw=a["train_images_per_second"] / b["train_nchw"],
    train_ratio_channels_last=a["train_images_per_second"] / b["train_channels_last"],
    infer_ratio_nchw=a["infer_images_per_second"] / b["infer_nchw"],
    infer_ratio_channels_last=a["infer_images_per_second"] / b["infer_channels_last"],
)
for i, (a, b) in enumerate(rounds, 1):
    print(f"round {i} ratios: " + ", ".join(f"{k} {v:.2f}" for k, v in ratios(a, b).items()))
print(f"median train images/s: seki {s['train_images_per_second']:.1f}, torch NCHW {t['train_nchw']:.1f}, channels_last {t['train_channels_last']:.1f}")
print(f"median infer images/s: seki {s['infer_images_per_second']:.1f}, torch NCHW {t['infer_nchw']:.1f}, channels_last {t['infer_channels_last']:.1f}")
print(f"params: seki {rounds[0][0]['params']}, torch {rounds[0][1]['params']}; rounds {len(rounds)}, torch {rounds[0][1]['torch']}")
print(json.dumps({k: round(v, 3) for k, v in ratios(s, t).items()}))
PY
