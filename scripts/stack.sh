#!/usr/bin/env bash
# Throwaway stack of real servers on 127.0.0.1 for runbook_exporter tests, benchmarks and the demo:
# PostgreSQL 15 primary + streaming replica, PgBouncer, Redis and openssl s_servers with valid,
# expired, self-signed and short-chain certificates. Everything lives in one directory; ports are picked at run time.
#
# Usage: see `usage` below or run `scripts/stack.sh help`.
set -euo pipefail
umask 022

SELF=$(readlink -f -- "${BASH_SOURCE[0]}")
LIB_DIR=$(dirname -- "$SELF")/stack-lib
# shellcheck source=stack-lib/common.sh
source "$LIB_DIR/common.sh"
# shellcheck source=stack-lib/tls.sh
source "$LIB_DIR/tls.sh"
# shellcheck source=stack-lib/servers.sh
source "$LIB_DIR/servers.sh"
# shellcheck source=stack-lib/teardown.sh
source "$LIB_DIR/teardown.sh"

usage() {
  cat <<'EOF'
Usage:
  stack.sh up DIR [--watch PID] [--cert-days N]   start a stack in DIR (absolute path); writes DIR/stack.env
  stack.sh down DIR                               stop everything, remove data (keeps logs); idempotent
  stack.sh archive-fail DIR on|off                make archive_command fail / succeed again
  stack.sh replay DIR pause|resume                pause/resume WAL replay on the replica (waits for the state)
  stack.sh switch-wal DIR                         write a row on the primary, then pg_switch_wal()
  stack.sh stop-pg DIR                            stop the primary (pg_ctl -m fast)
  stack.sh start-pg DIR                           start the primary again on the same port, wait until ready
  stack.sh psql DIR primary|replica [ARGS...]     psql -X as superuser over the unix socket
  stack.sh write-config DIR OUTFILE [--interval 5s] [--timeout 3s]
                                                  write a runbook_exporter config for the stack
Options of up:
  --watch PID      a detached watchdog runs `down DIR` once PID is gone
  --cert-days N    validity of the localhost TLS certificate in days (default 30)
As root the servers run as the `postgres` user (STACK_RUN_USER overrides); otherwise as the caller.
EOF
}

# ---------------------------------------------------------------------------------------------
# Helpers for subcommands that work on an existing stack.
open_stack() { # DIR  (sets the layout, the run user, and loads stack.env)
  local dir
  dir=$(check_dir_arg "${1:-}")
  set_layout "$dir"
  init_run_user
  [[ -d $STACK_DIR ]] || die "$STACK_DIR does not exist"
  cd "$STACK_DIR"
  load_env
}

primary_running() {
  local pid=""
  [[ -f $PRIMARY_DATA/postmaster.pid ]] || return 1
  { read -r pid <"$PRIMARY_DATA/postmaster.pid"; } 2>/dev/null || return 1
  pid_alive "$pid" && [[ $(proc_comm "$pid") == postgres ]]
}

