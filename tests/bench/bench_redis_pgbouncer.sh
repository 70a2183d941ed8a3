#!/usr/bin/env bash
# Side-by-side cost of runbook_exporter and Debian's peer exporters against the Redis and the
# PgBouncer of a throwaway stack (scripts/stack.sh):
#   redis:     runbook_exporter (one redis target)     vs prometheus-redis-exporter 1.45
#   pgbouncer: runbook_exporter (one pgbouncer target) vs prometheus-pgbouncer-exporter 1.7 (Python)
# One command: brings the stack up, fills Redis like PEERS.md §2, measures one pair after the other
# (our exporter has one target kind at a time, so its CPU per collection is attributable), prints
# one markdown table per pair and tears everything down. See tests/bench/README.md.
#
# Environment overrides:
#   PAIRS="redis pgbouncer"   which pairs to run, in this order
#   SCRAPES=200          sequential /metrics scrapes per exporter (latency, CPU per scrape)
#   WINDOW_SECONDS=40    window over which our exporter collects on its own (interval 1s), unscraped
#   BASELINE_SECONDS=10  idle window (no exporter running) for the servers' own CPU
#   INTERVAL=1s          our collection interval during the benchmark (timeout = interval)
#   LIST_LEN=1234 DB1_KEYS=200 DB2_KEYS=50   Redis data (PEERS.md §2)
#   PERF=0               1: after each pair's measurements, perf-record our exporter for
#                        PERF_SECONDS (20) and append the top symbols to the report
#   EXPORTER=build/runbook_exporter
#   REDIS_PEER=/usr/bin/prometheus-redis-exporter
#   PGBOUNCER_PEER=/usr/bin/prometheus-pgbouncer-exporter
#   BENCH_DIR=DIR        work directory (default: a new /tmp/rbbench.XXXXXX, removed at the end)
#   KEEP=1               keep BENCH_DIR (logs, raw scrapes, latencies, CLIENT LIST samples)
#   REPORT=FILE          also write the report (stdout) to FILE
# shellcheck disable=SC2154 # RS_<tag>_* are set by redis_snapshot through printf -v
set -euo pipefail
umask 022

ROOT=$(cd -- "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/../.." && pwd)
STACK_SH=$ROOT/scripts/stack.sh
# shellcheck source=lib.sh
source "$ROOT/tests/bench/lib.sh"
EXPORTER=${EXPORTER:-$ROOT/build/runbook_exporter}
REDIS_PEER=${REDIS_PEER:-/usr/bin/prometheus-redis-exporter}
PGBOUNCER_PEER=${PGBOUNCER_PEER:-/usr/bin/prometheus-pgbouncer-exporter}
PAIRS=${PAIRS:-redis pgbouncer}
SCRAPES=${SCRAPES:-200}
WINDOW_SECONDS=${WINDOW_SECONDS:-40}
BASELINE_SECONDS=${BASELINE_SECONDS:-10}
INTERVAL=${INTERVAL:-1s}
LIST_LEN=${LIST_LEN:-1234}
DB1_KEYS=${DB1_KEYS:-200}
DB2_KEYS=${DB2_KEYS:-50}
PERF=${PERF:-0}
PERF_SECONDS=${PERF_SECONDS:-20}
KEEP=${KEEP:-0}
REPORT=${REPORT:-}

