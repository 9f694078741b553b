#!/usr/bin/env bash
# Side-by-side benchmarks of Omnibus and its peers on this machine (docs/benchmarks.md, "The
# harness").
#
#   scripts/bench-peers.sh                       # the quick matrix: a few minutes, 1 run each
#   RUNS=3 MESSAGES=500000 JOBS=20000 JOBS_BATCHED=200000 scripts/bench-peers.sh  # fuller
#   SYSTEMS="omnibus-http redis" WORKLOADS="jobs-one jobs-batched" scripts/bench-peers.sh
#
# Environment (defaults in brackets):
#   SYSTEMS    omnibus-http omnibus-kafka omnibus-nats omnibus-jetstream omnibus-amqp omnibus-redis
#              redis nats jetstream rabbitmq [all]; omnibus-jetstream, omnibus-amqp and
#              omnibus-redis drive the Omnibus NATS, AMQP and Redis doors with the jetstream,
#              rabbitmq and redis drivers (the same clients as the peers)
#   WORKLOADS  publish consume latency request-reply enqueue jobs-one jobs-one-chained jobs-batched
#              jobs-one-pipelined
#              fan-out routing [all]; jobs-one-chained (finish a job and take the next in one
#              request) is Omnibus HTTP's one-round-trip-per-job loop, what `omnibus worker`
#              does; jobs-one-pipelined (not in the default list; Omnibus HTTP and Redis) is the
#              same with the next jobs in hand: WORKER_PREFETCH such requests in flight per
#              worker, each on a connection of its own, so a completion's fsync overlaps the
#              next job; fan-out and routing are core NATS only (nats, omnibus-nats): messages
#              delivered per second to SUBSCRIBERS subscribers of one subject, and to one
#              subscriber while SUBSCRIPTIONS other wildcard subscriptions exist
#              key-value (not in the default list): Redis strings, SET and GET alternating,
#              PRODUCERS connections × IN_FLIGHT commands (redis, omnibus-redis)
#   SIZES      payload bytes, space-separated [100 1024]
#   RUNS       repetitions of each cell, alternating between the systems; the report takes
#              the median [1]
#   MESSAGES   messages per publish, consume or request-reply run [100000]
#   JOBS       jobs per one-at-a-time jobs run [5000]
#   ENQUEUE    jobs per enqueue run: Omnibus HTTP, requests of 1,000, 4 in flight per producer [1000000]
#   JOBS_BATCHED  jobs per batched jobs run [50000]
#   WORKERS    jobs workers, each on its own connection [4]
#   SUBSCRIBERS   fan-out subscribers, each on its own connection [10]
#   SUBSCRIPTIONS other subscriptions present in the routing workload [10000]
#   PRODUCERS  producers (publish) or consumers (consume) [4]
#   IN_FLIGHT  sends in flight per producer [32]
#   PREFETCH   consume workload, rabbitmq driver (rabbitmq, omnibus-amqp): basic.qos prefetch [100]
#   ACKS       consume workload, rabbitmq driver: multiple (one ack per batch) or each [multiple]
#   CLIENT     publish workload, rabbitmq and redis drivers: lean (the harness's own client,
#              a fraction of the library's CPU per message) or library (lapin, the redis
#              crate) [lean]
#   WORKER_PREFETCH jobs-one-pipelined: jobs each worker holds, one request in flight each [4]
#   SETTLE_SECONDS  before each system's runs, wait up to this long for the machine to be
#              quiet (under 10 % busy) [30]
#   RATE       messages per second in latency runs [1000]
#   LATENCY_SECONDS  how long a latency run sends [3]
#   DURATION   upper bound on one run, in seconds [30]
#   COMPLETIONS  Omnibus queue completions, fsync or batched [fsync]
#   REDIS_FSYNC  redis-server's appendfsync: everysec (its default) or always [everysec]
#   OUT        where results.jsonl, report.md and chart.svg go [target/bench-peers/<time>]
#
# What it does: installs redis-server, nats-server and rabbitmq-server with apt-get when a
# chosen system needs one that is missing; starts each peer on 127.0.0.1 with its own
# temporary data folder and ports no system service uses (Redis 16379, NATS 14222, RabbitMQ
# 15673 with its own epmd on 14369 and distribution port 25673); builds and starts Omnibus
# (release) on ports the kernel picks, read back from <data dir>/listeners.json; runs the
# matrix with target/release/omnibus-bench, each system's runs with the other brokers paused
# (SIGSTOP) and the machine quiet; writes the report; stops everything on exit,
# failure included. Durability as configured here:
#   omnibus-http, omnibus-kafka  fsync before every acknowledgement (stream fsync=always;
#                                queue completions as COMPLETIONS)
#   redis      appendonly yes, appendfsync $REDIS_FSYNC (everysec: an acknowledged write can be
#              lost for up to 1 s; always: fsync before each reply)
#   nats       none: core NATS keeps nothing and does not acknowledge a publish
#   jetstream  file storage; the server fsyncs every 2 minutes (sync_interval default)
#   rabbitmq   durable queue, persistent messages; confirmed after its (batched) fsync
set -euo pipefail
export CARGO_INCREMENTAL=0

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SYSTEMS=${SYSTEMS:-"omnibus-http omnibus-kafka omnibus-nats omnibus-jetstream omnibus-amqp omnibus-redis redis nats jetstream rabbitmq"}
WORKLOADS=${WORKLOADS:-"publish consume latency request-reply enqueue jobs-one jobs-one-chained jobs-batched fan-out routing"}
SIZES=${SIZES:-"100 1024"}
RUNS=${RUNS:-1}
MESSAGES=${MESSAGES:-100000}
JOBS=${JOBS:-5000}
ENQUEUE=${ENQUEUE:-1000000}
# Batched workers finish 5,000 jobs in a few hundredths of a second: too short to measure.
JOBS_BATCHED=${JOBS_BATCHED:-50000}
WORKERS=${WORKERS:-4}
SUBSCRIBERS=${SUBSCRIBERS:-10}
SUBSCRIPTIONS=${SUBSCRIPTIONS:-10000}
PRODUCERS=${PRODUCERS:-4}
IN_FLIGHT=${IN_FLIGHT:-32}
PREFETCH=${PREFETCH:-100}
WORKER_PREFETCH=${WORKER_PREFETCH:-4}
SETTLE_SECONDS=${SETTLE_SECONDS:-30}
ACKS=${ACKS:-multiple}
RATE=${RATE:-1000}
LATENCY_SECONDS=${LATENCY_SECONDS:-3}
DURATION=${DURATION:-30}
REDIS_FSYNC=${REDIS_FSYNC:-everysec}
COMPLETIONS=${COMPLETIONS:-fsync}
CLIENT=${CLIENT:-lean}
OUT=${OUT:-$ROOT/target/bench-peers/$(date -u +%Y%m%dT%H%M%SZ)}

