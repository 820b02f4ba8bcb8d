#!/usr/bin/env bash
# Train and run the same DARTS proxy network (DARTS_V2 cells, 6 cells, 16
# initial channels, batch 64, 32x32x3 input) with seki (candle, CPU) and with
# PyTorch (CPU, 2 threads, NCHW and channels_last); print images/s and the
# seki/PyTorch ratios. The last line is one JSON object with train_ratio_nchw,
# train_ratio_channels_last, infer_ratio_nchw, infer_ratio_channels_last.
# Not a test. Usage: bench/train-vs-pytorch.sh [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}

# A Python with torch: the current one, Debian's CPU-only python3-torch, or
# pip's torch (CPU wheel index first).
py=""
for cand in python3 /usr/bin/python3; do
  if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import torch' 2>/dev/null; then py=$cand; break; fi
done
if [ -z "$py" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
     && DEBIAN_FRONTEND=noninteractive apt-get install -y python3-torch >/dev/null 2>&1 \
     && /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    py=/usr/bin/python3
  else
    python3 -m pip install --quiet torch --index-url https://download.pytorch.org/whl/cpu \
      || python3 -m pip install --quiet torch
    py=python3
  fi
fi

cargo build --release --quiet
seki_bin=${CARGO_TARGET_DIR:-target}/release/seki
# The same environment the evaluation worker gets (see src/eval/candle/worker.rs).
export CANDLE_NUM_THREADS=${CANDLE_NUM_THREADS:-1} MALLOC_MMAP_THRESHOLD_=33554432 \
  MALLOC_TRIM_THRESHOLD_=1073741824 MALLOC_TOP_PAD_=268435456
seki=$(RAYON_NUM_THREADS=$threads "$seki_bin" bench-train --cells 6 --channels 16 --batch 64 --size 32 --spans)
torch=$(OMP_NUM_THREADS=$threads "$py" bench/train_pytorch.py "$threads")
echo "seki:    $seki"
echo "pytorch: $torch"
python3 - "$seki" "$torch" <<'PY'
import json, sys
s, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
r = dict(
    train_ratio_nchw=s["train_images_per_second"] / t["train_nchw"],
    train_ratio_channels_last=s["train_images_per_second"] / t["train_channels_last"],
    infer_ratio_nchw=s["infer_images_per_second"] / t["infer_nchw"],
    infer_ratio_channels_last=s["infer_images_per_second"] / t["infer_channels_last"],
)
print(f"train images/s: seki {s['train_images_per_second']:.1f}, torch NCHW {t['train_nchw']:.1f}, channels_last {t['train_channels_last']:.1f}")
print(f"infer images/s: seki {s['infer_images_per_second']:.1f}, torch NCHW {t['infer_nchw']:.1f}, channels_last {t['infer_channels_last']:.1f}")
print(f"params: seki {s['params']}, torch {t['params']}")
print(json.dumps({k: round(v, 3) for k, v in r.items()}))
PY
