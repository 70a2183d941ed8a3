# shellcheck shell=bash
# Shared helpers for scripts/stack.sh: messages, the unprivileged user, the stack layout,
# the pids/stack.env bookkeeping files, process checks and port selection.
# Sourced by stack.sh; expects `set -euo pipefail`.

PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
PGBOUNCER_BIN=${PGBOUNCER_BIN:-/usr/sbin/pgbouncer}
REDIS_BIN=${REDIS_BIN:-/usr/bin/redis-server}
OPENSSL_BIN=${OPENSSL_BIN:-/usr/bin/openssl}

# Ports are drawn from this range; 5432/6379/6432 (Debian's own services) are outside it.
PORT_MIN=${STACK_PORT_MIN:-20000}
PORT_MAX=${STACK_PORT_MAX:-60999}
# Log lines meaning "somebody else has this port": retry on another one.
BIND_ERR_RE='address already in use|could not bind|could not create any TCP/IP sockets'

# Lock: every subcommand that starts or stops servers holds an flock on fd 9 of $STACK_DIR/.lock.
# Anything long-lived we start runs through close_extra_fds, or it would hold the lock forever;
# `up` also keeps its original stderr on fd 8, which servers must not inherit either.

msg()  { printf 'stack: %s\n' "$*" >&2; }
warn() { printf 'stack: WARNING: %s\n' "$*" >&2; }
die()  { printf 'stack: ERROR: %s\n' "$*" >&2; exit 1; }

# Milliseconds since the epoch (for timings only).
now_ms() { local t=${EPOCHREALTIME/[.,]/}; printf '%s' "$((t / 1000))"; }

# ---------------------------------------------------------------------------------------------
# Who runs the servers. initdb/pg_ctl/pgbouncer refuse root, so as root everything runs as the
# `postgres` system user (override with STACK_RUN_USER); otherwise as ourselves.
init_run_user() {
  if [[ $(id -u) -eq 0 ]]; then
    RUN_USER=${STACK_RUN_USER:-postgres}
    id "$RUN_USER" >/dev/null 2>&1 || die "user '$RUN_USER' does not exist (set STACK_RUN_USER)"
    RUN_GROUP=$(id -gn "$RUN_USER")
    AS_USER=(setpriv "--reuid=$RUN_USER" "--regid=$RUN_GROUP" --init-groups)
  else
    RUN_USER=$(id -un)
    RUN_GROUP=$(id -gn)
    AS_USER=()
  fi
}

# Run a command as the unprivileged user.
as_user() { "${AS_USER[@]}" "$@"; }

# Write stdin to FILE as the unprivileged user (so the servers own what they read).
write_file() { # FILE [MODE]
  as_user tee "$1" >/dev/null
  [[ -z ${2:-} ]] || chmod "$2" "$1"
}