REDIS_PORT=16379
NATS_PORT=14222
RABBITMQ_PORT=15673
RABBITMQ_DIST_PORT=25673
EPMD_PORT=14369

WORK=$(mktemp -d /tmp/bench-peers.XXXXXX)
PIDS=()
# The process of each broker (omnibus, redis, nats, rabbitmq: RabbitMQ's Erlang VM, not its
# wrapper script), paused while another system is measured.
declare -A BROKER_PID=()
PAUSABLE=()
STARTED_EPMD=0

cleanup() {
  local status=$?
  # A paused broker must run again to handle its SIGTERM.
  for pid in "${PAUSABLE[@]}"; do
    kill -CONT "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [ "$STARTED_EPMD" = 1 ]; then
    ERL_EPMD_PORT=$EPMD_PORT epmd -kill >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wants() { [[ " $SYSTEMS " == *" $1 "* ]]; }

# Waits until something accepts connections on 127.0.0.1:$1, for at most $2 seconds.
wait_for_port() {
  local port=$1 seconds=$2 name=$3
  for _ in $(seq $((seconds * 10))); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "$name did not listen on 127.0.0.1:$port within $seconds s" >&2
  return 1
}

install_missing() {
  local packages=()
  if wants redis && ! command -v redis-server >/dev/null; then packages+=(redis-server); fi
  if { wants nats || wants jetstream; } && ! command -v nats-server >/dev/null; then
    packages+=(nats-server)
  fi
  if wants rabbitmq && ! command -v rabbitmq-server >/dev/null; then
    packages+=(rabbitmq-server)
  fi
  if [ "${#packages[@]}" -gt 0 ]; then
    echo "installing ${packages[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${packages[@]}"
  fi
}

start_redis() {
  mkdir -p "$WORK/redis"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$WORK/redis" \
    --appendonly yes --appendfsync "${REDIS_FSYNC}" --save "" --daemonize no \
    --logfile "$WORK/redis/redis.log" &
  PIDS+=($!)
  BROKER_PID[redis]=$!
  wait_for_port "$REDIS_PORT" 20 redis
}

start_nats() {
  mkdir -p "$WORK/nats"
  nats-server -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$WORK/nats" -l "$WORK/nats/nats.log" &
  PIDS+=($!)
  BROKER_PID[nats]=$!
  wait_for_port "$NATS_PORT" 20 nats-server
}

# RabbitMQ in the foreground, as root, with everything under the temporary folder: its own
# HOME (so its own Erlang cookie), node name, mnesia and log folders, and its own epmd.
start_rabbitmq() {
  local base=$WORK/rabbitmq
  mkdir -p "$base/mnesia" "$base/log" "$base/home"
  echo "[]." >"$base/enabled_plugins"
  export RABBITMQ_NODENAME=bench@localhost
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
  export RABBITMQ_NODE_PORT=$RABBITMQ_PORT
  export RABBITMQ_DIST_PORT=$RABBITMQ_DIST_PORT
  export RABBITMQ_MNESIA_BASE=$base/mnesia
  export RABBITMQ_LOG_BASE=$base/log
  export RABBITMQ_ENABLED_PLUGINS_FILE=$base/enabled_plugins
  export RABBITMQ_PID_FILE=$base/rabbitmq.pid
  export ERL_EPMD_PORT=$EPMD_PORT
  ERL_EPMD_ADDRESS=127.0.0.1 epmd -daemon
  STARTED_EPMD=1
  HOME=$base/home /usr/lib/rabbitmq/bin/rabbitmq-server >"$base/log/foreground.log" 2>&1 &
  PIDS+=($!)
  wait_for_port "$RABBITMQ_PORT" 120 rabbitmq-server
  # The /usr/sbin wrapper would run it as the rabbitmq user, with another Erlang cookie.
  HOME=$base/home timeout 60 /usr/lib/rabbitmq/bin/rabbitmq-diagnostics -q ping >/dev/null
  BROKER_PID[rabbitmq]=$(cat "$RABBITMQ_PID_FILE" 2>/dev/null \
    || pgrep -n -f "beam.smp.*$RABBITMQ_NODENAME" || true)
}

# The broker a system's runs go to.
broker_of() {
  case $1 in
    omnibus-*) echo omnibus ;;
    nats | jetstream) echo nats ;;
    *) echo "$1" ;;
  esac
}

