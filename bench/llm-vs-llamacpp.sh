#!/usr/bin/env bash
# Prompt and generation speed of the same GGUF files in llama.cpp (through
# its PyPI package llama-cpp-python, built from source into
# target/llamacpp-venv on first use: allow several minutes) and in seki (its
# own engine, weights as shipped), with the same number of threads. Prints a
# table per model, and as the last line one JSON object:
#
#   {"models": [{"model": ..., "quant": ..., "prompt_ratio": ..., "generation_ratio": ...}, ...]}
#
# with the ratios seki / llama.cpp (above 1: seki is faster).
#
#   bench/llm-vs-llamacpp.sh [MODEL.gguf ...]
#
# Default models: SmolLM2-135M Q4_1, its Q8_0 re-quantization, and
# Qwen2.5-Coder-0.5B Q4_K_M (models/). PROMPT_TOKENS (default 128),
# GEN_TOKENS (default 64) and THREADS (default: all cores) apply to both.
# ROUNDS (default 3): per model, the two engines run alternately this many
# times (each run in a fresh process, after a warm-up pass), and the table
# and ratios use each engine's medians.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -gt 0 ]; then
  models=("$@")
else
  models=(models/SmolLM2-135M-Instruct.Q4_1.gguf
          models/SmolLM2-135M-Instruct.Q4_1.q8_0.gguf
          models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf)
fi
prompt_tokens=${PROMPT_TOKENS:-128}
gen_tokens=${GEN_TOKENS:-64}
threads=${THREADS:-$(nproc)}
rounds=${ROUNDS:-3}

venv=target/llamacpp-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import llama_cpp' 2>/dev/null; then
  echo "bench: building llama-cpp-python from source into $venv (several minutes)..." >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip >&2
  # Built for this CPU (GGML_NATIVE), but without AMX where the CPU has it:
  # llama.cpp's AMX matrix product (ggml_backend_amx_mul_mat) crashed with
  # SIGSEGV at the first prompt on such a CPU (llama-cpp-python 0.3.36), and
  # seki does not use AMX either. Explicit -mno-* flags win over
  # -march=native whatever their order. LLAMACPP_CFLAGS overrides them.
  nocpu=""
  if grep -qw amx_int8 /proc/cpuinfo 2>/dev/null; then
    nocpu="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
  fi
  flags=${LLAMACPP_CFLAGS-$nocpu}
  CFLAGS="$flags" CXXFLAGS="$flags" CMAKE_ARGS="-DGGML_NATIVE=ON" \
    "$venv/bin/pip" install --quiet --no-cache-dir llama-cpp-python >&2
fi

cargo build --release --quiet
cfg=$(mktemp --suffix .toml)
results=$(mktemp)
trap 'rm -f "$cfg" "$results"' EXIT
export RAYON_NUM_THREADS=$threads

# Each engine's median prompt and generation speed over its runs (one JSON
# object per line in, one out).
median='
import json, statistics, sys
runs = [json.loads(l) for l in sys.stdin if l.strip()]
print(json.dumps({k: statistics.median(r[k] for r in runs)
                  for k in ("prompt_tokens_per_s", "generation_tokens_per_s")}))
'

for model in "${models[@]}"; do
  [ -f "$model" ] || scripts/setup.sh
  case "$model" in
  *.q8_0.gguf)
    # seki's Q8_0 re-quantization of the file before `.q8_0`: loading a
    # profile with requantize = "q8_0" writes it beside the source.
    if [ ! -f "$model" ]; then
      cat > "$cfg" <<TOML
[llm.profiles.requant]
kind = "gguf"
model = "$(realpath "${model%.q8_0.gguf}.gguf")"
requantize = "q8_0"
TOML
      target/release/seki --config "$cfg" llm bench --llm requant --prompt-tokens 8 --tokens 1 >/dev/null
    fi
    ;;
  esac
  model=$(realpath "$model")
  cat > "$cfg" <<TOML
[llm.profiles.asis]
kind = "gguf"
model = "$model"
requantize = "none"
engine = "seki"
TOML
  llamacpp_runs=()
  seki_runs=()
  for _ in $(seq "$rounds"); do
  llamacpp_runs+=("$("$venv/bin/python" - "$model" "$prompt_tokens" "$gen_tokens" "$threads" <<'PY'
import json, sys, time
import numpy as np
from llama_cpp import Llama

path, p, n, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
# The prompt goes in as one batch, and llama-cpp-python sizes its logits
# buffer by the batch but writes each token's logits at its position: the
# batch must cover every position of the run, prompt and generated tokens
# (a 512-token prompt with n_batch 512 overran it at the first generated
# token).
batch = max(512, p + n + 16)
llm = Llama(model_path=path, n_ctx=max(1024, p + n + 16), n_batch=batch, n_ubatch=batch,
            n_threads=threads, n_threads_batch=threads, verbose=False)
text = ("The quick brown fox jumps over the lazy dog while a neural architecture search "
        "explores cells of convolutions, pools and skip connections. ")
toks = []
while len(toks) < p:
    toks += llm.tokenize(text.encode(), add_bos=False, special=False)
toks = toks[:p]

def run():
    llm.reset()
    t0 = time.perf_counter()
    llm.eval(toks)
    t1 = time.perf_counter()
    for _ in range(n):
        nxt = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        llm.eval([nxt])
    t2 = time.perf_counter()
    return p / (t1 - t0), n / (t2 - t1)

run()  # warm-up
pp, gp = run()
print(json.dumps({"prompt_tokens_per_s": pp, "generation_tokens_per_s": gp}))
PY
)")
  seki_runs+=("$(target/release/seki --config "$cfg" llm bench --llm asis --json --prompt-tokens "$prompt_tokens" --tokens "$gen_tokens")")
  done
  llamacpp=$(printf '%s\n' "${llamacpp_runs[@]}" | python3 -c "$median")
  seki=$(printf '%s\n' "${seki_runs[@]}" | python3 -c "$median")
  python3 - "$llamacpp" "$seki" "$threads" "$model" "$prompt_tokens" "$gen_tokens" >>"$results" <<'PY'
import json, os, re, sys
l, s = (json.loads(x) for x in sys.argv[1:3])
threads, model, p, n = sys.argv[3:7]
print(f"model {model}, {threads} threads, prompt {p} tokens, generation {n} tokens, medians of {os.environ.get('ROUNDS', '3')} alternating runs", file=sys.stderr)
print(f"{'':12} {'prompt tok/s':>14} {'generation tok/s':>18}", file=sys.stderr)
for name, r in [("llama.cpp", l), ("seki", s)]:
    print(f"{name:12} {r['prompt_tokens_per_s']:14.1f} {r['generation_tokens_per_s']:18.1f}", file=sys.stderr)
base = os.path.basename(model)
quants = re.findall(r"(?i)(?:^|[.\-_])(q\d_k(?:_[sml])?|q\d_\d|iq\d\w*|f16|bf16|f32)(?=[.\-]|$)", base)
print(json.dumps({
    "model": base,
    "quant": quants[-1].upper() if quants else "unknown",
    "prompt_ratio": s["prompt_tokens_per_s"] / l["prompt_tokens_per_s"],
    "generation_ratio": s["generation_tokens_per_s"] / l["generation_tokens_per_s"],
}))
PY
done

python3 - "$results" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
print(json.dumps({"models": rows}))
PY
