#!/usr/bin/env bash
# Fuzz every parser of seki on stable Rust: N inputs per target (default
# 1,000,000), seeded from real files and mutated deterministically (see
# fuzz/src/lib.rs). Prints, per target, the inputs run, accepted and
# rejected, and the panics (each panicking input is saved under
# target/fuzz-crashes/TARGET/ and replayed with
# `target/fuzz/seki-fuzz --target TARGET --replay FILE`). Exits non-zero on
# any panic. Not part of the test command (which runs a 2,000-input smoke
# of every target: fuzz/tests/smoke.rs).
#
#   bench/fuzz.sh [N] [--target NAME]... [--seed S]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
shift || true
# The release build with overflow checks and debug assertions (profile.fuzz).
CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1} cargo build --locked --profile fuzz -p seki-fuzz
exec target/fuzz/seki-fuzz --inputs "$n" --crashes target/fuzz-crashes "$@"