# Lets only the broker of system $1 run: the others are paused (SIGSTOP) for its runs. An
# idle broker beside the measured one is not idle on two cores: RabbitMQ's Erlang schedulers
# spin while waiting for work, and timers wake the others; measured, that cost Omnibus's
# AMQP publish 100 B about 40 % of its rate. Each system is measured with the machine to
# itself, the others resumed afterwards as they were.
only_running() {
  local wanted broker
  wanted=$(broker_of "$1")
  PAUSABLE=()
  for broker in "${!BROKER_PID[@]}"; do
    [ -n "${BROKER_PID[$broker]}" ] || continue
    PAUSABLE+=("${BROKER_PID[$broker]}")
    if [ "$broker" = "$wanted" ]; then
      kill -CONT "${BROKER_PID[$broker]}" 2>/dev/null || true
    else
      kill -STOP "${BROKER_PID[$broker]}" 2>/dev/null || true
    fi
  done
}

# Waits until the machine is quiet (under 10 % busy over one second), at most SETTLE_SECONDS,
# before each system's runs: a peer that answers on its port may still be starting
# (RabbitMQ's boot goes on after its port opens), and a broker that just took half a million
# persistent messages may still be writing them out (RabbitMQ's message store); the next
# system's runs would share the cores and the disk with it.
settle() {
  local waited=0 before after busy
  # What the last system wrote and did not fsync (RabbitMQ's message store writes lazily)
  # would otherwise be written back during the next system's fsyncs.
  sync
  while [ "$waited" -lt "$SETTLE_SECONDS" ]; do
    before=$(head -1 /proc/stat)
    sleep 1
    after=$(head -1 /proc/stat)
    busy=$(printf '%s\n%s\n' "$before" "$after" | awk '
      { idle[NR] = $5 + $6; total[NR] = 0; for (i = 2; i <= NF; i++) total[NR] += $i }
      END { t = total[2] - total[1]; print (t > 0 ? int(100 * (1 - (idle[2] - idle[1]) / t)) : 0) }')
    waited=$((waited + 1))
    if [ "$busy" -lt 10 ]; then
      echo "quiet after ${waited} s (${busy} % busy)"
      return
    fi
  done
  echo "still ${busy} % busy after ${SETTLE_SECONDS} s; running anyway" >&2
}

start_omnibus() {
  mkdir -p "$WORK/omnibus"
  "$ROOT/target/release/omnibus" serve --data-dir "$WORK/omnibus" \
    --http-listen 127.0.0.1:0 --kafka-listen 127.0.0.1:0 --nats-listen 127.0.0.1:0 --amqp-listen 127.0.0.1:0 \
    --redis-listen 127.0.0.1:0 \
    2>"$WORK/omnibus.log" &
  PIDS+=($!)
  BROKER_PID[omnibus]=$!
  for _ in $(seq 300); do
    [ -s "$WORK/omnibus/listeners.json" ] && break
    sleep 0.1
  done
  OMNIBUS_HTTP=$(sed -n 's/.*"http":"\([^"]*\)".*/\1/p' "$WORK/omnibus/listeners.json")
  OMNIBUS_KAFKA=$(sed -n 's/.*"kafka":"\([^"]*\)".*/\1/p' "$WORK/omnibus/listeners.json")
  OMNIBUS_NATS=$(sed -n 's/.*"nats":"\([^"]*\)".*/\1/p' "$WORK/omnibus/listeners.json")
  OMNIBUS_AMQP=$(sed -n 's/.*"amqp":"\([^"]*\)".*/\1/p' "$WORK/omnibus/listeners.json")
  OMNIBUS_REDIS=$(sed -n 's/.*"redis":"\([^"]*\)".*/\1/p' "$WORK/omnibus/listeners.json")
  if [ -z "$OMNIBUS_HTTP" ] || [ -z "$OMNIBUS_KAFKA" ]; then
    echo "omnibus did not write listeners.json; its log:" >&2
    cat "$WORK/omnibus.log" >&2
    return 1
  fi
}

# The omnibus-bench flags of one system: driver, address, label and durability.
system_flags() {
  case $1 in
    omnibus-http) echo "--system omnibus-http --address $OMNIBUS_HTTP --completions $COMPLETIONS" ;;
    omnibus-kafka) echo "--system kafka --label omnibus-kafka --address $OMNIBUS_KAFKA" ;;
    omnibus-nats) echo "--system nats --label omnibus-nats --address $OMNIBUS_NATS" ;;
    omnibus-jetstream) echo "--system jetstream --label omnibus-jetstream --address $OMNIBUS_NATS" ;;
    omnibus-amqp) echo "--system rabbitmq --label omnibus-amqp --address $OMNIBUS_AMQP" ;;
    omnibus-redis) echo "--system redis --label omnibus-redis --address $OMNIBUS_REDIS" ;;
    redis) echo "--system redis --address 127.0.0.1:$REDIS_PORT" ;;
    nats) echo "--system nats --address 127.0.0.1:$NATS_PORT" ;;
    jetstream) echo "--system jetstream --address 127.0.0.1:$NATS_PORT" ;;
    rabbitmq) echo "--system rabbitmq --address 127.0.0.1:$RABBITMQ_PORT" ;;
    *) echo "unknown system $1" >&2; return 1 ;;
  esac
}