# ---------------------------------------------------------------------------------------------
# Layout of a stack directory.
check_dir_arg() { # DIR -> prints the normalised path
  local dir=${1:-}
  [[ -n $dir ]] || die "missing DIR argument"
  [[ $dir == /* ]] || die "DIR must be an absolute path: $dir"
  dir=$(realpath -m -- "$dir")
  [[ $dir =~ ^/[A-Za-z0-9._/-]+$ ]] || die "DIR may only contain letters, digits and . _ / - : $dir"
  [[ $dir != / ]] || die "refusing to use / as a stack directory"
  printf '%s' "$dir"
}

set_layout() { # DIR
  STACK_DIR=$1
  ENV_FILE=$STACK_DIR/stack.env
  PIDS_FILE=$STACK_DIR/pids
  LOCK_FILE=$STACK_DIR/.lock
  MARKER_FILE=$STACK_DIR/.runbook-stack
  LOG_DIR=$STACK_DIR/logs
  SECRETS_DIR=$STACK_DIR/secrets
  TLS_DIR=$STACK_DIR/tls
  RUN_DIR=$STACK_DIR/run
  PG_DIR=$STACK_DIR/pg
  PRIMARY_DATA=$PG_DIR/primary
  REPLICA_DATA=$PG_DIR/replica
  SOCK_PRIMARY=$RUN_DIR/pg-primary
  SOCK_REPLICA=$RUN_DIR/pg-replica
  ARCHIVE_DIR=$STACK_DIR/archive
  ARCHIVE_FAIL_FLAG=$STACK_DIR/archive_fail
  BOUNCER_DIR=$STACK_DIR/pgbouncer
  REDIS_DIR=$STACK_DIR/redis
  PRIMARY_LOG=$LOG_DIR/primary.log
  REPLICA_LOG=$LOG_DIR/replica.log
  BOUNCER_LOG=$LOG_DIR/pgbouncer.log
  REDIS_LOG=$LOG_DIR/redis.log
  TLS_LOG=$LOG_DIR/tls-server.log
  SETUP_LOG=$LOG_DIR/setup.log
  TLS_SETUP_LOG=$LOG_DIR/tls-setup.log
  WATCHDOG_LOG=$LOG_DIR/watchdog.log
}

# Take the stack's lock (waits for a concurrent up/down of the same DIR to finish).
lock_stack() {
  exec 9>>"$LOCK_FILE"
  flock -w 120 9 || die "could not lock $LOCK_FILE (another stack.sh still busy?)"
}

load_env() {
  [[ -f $ENV_FILE ]] || die "$ENV_FILE not found: is the stack up?"
  # shellcheck disable=SC1090
  source "$ENV_FILE"
}

# Replace or add KEY=VALUE in stack.env.
env_set() { # KEY VALUE
  local tmp=$ENV_FILE.tmp.$$
  { grep -v "^$1=" "$ENV_FILE" 2>/dev/null || true; printf '%s=%s\n' "$1" "$2"; } >"$tmp"
  mv -f "$tmp" "$ENV_FILE"
}

# pids file: one "name pid" per line.
pids_del() { # NAME
  [[ -f $PIDS_FILE ]] || return 0
  local tmp=$PIDS_FILE.tmp.$$
  awk -v n="$1" '$1 != n' "$PIDS_FILE" >"$tmp"
  mv -f "$tmp" "$PIDS_FILE"
}
pids_set() { # NAME PID
  pids_del "$1"
  printf '%s %s\n' "$1" "$2" >>"$PIDS_FILE"
}
pids_get() { # NAME -> pid or nothing
  [[ -f $PIDS_FILE ]] || return 0
  awk -v n="$1" '$1 == n { print $2; exit }' "$PIDS_FILE"
}

# ---------------------------------------------------------------------------------------------
# Processes. A zombie (Z) or dying (X) process counts as dead: PID 1 here reaps slowly.
proc_fields() { # PID -> sets PROC_STATE, PROC_PPID, PROC_START; fails if no such process
  local line rest
  [[ ${1:-} =~ ^[0-9]+$ ]] || return 1
  { read -r line <"/proc/$1/stat"; } 2>/dev/null || return 1
  rest=${line##*) }          # fields from 3 on; comm (field 2) may contain spaces
  read -r -a _f <<<"$rest"
  PROC_STATE=${_f[0]}
  PROC_PPID=${_f[1]}
  PROC_START=${_f[19]}       # field 22: start time in clock ticks since boot
}

pid_alive() { # PID
  proc_fields "$1" || return 1
  [[ $PROC_STATE != Z && $PROC_STATE != X ]]
}

proc_comm() { # PID
  local c=""
  { read -r c <"/proc/$1/comm"; } 2>/dev/null || true
  printf '%s' "$c"
}

proc_cmdline() { # PID
  { tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null || true
}

# Parent and children maps of all processes, for finding descendants and our own ancestors.
declare -A PARENT_OF=() CHILDREN_OF=()
scan_procs() {
  local f line rest pid ppid
  PARENT_OF=()
  CHILDREN_OF=()
  for f in /proc/[0-9]*/stat; do
    { read -r line <"$f"; } 2>/dev/null || continue
    pid=${line%% *}
    rest=${line##*) }
    rest=${rest#* }
    ppid=${rest%% *}
    PARENT_OF[$pid]=$ppid
    CHILDREN_OF[$ppid]+=" $pid"
  done
}

descendants_of() { # PID -> prints all descendants (needs scan_procs)
  local c
  for c in ${CHILDREN_OF[$1]:-}; do
    printf '%s\n' "$c"
    descendants_of "$c"
  done
}

ancestors_of_self() { # prints $$ and its ancestors (needs scan_procs)
  local p=$$
  while [[ -n $p && $p != 0 ]]; do
    printf '%s\n' "$p"
    p=${PARENT_OF[$p]:-}
  done
}

# ---------------------------------------------------------------------------------------------
# Ports.
USED_PORTS=()
# Sets PORT to a random port in [PORT_MIN, PORT_MAX] that no socket uses and we did not pick yet.
pick_port() {
  local p i
  for ((i = 0; i < 200; i++)); do
    p=$(shuf -i "$PORT_MIN-$PORT_MAX" -n 1)
    [[ " ${USED_PORTS[*]} " == *" $p "* ]] && continue
    if [[ -z $(ss -Htan "sport = :$p") ]]; then
      USED_PORTS+=("$p")
      PORT=$p
      return 0
    fi
  done
  die "no free TCP port found in $PORT_MIN-$PORT_MAX"
}

# Is PID listening on 127.0.0.1:PORT?
pid_listens_on() { # PID PORT
  ss -Htlnp "sport = :$2" 2>/dev/null | grep -q "pid=$1,"
}

# Wait until PID listens on PORT. 0 = listening, 1 = process died, 2 = timeout.
wait_listen() { # PID PORT [TIMEOUT_S]
  local i tries=$((${3:-10} * 20))
  for ((i = 0; i < tries; i++)); do
    pid_listens_on "$1" "$2" && return 0
    pid_alive "$1" || return 1
    sleep 0.05
  done
  return 2
}

# In a subshell about to exec a long-lived process: close every fd above 2 that we inherited
# (the stack lock on 9, up's stderr copy on 8, and whatever the caller passed down, e.g. a test
# harness's pipe), so no server keeps a caller's pipe or the lock open.
close_extra_fds() {
  local f n
  for f in /proc/self/fd/*; do
    n=${f##*/}
    ((n > 2)) || continue
    eval "exec $n>&-" 2>/dev/null || true
  done
}

# Start a long-lived server in the background in its own session, as the unprivileged user,
# with stdio on LOG, and record its pid at once. `exec` keeps $! the server's real pid.
spawn() { # NAME LOG CMD...
  local name=$1 log=$2
  shift 2
  (close_extra_fds; exec setsid "${AS_USER[@]}" "$@" </dev/null >>"$log" 2>&1) &
  SPAWNED_PID=$!
  pids_set "$name" "$SPAWNED_PID"
}

# spawn, then wait until the server listens on PORT. On failure note why in LOG, make sure the
# process is gone and return 1 (the caller decides whether a bind error means "try another port").
spawn_listening() { # NAME LOG PORT CMD...
  local name=$1 log=$2 port=$3 rc=0 st=0
  shift 3
  spawn "$name" "$log" "$@"
  wait_listen "$SPAWNED_PID" "$port" || rc=$?
  case $rc in
    0) return 0 ;;
    1) wait "$SPAWNED_PID" 2>/dev/null || st=$?
       echo "stack.sh: $name ($1) exited with status $st before listening on 127.0.0.1:$port" >>"$log" ;;
    *) echo "stack.sh: $name ($1) did not listen on 127.0.0.1:$port within 10 s" >>"$log"
       kill_quietly "$SPAWNED_PID" ;;
  esac
  return 1
}

