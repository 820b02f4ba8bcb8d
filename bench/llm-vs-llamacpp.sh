#!/usr/bin/env bash
# Prompt and generation speed of the same GGUF file in llama.cpp (through its
# PyPI package llama-cpp-python, built from source into target/llamacpp-venv
# on first use: allow several minutes) and in seki (as shipped, and
# re-quantized to Q8_0), with the same number of threads. Prints both and
# the ratio seki / llama.cpp.
#
#   bench/llm-vs-llamacpp.sh [MODEL.gguf] [PROMPT_TOKENS] [GEN_TOKENS]
#
# THREADS (default: all cores) sets the thread count of both.
set -euo pipefail
cd "$(dirname "$0")/.."

model=${1:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
prompt_tokens=${2:-128}
gen_tokens=${3:-64}
threads=${THREADS:-$(nproc)}

[ -f "$model" ] || scripts/setup.sh
model=$(realpath "$model")

venv=target/llamacpp-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import llama_cpp' 2>/dev/null; then
  echo "bench: building llama-cpp-python from source into $venv (several minutes)..." >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip >&2
  CMAKE_ARGS="-DGGML_NATIVE=ON" "$venv/bin/pip" install --quiet llama-cpp-python >&2
fi

llamacpp=$("$venv/bin/python" - "$model" "$prompt_tokens" "$gen_tokens" "$threads" <<'PY'
import json, sys, time
import numpy as np
from llama_cpp import Llama

path, p, n, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
llm = Llama(model_path=path, n_ctx=1024, n_batch=512, n_threads=threads,
            n_threads_batch=threads, verbose=False)
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
)

cargo build --release --quiet
cfg=$(mktemp --suffix .toml)
trap 'rm -f "$cfg"' EXIT
cat > "$cfg" <<TOML
[llm.profiles.asis]
kind = "gguf"
model = "$model"
requantize = "none"
[llm.profiles.q8]
kind = "gguf"
model = "$model"
requantize = "q8_0"
TOML
export RAYON_NUM_THREADS=$threads
seki_asis=$(target/release/seki --config "$cfg" llm bench --llm asis --json --prompt-tokens "$prompt_tokens" --tokens "$gen_tokens")
seki_q8=$(target/release/seki --config "$cfg" llm bench --llm q8 --json --prompt-tokens "$prompt_tokens" --tokens "$gen_tokens")

python3 - "$llamacpp" "$seki_asis" "$seki_q8" "$threads" "$model" "$prompt_tokens" "$gen_tokens" <<'PY'
import json, sys
l, a, q = (json.loads(x) for x in sys.argv[1:4])
threads, model, p, n = sys.argv[4:8]
print(f"model {model}, {threads} threads, prompt {p} tokens, generation {n} tokens")
print(f"{'':28} {'prompt tok/s':>14} {'generation tok/s':>18}")
for name, r in [("llama.cpp", l), ("seki (as shipped)", a), ("seki (re-quantized Q8_0)", q)]:
    print(f"{name:28} {r['prompt_tokens_per_s']:14.1f} {r['generation_tokens_per_s']:18.1f}")
for name, r in [("as shipped", a), ("Q8_0", q)]:
    print(f"ratio seki {name} / llama.cpp: prompt {r['prompt_tokens_per_s'] / l['prompt_tokens_per_s']:.2f}, "
          f"generation {r['generation_tokens_per_s'] / l['generation_tokens_per_s']:.2f}")
PY
