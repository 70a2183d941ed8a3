# shellcheck shell=bash
# PostgreSQL primary + streaming replica, PgBouncer and Redis for scripts/stack.sh.

PG_REPLICATION_SLOT=replica1

# ---------------------------------------------------------------------------------------------
# PostgreSQL

# psql as superuser over the instance's unix socket (local auth is trust).
pg_sql() { # primary|replica PSQL-ARGS...
  local which=$1 sock port
  shift
  if [[ $which == primary ]]; then sock=$SOCK_PRIMARY port=$PG_PRIMARY_PORT; else sock=$SOCK_REPLICA port=$PG_REPLICA_PORT; fi
  "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$sock" -p "$port" -U postgres -d postgres "$@"
}

# Settings that differ between the two instances live in stack_local.conf, included last.
pg_write_local_conf() { # DATA PORT SOCKDIR CLUSTER_NAME
  write_file "$1/stack_local.conf" <<EOF
# Per-instance settings (written by scripts/stack.sh)
port = $2
unix_socket_directories = '$3'
cluster_name = '$4'
EOF
}

pg_initdb_primary() {
  as_user "$PG_BINDIR/initdb" -D "$PRIMARY_DATA" -U postgres --pwfile="$SECRETS_DIR/postgres.pw" \
    -E UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 --no-sync \
    >>"$SETUP_LOG" 2>&1 || fail_server "primary" "$SETUP_LOG" "initdb failed"

  as_user tee -a "$PRIMARY_DATA/postgresql.conf" >/dev/null <<EOF

# ---- runbook_exporter test stack (scripts/stack.sh) ----
listen_addresses = '127.0.0.1'
max_connections = 100
shared_buffers = 32MB
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
hot_standby = on
# standby: reconnect to a restarted primary within ~1 s (default 5 s)
wal_retrieve_retry_interval = 1s
archive_mode = on
archive_command = 'test ! -f $ARCHIVE_FAIL_FLAG && cp %p $ARCHIVE_DIR/%f'
ssl = on
ssl_cert_file = '$TLS_DIR/server.pem'
ssl_key_file = '$TLS_DIR/server.key'
shared_preload_libraries = 'pg_stat_statements'
log_connections = on
log_line_prefix = '%m [%p] %q%u@%d '
include_if_exists = 'stack_local.conf'
EOF

  write_file "$PRIMARY_DATA/pg_hba.conf" <<EOF
# TYPE  DATABASE     USER  ADDRESS        METHOD   (written by scripts/stack.sh)
local   all          all                  trust
local   replication  all                  trust
host    all          all   127.0.0.1/32   scram-sha-256
host    replication  all   127.0.0.1/32   scram-sha-256
EOF
}

# pg_ctl start; records the postmaster pid (even on failure, if it got that far).
pg_start() { # DATA LOG NAME
  local data=$1 log=$2 name=$3 rc=0 pid=""
  # In a subshell: fds closed on a function call stay closed for a trap that fires meanwhile.
  (close_extra_fds; exec "${AS_USER[@]}" "$PG_BINDIR/pg_ctl" -D "$data" -l "$log" -w -t 30 start \
    </dev/null >/dev/null 2>>"$log") || rc=$?
  if [[ -f $data/postmaster.pid ]]; then
    { read -r pid <"$data/postmaster.pid"; } 2>/dev/null || true
    [[ -z $pid ]] || pids_set "$name" "$pid"
  fi
  PG_STARTED_PID=$pid
  return "$rc"
}

launch_primary() { # PORT
  pg_write_local_conf "$PRIMARY_DATA" "$1" "$SOCK_PRIMARY" primary || return 1
  pg_start "$PRIMARY_DATA" "$PRIMARY_LOG" primary || return 1
  PG_PRIMARY_PORT=$1
  PG_PRIMARY_PID=$PG_STARTED_PID
}

launch_replica() { # PORT
  pg_write_local_conf "$REPLICA_DATA" "$1" "$SOCK_REPLICA" "$PG_REPLICATION_SLOT" || return 1
  pg_start "$REPLICA_DATA" "$REPLICA_LOG" replica || return 1
  PG_REPLICA_PORT=$1
  PG_REPLICA_PID=$PG_STARTED_PID
}

