#!/usr/bin/env bash
# Demo of runbook_exporter: installs the dependencies, builds the exporter, brings up a throwaway
# stack of real servers on 127.0.0.1 (scripts/stack.sh) and runs the exporter against it.
#
#   scripts/demo.sh                      runs until Ctrl-C
#   DEMO_SECONDS=60 scripts/demo.sh      stops by itself after 60 s
#   RUNBOOK_DEMO_PORT=9300 scripts/demo.sh   exporter port (default 9187)
#
# On exit the exporter is stopped and the stack torn down; its logs stay in the printed directory.
set -euo pipefail

ROOT=$(cd -- "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/.." && pwd)
cd "$ROOT"

PORT=${RUNBOOK_DEMO_PORT:-9187}
DEMO_SECONDS=${DEMO_SECONDS:-}
READY_TIMEOUT=20

say() { printf 'demo: %s\n' "$*" >&2; }
die() { printf 'demo: ERROR: %s\n' "$*" >&2; exit 1; }

STACK_DIR=""
EXPORTER_PID=""
EXPORTER_LOG=""

exporter_alive() {
  [[ -n $EXPORTER_PID ]] || return 1
  local stat
  { read -r stat <"/proc/$EXPORTER_PID/stat"; } 2>/dev/null || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

stop_exporter() {
  local i
  exporter_alive || return 0
  kill -TERM "$EXPORTER_PID" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    exporter_alive || return 0
    sleep 0.1
  done
  say "exporter did not stop within 5 s; killing it"
  kill -KILL "$EXPORTER_PID" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_exporter
  if [[ -n $STACK_DIR ]]; then
    scripts/stack.sh down "$STACK_DIR" || rc=1
    say "logs are in $STACK_DIR/logs"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

show_exporter_log() {
  if [[ -s $EXPORTER_LOG ]]; then
    printf '  --- last lines of %s ---\n' "$EXPORTER_LOG" >&2
    tail -n 30 "$EXPORTER_LOG" | sed 's/^/  | /' >&2
  else
    printf '  (exporter log %s is empty)\n' "$EXPORTER_LOG" >&2
  fi
}

# ---------------------------------------------------------------------------------------------
[[ $PORT =~ ^[0-9]+$ ]] && ((PORT > 0 && PORT < 65536)) || die "RUNBOOK_DEMO_PORT is not a port: $PORT"
[[ -z $DEMO_SECONDS || $DEMO_SECONDS =~ ^[0-9]+$ ]] || die "DEMO_SECONDS must be a whole number of seconds"

say "checking dependencies (scripts/install-deps.sh)"
scripts/install-deps.sh

if [[ -n $(ss -Htln "sport = :$PORT") ]]; then
  die "port $PORT is already in use; pick another with RUNBOOK_DEMO_PORT=..."
fi

say "building runbook_exporter"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j2 --target runbook_exporter
[[ -x build/runbook_exporter ]] || die "build/runbook_exporter was not built"

STACK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/runbook-demo.XXXXXX")
say "starting the test stack in $STACK_DIR"
scripts/stack.sh up "$STACK_DIR" --watch "$$" >/dev/null
# shellcheck disable=SC1091
source "$STACK_DIR/stack.env"

CONFIG=$STACK_DIR/runbook_exporter.yml
scripts/stack.sh write-config "$STACK_DIR" "$CONFIG"

EXPORTER_LOG=$STACK_DIR/logs/exporter.log
say "starting build/runbook_exporter on 127.0.0.1:$PORT (log: $EXPORTER_LOG)"
build/runbook_exporter --config "$CONFIG" --web.listen-address "127.0.0.1:$PORT" \
  </dev/null >"$EXPORTER_LOG" 2>&1 &
EXPORTER_PID=$!

deadline=$((SECONDS + READY_TIMEOUT))
until curl -sf --max-time 2 -o /dev/null "http://127.0.0.1:$PORT/-/ready"; do
  if ! exporter_alive; then
    wait "$EXPORTER_PID" && rc=0 || rc=$?
    printf 'demo: ERROR: runbook_exporter exited (status %s) before it was ready\n' "$rc" >&2
    show_exporter_log
    exit 1
  fi
  if ((SECONDS >= deadline)); then
    printf 'demo: ERROR: runbook_exporter not ready on http://127.0.0.1:%s/-/ready after %s s\n' "$PORT" "$READY_TIMEOUT" >&2
    show_exporter_log
    exit 1
  fi
  sleep 0.2
done

cat <<EOF

runbook_exporter demo is running
  landing page        http://127.0.0.1:$PORT/
  metrics             http://127.0.0.1:$PORT/metrics
  config              $CONFIG

  PostgreSQL primary  127.0.0.1:$PG_PRIMARY_PORT   (user $PG_EXPORTER_USER, password in $PG_EXPORTER_PASSWORD_FILE)
  PostgreSQL replica  127.0.0.1:$PG_REPLICA_PORT
  PgBouncer           127.0.0.1:$PGBOUNCER_PORT   (stats user $PGBOUNCER_STATS_USER)
  Redis               127.0.0.1:$REDIS_PORT
  TLS (s_server)      127.0.0.1:$TLS_PORT   (SNI $TLS_EXPIRED_SERVER_NAME serves an expired certificate)
                      127.0.0.1:$TLS_SOON_PORT   (valid 10 days; SNI $TLS_SELF_SERVER_NAME: self-signed)
                      127.0.0.1:$TLS_CHAIN_PORT   (its intermediate CA expires before the leaf)
  stack directory     $STACK_DIR

Things to try in another terminal:
  scripts/stack.sh archive-fail $STACK_DIR on && scripts/stack.sh switch-wal $STACK_DIR
  scripts/stack.sh replay $STACK_DIR pause && scripts/stack.sh switch-wal $STACK_DIR
  scripts/stack.sh stop-pg $STACK_DIR        (and start-pg to bring it back)
  scripts/stack.sh psql $STACK_DIR primary

EOF

if [[ -n $DEMO_SECONDS ]]; then
  say "stopping by itself in $DEMO_SECONDS s"
  deadline=$((SECONDS + DEMO_SECONDS))
  while ((SECONDS < deadline)); do
    exporter_alive || break
    sleep 1
  done
else
  say "press Ctrl-C to stop"
  # `wait` returns as soon as a trapped signal arrives, so Ctrl-C is handled at once.
  while exporter_alive; do
    wait "$EXPORTER_PID" 2>/dev/null || true
  done
fi

if ! exporter_alive; then
  printf 'demo: ERROR: runbook_exporter stopped unexpectedly\n' >&2
  show_exporter_log
  exit 1
fi
say "demo finished"
