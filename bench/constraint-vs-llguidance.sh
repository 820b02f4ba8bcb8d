#!/usr/bin/env bash
# seki's grammar constraint against llguidance (the structured-output engine
# of llama.cpp, vLLM and SGLang) on the same grammars, vocabularies and
# texts: the DARTS compact notation's regular expression (what seki's agent
# constrains replies with) and the JSON schema of the DARTS JSON form, each
# walked along every DARTS architecture of the knowledge base as seki's
# tokenizer splits it. At every step both engines compute the mask of
# allowed tokens; the masks must agree (the count of disagreements is
# printed) and their times are compared. Prints a block per model and
# grammar, and as the last line one JSON object:
#
#   {"llguidance": "1.9.1", "rounds": N, "cases": [{"model": ..., "grammar": ...,
#     "fresh_ratio": ..., "as_used_ratio": ..., ...}, ...]}
#
# with the ratios llguidance / seki of the mean mask time per step (above 1:
# seki is faster). `fresh`: no mask cache in either engine; `as used`: each
# with its cache, as in generation.
#
#   bench/constraint-vs-llguidance.sh [MODEL.gguf ...]
#
# Default models: SmolLM2-135M (49,152 tokens) and Qwen2.5-Coder-0.5B
# (151,665 tokens) from models/ (scripts/setup.sh fetches them). ROUNDS
# (default 3) timed passes after one untimed pass. One thread: both
# engines compute a mask on the calling thread. SHOW_ALL=1 prints every
# token the two masks disagree on (else the first five per grammar), to
# stderr.
#
# The comparison program (bench/constraint-vs-llguidance/) is its own cargo
# project, built on first use (several minutes): llguidance is not one of
# seki's dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -gt 0 ]; then
  models=("$@")
else
  models=(models/SmolLM2-135M-Instruct.Q4_1.gguf
          models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf)
fi
for m in "${models[@]}"; do
  [ -f "$m" ] || { echo "bench: $m is missing (scripts/setup.sh fetches the default models)" >&2; exit 1; }
done
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target/llg}
cargo build --release --quiet --manifest-path bench/constraint-vs-llguidance/Cargo.toml
"$CARGO_TARGET_DIR/release/constraint-vs-llguidance" --rounds "${ROUNDS:-3}" \
  --kb knowledge/architectures.jsonl "${models[@]}"