pg_bootstrap_primary() {
  pg_sql primary \
    -v exporter_pw="$(<"$SECRETS_DIR/exporter.pw")" \
    -v app_pw="$(<"$SECRETS_DIR/app.pw")" \
    -v repl_pw="$(<"$SECRETS_DIR/replicator.pw")" \
    >>"$SETUP_LOG" 2>&1 <<'EOF' || fail_server "primary" "$SETUP_LOG" "creating roles/databases failed"
CREATE ROLE exporter LOGIN PASSWORD :'exporter_pw';
GRANT pg_monitor TO exporter;
CREATE ROLE app LOGIN PASSWORD :'app_pw';
CREATE ROLE replicator REPLICATION LOGIN PASSWORD :'repl_pw';
CREATE DATABASE appdb OWNER app;
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
\connect appdb
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
SET ROLE app;
CREATE TABLE items (
  id         bigint PRIMARY KEY,
  name       text NOT NULL,
  qty        integer NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO items (id, name, qty) SELECT g, 'item-' || g, g % 17 FROM generate_series(1, 1000) AS g;
RESET ROLE;
ANALYZE items;
EOF
}

pg_basebackup_replica() {
  as_user env PGPASSWORD="$(<"$SECRETS_DIR/replicator.pw")" \
    "$PG_BINDIR/pg_basebackup" -h 127.0.0.1 -p "$PG_PRIMARY_PORT" -U replicator -D "$REPLICA_DATA" \
    -R -X stream -C -S "$PG_REPLICATION_SLOT" -c fast --no-sync \
    >>"$SETUP_LOG" 2>&1 || fail_server "replica" "$SETUP_LOG" "pg_basebackup failed"
}

# Wait until the primary sees the replica streaming (0) or TIMEOUT_S pass (1).
pg_wait_streaming() { # [TIMEOUT_S]
  local i n tries=$((${1:-10} * 20))
  for ((i = 0; i < tries; i++)); do
    n=$(pg_sql primary -At -c "select count(*) from pg_stat_replication where application_name = '$PG_REPLICATION_SLOT' and state = 'streaming'" 2>/dev/null || true)
    [[ $n == 1 ]] && return 0
    sleep 0.05
  done
  return 1
}

# ---------------------------------------------------------------------------------------------
# PgBouncer (auth_type scram-sha-256 with plain-text passwords in the auth_file).

bouncer_write_files() { # PORT
  local port=$1
  write_file "$BOUNCER_DIR/userlist.txt" 600 <<EOF
"pgb_admin" "$(<"$SECRETS_DIR/pgb_admin.pw")"
"pgb_stats" "$(<"$SECRETS_DIR/pgb_stats.pw")"
"app" "$(<"$SECRETS_DIR/app.pw")"
EOF
  write_file "$BOUNCER_DIR/pgbouncer.ini" <<EOF
; runbook_exporter test stack (written by scripts/stack.sh)
[databases]
appdb = host=127.0.0.1 port=$PG_PRIMARY_PORT dbname=appdb
postgres = host=127.0.0.1 port=$PG_PRIMARY_PORT dbname=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $BOUNCER_DIR/userlist.txt
admin_users = pgb_admin
stats_users = pgb_stats
pool_mode = transaction
default_pool_size = 5
max_client_conn = 100
ignore_startup_parameters = extra_float_digits
pidfile = $RUN_DIR/pgbouncer.pid
logfile = $BOUNCER_LOG
EOF
}

launch_pgbouncer() { # PORT
  local port=$1
  bouncer_write_files "$port" || return 1
  # -q: no duplicate log lines on stderr (logfile already gets them)
  spawn_listening pgbouncer "$BOUNCER_LOG" "$port" "$PGBOUNCER_BIN" -q "$BOUNCER_DIR/pgbouncer.ini" || return 1
  PGBOUNCER_PORT=$port
  PGBOUNCER_PID=$SPAWNED_PID
}

# ---------------------------------------------------------------------------------------------
# Redis: requirepass for the default user plus an ACL user `exporter`.

launch_redis() { # PORT
  local port=$1
  write_file "$REDIS_DIR/redis.conf" 600 <<EOF
# runbook_exporter test stack (written by scripts/stack.sh)
bind 127.0.0.1
port $port
protected-mode yes
daemonize no
pidfile $RUN_DIR/redis.pid
logfile $REDIS_LOG
dir $REDIS_DIR
save ""
appendonly no
latency-monitor-threshold 100
requirepass $(<"$SECRETS_DIR/redis.pw")
# Read-only monitoring user: data reads, INFO, CONFIG GET, read subcommands of SLOWLOG/LATENCY/CLIENT.
user exporter on >$(<"$SECRETS_DIR/redis_exporter.pw") ~* &* +@read +ping +echo +hello +select +info +config|get +slowlog|get +slowlog|len +latency|latest +latency|history +latency|histogram +latency|doctor +client|list +client|info +client|id +client|setname +client|getname
EOF
  spawn_listening redis "$REDIS_LOG" "$port" "$REDIS_BIN" "$REDIS_DIR/redis.conf" || return 1
  REDIS_PORT=$port
  REDIS_PID=$SPAWNED_PID
}
