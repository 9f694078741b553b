#!/usr/bin/env bash
# `omnibus worker` throughput: starts `omnibus serve` on a fresh data folder, enqueues JOBS
# jobs (about 100-byte payloads, 1,000 per request as `omnibus job enqueue` sends them), runs
# WORKERS `omnibus worker` processes with `--max-jobs JOBS/WORKERS` and the given worker
# arguments, and prints jobs/s from the workers' start to the last one's exit.
#
#   ./scripts/worker-bench.sh BINARY JOBS WORKERS DATA_PARENT [worker args...]
#   ./scripts/worker-bench.sh target/release/omnibus 4000 1 /tmp --exec true --prefetch 64
#
# DATA_PARENT on a tmpfs (/dev/shm) takes fsync out of the figures. Logs go to $LOGS
# (default: a temporary folder, printed).
set -euo pipefail
BIN=$1; JOBS=$2; WORKERS=$3; PARENT=$4; shift 4
LOGS=${LOGS:-$(mktemp -d)}
DATA=$(mktemp -d -p "$PARENT")
PORT=$((20000 + RANDOM % 20000))
URL=http://127.0.0.1:$PORT
"$BIN" serve --data-dir "$DATA" --http-listen "127.0.0.1:$PORT" \
    --kafka-listen "127.0.0.1:$((PORT + 1))" >"$LOGS/serve.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 100); do curl -sf "$URL/health" >/dev/null && break; sleep 0.1; done
"$BIN" --server "$URL" queue create bench >/dev/null
PAYLOAD=$(printf 'x%.0s' $(seq 96))
seq "$JOBS" | sed "s/^/$PAYLOAD/" | "$BIN" --server "$URL" job enqueue bench - >/dev/null
START=$(date +%s.%N)
PIDS=()
for w in $(seq "$WORKERS"); do
    "$BIN" --server "$URL" worker bench --name "w$w" --max-jobs $((JOBS / WORKERS)) "$@" \
        2>"$LOGS/worker-$w.log" &
    PIDS+=($!)
done
for pid in "${PIDS[@]}"; do wait "$pid"; done
END=$(date +%s.%N)
grep -h "stopped" "$LOGS"/worker-*.log | sed 's/.*stopped/stopped/' | sort | uniq -c
echo "logs in $LOGS"
python3 -c "print(f'{$JOBS / ($END - $START):.0f} jobs/s over {$END - $START:.2f} s')"
