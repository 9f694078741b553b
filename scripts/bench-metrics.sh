#!/usr/bin/env bash
# What metrics cost the broker (docs/benchmarks.md, "Metrics"). Two measurements:
#
#   scrape   1,000 partitions and 1,000 queues (each queue holding one message); the broker's
#            CPU seconds over MEASURE_SECONDS without scraping, then as long with GET /metrics
#            every second. The difference, per second, is the share of a core scraping costs.
#            One scrape is kept in OUT/scrape.txt (its size and series count are printed).
#   publish  omnibus-bench's publish workload against a broker with metrics recording on and
#            against one with it off (`--metrics-enabled false`), RUNS times each, alternating,
#            a fresh data folder per run.
#
#   scripts/bench-metrics.sh                         # both, release build, ~5 minutes
#   PART=scrape MEASURE_SECONDS=10 scripts/bench-metrics.sh  # one part, shorter
#   PROFILE=debug PART=scrape PARTITIONS=100 QUEUES=50 MEASURE_SECONDS=5 scripts/bench-metrics.sh  # smoke
#
# Environment (defaults in brackets):
#   PART        scrape, publish or all [all]
#   PROFILE     release or debug: which build of omnibus (and omnibus-bench) to run [release]
#   PARTITIONS  partitions in all, as streams of 100 partitions (fewer for the last) [1000]
#   QUEUES      queues [1000]
#   MEASURE_SECONDS  length of each CPU measurement [60]
#   RUNS        publish runs per side [3]
#   MESSAGES    messages per publish run [200000]
#   PRODUCERS   publish connections [4]
#   IN_FLIGHT   sends in flight per producer [32]
#   SIZE        payload bytes [100]
#   OUT         where the results go [target/bench-metrics/<time>]
set -euo pipefail
export CARGO_INCREMENTAL=0

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PART=${PART:-all}
PROFILE=${PROFILE:-release}
PARTITIONS=${PARTITIONS:-1000}
QUEUES=${QUEUES:-1000}
SECONDS_MEASURED=${MEASURE_SECONDS:-60}
RUNS=${RUNS:-3}
MESSAGES=${MESSAGES:-200000}
PRODUCERS=${PRODUCERS:-4}
IN_FLIGHT=${IN_FLIGHT:-32}
SIZE=${SIZE:-100}
OUT=${OUT:-$ROOT/target/bench-metrics/$(date -u +%Y%m%dT%H%M%SZ)}
BIN=$ROOT/target/$PROFILE

mkdir -p "$OUT"
WORK=$(mktemp -d)
PID=""
stop_omnibus() {
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
    kill "$PID"
    wait "$PID" 2>/dev/null || true
  fi
  PID=""
}
cleanup() {
  stop_omnibus
  rm -rf "$WORK"
}
trap cleanup EXIT

build_flag=()
[ "$PROFILE" = release ] && build_flag=(--release)
packages=(-p omnibus-server)
[ "$PART" != scrape ] && packages+=(-p omnibus-bench)
cargo build "${build_flag[@]}" "${packages[@]}" --manifest-path "$ROOT/Cargo.toml"

# start_omnibus DIR METRICS_ENABLED: starts the broker on ports the kernel picks; sets PID, HTTP.
start_omnibus() {
  mkdir -p "$1"
  "$BIN/omnibus" serve --data-dir "$1" --metrics-enabled "$2" \
    --http-listen 127.0.0.1:0 --kafka-listen 127.0.0.1:0 --nats-listen off --amqp-listen off \
    2>"$1.log" &
  PID=$!
  for _ in $(seq 300); do
    [ -s "$1/listeners.json" ] && break
    sleep 0.1
  done
  HTTP=$(sed -n 's/.*"http":"\([^"]*\)".*/\1/p' "$1/listeners.json")
  if [ -z "$HTTP" ]; then
    echo "omnibus did not write listeners.json; its log:" >&2
    cat "$1.log" >&2
    return 1
  fi
}

# cpu_seconds PID: user + system CPU time of the process so far.
cpu_seconds() {
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%.2f\n", ($12 + $13) / hz }' "/proc/$1/stat"
}

post() {
  curl -sf -o /dev/null -X POST -H 'content-type: application/json' -d "$2" "http://$HTTP$1"
}

scrape_part() {
  start_omnibus "$WORK/scrape" true
  local streams=$(((PARTITIONS + 99) / 100)) left=$PARTITIONS
  for i in $(seq "$streams"); do
    local count=$((left < 100 ? left : 100))
    post /v1/streams "{\"name\":\"bench-$i\",\"partitions\":$count}"
    left=$((left - count))
  done
  for i in $(seq "$QUEUES"); do
    post /v1/queues "{\"name\":\"queue-$i\"}"
    post "/v1/queues/queue-$i/messages" '{"value":"waiting"}'
  done
  local size series
  curl -sf "http://$HTTP/metrics" >"$OUT/scrape.txt"
  size=$(wc -c <"$OUT/scrape.txt")
  series=$(grep -vc '^#' "$OUT/scrape.txt" || true)
  local one
  one=$(curl -sf -o /dev/null -w '%{time_total}' "http://$HTTP/metrics")
  sleep 2
  local start end idle scraping
  start=$(cpu_seconds "$PID")
  sleep "$SECONDS_MEASURED"
  end=$(cpu_seconds "$PID")
  idle=$(echo "$end - $start" | bc)
  start=$end
  local scrapes=()
  for _ in $(seq "$SECONDS_MEASURED"); do
    curl -sf -o /dev/null "http://$HTTP/metrics" &
    scrapes+=($!)
    sleep 1
  done
  # Only the scrapes: a bare `wait` would wait for the broker too.
  wait "${scrapes[@]}"
  end=$(cpu_seconds "$PID")
  scraping=$(echo "$end - $start" | bc)
  stop_omnibus
  {
    echo "scrape: $PARTITIONS partitions, $QUEUES queues, $SECONDS_MEASURED s each, profile $PROFILE"
    echo "  /metrics: $size bytes, $series series, one scrape ${one}s (curl time_total)"
    echo "  broker CPU idle:     ${idle}s"
    echo "  broker CPU scraping: ${scraping}s"
    echo "  cost: $(echo "scale=3; ($scraping - $idle) * 100 / $SECONDS_MEASURED" | bc) % of a core ($(echo "scale=2; ($scraping - $idle) * 1000 / $SECONDS_MEASURED" | bc) ms of CPU per scrape)"
  } | tee -a "$OUT/summary.txt"
}

publish_part() {
  for run in $(seq "$RUNS"); do
    for enabled in true false; do
      start_omnibus "$WORK/publish-$run-$enabled" "$enabled"
      "$BIN/omnibus-bench" run --system omnibus-http --address "$HTTP" \
        --label "omnibus-metrics-$([ "$enabled" = true ] && echo on || echo off)" \
        --workload publish --producers "$PRODUCERS" --in-flight "$IN_FLIGHT" \
        --messages "$MESSAGES" --size "$SIZE" --runs 1 --json "$OUT/publish.jsonl" \
        | tee -a "$OUT/summary.txt"
      stop_omnibus
    done
  done
  "$BIN/omnibus-bench" report "$OUT/publish.jsonl" --out "$OUT/report"
  echo "publish report: $OUT/report" | tee -a "$OUT/summary.txt"
}

case $PART in
  scrape) scrape_part ;;
  publish) publish_part ;;
  all) scrape_part; publish_part ;;
  *) echo "PART is scrape, publish or all" >&2; exit 2 ;;
esac
echo "results: $OUT/summary.txt"