# --broker-pid of the process serving SYSTEM, so each run records the broker's CPU per
# operation (RabbitMQ: the beam.smp process; nothing when it is not known).
broker_pid_flag() {
  local broker
  broker=$(broker_of "$1")
  [ -n "${BROKER_PID[$broker]:-}" ] && echo "--broker-pid ${BROKER_PID[$broker]}"
  return 0
}

# durability SYSTEM WORKLOAD
durability() {
  # RPC declares its request queue as pika's tutorial does (non-durable, transient
  # messages): neither RabbitMQ nor Omnibus fsyncs it, and replies go direct (reply-to).
  if [ "$2" = request-reply ]; then
    case $1 in
      omnibus-amqp | rabbitmq) echo "non-durable request queue: no fsync; direct reply-to"; return ;;
    esac
  fi
  case $1 in
    omnibus-http) echo "fsync per ack (completions: $COMPLETIONS)" ;;
    omnibus-kafka) echo "fsync per ack" ;;
    omnibus-nats) echo "none (core NATS: nothing stored)" ;;
    omnibus-jetstream) echo "fsync before the PubAck; acks committed before their answer" ;;
    omnibus-amqp) echo "fsync before the confirm; acks ride the next group commit" ;;
    omnibus-redis) echo "fsync before every XADD reply (group commit); XACKs committed before their reply" ;;
    redis) echo "AOF $REDIS_FSYNC" ;;
    nats) echo "none" ;;
    jetstream) echo "file, fsync every 2 min" ;;
    rabbitmq) echo "persistent, fsync before confirm" ;;
  esac
}

