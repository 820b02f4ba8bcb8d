#!/usr/bin/env bash
# The executor figures of docs/parallel.md ("Measured"):
#   1. local pool: wall time of the same 8 Candle evaluations (random search,
#      seed 0, NAS-Bench-201 cells, the shipped Candle proxy) with 1 worker x
#      2 threads and with 2 workers x 1 thread;
#   2. Slurm (needs a cluster: scripts/slurm-cluster.sh start): per-job
#      overhead (submit -> worker start -> result read) and the wall time of
#      a session of 100 NAS-Bench-201 table evaluations with 4 jobs in
#      flight, against the local executor with 4 workers and with 1;
#   3. search quality with N in flight against N = 1 on the table, at equal
#      evaluations (seki bench nb201 --in-flight, 100 seeds, virtual clock).
#
#   bench/executor.sh [1|2|3 ...]    (default: all)
#
# SEKI (default target/release/seki) and TABLE override the binary and table.
set -euo pipefail
cd "$(dirname "$0")/.."
seki=${SEKI:-$PWD/target/release/seki}
table=${TABLE:-$PWD/../shared/benchmarks/nb201/nb201-cifar10.csv}
[ -x "$seki" ] || cargo build --release --bin seki
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
parts=("$@")
[ ${#parts[@]} -eq 0 ] && parts=(1 2 3)

config() { # NAME EXTRA-TOML: a config of the defaults, the table and EXTRA
  printf '[evaluator.nb201]\ntable = "%s"\n%s\n' "$table" "$2" >"$work/$1.toml"
}

elapsed() { # RUN_DIR: the session's wall time in seconds
  python3 -c 'import json,sys; print("%.1f" % json.load(open(sys.argv[1] + "/summary.json"))["elapsed_seconds"])' "$1"
}

for part in "${parts[@]}"; do
  case $part in
  1)
    candle=$(sed -n '/^\[evaluator.candle\]/,/^\[/p' config.toml | grep -v '^\[executor' | grep -v '^threads')
    for setup in "1 2" "2 1"; do
      set -- $setup
      config "pool-$1" "$candle
threads = $2
[search]
space = \"nb201\"
evaluator = \"candle\"
[executor]
workers = $1"
      "$seki" --config "$work/pool-$1.toml" search --strategy random --seed 0 --budget 8 \
        --kb-records none --run-dir "$work/pool-$1" -q >/dev/null
      echo "candle, 8 evaluations, $1 worker(s) x $2 thread(s): $(elapsed "$work/pool-$1") s"
    done
    python3 - "$work/pool-1" "$work/pool-2" <<'PY'
import json, sys
def archs(d):
    return sorted(json.loads(l)["arch"] for l in open(d + "/journal.jsonl") if '"event":"evaluation"' in l)
print("same 8 architectures:", archs(sys.argv[1]) == archs(sys.argv[2]))
PY
    ;;
  2)
    config slurm "[executor.slurm]
poll_seconds = 10.0"
    "$seki" --config "$work/slurm.toml" search --executor slurm --workers 4 --strategy rea --seed 0 \
      --budget 100 --kb-records none --run-dir "$work/slurm" -q >/dev/null
    "$seki" --config "$work/slurm.toml" search --workers 4 --strategy rea --seed 0 \
      --budget 100 --kb-records none --run-dir "$work/local4" -q >/dev/null
    "$seki" --config "$work/slurm.toml" search --strategy rea --seed 0 \
      --budget 100 --kb-records none --run-dir "$work/local1" -q >/dev/null
    echo "nb201 table, 100 evaluations: slurm x4 $(elapsed "$work/slurm") s, local x4 $(elapsed "$work/local4") s, local x1 $(elapsed "$work/local1") s"
    python3 - "$work/slurm" <<'PY'
import json, statistics as st, sys
ev = [json.loads(l) for l in open(sys.argv[1] + "/journal.jsonl")]
ev = [e for e in ev if e["event"] == "evaluation"]
q = [e["placement"]["queued_seconds"] for e in ev]
w = [e["placement"]["worker_seconds"] for e in ev]
r = [e["eval_seconds"] - a - b for e, a, b in zip(ev, q, w)]
t = [e["eval_seconds"] for e in ev]
f = lambda xs: "median %.2f s, mean %.2f s, max %.2f s" % (st.median(xs), st.mean(xs), max(xs))
print("slurm per job: submit -> worker start", f(q))
print("               worker (table load + lookup)", f(w))
print("               result written -> read", f(r))
print("               submit -> result read", f(t))
PY
    ;;
  3)
    "$seki" bench nb201 --table "$table" --strategy rea,random --in-flight 1,2,4,8 --budget 200 --seeds 100
    ;;
  esac
done