write_stack_env() {
  local tmp=$ENV_FILE.tmp.$$
  cat >"$tmp" <<EOF
STACK_DIR=$STACK_DIR
STACK_RUN_USER=$RUN_USER
PG_BINDIR=$PG_BINDIR
PG_HOST=127.0.0.1
PG_PRIMARY_PORT=$PG_PRIMARY_PORT
PG_REPLICA_PORT=$PG_REPLICA_PORT
PG_SUPERUSER=postgres
PG_SUPERUSER_PASSWORD_FILE=$SECRETS_DIR/postgres.pw
PG_EXPORTER_USER=exporter
PG_EXPORTER_PASSWORD_FILE=$SECRETS_DIR/exporter.pw
PG_APP_USER=app
PG_APP_PASSWORD_FILE=$SECRETS_DIR/app.pw
PG_APP_DATABASE=appdb
PG_REPLICATOR_USER=replicator
PG_REPLICATOR_PASSWORD_FILE=$SECRETS_DIR/replicator.pw
PG_REPLICATION_SLOT=$PG_REPLICATION_SLOT
PG_PRIMARY_LOG=$PRIMARY_LOG
PG_REPLICA_LOG=$REPLICA_LOG
PG_PRIMARY_DATA=$PRIMARY_DATA
PG_REPLICA_DATA=$REPLICA_DATA
PG_PRIMARY_PID=$PG_PRIMARY_PID
PG_REPLICA_PID=$PG_REPLICA_PID
PG_SOCKET_DIR_PRIMARY=$SOCK_PRIMARY
PG_SOCKET_DIR_REPLICA=$SOCK_REPLICA
ARCHIVE_DIR=$ARCHIVE_DIR
ARCHIVE_FAIL_FLAG=$ARCHIVE_FAIL_FLAG
PGBOUNCER_HOST=127.0.0.1
PGBOUNCER_PORT=$PGBOUNCER_PORT
PGBOUNCER_ADMIN_USER=pgb_admin
PGBOUNCER_ADMIN_PASSWORD_FILE=$SECRETS_DIR/pgb_admin.pw
PGBOUNCER_STATS_USER=pgb_stats
PGBOUNCER_STATS_PASSWORD_FILE=$SECRETS_DIR/pgb_stats.pw
PGBOUNCER_AUTH_TYPE=scram-sha-256
PGBOUNCER_CONFIG=$BOUNCER_DIR/pgbouncer.ini
PGBOUNCER_LOG=$BOUNCER_LOG
PGBOUNCER_PID=$PGBOUNCER_PID
REDIS_HOST=127.0.0.1
REDIS_PORT=$REDIS_PORT
REDIS_PASSWORD_FILE=$SECRETS_DIR/redis.pw
REDIS_EXPORTER_USER=exporter
REDIS_EXPORTER_PASSWORD_FILE=$SECRETS_DIR/redis_exporter.pw
REDIS_LOG=$REDIS_LOG
REDIS_PID=$REDIS_PID
TLS_HOST=127.0.0.1
TLS_PORT=$TLS_PORT
TLS_SERVER_NAME=$TLS_SERVER_NAME
TLS_EXPIRED_SERVER_NAME=$TLS_EXPIRED_SERVER_NAME
TLS_CA_FILE=$TLS_DIR/ca.pem
TLS_CERT_FILE=$TLS_DIR/server.pem
TLS_KEY_FILE=$TLS_DIR/server.key
TLS_EXPIRED_CERT_FILE=$TLS_DIR/expired.pem
TLS_EXPIRED_KEY_FILE=$TLS_DIR/expired.key
TLS_CERT_DAYS=$CERT_DAYS
TLS_CERT_NOT_AFTER=$(tls_not_after_epoch "$TLS_DIR/server.pem")
TLS_EXPIRED_NOT_AFTER=$(tls_not_after_epoch "$TLS_DIR/expired.pem")
TLS_SERVER_PID=$TLS_SERVER_PID
TLS_SOON_PORT=$TLS_SOON_PORT
TLS_SOON_SERVER_NAME=$TLS_SOON_SERVER_NAME
TLS_SOON_CERT_FILE=$TLS_DIR/soon.pem
TLS_SOON_NOT_AFTER=$(tls_not_after_epoch "$TLS_DIR/soon.pem")
TLS_SOON_SERVER_PID=$TLS_SOON_SERVER_PID
TLS_SELF_SERVER_NAME=$TLS_SELF_SERVER_NAME
TLS_SELF_CERT_FILE=$TLS_DIR/self.pem
TLS_SELF_NOT_AFTER=$(tls_not_after_epoch "$TLS_DIR/self.pem")
TLS_CHAIN_PORT=$TLS_CHAIN_PORT
TLS_CHAIN_SERVER_NAME=$TLS_CHAIN_SERVER_NAME
TLS_CHAIN_LEAF_NOT_AFTER=$(tls_not_after_epoch "$TLS_DIR/chain-leaf.pem")
TLS_INTERMEDIATE_NOT_AFTER=$(tls_not_after_epoch "$TLS_DIR/intermediate.pem")
TLS_CA_NOT_AFTER=$(tls_not_after_epoch "$TLS_DIR/ca.pem")
TLS_BUNDLE_FILE=$TLS_DIR/bundle.pem
TLS_DIR=$TLS_DIR
WATCHDOG_PID=$WATCHDOG_PID
EOF
  mv -f "$tmp" "$ENV_FILE"
}

