#!/usr/bin/env bash
# Real-client compatibility suites: the actual Kafka client libraries and tools against a
# freshly started `omnibus serve` (see tests/clients/README.md).
#
# Idempotent, for a fresh Debian machine (as root, or with sudo): installs kcat and the venv
# module from the OS packages when they are missing, creates .venv at the repo root with the
# pinned Python clients from tests/clients/requirements.txt, builds the broker and runs pytest.
# A warm machine skips every install step.
#
#   ./scripts/client-tests.sh                      # the whole suite
#   ./scripts/client-tests.sh -k kcat -x           # extra arguments go to pytest
#   OMNIBUS_CLIENT_TEST_TIMEOUT=300 ./scripts/client-tests.sh   # per-test timeout, seconds
#   OMNIBUS_KAFKA_DEBUG=protocol,broker ./scripts/client-tests.sh  # librdkafka debug logs
#   OMNIBUS_LOG=debug ./scripts/client-tests.sh     # broker log level (shown for failed tests)
#
# Exit status: 0 only when pytest ran tests and all of them passed (pytest's "no tests
# collected", exit 5, is a failure here).
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"

log() { printf '\n==> %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" = 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    echo "error: need root (or sudo) to run: $*" >&2
    return 1
  fi
}

# ---------------------------------------------------------------------------------------------
# OS packages: kcat, chromium with chromium-driver, and the venv module for the system python3.

python="${OMNIBUS_CLIENT_TEST_PYTHON:-python3}"
missing=()
command -v kcat >/dev/null 2>&1 || missing+=(kcat)
# Node and npm, for the Node clients (amqplib) in tests/clients/node.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
# redis-cli, for test_ioredis.py's redis-cli checks.
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
# redis-server and nats-server, the peers test_redis_differential.py and
# test_nats_differential.py compare the doors' answers with.
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v nats-server >/dev/null 2>&1 || missing+=(nats-server)
# The dashboard's browser tests (test_dashboard.py): Debian's chromium and its chromedriver.
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
# Debian's python3 ships venv and ensurepip only with python3-venv.
"$python" -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)

if [ "${#missing[@]}" -gt 0 ]; then
  log "installing OS packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt_opts=(-y -q -o DPkg::Lock::Timeout=300)
  # Refresh the package lists only when they do not know a package (a fresh machine), or
  # when an install from the old lists fails.
  need_update=0
  for package in "${missing[@]}"; do
    if ! apt-cache show "$package" >/dev/null 2>&1; then need_update=1; fi
  done
  if [ "$need_update" = 1 ]; then
    as_root apt-get update -q -o DPkg::Lock::Timeout=300
  fi
  if ! as_root apt-get install "${apt_opts[@]}" "${missing[@]}"; then
    as_root apt-get update -q -o DPkg::Lock::Timeout=300
    as_root apt-get install "${apt_opts[@]}" "${missing[@]}"
  fi
fi
command -v kcat >/dev/null 2>&1 || { echo "error: kcat is not installed" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# Python clients in .venv, reinstalled only when requirements.txt changes.

# A virtualenv at $1 holding exactly the wheels pinned in $2; $3 says what is installed.
# Made when missing or broken, reinstalled only when the requirements file changes.
ensure_venv() {
  local venv=$1 requirements=$2 what=$3
  local stamp="$venv/.omnibus-client-tests.sha256"
  local want
  want="$(sha256sum "$requirements" | cut -d' ' -f1)"
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
    log "creating $venv"
    rm -rf "$venv"
    "$python" -m venv "$venv"
  fi
  if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
    log "installing $what"
    # Wheels only: confluent-kafka's bundles librdkafka; nothing here should need a compiler.
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
      --only-binary :all: -r "$requirements"
    echo "$want" >"$stamp"
  fi
}

venv="$repo/.venv"
ensure_venv "$venv" "$repo/tests/clients/requirements.txt" "the pinned Python clients"
"$venv/bin/python" - <<'EOF'
import confluent_kafka, kafka, importlib.metadata, pytest
print(f"confluent-kafka {confluent_kafka.__version__} (librdkafka {confluent_kafka.libversion()[0]}), "
      f"kafka-python {kafka.__version__}, nats-py {importlib.metadata.version('nats-py')}, pytest {pytest.__version__}")
EOF
kcat -V 2>&1 | grep -m1 '^Version' || true

# An older Celery minor in its own virtualenv, for test_celery.py's cross-version test.
old_celery_venv="$repo/.venv-celery-5.3"
ensure_venv "$old_celery_venv" "$repo/tests/clients/requirements-celery-5.3.txt" \
  "Celery 5.3 for the cross-version test"
export OMNIBUS_CELERY_OLD_PYTHON="$old_celery_venv/bin/python"

# ---------------------------------------------------------------------------------------------
# Node clients in tests/clients/node/node_modules, exactly as package-lock.json pins them,
# reinstalled only when the lock file changes.

node_dir="$repo/tests/clients/node"
node_stamp="$node_dir/node_modules/.omnibus-client-tests.sha256"
node_want="$(sha256sum "$node_dir/package-lock.json" | cut -d' ' -f1)"
if [ "$(cat "$node_stamp" 2>/dev/null || true)" != "$node_want" ]; then
  log "installing the pinned Node clients"
  (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$node_want" >"$node_stamp"
fi
echo "node $(node --version), amqplib $(node -p "require('$node_dir/node_modules/amqplib/package.json').version"), ioredis $(node -p "require('$node_dir/node_modules/ioredis/package.json').version"), bullmq $(node -p "require('$node_dir/node_modules/bullmq/package.json').version")"

# ---------------------------------------------------------------------------------------------
# The broker.

log "building omnibus"
cargo build -p omnibus-server
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
case "$target_dir" in /*) ;; *) target_dir="$repo/$target_dir" ;; esac
export OMNIBUS_BIN="${OMNIBUS_BIN:-$target_dir/debug/omnibus}"
[ -x "$OMNIBUS_BIN" ] || { echo "error: no broker binary at $OMNIBUS_BIN" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# The suites. Each test has its own timeout; the whole run has an outer bound too.

log "pytest tests/clients"
export PYTHONDONTWRITEBYTECODE=1
per_test="${OMNIBUS_CLIENT_TEST_TIMEOUT:-180}"
total="${OMNIBUS_CLIENT_SUITE_TIMEOUT:-1500}"
status=0
timeout --signal=TERM --kill-after=30 "$total" \
  "$venv/bin/python" -m pytest -q -p no:cacheprovider --timeout="$per_test" \
  tests/clients "$@" || status=$?

case "$status" in
  0) log "client tests passed" ;;
  5) echo "error: pytest collected no tests" >&2; exit 1 ;;
  124 | 137) echo "error: the client suite took longer than ${total}s" >&2; exit 1 ;;
  *) echo "error: client tests failed (pytest exit $status)" >&2; exit "$status" ;;
esac
