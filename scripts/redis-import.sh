#!/usr/bin/env bash
# Copies every key of a running redis-server into Omnibus's Redis door: strings, lists,
# hashes (with field TTLs from Redis 7.4), sets, sorted sets and streams with their consumer
# groups and pending entries, each with its TTL. It runs MIGRATE … COPY on the source, a
# hundred keys at a time, so the data goes from the source straight to Omnibus and the
# source keeps its keys (Redis's own way of moving keys; docs/redis.md, "DUMP, RESTORE and
# MIGRATE").
#
#   scripts/redis-import.sh SOURCE_HOST SOURCE_PORT OMNIBUS_HOST OMNIBUS_PORT [REPLACE]
#
# REPLACE overwrites keys Omnibus already has (else such a key is reported and left). The
# source must reach OMNIBUS_HOST:OMNIBUS_PORT (it connects there). Env: SOURCE_PASSWORD
# (the source's `requirepass`), PATTERN (a SCAN MATCH pattern, default every key), REDIS_CLI.
# Keys are read with `redis-cli --scan`, one a line: a key with a newline in its name is not
# moved. Prints how many keys were copied; exits non-zero if the source refused a batch.
set -euo pipefail
source_host="$1"; source_port="$2"; target_host="$3"; target_port="$4"; replace="${5:-}"
cli="${REDIS_CLI:-redis-cli}"
source=("$cli" -h "$source_host" -p "$source_port")
if [ -n "${SOURCE_PASSWORD:-}" ]; then
  source+=(--no-auth-warning -a "$SOURCE_PASSWORD")
fi
options=(COPY)
[ "${replace^^}" = REPLACE ] && options+=(REPLACE)
copied=0; failed=0
migrate() { # keys…
  local answer
  answer=$("${source[@]}" MIGRATE "$target_host" "$target_port" "" 0 60000 "${options[@]}" KEYS "$@" 2>&1)
  case "$answer" in
    OK) copied=$((copied + $#)) ;;
    NOKEY) ;;
    *) echo "redis-import: a batch of $# keys: $answer" >&2; failed=1 ;;
  esac
}
batch=()
while IFS= read -r key; do
  batch+=("$key")
  if [ "${#batch[@]}" -ge 100 ]; then
    migrate "${batch[@]}"; batch=()
  fi
done < <("${source[@]}" --scan --pattern "${PATTERN:-*}")
[ "${#batch[@]}" -gt 0 ] && migrate "${batch[@]}"
echo "redis-import: $copied keys copied from $source_host:$source_port to $target_host:$target_port"
exit "$failed"
