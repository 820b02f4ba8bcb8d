#!/usr/bin/env bash
# `seki serve` under load: the wall time of a session (REA on the
# NAS-Bench-201 table, 2 local workers, BUDGET evaluations, default 100)
# alone, and with 200 live pages open on `seki serve` beside it (each loads
# the page at once, then listens to /events, whose events carry the live
# section, and loads the whole page again at most every 10 s, as the page's
# script does), alternated ROUNDS times (default 2). Any page load that
# fails or comes back incomplete fails the run. Prints one JSON line: the
# wall times, their means, the page loads and events served, and the CPU
# seconds the server used.
#
#   bench/serve-load.sh            BUDGET=200 ROUNDS=3 bench/serve-load.sh
#
# docs/serve.md has the figures.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --locked --test serve serve_load_beside_a_session -- --ignored --nocapture 2>&1 |
  grep '^{"' || { echo "the measurement failed" >&2; exit 1; }