log_size() { stat -c %s "$1" 2>/dev/null || printf '0'; }

log_tail() { # LOG [LINES]
  if [[ -s $1 ]]; then
    printf '  --- last lines of %s ---\n' "$1" >&2
    tail -n "${2:-20}" "$1" | sed 's/^/  | /' >&2
  else
    printf '  (%s is empty or missing)\n' "$1" >&2
  fi
}

# Report a server that failed to start, with its log tail, and exit (the EXIT trap tears down).
fail_server() { # NAME LOG REASON
  printf 'stack: ERROR: %s: %s\n' "$1" "$3" >&2
  log_tail "$2" 25
  exit 1
}

# Start a server on a fresh port, retrying on another port when the bind fails.
# LAUNCHER PORT must start it and return 0 once it serves; it runs in an `if`, so no set -e.
start_with_port_retry() { # NAME LOG LAUNCHER
  local name=$1 log=$2 launcher=$3 attempt offset
  for attempt in 1 2 3 4 5 6; do
    pick_port
    offset=$(log_size "$log")
    if "$launcher" "$PORT"; then
      msg "$name up on 127.0.0.1:$PORT"
      return 0
    fi
    if tail -c +"$((offset + 1))" "$log" 2>/dev/null | grep -qiE "$BIND_ERR_RE"; then
      msg "$name: port $PORT is taken, retrying on another port"
      continue
    fi
    fail_server "$name" "$log" "failed to start on port $PORT"
  done
  fail_server "$name" "$log" "no usable port after $attempt attempts"
}

# Random alphanumeric password.
gen_password() {
  local pw=""
  while ((${#pw} < 24)); do
    pw+=$(head -c 64 /dev/urandom | base64 -w0 | tr -dc 'A-Za-z0-9')
  done
  printf '%s' "${pw:0:24}"
}

# Kill a launcher's leftover process (used when a server never became ready).
kill_quietly() { # PID
  pid_alive "$1" || return 0
  kill -CONT "$1" 2>/dev/null || true
  kill -KILL "$1" 2>/dev/null || true
}
