#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what it needs, then runs formatting,
# lints, every test, and (when a nightly toolchain is present) a short fuzzing pass.
#
#   ./scripts/test.sh            # everything
#   OMNIBUS_FUZZ_RUNS=0 ./scripts/test.sh      # skip the fuzzing pass
#
# The fuzzing pass is deterministic (fixed seed, fixed number of runs) so CI stays
# reproducible; for a real fuzzing session run `cargo +nightly fuzz run --fuzz-dir fuzz TARGET`.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export RUST_BACKTRACE=1
# One full build, never rebuilt piecemeal: incremental caches would only cost disk (8 GB here).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

log "toolchain"
cargo --version
rustc --version
rustup component add rustfmt clippy >/dev/null 2>&1 || true

# The rdkafka dev-dependency builds its bundled librdkafka with a C/C++ toolchain.
missing=()
for tool in gcc g++ make pkg-config; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing build tools (missing: ${missing[*]})"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q build-essential pkg-config
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  log "installing cargo-nextest"
  cargo install cargo-nextest --locked
fi

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

log "tests"
cargo build --workspace --all-targets
cargo nextest run --workspace --no-fail-fast

log "real-client compatibility suites (Python clients, kcat)"
bash scripts/client-tests.sh

fuzz_runs="${OMNIBUS_FUZZ_RUNS:-4000}"
if [ "$fuzz_runs" != "0" ] && rustup toolchain list | grep -q '^nightly'; then
  if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz"
    cargo install cargo-fuzz --locked || true
  fi
  if cargo +nightly fuzz --version >/dev/null 2>&1; then
    for target in $(cargo +nightly fuzz list --fuzz-dir fuzz); do
      log "fuzzing $target: $fuzz_runs runs, seed 1"
      cargo +nightly fuzz run --fuzz-dir fuzz "$target" -- -seed=1 -runs="$fuzz_runs" -rss_limit_mb=2048
    done
  else
    log "cargo-fuzz unavailable; the fuzz bodies still ran as proptests above"
  fi
else
  log "no nightly toolchain (or OMNIBUS_FUZZ_RUNS=0); the fuzz bodies ran as proptests above"
fi

log "all checks passed"