workload_flags() {
  case $1 in
    publish) echo "--workload publish --producers $PRODUCERS --in-flight $IN_FLIGHT --messages $MESSAGES --client $CLIENT" ;;
    consume) echo "--workload consume --producers $PRODUCERS --messages $MESSAGES --prefetch $PREFETCH --acks $ACKS" ;;
    latency) echo "--workload latency --rate $RATE --messages $((RATE * LATENCY_SECONDS))" ;;
    request-reply) echo "--workload request-reply --producers $PRODUCERS --in-flight $IN_FLIGHT --messages $MESSAGES" ;;
    enqueue) echo "--workload enqueue --producers $PRODUCERS --in-flight 4 --batch 1000 --messages $ENQUEUE" ;;
    jobs-one) echo "--workload jobs --mode one --workers $WORKERS --jobs $JOBS" ;;
    jobs-one-chained) echo "--workload jobs --mode one-chained --workers $WORKERS --jobs $JOBS" ;;
    jobs-one-pipelined) echo "--workload jobs --mode one-pipelined --worker-prefetch $WORKER_PREFETCH --workers $WORKERS --jobs $JOBS" ;;
    jobs-batched) echo "--workload jobs --mode batched --workers $WORKERS --jobs $JOBS_BATCHED" ;;
    fan-out) echo "--workload fan-out --subscribers $SUBSCRIBERS --messages $MESSAGES" ;;
    routing) echo "--workload routing --subscriptions $SUBSCRIPTIONS --messages $MESSAGES" ;;
    key-value) echo "--workload key-value --producers $PRODUCERS --in-flight $IN_FLIGHT --messages $MESSAGES" ;;
    *) echo "unknown workload $1" >&2; return 1 ;;
  esac
}

install_missing
echo "building omnibus and omnibus-bench (release)"
(cd "$ROOT" && cargo build --release -q -p omnibus-server -p omnibus-bench)
BENCH=$ROOT/target/release/omnibus-bench

if wants omnibus-http || wants omnibus-kafka || wants omnibus-nats || wants omnibus-jetstream \
  || wants omnibus-amqp || wants omnibus-redis; then start_omnibus; fi
if wants redis; then start_redis; fi
if wants nats || wants jetstream; then start_nats; fi
if wants rabbitmq; then start_rabbitmq; fi

mkdir -p "$OUT"
RESULTS=$OUT/results.jsonl
FAILED=0
# Runs alternate between the systems (run 1 of each, then run 2 of each…), so that what
# drifts during a pass (the virtual disk slows down after a few GB written) weighs on every
# system alike rather than on whichever runs last.
for workload in $WORKLOADS; do
  for size in $SIZES; do
    for run in $(seq "$RUNS"); do
      for system in $SYSTEMS; do
        only_running "$system"
        settle
        # shellcheck disable=SC2046 # the flag lists are meant to split into words
        if ! "$BENCH" run $(system_flags "$system") $(workload_flags "$workload") \
          --size "$size" --runs 1 --duration "$DURATION" $(broker_pid_flag "$system") \
          --durability "$(durability "$system" "$workload")" --json "$RESULTS"; then
          echo "FAILED: $system $workload $size B (run $run)" >&2
          FAILED=1
        fi
      done
    done
  done
done

if [ -s "$RESULTS" ]; then
  "$BENCH" report "$RESULTS" --out "$OUT"
  echo "results: $RESULTS; report: $OUT/report.md; chart: $OUT/chart.svg"
fi
exit "$FAILED"