[[ $SCRAPES =~ ^[0-9]+$ ]] && ((SCRAPES >= 20)) || die "SCRAPES must be a number >= 20"
[[ $WINDOW_SECONDS =~ ^[0-9]+$ ]] && ((WINDOW_SECONDS >= 5)) || die "WINDOW_SECONDS must be a number >= 5"
[[ $BASELINE_SECONDS =~ ^[0-9]+$ ]] && ((BASELINE_SECONDS >= 2)) || die "BASELINE_SECONDS must be a number >= 2"
[[ $PERF_SECONDS =~ ^[0-9]+$ ]] && ((PERF_SECONDS >= 1)) || die "PERF_SECONDS must be a number >= 1"
[[ $INTERVAL =~ ^[0-9]+(ms|s)$ ]] || die "INTERVAL must look like 1s or 500ms"
for n in "$LIST_LEN" "$DB1_KEYS" "$DB2_KEYS"; do [[ $n =~ ^[0-9]+$ ]] || die "key counts must be numbers"; done
((LIST_LEN >= 1)) || die "LIST_LEN must be >= 1"
for p in $PAIRS; do [[ $p == redis || $p == pgbouncer ]] || die "PAIRS: unknown pair '$p' (redis, pgbouncer)"; done
[[ -n ${PAIRS// /} ]] || die "PAIRS is empty"
[[ -x $EXPORTER ]] || die "$EXPORTER not built (cmake --build build -j2 --target runbook_exporter)"
if [[ " $PAIRS " == *" redis "* ]]; then
  [[ -x $REDIS_PEER ]] || die "$REDIS_PEER not found (apt-get install prometheus-redis-exporter)"
fi
if [[ " $PAIRS " == *" pgbouncer "* ]]; then
  [[ -r $PGBOUNCER_PEER ]] || die "$PGBOUNCER_PEER not found (apt-get install prometheus-pgbouncer-exporter)"
fi
for tool in curl awk ss gzip redis-cli psql setpriv; do command -v "$tool" >/dev/null || die "$tool is required"; done
if [[ $PERF == 1 ]]; then command -v perf >/dev/null || die "PERF=1 needs perf"; fi

TICK_HZ=$(getconf CLK_TCK)
T_START=$(date +%s)

if [[ -n ${BENCH_DIR:-} ]]; then
  WORK=$(realpath -m -- "$BENCH_DIR")
  mkdir -p -- "$WORK"
else
  WORK=$(mktemp -d /tmp/rbbench.XXXXXX)
fi
chmod 755 "$WORK" # the servers (user postgres) and the exporters (user nobody) must get in
STACK=$WORK/stack
STACK_UP=0
OUR_PID="" PEER_PID="" SLEEP_PID="" PERF_PID=""

# ------------------------------------------------------------------------------------------------
# Cleanup: everything we started, by pid; the stack by `stack.sh down` (its watchdog watches $$
# too, and the exporters carry a parent-death signal, should this script be killed outright).
stop_exporters() {
  local pid
  for pid in "$PERF_PID" "$OUR_PID" "$PEER_PID"; do [[ -n $pid ]] && kill "$pid" 2>/dev/null || true; done
  for pid in "$PERF_PID" "$OUR_PID" "$PEER_PID"; do [[ -n $pid ]] && wait "$pid" 2>/dev/null || true; done
  PERF_PID="" OUR_PID="" PEER_PID=""
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [[ -n $SLEEP_PID ]] && kill "$SLEEP_PID" 2>/dev/null || true
  stop_exporters
  teardown_stack_and_work
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------------------------------------
# Helpers (the measuring ones as in bench_postgres.sh)

# A sleep that a signal interrupts at once (bash runs traps only after a foreground child ends).
nap() {
  sleep "$1" &
  SLEEP_PID=$!
  wait "$SLEEP_PID"
  SLEEP_PID=""
}

fcalc0() { awk "BEGIN { v = $1; if (v < 0) v = 0; printf \"%.${2:-3}f\", v }"; }

# Local ports of the established TCP connections that PID holds to 127.0.0.1:PORT (client side).
conn_ports() { # PID PORT
  ss -tnpH state established "( dport = :$2 )" 2>/dev/null |
    awk -v p="pid=$1," 'index($0, p) { n = split($3, a, ":"); print a[n] }' | sort -n | paste -sd ' '
}
count_words() { set -- $1; printf '%s' "$#"; }

# -- Redis probes. Every redis-cli call is one connection (AUTH + the command): each call is
#    logged in $PROBES so that it can be taken out of total_connections_received / commands.
PROBES=$WORK/.redis_probes
: >"$PROBES"
rcli() { # ARGS...   (default user, db 0)
  echo x >>"$PROBES"
  REDISCLI_AUTH=$(<"$REDIS_PASSWORD_FILE") redis-cli --no-auth-warning -h 127.0.0.1 -p "$REDIS_PORT" "$@"
}
probe_count() { wc -l <"$PROBES"; }
info_field() { # FILE FIELD -> value (errorstat lines: count=)
  awk -F: -v k="$2" '{ sub(/\r$/, "") } $1 == k { v = $2; sub(/^count=/, "", v); sub(/,.*/, "", v); print v; found = 1 }
    END { if (!found) print 0 }' "$1"
}
# Snapshot at a phase boundary: INFO (stats, errorstats) and CLIENT LIST; sets RS_<tag>_* vars.
redis_snapshot() { # TAG
  local tag=$1 f=$WORK/redis.info.$1 c=$WORK/redis.clients.$1
  rcli INFO >"$f"
  printf -v "RS_${tag}_PROBES" '%s' "$(probe_count)"
  rcli CLIENT LIST >"$c"
  printf -v "RS_${tag}_CONN" '%s' "$(info_field "$f" total_connections_received)"
  printf -v "RS_${tag}_CMDS" '%s' "$(info_field "$f" total_commands_processed)"
  printf -v "RS_${tag}_WRONGTYPE" '%s' "$(info_field "$f" errorstat_WRONGTYPE)"
  printf -v "RS_${tag}_ERRORS" '%s' "$(info_field "$f" total_error_replies)"
  printf -v "RS_${tag}_OURS" '%s' "$(awk '/ name=runbook_exporter /' "$c" | wc -l)"
  printf -v "RS_${tag}_OURIDS" '%s' "$(awk '/ name=runbook_exporter / { sub(/^id=/, "", $1); print $1 }' "$c" | paste -sd ' ')"
  printf -v "RS_${tag}_PEER" '%s' "$(awk '/ name=redis_exporter /' "$c" | wc -l)"
  printf -v "RS_${tag}_ALL" '%s' "$(wc -l <"$c")"
}
# Connections accepted between two snapshots that were not our probes. total_connections_received
# counts the connection reading it, so the probes after A's INFO up to and including B's INFO are
# exactly the probe connections in between.
redis_new_conns() { # TAG-A TAG-B
  local a=RS_$1_CONN b=RS_$2_CONN pa=RS_$1_PROBES pb=RS_$2_PROBES
  printf '%s' "$(((${!b} - ${!a}) - (${!pb} - ${!pa})))"
}
# Commands processed between two snapshots, without the probes' AUTH + command.
redis_cmds() { # TAG-A TAG-B
  local a=RS_$1_CMDS b=RS_$2_CMDS pa=RS_$1_PROBES pb=RS_$2_PROBES
  printf '%s' "$(((${!b} - ${!a}) - 2 * (${!pb} - ${!pa})))"
}
redis_delta() { # FIELD TAG-A TAG-B
  local a=RS_$2_$1 b=RS_$3_$1
  printf '%s' "$((${!b} - ${!a}))"
}

# -- PgBouncer: the exporters log in as the stats user; nothing else does (probes would use the
#    admin user). PgBouncer logs every login (log_connections = 1, the default).
bouncer_logins() {
  local n
  n=$(grep -c "login attempt: db=pgbouncer user=$PGBOUNCER_STATS_USER " "$PGBOUNCER_LOG" 2>/dev/null || true)
  printf '%s' "${n:-0}"
}

# ------------------------------------------------------------------------------------------------
# 1. Stack, Redis data, server baselines

log "work dir $WORK; bringing up the stack (takes ~20 s)"
STACK_UP=1
"$STACK_SH" up "$STACK" --watch $$ >"$WORK/stack-up.log" 2>&1 || { cat "$WORK/stack-up.log" >&2; die "stack up failed"; }
# shellcheck disable=SC1091
source "$STACK/stack.env"
[[ $(cat "/proc/$REDIS_PID/comm" 2>/dev/null) == redis-server ]] || die "REDIS_PID $REDIS_PID is not redis-server"
[[ $(cat "/proc/$PGBOUNCER_PID/comm" 2>/dev/null) == pgbouncer ]] || die "PGBOUNCER_PID $PGBOUNCER_PID is not pgbouncer"

log "populating Redis (db0: list axiomdb:commands of $LIST_LEN + 7 keys of other types; db1: $DB1_KEYS keys with TTL; db2: $DB2_KEYS + 1)"
redis_fill_commands "$LIST_LEN" "$DB1_KEYS" "$DB2_KEYS" | rcli >/dev/null
[[ $(rcli LLEN axiomdb:commands) == "$LIST_LEN" ]] || die "Redis population failed"
REDIS_KEYSPACE=$(rcli INFO keyspace | tr -d '\r' | awk -F'[:,=]' '/^db/ { printf "%s%s %s keys", sep, $1, $3; sep = ", " }')
rcli CONFIG RESETSTAT >/dev/null # errorstats, commandstats and connection counters start at 0

log "baseline: ${BASELINE_SECONDS} s with no exporter running"
bl_r0=$(cpu_ns "$REDIS_PID") bl_b0=$(cpu_ns "$PGBOUNCER_PID") bl_w0=$EPOCHREALTIME
nap "$BASELINE_SECONDS"
bl_r1=$(cpu_ns "$REDIS_PID") bl_b1=$(cpu_ns "$PGBOUNCER_PID") bl_w1=$EPOCHREALTIME
BL_SECS=$(fcalc "$bl_w1 - $bl_w0" 3)
declare -A BASE_MS_S=(
  [redis]=$(fcalc "($bl_r1 - $bl_r0) / 1e6 / $BL_SECS" 4)
  [pgbouncer]=$(fcalc "($bl_b1 - $bl_b0) / 1e6 / $BL_SECS" 4)
)
declare -A SERVER_PID=([redis]=$REDIS_PID [pgbouncer]=$PGBOUNCER_PID)
declare -A SERVER_PORT=([redis]=$REDIS_PORT [pgbouncer]=$PGBOUNCER_PORT)
declare -A PEER_NAME=([redis]=redis_exporter [pgbouncer]=pgbouncer_exporter.py)
declare -A V # results: V[kind:key]

# ------------------------------------------------------------------------------------------------
# 2. One pair: our exporter (this kind only) and the peer; phases A (ours unscraped),
#    B (ours scraped), C (peer scraped), as in bench_postgres.sh.

write_config() { # KIND FILE
  local kind=$1 f=$2
  {
    printf '# runbook_exporter config for tests/bench/bench_redis_pgbouncer.sh: %s only, every %s\n' "$kind" "$INTERVAL"
    printf 'global: {interval: %s, timeout: %s, slow_interval: 1m}\ntargets:\n  postgres: []\n  certificates: []\n' "$INTERVAL" "$INTERVAL"
    if [[ $kind == redis ]]; then
      printf '  pgbouncer: []\n  redis:\n'
      printf '    - {name: redis, host: 127.0.0.1, port: %s, user: %s, password_file: %s,\n' "$REDIS_PORT" "$REDIS_EXPORTER_USER" "$REDIS_EXPORTER_PASSWORD_FILE"
      printf '       keys: [{db: 0, key: "axiomdb:commands"}, {db: 0, pattern: "axiomdb:*"}]}\n'
    else
      printf '  redis: []\n  pgbouncer:\n'
      printf '    - {name: pgbouncer, host: 127.0.0.1, port: %s, user: %s, password_file: %s, sslmode: disable}\n' \
        "$PGBOUNCER_PORT" "$PGBOUNCER_STATS_USER" "$PGBOUNCER_STATS_PASSWORD_FILE"
    fi
  } >"$f"
  chmod 644 "$f"
}

start_peer() { # KIND PORT
  if [[ $1 == redis ]]; then
    # PEERS.md §8: default user with REDIS_PASSWORD; the key flags equivalent to our keys: list.
    REDIS_PASSWORD=$(<"$REDIS_PASSWORD_FILE") "${AS_NOBODY[@]}" "$REDIS_PEER" \
      -redis.addr="redis://127.0.0.1:$REDIS_PORT" -web.listen-address="127.0.0.1:$2" \
      -check-single-keys='db0=axiomdb:commands' -check-keys='db0=axiomdb:*' \
      </dev/null >"$WORK/redis_exporter.log" 2>&1 &
  else
    # PEERS.md §8: without --database it dies at start on PgBouncer 1.18 (KeyError 'total_requests').
    PGPASSWORD=$(<"$PGBOUNCER_STATS_PASSWORD_FILE") "${AS_NOBODY[@]}" /usr/bin/python3 "$PGBOUNCER_PEER" \
      --host 127.0.0.1 --port "$2" --pgbouncer-host 127.0.0.1 --pgbouncer-port "$PGBOUNCER_PORT" \
      --pgbouncer-user "$PGBOUNCER_STATS_USER" --database __none__ \
      </dev/null >"$WORK/pgbouncer_exporter.log" 2>&1 &
  fi
  PEER_PID=$!
}

our_collections() { # URL KIND
  local cf=$WORK/.counter.prom
  scrape "$1" "$cf"
  sample "$cf" runbook_exporter_collections_total "target=\"$2\""
}

wait_ready() { # WHO(ours|peer) KIND URL PID
  local who=$1 kind=$2 url=$3 pid=$4 f=$WORK/.ready.prom deadline=$((SECONDS + 30)) c u
  while :; do
    ((SECONDS < deadline)) || die "$who $kind exporter not ready after 30 s (logs in $WORK; KEEP=1 keeps them)"
    kill -0 "$pid" 2>/dev/null || { cat "$WORK"/*.log >&2; die "$who $kind exporter exited"; }
    if scrape "$url" "$f" 2>/dev/null; then
      if [[ $who == ours ]]; then
        c=$(sample "$f" runbook_exporter_collections_total "target=\"$kind\"")
        u=$(sample "$f" "${kind}_up" "target=\"$kind\"")
        awk -v c="${c:-0}" -v u="${u:-0}" 'BEGIN { exit !(c >= 3 && u == 1) }' && return 0
      elif [[ $kind == redis ]]; then
        [[ $(sample "$f" redis_up "") == 1 ]] && return 0
      else
        grep -q '^pgbouncer_' "$f" && return 0
      fi
    fi
    sleep 0.5
  done
}

run_pair() { # KIND
  local kind=$1 spid=${SERVER_PID[$1]} sport=${SERVER_PORT[$1]} our_port peer_port our_url peer_url
  local a_c0 a_c1 a_t0 a_t1 a_n0 a_n1 a_s0 a_s1 a_w0 a_w1 b_c0 b_c1 b_t0 b_t1 b_n0 b_n1 b_s0 b_s1 b_w0 b_w1
  local c_c0 c_c1 c_t0 c_t1 c_n0 c_n1 c_s0 c_s1 c_w0 c_w1 a_coll b_coll c_coll secs base l0 l1 l2 l3 l4
  local r2_coll

  our_port=$(pick_port)
  peer_port=$(pick_port)
  while [[ $peer_port == "$our_port" ]]; do peer_port=$(pick_port); done
  our_url=http://127.0.0.1:$our_port/metrics
  peer_url=http://127.0.0.1:$peer_port/metrics
  write_config "$kind" "$WORK/runbook.$kind.yml"
  base=${BASE_MS_S[$kind]}

  # Ours first, then the peer, so that each one's start-up connections are its own.
  [[ $kind == redis ]] && redis_snapshot r0
  l0=$(bouncer_logins)
  log "[$kind] starting runbook_exporter on :$our_port"
  "${AS_NOBODY[@]}" "$EXPORTER" --config "$WORK/runbook.$kind.yml" --web.listen-address "127.0.0.1:$our_port" \
    </dev/null >"$WORK/runbook_exporter.$kind.log" 2>&1 &
  OUR_PID=$!
  wait_ready ours "$kind" "$our_url" "$OUR_PID"
  [[ $kind == redis ]] && redis_snapshot r1
  l1=$(bouncer_logins)
  log "[$kind] starting ${PEER_NAME[$kind]} on :$peer_port"
  start_peer "$kind" "$peer_port"
  wait_ready peer "$kind" "$peer_url" "$PEER_PID"
  for ((i = 0; i < 5; i++)); do scrape "$our_url" /dev/null; scrape "$peer_url" /dev/null; done
  sleep 1
  V[$kind:our_rss_warm]=$(mem_kb "$OUR_PID" VmRSS) V[$kind:peer_rss_warm]=$(mem_kb "$PEER_PID" VmRSS)
  V[$kind:our_ports_warm]=$(conn_ports "$OUR_PID" "$sport") V[$kind:peer_ports_warm]=$(conn_ports "$PEER_PID" "$sport")
  [[ $kind == redis ]] && redis_snapshot r2
  r2_coll=$(our_collections "$our_url" "$kind")
  l2=$(bouncer_logins)
  V[$kind:load_start]=$(cut -d' ' -f1-3 /proc/loadavg)

  # Phase A: ours collects on its own; nobody scrapes; the peer idles (it works only when scraped).
  log "[$kind] phase A: ${WINDOW_SECONDS} s unscraped (ours collects every $INTERVAL)"
  a_c0=$(our_collections "$our_url" "$kind")
  a_t0=$(cpu_ticks "$OUR_PID") a_n0=$(cpu_ns "$OUR_PID") a_s0=$(cpu_ns "$spid") a_w0=$EPOCHREALTIME
  nap "$WINDOW_SECONDS"
  a_t1=$(cpu_ticks "$OUR_PID") a_n1=$(cpu_ns "$OUR_PID") a_s1=$(cpu_ns "$spid") a_w1=$EPOCHREALTIME
  a_c1=$(our_collections "$our_url" "$kind")
  [[ $kind == redis ]] && redis_snapshot ra
  a_coll=$(fcalc "$a_c1 - $a_c0" 0)
  ((a_coll > 0)) || die "[$kind] our exporter did not collect during phase A"
  secs=$(fcalc "$a_w1 - $a_w0" 3)
  V[$kind:a_coll]=$a_coll V[$kind:a_secs]=$(fcalc "$secs" 1) V[$kind:a_ticks]=$((a_t1 - a_t0))
  V[$kind:our_coll_tick]=$(fcalc "($a_t1 - $a_t0) * 1000 / $TICK_HZ / $a_coll")
  V[$kind:our_coll_ns]=$(fcalc "($a_n1 - $a_n0) / 1e6 / $a_coll")
  V[$kind:our_srv_coll_gross]=$(fcalc "($a_s1 - $a_s0) / 1e6 / $a_coll")
  V[$kind:our_srv_coll]=$(fcalc0 "(($a_s1 - $a_s0) / 1e6 - $base * $secs) / $a_coll")

  # Phase B: SCRAPES scrapes of ours; the collections meanwhile are subtracted at phase-A cost.
  log "[$kind] phase B: $SCRAPES scrapes of runbook_exporter"
  b_c0=$(our_collections "$our_url" "$kind")
  b_t0=$(cpu_ticks "$OUR_PID") b_n0=$(cpu_ns "$OUR_PID") b_s0=$(cpu_ns "$spid") b_w0=$EPOCHREALTIME
  latency_loop "$our_url" "$SCRAPES" "$WORK/latency.$kind.runbook_exporter.txt"
  b_t1=$(cpu_ticks "$OUR_PID") b_n1=$(cpu_ns "$OUR_PID") b_s1=$(cpu_ns "$spid") b_w1=$EPOCHREALTIME
  b_c1=$(our_collections "$our_url" "$kind")
  [[ $kind == redis ]] && redis_snapshot rb
  b_coll=$(fcalc "$b_c1 - $b_c0" 0)
  secs=$(fcalc "$b_w1 - $b_w0" 3)
  V[$kind:b_coll]=$b_coll V[$kind:b_ticks]=$((b_t1 - b_t0))
  V[$kind:our_scrape_tick]=$(fcalc0 "(($b_t1 - $b_t0) * 1000 / $TICK_HZ - $b_coll * ${V[$kind:our_coll_tick]}) / $SCRAPES")
  V[$kind:our_scrape_ns]=$(fcalc0 "(($b_n1 - $b_n0) / 1e6 - $b_coll * ${V[$kind:our_coll_ns]}) / $SCRAPES")
  V[$kind:our_srv_scrape]=$(fcalc0 "(($b_s1 - $b_s0) / 1e6 - $b_coll * ${V[$kind:our_srv_coll]} - $base * $secs) / $SCRAPES")
  read -r V[$kind:our_lat_med] V[$kind:our_lat_p95] V[$kind:our_lat_max] < <(lat_stats "$WORK/latency.$kind.runbook_exporter.txt")

  # Phase C: SCRAPES scrapes of the peer (one scrape = one collection); ours keeps collecting in
  # the background: its exporter CPU is not in the peer's figures, its server CPU is subtracted.
  log "[$kind] phase C: $SCRAPES scrapes of ${PEER_NAME[$kind]}"
  l3=$(bouncer_logins)
  c_c0=$(our_collections "$our_url" "$kind")
  c_t0=$(cpu_ticks "$PEER_PID") c_n0=$(cpu_ns "$PEER_PID") c_s0=$(cpu_ns "$spid") c_w0=$EPOCHREALTIME
  latency_loop "$peer_url" "$SCRAPES" "$WORK/latency.$kind.${PEER_NAME[$kind]}.txt"
  c_t1=$(cpu_ticks "$PEER_PID") c_n1=$(cpu_ns "$PEER_PID") c_s1=$(cpu_ns "$spid") c_w1=$EPOCHREALTIME
  c_c1=$(our_collections "$our_url" "$kind")
  [[ $kind == redis ]] && redis_snapshot rc
  l4=$(bouncer_logins)
  c_coll=$(fcalc "$c_c1 - $c_c0" 0)
  secs=$(fcalc "$c_w1 - $c_w0" 3)
  V[$kind:c_ticks]=$((c_t1 - c_t0)) V[$kind:c_coll]=$c_coll
  V[$kind:peer_tick]=$(fcalc "($c_t1 - $c_t0) * 1000 / $TICK_HZ / $SCRAPES")
  V[$kind:peer_ns]=$(fcalc "($c_n1 - $c_n0) / 1e6 / $SCRAPES")
  V[$kind:peer_srv_gross]=$(fcalc "(($c_s1 - $c_s0) / 1e6 - $c_coll * ${V[$kind:our_srv_coll]}) / $SCRAPES")
  V[$kind:peer_srv]=$(fcalc0 "(($c_s1 - $c_s0) / 1e6 - $c_coll * ${V[$kind:our_srv_coll]} - $base * $secs) / $SCRAPES")
  read -r V[$kind:peer_lat_med] V[$kind:peer_lat_p95] V[$kind:peer_lat_max] < <(lat_stats "$WORK/latency.$kind.${PEER_NAME[$kind]}.txt")

  # After the runs: memory, connections, outputs.
  V[$kind:our_rss_end]=$(mem_kb "$OUR_PID" VmRSS) V[$kind:peer_rss_end]=$(mem_kb "$PEER_PID" VmRSS)
  V[$kind:our_hwm_end]=$(mem_kb "$OUR_PID" VmHWM) V[$kind:peer_hwm_end]=$(mem_kb "$PEER_PID" VmHWM)
  V[$kind:our_pss]=$(smaps_kb "$OUR_PID" Pss) V[$kind:peer_pss]=$(smaps_kb "$PEER_PID" Pss)
  V[$kind:our_uss]=$(smaps_kb "$OUR_PID" Private) V[$kind:peer_uss]=$(smaps_kb "$PEER_PID" Private)
  V[$kind:our_ports_end]=$(conn_ports "$OUR_PID" "$sport") V[$kind:peer_ports_end]=$(conn_ports "$PEER_PID" "$sport")
  scrape "$our_url" "$WORK/runbook_exporter.$kind.prom"
  scrape "$peer_url" "$WORK/${PEER_NAME[$kind]}.prom"
  curl -s -H 'Accept-Encoding: gzip' -o "$WORK/runbook_exporter.$kind.prom.gz" "$our_url"
  curl -s -H 'Accept-Encoding: gzip' -o "$WORK/${PEER_NAME[$kind]}.prom.gz" "$peer_url"
  V[$kind:our_bytes]=$(stat -c %s "$WORK/runbook_exporter.$kind.prom")
  V[$kind:peer_bytes]=$(stat -c %s "$WORK/${PEER_NAME[$kind]}.prom")
  V[$kind:our_gz]=$(stat -c %s "$WORK/runbook_exporter.$kind.prom.gz")
  V[$kind:peer_gz]=$(stat -c %s "$WORK/${PEER_NAME[$kind]}.prom.gz")
  gzip -t <"$WORK/runbook_exporter.$kind.prom.gz" 2>/dev/null || V[$kind:our_gz]="${V[$kind:our_gz]} (not gzip)"
  gzip -t <"$WORK/${PEER_NAME[$kind]}.prom.gz" 2>/dev/null || V[$kind:peer_gz]="${V[$kind:peer_gz]} (not gzip)"
  V[$kind:our_series]=$(series_count "$WORK/runbook_exporter.$kind.prom")
  V[$kind:peer_series]=$(series_count "$WORK/${PEER_NAME[$kind]}.prom")
  V[$kind:our_series_core]=$(series_count "$WORK/runbook_exporter.$kind.prom" '^(runbook_exporter_|process_|go_)')
  V[$kind:peer_series_core]=$(series_count "$WORK/${PEER_NAME[$kind]}.prom" '^(go_|process_|promhttp_|python_|redis_exporter_|redis_target_scrape_request_errors_total$)')
  V[$kind:load_end]=$(cut -d' ' -f1-3 /proc/loadavg)
  V[$kind:our_coll_total]=$(our_collections "$our_url" "$kind")

  if [[ $kind == redis ]]; then
    local ours_start peer_start ab c_new ids
    redis_snapshot re
    ours_start=$(redis_new_conns r0 r1)
    peer_start=$(redis_new_conns r1 r2)
    ab=$(redis_new_conns r2 rb) # phases A + B: only ours talks to Redis
    c_new=$(redis_new_conns rb rc)
    ids=$(printf '%s\n' "$RS_r1_OURIDS" "$RS_r2_OURIDS" "$RS_ra_OURIDS" "$RS_rb_OURIDS" "$RS_rc_OURIDS" "$RS_re_OURIDS" | tr ' ' '\n' | awk 'NF' | sort -u | wc -l)
    V[$kind:our_ids]=$ids
    V[$kind:our_clientlist]="$RS_r1_OURS,$RS_r2_OURS,$RS_ra_OURS,$RS_rb_OURS,$RS_rc_OURS,$RS_re_OURS"
    V[$kind:peer_clientlist]="$RS_r1_PEER,$RS_r2_PEER,$RS_ra_PEER,$RS_rb_PEER,$RS_rc_PEER,$RS_re_PEER"
    V[$kind:our_opened]="$ours_start at start, $ab in phases A+B (${V[$kind:a_coll]}+${V[$kind:b_coll]} collections)"
    V[$kind:peer_opened]="$peer_start at start + warm-up (6 scrapes), $c_new in phase C ($SCRAPES scrapes: $(fcalc "$c_new / $SCRAPES" 2) per scrape)"
    # Commands between snapshots r2 and ra (phase A, only ours talks to Redis) per collection.
    V[$kind:our_cmds]=$(fcalc "$(redis_cmds r2 ra) / ($a_c1 - $r2_coll)" 1)
    # Phase C: the peer's commands plus ours' collections in the meantime (at ours' rate).
    V[$kind:peer_cmds]=$(fcalc "($(redis_cmds rb rc) - ($c_c1 - $b_c1) * ${V[$kind:our_cmds]}) / $SCRAPES" 1)
    # Ours alone talks to Redis from r0 to r1 and from r2 to rb; the peer starts between r1 and r2.
    V[$kind:our_wrongtype]=$(($(redis_delta WRONGTYPE r0 r1) + $(redis_delta WRONGTYPE r2 rb)))
    V[$kind:peer_wrongtype]="$(redis_delta WRONGTYPE rb rc) in C ($(fcalc "$(redis_delta WRONGTYPE rb rc) / $SCRAPES" 2) per scrape), $(redis_delta WRONGTYPE r1 r2) at start"
    V[$kind:our_errors]=$(($(redis_delta ERRORS r0 r1) + $(redis_delta ERRORS r2 rb)))
    V[$kind:peer_errors]="$(redis_delta ERRORS rb rc) in C, $(redis_delta ERRORS r1 r2) at start"
    V[$kind:peer_ver]=$("$REDIS_PEER" -version 2>&1 | head -1 | sed 's/.*msg="//; s/".*//; s/  */ /g' || true)
  else
    V[$kind:our_opened]="$((l1 - l0)) at start, $((l3 - l2)) in phases A+B (${V[$kind:a_coll]}+${V[$kind:b_coll]} collections)"
    V[$kind:peer_opened]="$((l2 - l1)) at start + warm-up (6 scrapes), $((l4 - l3)) in phase C ($SCRAPES scrapes)"
    V[$kind:peer_ver]="prometheus-pgbouncer-exporter $(dpkg-query -W -f '${Version}' prometheus-pgbouncer-exporter 2>/dev/null || echo '?') (python3 $(python3 -c 'import sys; print(sys.version.split()[0])'))"
  fi

  if [[ $PERF == 1 ]]; then
    log "[$kind] perf record of runbook_exporter for ${PERF_SECONDS} s (unscraped)"
    perf record -q -F 19999 -g -p "$OUR_PID" -o "$WORK/perf.$kind.data" -- sleep "$PERF_SECONDS" >"$WORK/perf.$kind.log" 2>&1 &
    PERF_PID=$!
    wait "$PERF_PID" || true
    PERF_PID=""
    perf report -i "$WORK/perf.$kind.data" --no-children --sort dso,symbol --stdio -g none --percent-limit 1.5 \
      2>/dev/null | grep -v '^#' | sed 's/[[:space:]-]*$//' | awk 'NF' | head -25 >"$WORK/perf.$kind.txt" || true
  fi

  stop_exporters
}

for kind in $PAIRS; do run_pair "$kind"; done

# ------------------------------------------------------------------------------------------------
# 3. Report

same_conn() { # PORTS-WARM PORTS-END
  local n
  n=$(count_words "$2")
  if [[ -z $1 && -z $2 ]]; then printf '0 / 0'
  elif [[ $1 == "$2" ]]; then printf '%s / %s (same port%s)' "$(count_words "$1")" "$n" "$( ((n > 1)) && echo s)"
  else printf '%s / %s (ports %s → %s)' "$(count_words "$1")" "$n" "${1:-none}" "${2:-none}"; fi
}

report_pair() { # KIND
  local k=$1 peer=${PEER_NAME[$1]} srv total_our res_a res_s
  if [[ $k == redis ]]; then srv=redis-server; else srv=pgbouncer; fi
  total_our=$(fcalc "${V[$k:our_coll_ns]} + ${V[$k:our_scrape_ns]}")
  res_a=$(fcalc "1000 / $TICK_HZ / ${V[$k:a_coll]}" 2)
  res_s=$(fcalc "1000 / $TICK_HZ / $SCRAPES" 2)
  cat <<EOF

## $k: runbook_exporter vs $peer

* Peer: ${V[$k:peer_ver]}
EOF
  if [[ $k == redis ]]; then
    cat <<EOF
* Peer flags: \`-check-single-keys=db0=axiomdb:commands -check-keys=db0=axiomdb:*\` (default user + password,
  PEERS.md §8); ours: user $REDIS_EXPORTER_USER, \`keys: [{db: 0, key: axiomdb:commands}, {db: 0, pattern: "axiomdb:*"}]\`.
  Redis keyspace: $REDIS_KEYSPACE.
EOF
  else
    cat <<EOF
* Peer runs with \`--database __none__\`: unmodified it dies at start on PgBouncer 1.18 (KeyError 'total_requests'),
  so it exports only the 12 SHOW LISTS gauges; ours exports SHOW POOLS/STATS/DATABASES/LISTS/CONFIG.
EOF
  fi
  cat <<EOF
* Phase A: ours collected ${V[$k:a_coll]} times in ${V[$k:a_secs]} s unscraped; B/C: $SCRAPES sequential scrapes each
  (ours collected ${V[$k:b_coll]} / ${V[$k:c_coll]} times meanwhile; subtracted). Load ${V[$k:load_start]} → ${V[$k:load_end]}.
  $srv idle baseline ${BASE_MS_S[$k]} ms CPU per s (no exporter), subtracted from the $srv rows.

| metric | runbook_exporter | $peer | ratio |
|---|---:|---:|---:|
EOF
  row "/metrics latency median (ms)" "${V[$k:our_lat_med]}" "${V[$k:peer_lat_med]}"
  row "/metrics latency p95 (ms)" "${V[$k:our_lat_p95]}" "${V[$k:peer_lat_p95]}"
  row "exporter CPU per collection (ms, schedstat)" "${V[$k:our_coll_ns]}" "${V[$k:peer_ns]}"
  row "exporter CPU per collection (ms, ticks ±$res_a / ±$res_s)" "${V[$k:our_coll_tick]}" "${V[$k:peer_tick]}"
  row "exporter CPU per scrape (ms, schedstat)" "${V[$k:our_scrape_ns]}" "${V[$k:peer_ns]}"
  row "exporter CPU per collection + scrape (ms, schedstat)" "$total_our" "${V[$k:peer_ns]}"
  row "$srv CPU per collection (ms, schedstat)" "${V[$k:our_srv_coll]}" "${V[$k:peer_srv]}"
  row "$srv CPU per scrape of ours (ms, schedstat)" "${V[$k:our_srv_scrape]}" "—" "—"
  if [[ $k == redis ]]; then
    row "Redis commands per collection" "${V[$k:our_cmds]}" "${V[$k:peer_cmds]}"
  fi
  row "RSS after warm-up / end (MB)" "$(mb "${V[$k:our_rss_warm]}") / $(mb "${V[$k:our_rss_end]}")" \
    "$(mb "${V[$k:peer_rss_warm]}") / $(mb "${V[$k:peer_rss_end]}")" "$(ratio "${V[$k:our_rss_end]}" "${V[$k:peer_rss_end]}")"
  row "PSS / USS at end (MB)" "$(mb "${V[$k:our_pss]}") / $(mb "${V[$k:our_uss]}")" \
    "$(mb "${V[$k:peer_pss]}") / $(mb "${V[$k:peer_uss]}")" "$(ratio "${V[$k:our_uss]}" "${V[$k:peer_uss]}")"
  row "TCP connections held to $srv (warm-up / end)" "$(same_conn "${V[$k:our_ports_warm]}" "${V[$k:our_ports_end]}")" \
    "$(same_conn "${V[$k:peer_ports_warm]}" "${V[$k:peer_ports_end]}")" "—"
  if [[ $k == redis ]]; then
    row "CLIENT LIST lines (6 samples between phases)" "${V[$k:our_clientlist]} (${V[$k:our_ids]} distinct id)" "${V[$k:peer_clientlist]}" "—"
    row "connections opened (total_connections_received)" "${V[$k:our_opened]}" "${V[$k:peer_opened]}" "—"
    row "errorstats WRONGTYPE added" "${V[$k:our_wrongtype]}" "${V[$k:peer_wrongtype]}" "—"
    row "error replies added (total_error_replies)" "${V[$k:our_errors]}" "${V[$k:peer_errors]}" "—"
  else
    row "connections opened (PgBouncer log logins)" "${V[$k:our_opened]}" "${V[$k:peer_opened]}" "—"
  fi
  row "series in /metrics (without self/boilerplate)" "${V[$k:our_series]} (${V[$k:our_series_core]})" \
    "${V[$k:peer_series]} (${V[$k:peer_series_core]})" "—"
  row "bytes of /metrics (gzip)" "${V[$k:our_bytes]} (${V[$k:our_gz]})" "${V[$k:peer_bytes]} (${V[$k:peer_gz]})" "—"
  printf '\nRaw ticks: ours phase A %s, phase B %s; peer phase C %s. %s CPU per peer scrape with its idle baseline: %s ms;\nper collection of ours with it: %s ms.\n' \
    "${V[$k:a_ticks]}" "${V[$k:b_ticks]}" "${V[$k:c_ticks]}" "$srv" "${V[$k:peer_srv_gross]}" "${V[$k:our_srv_coll_gross]}"
  if [[ $PERF == 1 && -s $WORK/perf.$k.txt ]]; then
    printf '\nperf (ours, %s s unscraped, self time, >= 1.5 %%):\n\n```\n' "$PERF_SECONDS"
    cat "$WORK/perf.$k.txt"
    printf '```\n'
  fi
}

report() {
  local our_ver cpu_model
  our_ver=$("$EXPORTER" --version 2>&1 | head -1 || true)
  if ldd "$EXPORTER" 2>/dev/null | grep -Eq 'lib(a|t|ub)san'; then our_ver="$our_ver **SANITIZER BUILD: figures not representative**"; fi
  cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
  cat <<EOF
# runbook_exporter vs Debian's Redis and PgBouncer exporters

* When: $(date -u +%FT%TZ) (run took $(($(date +%s) - T_START)) s); host $(uname -n), kernel $(uname -r)
* Machine: nproc $(nproc), ${cpu_model:-unknown CPU}
* Servers: $(redis-server --version | awk '{ print $1, $2, $3 }'), PgBouncer $(pgbouncer --version 2>/dev/null | head -1 | awk '{ print $NF }')
* Ours: ${our_ver:-?}; one target kind per process, interval $INTERVAL, timeout $INTERVAL.
* CPU: "schedstat" = ns-precise on-CPU time of all threads (/proc/PID/task/*/schedstat); "ticks" =
  utime+stime (PEERS.md §4 method, 10 ms ticks). For a peer one scrape is one collection.
EOF
  for kind in $PAIRS; do report_pair "$kind"; done
}

if [[ -n $REPORT ]]; then
  report | tee "$REPORT"
else
  report
fi
log "done; tearing down"