# ---------------------------------------------------------------------------------------------
# up

UP_OK=0
TLS_JOB=""
up_on_exit() {
  local rc=$?
  ((UP_OK)) && return 0
  trap - EXIT INT TERM
  # A signal can land while a command's stderr points into a log: talk to the original stderr.
  if [[ -e /dev/fd/8 ]]; then exec 2>&8; fi
  ((rc)) || rc=1
  [[ -z $TLS_JOB ]] || kill "$TLS_JOB" 2>/dev/null || true
  msg "up failed (exit $rc); tearing down what was started in $STACK_DIR"
  teardown
  exit "$rc"
}

# The directory must be empty or an old stack; an old stack must not be running.
up_prepare_dir() {
  mkdir -p -- "$STACK_DIR"
  if [[ ! -e $MARKER_FILE ]] && [[ -n $(ls -A -- "$STACK_DIR") ]]; then
    die "$STACK_DIR is not empty and not a stack directory; refusing to use it"
  fi
  : >"$MARKER_FILE"
  lock_stack
  local name pid
  if [[ -f $PIDS_FILE ]]; then
    while read -r name pid _; do
      if pid_alive "$pid" && teardown_identity_ok "$name" "$pid"; then
        die "a stack is already running in $STACK_DIR ($name pid $pid); run: $0 down $STACK_DIR"
      fi
    done <"$PIDS_FILE"
  fi
  # Leftovers of an earlier run.
  rm -rf -- "$PG_DIR" "$ARCHIVE_DIR" "$REDIS_DIR" "$RUN_DIR" "$LOG_DIR" "$TLS_DIR" "$SECRETS_DIR" \
    "$BOUNCER_DIR" "$ENV_FILE" "$PIDS_FILE" "$ARCHIVE_FAIL_FLAG"
  if [[ $(id -u) -eq 0 ]]; then
    chown "$RUN_USER:$RUN_GROUP" "$STACK_DIR"
    chmod 755 "$STACK_DIR"
  fi
  as_user test -w "$STACK_DIR" -a -x "$STACK_DIR" ||
    die "user $RUN_USER cannot write to $STACK_DIR (is a parent directory closed to it?)"
  # unix socket paths are limited to 107 bytes
  ((${#SOCK_PRIMARY} + 17 <= 107)) || die "$STACK_DIR is too long for PostgreSQL unix sockets"

  as_user mkdir -p "$LOG_DIR" "$SECRETS_DIR" "$TLS_DIR" "$RUN_DIR" "$PG_DIR" "$ARCHIVE_DIR" \
    "$BOUNCER_DIR" "$REDIS_DIR" "$SOCK_PRIMARY" "$SOCK_REPLICA"
  as_user touch "$PRIMARY_LOG" "$REPLICA_LOG" "$BOUNCER_LOG" "$REDIS_LOG" "$TLS_LOG" "$SETUP_LOG" "$TLS_SETUP_LOG" "$WATCHDOG_LOG"
  : >"$PIDS_FILE"
}

up_start_watchdog() { # PID
  local wpid=$1
  proc_fields "$wpid" || die "--watch: no process $wpid"
  local wstart=$PROC_START
  (cd / && close_extra_fds && exec setsid nohup "$SELF" __watch "$STACK_DIR" "$wpid" "$wstart" \
    </dev/null >>"$WATCHDOG_LOG" 2>&1) &
  WATCHDOG_PID=$!
  pids_set watchdog "$WATCHDOG_PID"
}

up_secrets() {
  local name
  for name in postgres exporter app replicator pgb_admin pgb_stats redis redis_exporter; do
    printf '%s' "$(gen_password)" | write_file "$SECRETS_DIR/$name.pw" 644
  done
}

cmd_up() {
  local dir="" watch="" t0
  CERT_DAYS=30
  while (($#)); do
    case $1 in
      --watch) watch=${2:-}; shift 2 || die "--watch needs a PID" ;;
      --cert-days) CERT_DAYS=${2:-}; shift 2 || die "--cert-days needs a number" ;;
      -h | --help) usage; exit 0 ;;
      -*) die "up: unknown option $1" ;;
      *) [[ -z $dir ]] || die "up: unexpected argument $1"; dir=$1; shift ;;
    esac
  done
  [[ $CERT_DAYS =~ ^[0-9]+$ ]] && ((CERT_DAYS >= 1 && CERT_DAYS <= 36500)) ||
    die "--cert-days must be a whole number of days between 1 and 36500"
  [[ -z $watch || $watch =~ ^[0-9]+$ ]] || die "--watch needs a numeric PID"
  [[ -z $watch ]] || pid_alive "$watch" || die "--watch: process $watch is not running"
  dir=$(check_dir_arg "$dir")
  set_layout "$dir"
  init_run_user
  t0=$(now_ms)
  PG_PRIMARY_PID="" PG_REPLICA_PID="" PGBOUNCER_PID="" REDIS_PID="" TLS_SERVER_PID="" WATCHDOG_PID=""
  TLS_SOON_SERVER_PID="" TLS_CHAIN_SERVER_PID=""

  exec 8>&2 # original stderr, for up_on_exit
  up_prepare_dir
  cd "$STACK_DIR"
  trap up_on_exit EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  [[ -z $watch ]] || up_start_watchdog "$watch"

  msg "bringing up a stack in $STACK_DIR (servers run as $RUN_USER)"
  up_secrets
  # Keys take a moment; make them while initdb runs.
  tls_generate "$CERT_DAYS" &
  TLS_JOB=$!
  pg_initdb_primary
  wait "$TLS_JOB" || fail_server "tls" "$TLS_SETUP_LOG" "generating certificates failed"
  TLS_JOB=""

  start_with_port_retry primary "$PRIMARY_LOG" launch_primary
  pg_bootstrap_primary
  pg_basebackup_replica
  start_with_port_retry replica "$REPLICA_LOG" launch_replica
  pg_wait_streaming 10 || fail_server replica "$REPLICA_LOG" "not streaming from the primary after 10 s"
  start_with_port_retry pgbouncer "$BOUNCER_LOG" launch_pgbouncer
  start_with_port_retry redis "$REDIS_LOG" launch_redis
  start_with_port_retry tls "$TLS_LOG" launch_tls_server
  start_with_port_retry tls_soon "$TLS_LOG" launch_tls_soon_server
  start_with_port_retry tls_chain "$TLS_LOG" launch_tls_chain_server

  write_stack_env
  UP_OK=1
  trap - EXIT INT TERM
  msg "up in $(($(now_ms) - t0)) ms: primary :$PG_PRIMARY_PORT, replica :$PG_REPLICA_PORT, pgbouncer :$PGBOUNCER_PORT, redis :$REDIS_PORT, tls :$TLS_PORT :$TLS_SOON_PORT :$TLS_CHAIN_PORT"
  printf '%s\n' "$ENV_FILE"
}

