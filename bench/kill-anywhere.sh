#!/usr/bin/env bash
# Crash anywhere (issue 12; docs/reliability.md "Crash anywhere"): runs tests/kill_anywhere.rs
# with 20 SIGKILLs per variant (a seki session on the NAS-Bench-201 table
# with recorded LLM replies, 30 evaluations; a Candle session with its
# evaluation worker, 5 evaluations with one contender repeat), each resumed
# into the same knowledge base and compared with the uninterrupted run, and
# prints `kills survived: n/20` per variant.
#
#   bench/kill-anywhere.sh [KILLS] [SEED]     (default 20 kills, seed 12)
#
# PROFILE=dev runs the debug build instead of --release (no release build
# needed; the dependencies and kernels are optimised in both).
set -euo pipefail
cd "$(dirname "$0")/.."
kills=${1:-20}
seed=${2:-12}
profile=()
[ "${PROFILE:-release}" = release ] && profile=(--release)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
SEKI_KILLS=$kills SEKI_KILL_SEED=$seed cargo test "${profile[@]}" --test kill_anywhere \
  killed_anywhere -- --nocapture --test-threads=1 >"$log" 2>&1 || status=$?
grep -E 'kills survived' "$log" || true
if [ $status -ne 0 ]; then
  echo "--- failures ---"
  grep -vE '^\s+[0-9]+: |^\s+at ' "$log" | tail -60
fi
exit $status
