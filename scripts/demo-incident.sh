#!/usr/bin/env bash
# Induces the runbooks' incidents on the demo's throwaway stack (scripts/demo.sh prints the
# stack directory), so that the rule pack's alerts fire and, after `stop`, resolve.
#
#   scripts/demo-incident.sh DIR replica-lag start|stop   replay paused on the replica, WAL pending
#   scripts/demo-incident.sh DIR archive-fail start|stop  archive_command fails
#   scripts/demo-incident.sh DIR pool-wait start|stop     5 clients hold PgBouncer's pool of 5, 5 wait
#   scripts/demo-incident.sh DIR queue start|stop         60,000 jobs in Redis list action_jobs
#   scripts/demo-incident.sh DIR certificate              what the certificate alerts need
#   scripts/demo-incident.sh DIR stop-all                 ends every incident above
#
# Alerts and their timing with the shipped thresholds are listed in README.md ("Demo").
set -euo pipefail

ROOT=$(cd -- "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/.." && pwd)
say() { printf 'incident: %s\n' "$*" >&2; }
die() { printf 'incident: ERROR: %s\n' "$*" >&2; exit 1; }

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

DIR=${1:-}
NAME=${2:-}
ACTION=${3:-}
[[ -n $DIR && -n $NAME ]] || usage
[[ -f $DIR/stack.env ]] || die "$DIR/stack.env not found: give the stack directory scripts/demo.sh printed"
# shellcheck disable=SC1091
source "$DIR/stack.env"
STATE=$DIR/demo-incidents
mkdir -p "$STATE"
STACK="$ROOT/scripts/stack.sh"

redis() { redis-cli --no-auth-warning -h "$REDIS_HOST" -p "$REDIS_PORT" -a "$(cat "$REDIS_PASSWORD_FILE")" "$@"; }

replica_lag() {
  case $1 in
    start)
      "$STACK" replay "$DIR" pause
      "$STACK" switch-wal "$DIR"   # a commit the replica receives but does not replay
      say "replay paused with WAL pending: PostgresReplicationLag warning in ~2.5 min (> 30 s for 2m), critical in ~3 min (> 60 s for 2m)"
      ;;
    stop)
      "$STACK" replay "$DIR" resume
      say "replay resumed: the lag drops to 0 and PostgresReplicationLag resolves at the next evaluation"
      ;;
    *) usage ;;
  esac
}

archive_fail() {
  case $1 in
    start)
      "$STACK" archive-fail "$DIR" on
      "$STACK" switch-wal "$DIR"   # a segment to archive, so the archiver tries (and fails) now
      say "archiving fails: PostgresWalArchiveFailing warning within seconds; critical after 15 min of failing"
      ;;
    stop)
      "$STACK" archive-fail "$DIR" off
      "$STACK" switch-wal "$DIR"
      say "archiving works again: the warning resolves 5 min after the last failure (the archiver retries every minute)"
      ;;
    *) usage ;;
  esac
}

pool_wait() {
  local psql=("$PG_BINDIR/psql" -X -q -h "$PGBOUNCER_HOST" -p "$PGBOUNCER_PORT" -U "$PG_APP_USER" -d "$PG_APP_DATABASE")
  case $1 in
    start)
      [[ -s $STATE/pool-wait.pids ]] && die "pool-wait is already running (stop it first)"
      export PGPASSWORD
      PGPASSWORD=$(cat "$PG_APP_PASSWORD_FILE")
      local i
      # 5 sessions hold the pool's 5 server connections...
      for i in 1 2 3 4 5; do
        setsid "${psql[@]}" -c "SELECT pg_sleep(900) /* demo pool-wait */" >/dev/null 2>&1 &
        echo $! >>"$STATE/pool-wait.pids"
      done
      # ...and 5 more queue behind them. PgBouncer drops a client after query_wait_timeout
      # (120 s); each comes back at once, and they start 24 s apart, so the oldest waiter is
      # always 96-120 s old.
      for i in 0 1 2 3 4; do
        setsid bash -c 'sleep "$1"; shift; while :; do "$@" -c "SELECT 1 /* demo pool-wait */"; done' \
          waiter $((i * 24)) "${psql[@]}" >/dev/null 2>&1 &
        echo $! >>"$STATE/pool-wait.pids"
      done
      say "5 clients hold PgBouncer's pool of 5, 5 more wait: PgBouncerClientsWaiting critical in ~1.5 min (maxwait > 30 s for 1m), warning in 2 min"
      ;;
    stop)
      if [[ -f $STATE/pool-wait.pids ]]; then
        local pid
        # each was started with setsid: its process group is its own, loop and psql together
        while read -r pid; do kill -TERM -- "-$pid" 2>/dev/null || true; done <"$STATE/pool-wait.pids"
        rm -f "$STATE/pool-wait.pids"
      fi
      # PgBouncer drops the server connections of vanished clients, but their backends sleep on.
      "$STACK" psql "$DIR" primary -Atq -c \
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query LIKE '%demo pool-wait%' AND pid <> pg_backend_pid()" >/dev/null
      say "clients gone: no client waits, PgBouncerClientsWaiting resolves at the next evaluation"
      ;;
    *) usage ;;
  esac
}

queue() {
  case $1 in
    start)
      redis EVAL "for i = 1, 60000 do redis.call('RPUSH', KEYS[1], 'job-' .. i) end return redis.call('LLEN', KEYS[1])" 1 action_jobs >/dev/null
      say "action_jobs holds $(redis LLEN action_jobs) jobs: RedisQueueDepthHigh critical in 2 min (> 50,000), warning in 5 min (> 10,000)"
      ;;
    stop)
      redis DEL action_jobs >/dev/null
      say "action_jobs drained: RedisQueueDepthHigh resolves at the next evaluation"
      ;;
    *) usage ;;
  esac
}

certificate() {
  if grep -q '^  certificates: \[\]' "$DIR/runbook_exporter.yml" 2>/dev/null; then
    say "the demo's exporter config has no certificates target yet (the certificate collector is being added)."
    say "Once it has one, the stack's TLS server (127.0.0.1:$TLS_PORT) presents a certificate valid for 30 days"
    say "(CertificateExpiringSoon warning after 5 min: < 30 days) and, for SNI $TLS_EXPIRED_SERVER_NAME, an expired one"
    say "(CertificateExpiringSoon critical and CertificateVerificationFailed). Start a stack with"
    say "'scripts/stack.sh up DIR --cert-days 5' to see the critical level on the valid certificate too."
  else
    say "certificates are configured: the stack's TLS server presents a 30-day certificate (CertificateExpiringSoon"
    say "warning after 5 min) and an expired one for SNI $TLS_EXPIRED_SERVER_NAME (critical); these need no action."
  fi
}

case $NAME in
  replica-lag) replica_lag "$ACTION" ;;
  archive-fail) archive_fail "$ACTION" ;;
  pool-wait) pool_wait "$ACTION" ;;
  queue) queue "$ACTION" ;;
  certificate) certificate ;;
  stop-all)
    replica_lag stop
    archive_fail stop
    pool_wait stop
    queue stop
    ;;
  *) usage ;;
esac