# ---------------------------------------------------------------------------------------------
# down and the watchdog

cmd_down() {
  local dir
  [[ $# -eq 1 ]] || die "usage: stack.sh down DIR"
  dir=$(check_dir_arg "$1")
  set_layout "$dir"
  init_run_user
  if [[ ! -d $STACK_DIR ]]; then
    msg "$STACK_DIR does not exist; nothing to do"
    return 0
  fi
  if [[ ! -e $MARKER_FILE ]]; then
    msg "$STACK_DIR is not a stack directory; nothing to do"
    return 0
  fi
  cd "$STACK_DIR"
  lock_stack
  teardown
}

cmd_watch() { # DIR PID STARTTIME (internal)
  local dir=$1 pid=$2 start=$3
  while proc_fields "$pid" && [[ $PROC_STATE != Z && $PROC_STATE != X && $PROC_START == "$start" ]]; do
    sleep 0.5
  done
  msg "$(date -u +%FT%TZ) watched pid $pid is gone; tearing down $dir"
  exec "$SELF" down "$dir"
}

# ---------------------------------------------------------------------------------------------
# Small operations on a running stack

cmd_archive_fail() { # DIR on|off
  open_stack "${1:-}"
  case ${2:-} in
    on) as_user touch "$ARCHIVE_FAIL_FLAG"; msg "archive_command now fails ($ARCHIVE_FAIL_FLAG exists)" ;;
    off) rm -f -- "$ARCHIVE_FAIL_FLAG"; msg "archive_command works again" ;;
    *) die "usage: stack.sh archive-fail DIR on|off" ;;
  esac
}

