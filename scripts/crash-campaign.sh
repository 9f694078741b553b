#!/usr/bin/env bash
# The long crash campaign: the kill -9 tests with many cycles each, one after the other, then
# one summary line per test (cycles, records acknowledged, records lost).
#
#   ./scripts/crash-campaign.sh          # 100 cycles of each test
#   ./scripts/crash-campaign.sh 5        # 5 cycles of each (a quick check that it all runs)
#   OMNIBUS_KILL9_CYCLES=300 ./scripts/crash-campaign.sh   # a per-test count wins
#
# The tests, and the variable that sets each one's cycle count:
#   crash_http  OMNIBUS_CRASH_CYCLES      HTTP publishes under load, kill -9, restart, verify
#   crash_jobs  OMNIBUS_JOB_CRASH_CYCLES  jobs enqueued and worked, kill -9, restart, verify
#   test_kill9  OMNIBUS_KILL9_CYCLES      Kafka produce (confluent-kafka, acks=all), kill -9
# `OMNIBUS_CRASH_SEED` / `OMNIBUS_KILL9_SEED` replay a failed run (each test prints its seed).
#
# Installs what it needs like scripts/client-tests.sh (it runs that script for test_kill9:
# kcat and python3-venv from the OS packages when missing, the pinned Python clients in .venv).
# Every test runs even when an earlier one failed; the full output of each is kept in
# target/crash-campaign/<time>/. Exit status 0 only when every test passed.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"

log() { printf '\n==> %s\n' "$*"; }

cycles="${1:-100}"
case "$cycles" in
  '' | *[!0-9]* | 0) echo "usage: $0 [cycles per test, a positive count]" >&2; exit 2 ;;
esac
export OMNIBUS_CRASH_CYCLES="${OMNIBUS_CRASH_CYCLES:-$cycles}"
export OMNIBUS_JOB_CRASH_CYCLES="${OMNIBUS_JOB_CRASH_CYCLES:-$cycles}"
export OMNIBUS_KILL9_CYCLES="${OMNIBUS_KILL9_CYCLES:-$cycles}"
for name in OMNIBUS_CRASH_CYCLES OMNIBUS_JOB_CRASH_CYCLES OMNIBUS_KILL9_CYCLES; do
  case "${!name}" in
    '' | *[!0-9]* | 0) echo "error: $name=${!name} is not a positive count" >&2; exit 2 ;;
  esac
done
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export RUST_BACKTRACE=1

target_dir="${CARGO_TARGET_DIR:-$repo/target}"
case "$target_dir" in /*) ;; *) target_dir="$repo/$target_dir" ;; esac
out="$target_dir/crash-campaign/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"

log "building the broker and the crash tests"
cargo build -p omnibus-server
cargo test -p omnibus-server --no-run --test crash_http --test crash_jobs

failed=()

# Runs "$@" with its output shown and kept in $out/<name>.log; records a failure by name.
run_test() {
  local name="$1"
  shift
  log "$name: $*"
  local status=0
  "$@" 2>&1 | tee "$out/$name.log" || status=$?
  if [ "$status" != 0 ]; then
    failed+=("$name (exit $status)")
  fi
}

run_test crash_http cargo test -p omnibus-server --test crash_http -- --exact --nocapture \
  acknowledged_records_survive_repeated_kill_9_under_load

run_test crash_jobs cargo test -p omnibus-server --test crash_jobs -- --exact --nocapture \
  acknowledged_jobs_survive_kill_9_and_completed_jobs_never_run_again

# A cycle takes a few seconds (produce, kill, restart, read everything back); the default
# per-test bound of client-tests.sh (180 s) is meant for the 3-cycle default.
kill9_seconds=$((300 + 30 * OMNIBUS_KILL9_CYCLES))
run_test test_kill9 env \
  OMNIBUS_CLIENT_TEST_TIMEOUT="${OMNIBUS_CLIENT_TEST_TIMEOUT:-$kill9_seconds}" \
  OMNIBUS_CLIENT_SUITE_TIMEOUT="${OMNIBUS_CLIENT_SUITE_TIMEOUT:-$((kill9_seconds + 600))}" \
  bash scripts/client-tests.sh -k kill9 -s

log "summary (full output in $out)"
for name in crash_http crash_jobs test_kill9; do
  line="$(grep -h '^crash summary:' "$out/$name.log" | tail -n 1 || true)"
  echo "${line:-crash summary: $name: no summary line (the test failed or did not run)}"
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "error: failed: ${failed[*]}" >&2
  exit 1
fi
log "crash campaign passed"
