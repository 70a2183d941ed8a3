#!/usr/bin/env bash
# Demo of runbook_exporter: installs the dependencies, builds the exporter, brings up a throwaway
# stack of real servers on 127.0.0.1 (scripts/stack.sh) and runs the exporter against it, with
# Debian's Prometheus (scraping the exporter, evaluating the runbook rule pack rules/runbook/)
# and Alertmanager (routing to a local receiver that prints every notification here).
# scripts/demo-incident.sh induces the runbooks' incidents on the stack.
#
#   scripts/demo.sh                      runs until Ctrl-C
#   DEMO_SECONDS=60 scripts/demo.sh      stops by itself after 60 s
#   RUNBOOK_DEMO_PORT=9300 scripts/demo.sh   exporter port (default 9187); Prometheus,
#                                        Alertmanager and the receiver get free ports
#
# On exit everything it started is stopped and the stack torn down; logs stay in the printed
# directory.
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
HELPER_PIDS=()   # receiver, Alertmanager, Prometheus: started by us, stopped by pid

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

stop_helpers() {
  local pid i
  for pid in "${HELPER_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${HELPER_PIDS[@]}"; do
    for ((i = 0; i < 50; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  done
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n $STACK_DIR ]]; then
    scripts/demo-incident.sh "$STACK_DIR" pool-wait stop >/dev/null 2>&1 || true
  fi
  stop_helpers
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

free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_http() { # NAME URL PID LOG
  local deadline=$((SECONDS + READY_TIMEOUT))
  until curl -sf --max-time 2 -o /dev/null "$2"; do
    if ! kill -0 "$3" 2>/dev/null; then
      printf 'demo: ERROR: %s exited before it was ready; last lines of %s:\n' "$1" "$4" >&2
      tail -n 20 "$4" | sed 's/^/  | /' >&2
      exit 1
    fi
    ((SECONDS < deadline)) || die "$1 not ready on $2 after $READY_TIMEOUT s (log: $4)"
    sleep 0.2
  done
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

# Alerting: receiver <- Alertmanager <- Prometheus (scrapes the exporter, evaluates the pack).
RECEIVER_PORT=$(free_port)
AM_PORT=$(free_port)
PROM_PORT=$(free_port)
ALERT_LOG=$STACK_DIR/logs/alerts.jsonl
/usr/bin/python3 scripts/demo_receiver.py "$RECEIVER_PORT" "$ALERT_LOG" </dev/null &
HELPER_PIDS+=($!)

mkdir -p "$STACK_DIR/alertmanager" "$STACK_DIR/prometheus"
cat >"$STACK_DIR/alertmanager/alertmanager.yml" <<EOF
# Demo Alertmanager (scripts/demo.sh): every alert to the local receiver; the rule pack's
# inhibition (rules/runbook/README.md): a critical alert silences its warning.
route:
  receiver: demo-receiver
  group_by: [alertname, target]
  group_wait: 5s
  group_interval: 15s
  repeat_interval: 1h
receivers:
  - name: demo-receiver
    webhook_configs:
      - url: http://127.0.0.1:$RECEIVER_PORT/
        send_resolved: true
inhibit_rules:
  - source_matchers: [severity="critical"]
    target_matchers: [severity="warning"]
    equal: [alertname, instance, target, datname, application_name, database, user, key, db, name, cn, serial_no, file]
  - source_matchers: [alertname=~"PostgresDown|PgBouncerDown|RedisDown|CertificateProbeFailed"]
    target_matchers: [alertname!~"PostgresDown|PgBouncerDown|RedisDown|CertificateProbeFailed"]
    equal: [instance, target]
EOF
AM_LOG=$STACK_DIR/logs/alertmanager.log
/usr/bin/prometheus-alertmanager --config.file="$STACK_DIR/alertmanager/alertmanager.yml" \
  --storage.path="$STACK_DIR/alertmanager/data" --web.listen-address="127.0.0.1:$AM_PORT" \
  --cluster.listen-address= </dev/null >"$AM_LOG" 2>&1 &
HELPER_PIDS+=($!)
wait_http Alertmanager "http://127.0.0.1:$AM_PORT/-/ready" "${HELPER_PIDS[-1]}" "$AM_LOG"

cat >"$STACK_DIR/prometheus/prometheus.yml" <<EOF
# Demo Prometheus (scripts/demo.sh): the exporter, the runbook rule pack, the demo Alertmanager.
global:
  scrape_interval: 5s
  evaluation_interval: 5s
rule_files:
  - $ROOT/rules/runbook/*.rules.yml
alerting:
  alertmanagers:
    - static_configs: [{targets: ['127.0.0.1:$AM_PORT']}]
scrape_configs:
  - job_name: runbook_exporter
    static_configs: [{targets: ['127.0.0.1:$PORT']}]
  - job_name: prometheus
    static_configs: [{targets: ['127.0.0.1:$PROM_PORT']}]
  - job_name: alertmanager
    static_configs: [{targets: ['127.0.0.1:$AM_PORT']}]
EOF
PROM_LOG=$STACK_DIR/logs/prometheus.log
/usr/bin/prometheus --config.file="$STACK_DIR/prometheus/prometheus.yml" \
  --storage.tsdb.path="$STACK_DIR/prometheus/data" --web.listen-address="127.0.0.1:$PROM_PORT" \
  --rules.alert.resend-delay=15s </dev/null >"$PROM_LOG" 2>&1 &
HELPER_PIDS+=($!)
wait_http Prometheus "http://127.0.0.1:$PROM_PORT/-/ready" "${HELPER_PIDS[-1]}" "$PROM_LOG"

cat <<EOF

runbook_exporter demo is running
  landing page        http://127.0.0.1:$PORT/
  metrics             http://127.0.0.1:$PORT/metrics
  config              $CONFIG
  Prometheus          http://127.0.0.1:$PROM_PORT/alerts   (rule pack: rules/runbook/*.rules.yml)
  Alertmanager        http://127.0.0.1:$AM_PORT/
  alert receiver      prints every notification below; raw JSON in $ALERT_LOG

  PostgreSQL primary  127.0.0.1:$PG_PRIMARY_PORT   (user $PG_EXPORTER_USER, password in $PG_EXPORTER_PASSWORD_FILE)
  PostgreSQL replica  127.0.0.1:$PG_REPLICA_PORT
  PgBouncer           127.0.0.1:$PGBOUNCER_PORT   (stats user $PGBOUNCER_STATS_USER)
  Redis               127.0.0.1:$REDIS_PORT
  TLS (s_server)      127.0.0.1:$TLS_PORT   (SNI $TLS_EXPIRED_SERVER_NAME serves an expired certificate)
                      127.0.0.1:$TLS_SOON_PORT   (valid 10 days; SNI $TLS_SELF_SERVER_NAME: self-signed)
                      127.0.0.1:$TLS_CHAIN_PORT   (its intermediate CA expires before the leaf)
  stack directory     $STACK_DIR

Incidents to induce in another terminal (alerts arrive here within minutes; stop resolves them):
  scripts/demo-incident.sh $STACK_DIR replica-lag start     (stop)  PostgresReplicationLag
  scripts/demo-incident.sh $STACK_DIR archive-fail start    (stop)  PostgresWalArchiveFailing
  scripts/demo-incident.sh $STACK_DIR pool-wait start       (stop)  PgBouncerClientsWaiting
  scripts/demo-incident.sh $STACK_DIR queue start           (stop)  RedisQueueDepthHigh
  scripts/demo-incident.sh $STACK_DIR certificate                   CertificateExpiringSoon
  scripts/demo-incident.sh $STACK_DIR stop-all
  scripts/stack.sh stop-pg $STACK_DIR        (and start-pg to bring it back)    PostgresDown
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