cmd_replay() { # DIR pause|resume
  local want fn i state=""
  open_stack "${1:-}"
  case ${2:-} in
    pause) fn=pg_wal_replay_pause want=paused ;;
    resume) fn=pg_wal_replay_resume want="not paused" ;;
    *) die "usage: stack.sh replay DIR pause|resume" ;;
  esac
  pg_sql replica -At -c "select $fn()" >/dev/null
  for ((i = 0; i < 200; i++)); do
    state=$(pg_sql replica -At -c "select pg_get_wal_replay_pause_state()")
    if [[ $state == "$want" ]]; then
      msg "replica replay: $state"
      return 0
    fi
    sleep 0.05
  done
  die "replica replay state is '$state' after 10 s, wanted '$want'"
}

cmd_switch_wal() { # DIR
  local lsn
  open_stack "${1:-}"
  lsn=$(pg_sql primary -At <<'EOF'
SET client_min_messages = warning;
CREATE TABLE IF NOT EXISTS stack_wal_pump (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now());
INSERT INTO stack_wal_pump DEFAULT VALUES;
SELECT pg_switch_wal();
EOF
  )
  msg "switched WAL on the primary at $lsn"
}

cmd_stop_pg() { # DIR
  open_stack "${1:-}"
  lock_stack
  if ! primary_running; then
    msg "primary is not running"
    pids_del primary
    return 0
  fi
  as_user "$PG_BINDIR/pg_ctl" -D "$PRIMARY_DATA" -m fast -w -t 60 stop >/dev/null 2>>"$PRIMARY_LOG" ||
    fail_server primary "$PRIMARY_LOG" "pg_ctl stop failed"
  pids_del primary
  msg "primary stopped (port $PG_PRIMARY_PORT)"
}

cmd_start_pg() { # DIR
  open_stack "${1:-}"
  lock_stack
  if primary_running; then
    msg "primary is already running"
    return 0
  fi
  pg_start "$PRIMARY_DATA" "$PRIMARY_LOG" primary ||
    fail_server primary "$PRIMARY_LOG" "could not start again on port $PG_PRIMARY_PORT"
  env_set PG_PRIMARY_PID "$PG_STARTED_PID"
  msg "primary running again on 127.0.0.1:$PG_PRIMARY_PORT (pid $PG_STARTED_PID)"
  # The replica reconnects on its own (wal_retrieve_retry_interval = 1s); wait for it, best effort.
  # Not while its replay is paused: the paused startup process does not restart the walreceiver.
  local pause
  pause=$(pg_sql replica -At -c "select pg_get_wal_replay_pause_state()" 2>/dev/null || true)
  if [[ $pause != "not paused" ]]; then
    msg "replica replay is '${pause:-unknown}': it reconnects after 'stack.sh replay DIR resume'"
  elif pg_wait_streaming 10; then
    msg "replica streaming again"
  else
    warn "replica not streaming again after 10 s (see $REPLICA_LOG)"
  fi
}

cmd_psql() { # DIR primary|replica [ARGS...]
  local which=${2:-} sock port
  open_stack "${1:-}"
  case $which in
    primary) sock=$PG_SOCKET_DIR_PRIMARY port=$PG_PRIMARY_PORT ;;
    replica) sock=$PG_SOCKET_DIR_REPLICA port=$PG_REPLICA_PORT ;;
    *) die "usage: stack.sh psql DIR primary|replica [psql args...]" ;;
  esac
  shift 2
  # Defaults via the environment so that -d/-U/... given by the caller win.
  PGHOST=$sock PGPORT=$port PGUSER=postgres PGDATABASE=${PGDATABASE:-postgres} \
    exec "$PG_BINDIR/psql" -X "$@"
}

cmd_write_config() { # DIR OUTFILE [--interval D] [--timeout D]
  local out=${2:-} interval=5s timeout=3s tmp
  open_stack "${1:-}"
  [[ -n $out ]] || die "usage: stack.sh write-config DIR OUTFILE [--interval 5s] [--timeout 3s]"
  shift 2
  while (($#)); do
    case $1 in
      --interval) interval=${2:-}; shift 2 || die "--interval needs a duration" ;;
      --timeout) timeout=${2:-}; shift 2 || die "--timeout needs a duration" ;;
      *) die "write-config: unknown argument $1" ;;
    esac
  done
  local re='^[0-9]+(ms|s|m|h)$'
  [[ $interval =~ $re ]] || die "--interval: not a duration like 5s: $interval"
  [[ $timeout =~ $re ]] || die "--timeout: not a duration like 3s: $timeout"
  tmp=$out.tmp.$$
  cat >"$tmp" <<EOF
# runbook_exporter config for the test stack in $STACK_DIR (scripts/stack.sh write-config)
global:
  interval: $interval
  timeout: $timeout
  slow_interval: 1m
targets:
  postgres:
    - name: primary
      host: $PG_HOST
      port: $PG_PRIMARY_PORT
      database: postgres
      user: $PG_EXPORTER_USER
      password_file: $PG_EXPORTER_PASSWORD_FILE
      sslmode: disable
      labels: {role: primary}
    - name: replica
      host: $PG_HOST
      port: $PG_REPLICA_PORT
      database: postgres
      user: $PG_EXPORTER_USER
      password_file: $PG_EXPORTER_PASSWORD_FILE
      sslmode: disable
      labels: {role: replica}
  pgbouncer:
    - name: pgbouncer
      host: $PGBOUNCER_HOST
      port: $PGBOUNCER_PORT
      user: $PGBOUNCER_STATS_USER
      password_file: $PGBOUNCER_STATS_PASSWORD_FILE
      sslmode: disable
  redis:
    - name: redis
      host: $REDIS_HOST
      port: $REDIS_PORT
      user: $REDIS_EXPORTER_USER
      password_file: $REDIS_EXPORTER_PASSWORD_FILE
      keys:                       # the runbooks' queue depths
        - {db: 0, key: "axiomdb:commands"}
        - {db: 0, key: "action_jobs"}
  certificates:
    - {name: tls, host: $TLS_HOST, port: $TLS_PORT, server_name: $TLS_SERVER_NAME, ca_file: $TLS_CA_FILE}
    - {name: tls-expired, host: $TLS_HOST, port: $TLS_PORT, server_name: $TLS_EXPIRED_SERVER_NAME, ca_file: $TLS_CA_FILE}
    - {name: tls-chain, host: $TLS_HOST, port: $TLS_CHAIN_PORT, server_name: $TLS_CHAIN_SERVER_NAME, ca_file: $TLS_CA_FILE}
    - {name: primary-tls, host: $PG_HOST, port: $PG_PRIMARY_PORT, starttls: postgres, server_name: $TLS_SERVER_NAME, ca_file: $TLS_CA_FILE}
    - {name: tls-files, files: ["$TLS_BUNDLE_FILE", "$TLS_SELF_CERT_FILE"]}
EOF
  mv -f "$tmp" "$out"
  msg "wrote $out"
}

# ---------------------------------------------------------------------------------------------
main() {
  local cmd=${1:-help}
  (($#)) && shift
  case $cmd in
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    archive-fail) cmd_archive_fail "$@" ;;
    replay) cmd_replay "$@" ;;
    switch-wal) cmd_switch_wal "$@" ;;
    stop-pg) cmd_stop_pg "$@" ;;
    start-pg) cmd_start_pg "$@" ;;
    psql) cmd_psql "$@" ;;
    write-config) cmd_write_config "$@" ;;
    __watch) cmd_watch "$@" ;;
    help | -h | --help) usage ;;
    *) usage >&2; die "unknown command: $cmd" ;;
  esac
}

main "$@"
