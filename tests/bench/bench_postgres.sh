#!/usr/bin/env bash
# Side-by-side cost of runbook_exporter and Debian's postgres_exporter 0.11.1 against the same
# PostgreSQL primary of a throwaway stack (scripts/stack.sh). One command: brings the stack up,
# measures, prints a markdown table and tears everything down. See tests/bench/README.md.
#
# Environment overrides:
#   SCRAPES=200          sequential /metrics scrapes per exporter (latency, CPU per scrape)
#   WINDOW_SECONDS=60    window over which our exporter collects on its own (interval 1s), unscraped
#   INTERVAL=1s          our collection interval during the benchmark (timeout = interval)
#   SLOW_INTERVAL=1m     our slow-tier interval (pg_database_size, slots, pg_wal listing)
#   IDLE_SESSIONS=10 IDLE_TX_SESSIONS=3 ACTIVE_SESSIONS=5   client sessions held open during the run
#   EXPORTER=build/runbook_exporter   PEER_EXPORTER=/usr/bin/prometheus-postgres-exporter
#   BENCH_DIR=DIR        work directory (default: a new /tmp/rbbench.XXXXXX, removed at the end)
#   KEEP=1               keep BENCH_DIR (logs, raw scrapes, latencies) after the run
#   REPORT=FILE          also write the report (stdout) to FILE
set -euo pipefail
umask 022

ROOT=$(cd -- "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/../.." && pwd)
STACK_SH=$ROOT/scripts/stack.sh
# shellcheck source=lib.sh
source "$ROOT/tests/bench/lib.sh"
EXPORTER=${EXPORTER:-$ROOT/build/runbook_exporter}
PEER_EXPORTER=${PEER_EXPORTER:-/usr/bin/prometheus-postgres-exporter}
SCRAPES=${SCRAPES:-200}
WINDOW_SECONDS=${WINDOW_SECONDS:-60}
INTERVAL=${INTERVAL:-1s}
SLOW_INTERVAL=${SLOW_INTERVAL:-1m}
IDLE_SESSIONS=${IDLE_SESSIONS:-10}
IDLE_TX_SESSIONS=${IDLE_TX_SESSIONS:-3}
ACTIVE_SESSIONS=${ACTIVE_SESSIONS:-5}
KEEP=${KEEP:-0}
REPORT=${REPORT:-}
TARGET=primary      # our target name (label target="primary")
PEER_ROLE=peer_exporter

[[ $SCRAPES =~ ^[0-9]+$ ]] && ((SCRAPES >= 20)) || die "SCRAPES must be a number >= 20"
[[ $WINDOW_SECONDS =~ ^[0-9]+$ ]] && ((WINDOW_SECONDS >= 5)) || die "WINDOW_SECONDS must be a number >= 5"
[[ $INTERVAL =~ ^[0-9]+(ms|s)$ ]] || die "INTERVAL must look like 1s or 500ms"
for n in "$IDLE_SESSIONS" "$IDLE_TX_SESSIONS" "$ACTIVE_SESSIONS"; do
  [[ $n =~ ^[0-9]+$ ]] || die "session counts must be numbers"
done
[[ -x $EXPORTER ]] || die "$EXPORTER not built (cmake --build build -j2 --target runbook_exporter)"
[[ -x $PEER_EXPORTER ]] || die "$PEER_EXPORTER not found (apt-get install prometheus-postgres-exporter)"
for tool in curl awk ss gzip; do command -v "$tool" >/dev/null || die "$tool is required"; done

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
OUR_PID="" PEER_PID="" SLEEP_PID=""
SESSION_PIDS=() SESSION_FDS=()

# ------------------------------------------------------------------------------------------------
# Cleanup: everything we started, by pid; the stack by `stack.sh down` (its watchdog watches $$
# too, and the exporters carry a parent-death signal, should this script be killed outright).
cleanup() {
  local rc=$? fd pid
  trap - EXIT INT TERM
  for fd in "${SESSION_FDS[@]}"; do exec {fd}>&- 2>/dev/null || true; done
  for pid in "$SLEEP_PID" "$OUR_PID" "$PEER_PID" "${SESSION_PIDS[@]}"; do
    [[ -n $pid ]] && kill "$pid" 2>/dev/null || true
  done
  for pid in "$SLEEP_PID" "$OUR_PID" "$PEER_PID" "${SESSION_PIDS[@]}"; do
    [[ -n $pid ]] && wait "$pid" 2>/dev/null || true
  done
  teardown_stack_and_work
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------------------------------------
# Helpers

# A sleep that a signal interrupts at once (bash runs traps only after a foreground child ends).
# The sleep drops the sessions' FIFOs, so that they see EOF as soon as this script dies.
nap() {
  (
    for fd in "${SESSION_FDS[@]}"; do exec {fd}>&-; done
    exec sleep "$1"
  ) &
  SLEEP_PID=$!
  wait "$SLEEP_PID"
  SLEEP_PID=""
}

psql_primary() { "$STACK_SH" psql "$STACK" primary -v ON_ERROR_STOP=1 -At "$@"; }

our_collections() {
  local cf=$WORK/.counter.prom
  scrape "$OUR_URL" "$cf"
  sample "$cf" runbook_exporter_collections_total "target=\"$TARGET\""
}

# Backend pids serving each exporter.
our_backends() {
  psql_primary -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'runbook_exporter' AND usename = 'exporter' ORDER BY pid"
}
peer_backends() {
  psql_primary -c "SELECT pid FROM pg_stat_activity WHERE usename = '$PEER_ROLE' ORDER BY pid"
}

# Same, but a difference that came out below zero (subtraction inside the resolution) shows as 0.
fcalc0() { awk "BEGIN { v = $1; if (v < 0) v = 0; printf \"%.${2:-3}f\", v }"; }

# ------------------------------------------------------------------------------------------------
# 1. Stack, peer role, exporters, client sessions

log "work dir $WORK; bringing up the stack (takes ~20 s)"
STACK_UP=1
"$STACK_SH" up "$STACK" --watch $$ >"$WORK/stack-up.log" 2>&1 || { cat "$WORK/stack-up.log" >&2; die "stack up failed"; }
# shellcheck disable=SC1091
source "$STACK/stack.env"

PEER_PW=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
psql_primary -q -v pw="$PEER_PW" >/dev/null <<'EOF'
CREATE ROLE peer_exporter LOGIN PASSWORD :'pw';
GRANT pg_monitor TO peer_exporter;
EOF

OUR_PORT=$(pick_port)
PEER_PORT=$(pick_port)
while [[ $PEER_PORT == "$OUR_PORT" ]]; do PEER_PORT=$(pick_port); done
OUR_URL=http://127.0.0.1:$OUR_PORT/metrics
PEER_URL=http://127.0.0.1:$PEER_PORT/metrics

cat >"$WORK/runbook.yml" <<EOF
# runbook_exporter config for tests/bench/bench_postgres.sh: the primary only, collected every $INTERVAL
global:
  interval: $INTERVAL
  timeout: $INTERVAL
  slow_interval: $SLOW_INTERVAL
targets:
  postgres:
    - name: $TARGET
      host: $PG_HOST
      port: $PG_PRIMARY_PORT
      database: postgres
      user: $PG_EXPORTER_USER
      password_file: $PG_EXPORTER_PASSWORD_FILE
      sslmode: disable
      labels: {role: primary}
  pgbouncer: []
  redis: []
  certificates: []
EOF
chmod 644 "$WORK/runbook.yml"

log "starting runbook_exporter on :$OUR_PORT and postgres_exporter on :$PEER_PORT"
"${AS_NOBODY[@]}" "$EXPORTER" --config "$WORK/runbook.yml" --web.listen-address "127.0.0.1:$OUR_PORT" \
  </dev/null >"$WORK/runbook_exporter.log" 2>&1 &
OUR_PID=$!
DATA_SOURCE_NAME="postgresql://$PEER_ROLE:$PEER_PW@127.0.0.1:$PG_PRIMARY_PORT/postgres?sslmode=disable" \
  "${AS_NOBODY[@]}" "$PEER_EXPORTER" --web.listen-address="127.0.0.1:$PEER_PORT" \
  </dev/null >"$WORK/postgres_exporter.log" 2>&1 &
PEER_PID=$!

# Client sessions as user app on appdb, each fed by its own FIFO (closing it ends the session).
# Started after the exporters so that the exporters do not inherit the FIFOs' write ends.
start_session() { # SQL-TO-SEND
  local fifo=$WORK/session.${#SESSION_PIDS[@]} fd
  mkfifo "$fifo"
  PGPASSWORD=$(<"$PG_APP_PASSWORD_FILE") "$PG_BINDIR/psql" -X -q -h 127.0.0.1 -p "$PG_PRIMARY_PORT" \
    -U "$PG_APP_USER" -d "$PG_APP_DATABASE" -v ON_ERROR_STOP=0 <"$fifo" >/dev/null 2>&1 &
  SESSION_PIDS+=($!)
  exec {fd}>"$fifo"
  SESSION_FDS+=("$fd")
  printf '%s\n' "$1" >&"$fd"
}
for ((i = 0; i < IDLE_SESSIONS; i++)); do start_session "SELECT count(*) FROM items;"; done
for ((i = 0; i < IDLE_TX_SESSIONS; i++)); do start_session "BEGIN; SELECT count(*) FROM items WHERE id = $((i + 1));"; done
for ((i = 0; i < ACTIVE_SESSIONS; i++)); do start_session "SELECT pg_sleep(3600);"; done
N_SESSIONS=$((IDLE_SESSIONS + IDLE_TX_SESSIONS + ACTIVE_SESSIONS))

# Wait: our exporter has collected 3 times with pg_up 1, the peer answers pg_up 1, sessions are in.
deadline=$((SECONDS + 30))
while :; do
  ((SECONDS < deadline)) || die "exporters not ready after 30 s (logs in $WORK; KEEP=1 keeps them)"
  kill -0 "$OUR_PID" 2>/dev/null || { cat "$WORK/runbook_exporter.log" >&2; die "runbook_exporter exited"; }
  kill -0 "$PEER_PID" 2>/dev/null || { cat "$WORK/postgres_exporter.log" >&2; die "postgres_exporter exited"; }
  ours_ok=0 peer_ok=0 sess_ok=0
  if scrape "$OUR_URL" "$WORK/.ready.prom" 2>/dev/null; then
    c=$(sample "$WORK/.ready.prom" runbook_exporter_collections_total "target=\"$TARGET\"")
    u=$(sample "$WORK/.ready.prom" pg_up "target=\"$TARGET\"")
    awk -v c="${c:-0}" -v u="${u:-0}" 'BEGIN { exit !(c >= 3 && u == 1) }' && ours_ok=1
  fi
  if scrape "$PEER_URL" "$WORK/.ready.prom" 2>/dev/null; then
    [[ $(sample "$WORK/.ready.prom" pg_up "") == 1 ]] && peer_ok=1
  fi
  n=$(psql_primary -c "SELECT count(*) FROM pg_stat_activity WHERE usename = '$PG_APP_USER' AND (state <> 'active' OR wait_event = 'PgSleep')")
  ((n >= N_SESSIONS)) && sess_ok=1
  ((ours_ok && peer_ok && sess_ok)) && break
  sleep 0.5
done
log "both exporters up; $N_SESSIONS client sessions open; warming up"
for ((i = 0; i < 5; i++)); do
  scrape "$OUR_URL" /dev/null
  scrape "$PEER_URL" /dev/null
done
sleep 1

SESSION_STATES=$(psql_primary -F ' ' -c "SELECT state, count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND usename = '$PG_APP_USER' GROUP BY 1 ORDER BY 1" | paste -sd ',' | sed 's/,/, /g')
OUR_RSS_WARM=$(mem_kb "$OUR_PID" VmRSS) OUR_HWM_WARM=$(mem_kb "$OUR_PID" VmHWM)
PEER_RSS_WARM=$(mem_kb "$PEER_PID" VmRSS) PEER_HWM_WARM=$(mem_kb "$PEER_PID" VmHWM)
mapfile -t OUR_BE < <(our_backends)
mapfile -t PEER_BE < <(peer_backends)
OUR_CONN_WARM=${#OUR_BE[@]} PEER_CONN_WARM=${#PEER_BE[@]}
((OUR_CONN_WARM > 0)) || die "no backend with application_name runbook_exporter"
((PEER_CONN_WARM > 0)) || die "no backend of user $PEER_ROLE"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# Planning time too (throwaway stack; reloadable setting).
psql_primary -q -c "ALTER SYSTEM SET pg_stat_statements.track_planning = on" -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.3
psql_primary -c "SELECT pg_stat_statements_reset()" >/dev/null
PGSS_COLL0=$(our_collections)
PEER_SCRAPES_SINCE_RESET=0

# ------------------------------------------------------------------------------------------------
# 2. Phase A: our exporter collects on its own for WINDOW_SECONDS; nobody scrapes either exporter.

log "phase A: ${WINDOW_SECONDS} s unscraped (our exporter collects every $INTERVAL)"
a_c0=$(our_collections)
a_t0=$(cpu_ticks "$OUR_PID") a_n0=$(cpu_ns "$OUR_PID")
a_bt0=$(cpu_ticks "${OUR_BE[@]}") a_bn0=$(cpu_ns "${OUR_BE[@]}")
a_pn0=$(cpu_ns "$PEER_PID")
a_w0=$EPOCHREALTIME
nap "$WINDOW_SECONDS"
a_t1=$(cpu_ticks "$OUR_PID") a_n1=$(cpu_ns "$OUR_PID")
a_bt1=$(cpu_ticks "${OUR_BE[@]}") a_bn1=$(cpu_ns "${OUR_BE[@]}")
a_pn1=$(cpu_ns "$PEER_PID")
a_w1=$EPOCHREALTIME
a_c1=$(our_collections)
mapfile -t be_now < <(our_backends)
[[ ${be_now[*]} == "${OUR_BE[*]}" ]] || log "WARNING: our backends changed during phase A (${OUR_BE[*]} -> ${be_now[*]})"
A_COLL=$(fcalc "$a_c1 - $a_c0" 0)
((A_COLL > 0)) || die "our exporter did not collect during phase A"
A_SECS=$(fcalc "$a_w1 - $a_w0" 2)
OUR_CPU_COLL_TICK=$(fcalc "($a_t1 - $a_t0) * 1000 / $TICK_HZ / $A_COLL")
OUR_CPU_COLL_NS=$(fcalc "($a_n1 - $a_n0) / 1e6 / $A_COLL")
OUR_PG_COLL_TICK=$(fcalc "($a_bt1 - $a_bt0) * 1000 / $TICK_HZ / $A_COLL")
OUR_PG_COLL_NS=$(fcalc "($a_bn1 - $a_bn0) / 1e6 / $A_COLL")
OUR_IDLE_MS_S=$(fcalc "($a_n1 - $a_n0) / 1e6 / $A_SECS")
PEER_IDLE_MS_S=$(fcalc "($a_pn1 - $a_pn0) / 1e6 / $A_SECS")
A_TICKS_OUR=$((a_t1 - a_t0)) A_TICKS_BE=$((a_bt1 - a_bt0))

# ------------------------------------------------------------------------------------------------
# 3. Phase B: SCRAPES sequential scrapes of our exporter (collections go on meanwhile; their
#    cost, measured in phase A, is subtracted).

log "phase B: $SCRAPES scrapes of runbook_exporter"
b_c0=$(our_collections)
b_t0=$(cpu_ticks "$OUR_PID") b_n0=$(cpu_ns "$OUR_PID")
b_bt0=$(cpu_ticks "${OUR_BE[@]}") b_bn0=$(cpu_ns "${OUR_BE[@]}")
latency_loop "$OUR_URL" "$SCRAPES" "$WORK/latency.runbook_exporter.txt"
b_t1=$(cpu_ticks "$OUR_PID") b_n1=$(cpu_ns "$OUR_PID")
b_bt1=$(cpu_ticks "${OUR_BE[@]}") b_bn1=$(cpu_ns "${OUR_BE[@]}")
b_c1=$(our_collections)
B_COLL=$(fcalc "$b_c1 - $b_c0" 0)
OUR_CPU_SCRAPE_TICK=$(fcalc0 "(($b_t1 - $b_t0) * 1000 / $TICK_HZ - $B_COLL * $OUR_CPU_COLL_TICK) / $SCRAPES")
OUR_CPU_SCRAPE_NS=$(fcalc0 "(($b_n1 - $b_n0) / 1e6 - $B_COLL * $OUR_CPU_COLL_NS) / $SCRAPES")
OUR_PG_SCRAPE_TICK=$(fcalc0 "(($b_bt1 - $b_bt0) * 1000 / $TICK_HZ - $B_COLL * $OUR_PG_COLL_TICK) / $SCRAPES")
OUR_PG_SCRAPE_NS=$(fcalc0 "(($b_bn1 - $b_bn0) / 1e6 - $B_COLL * $OUR_PG_COLL_NS) / $SCRAPES")
B_TICKS_OUR=$((b_t1 - b_t0))
read -r OUR_LAT_MED OUR_LAT_P95 OUR_LAT_MAX < <(lat_stats "$WORK/latency.runbook_exporter.txt")

# ------------------------------------------------------------------------------------------------
# 4. Phase C: SCRAPES sequential scrapes of postgres_exporter (one scrape = one collection).

log "phase C: $SCRAPES scrapes of postgres_exporter"
mapfile -t PEER_BE < <(peer_backends)
c_t0=$(cpu_ticks "$PEER_PID") c_n0=$(cpu_ns "$PEER_PID")
c_bt0=$(cpu_ticks "${PEER_BE[@]}") c_bn0=$(cpu_ns "${PEER_BE[@]}")
latency_loop "$PEER_URL" "$SCRAPES" "$WORK/latency.postgres_exporter.txt"
c_t1=$(cpu_ticks "$PEER_PID") c_n1=$(cpu_ns "$PEER_PID")
mapfile -t be_now < <(peer_backends)
# Backends opened during the loop count in full (their start value is 0).
c_bt1=$(cpu_ticks "${be_now[@]}") c_bn1=$(cpu_ns "${be_now[@]}")
for pid in "${PEER_BE[@]}"; do
  [[ " ${be_now[*]} " == *" $pid "* ]] || log "WARNING: peer backend $pid went away during phase C; its CPU is lost"
done
PEER_SCRAPES_SINCE_RESET=$((PEER_SCRAPES_SINCE_RESET + SCRAPES))
PEER_CPU_TICK=$(fcalc "($c_t1 - $c_t0) * 1000 / $TICK_HZ / $SCRAPES")
PEER_CPU_NS=$(fcalc "($c_n1 - $c_n0) / 1e6 / $SCRAPES")
PEER_PG_TICK=$(fcalc "($c_bt1 - $c_bt0) * 1000 / $TICK_HZ / $SCRAPES")
PEER_PG_NS=$(fcalc "($c_bn1 - $c_bn0) / 1e6 / $SCRAPES")
C_TICKS_PEER=$((c_t1 - c_t0)) C_TICKS_BE=$((c_bt1 - c_bt0))
read -r PEER_LAT_MED PEER_LAT_P95 PEER_LAT_MAX < <(lat_stats "$WORK/latency.postgres_exporter.txt")

# ------------------------------------------------------------------------------------------------
# 5. pg_stat_statements since the reset (ours: phases A-C; the peer: phase C only), then the
#    after-run figures.

PGSS_COLL1=$(our_collections)
PGSS_COLL=$(fcalc "$PGSS_COLL1 - $PGSS_COLL0" 0)
PGSS_SQL="SELECT r.rolname, s.calls, round(s.total_exec_time::numeric, 2), round((s.total_exec_time / s.calls)::numeric, 3),
       round(s.total_plan_time::numeric, 2), s.rows, left(regexp_replace(s.query, '\s+', ' ', 'g'), 90)
  FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
 WHERE r.rolname IN ('$PG_EXPORTER_USER', '$PEER_ROLE')
 ORDER BY r.rolname, s.total_exec_time DESC"
psql_primary -F $'\t' -c "$PGSS_SQL" >"$WORK/pg_stat_statements.tsv"

OUR_RSS_END=$(mem_kb "$OUR_PID" VmRSS) OUR_HWM_END=$(mem_kb "$OUR_PID" VmHWM)
PEER_RSS_END=$(mem_kb "$PEER_PID" VmRSS) PEER_HWM_END=$(mem_kb "$PEER_PID" VmHWM)
OUR_PSS_END=$(smaps_kb "$OUR_PID" Pss) OUR_USS_END=$(smaps_kb "$OUR_PID" Private)
PEER_PSS_END=$(smaps_kb "$PEER_PID" Pss) PEER_USS_END=$(smaps_kb "$PEER_PID" Private)
OUR_CONN_END=$(our_backends | wc -l) PEER_CONN_END=$(peer_backends | wc -l)

scrape "$OUR_URL" "$WORK/runbook_exporter.prom"
scrape "$PEER_URL" "$WORK/postgres_exporter.prom"
curl -s -H 'Accept-Encoding: gzip' -o "$WORK/runbook_exporter.prom.gz" "$OUR_URL"
curl -s -H 'Accept-Encoding: gzip' -o "$WORK/postgres_exporter.prom.gz" "$PEER_URL"
OUR_BYTES=$(stat -c %s "$WORK/runbook_exporter.prom") PEER_BYTES=$(stat -c %s "$WORK/postgres_exporter.prom")
OUR_GZ=$(stat -c %s "$WORK/runbook_exporter.prom.gz") PEER_GZ=$(stat -c %s "$WORK/postgres_exporter.prom.gz")
gzip -t <"$WORK/runbook_exporter.prom.gz" 2>/dev/null || OUR_GZ="$OUR_GZ (not gzip)"
gzip -t <"$WORK/postgres_exporter.prom.gz" 2>/dev/null || PEER_GZ="$PEER_GZ (not gzip)"
OUR_SERIES=$(series_count "$WORK/runbook_exporter.prom")
PEER_SERIES=$(series_count "$WORK/postgres_exporter.prom")
OUR_SERIES_CORE=$(series_count "$WORK/runbook_exporter.prom" '^(runbook_exporter_|process_|go_)')
PEER_SERIES_CORE=$(series_count "$WORK/postgres_exporter.prom" '^(go_|process_|promhttp_|pg_exporter_|pg_scrape_collector_|postgres_exporter_)')
PEER_SETTINGS=$(awk '/^pg_settings_/ { n++ } END { print n + 0 }' "$WORK/postgres_exporter.prom")
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ------------------------------------------------------------------------------------------------
# 6. Report

OUR_TOTAL_NS=$(fcalc "$OUR_CPU_COLL_NS + $OUR_CPU_SCRAPE_NS")
OUR_TOTAL_TICK=$(fcalc "$OUR_CPU_COLL_TICK + $OUR_CPU_SCRAPE_TICK")
RES_A=$(fcalc "1000 / $TICK_HZ / $A_COLL")
RES_S=$(fcalc "1000 / $TICK_HZ / $SCRAPES")

report() {
  local our_ver peer_ver pg_ver cpu_model
  our_ver=$("$EXPORTER" --version 2>&1 | head -1 || true)
  if ldd "$EXPORTER" 2>/dev/null | grep -Eq 'lib(a|t|ub)san'; then our_ver="$our_ver **SANITIZER BUILD: figures not representative**"; fi
  peer_ver=$("$PEER_EXPORTER" --version 2>&1 | head -1 || true)
  pg_ver=$(psql_primary -c "SHOW server_version")
  cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
  cat <<EOF
# runbook_exporter vs postgres_exporter — PostgreSQL primary

* When: $(date -u +%FT%TZ) (run took $(($(date +%s) - T_START)) s); host $(uname -n), kernel $(uname -r)
* Machine: nproc $(nproc), ${cpu_model:-unknown CPU}; load average at start $LOAD_START, at end $LOAD_END
* PostgreSQL $pg_ver; ours: ${our_ver:-?} (interval $INTERVAL, timeout $INTERVAL, slow_interval $SLOW_INTERVAL);
  peer: ${peer_ver:-?} (default flags, role $PEER_ROLE with pg_monitor)
* Client sessions (user $PG_APP_USER): $SESSION_STATES
* Phase A: ours collected $A_COLL times in $A_SECS s, unscraped. Phases B/C: $SCRAPES sequential curl scrapes each
  (our collections during B: $B_COLL, their cost subtracted). Tick = $((1000 / TICK_HZ)) ms: tick figures resolve
  ±$RES_A ms per collection (phase A), ±$RES_S ms per scrape; "schedstat" figures are ns-precise on-CPU time.

| metric | runbook_exporter | postgres_exporter | ratio |
|---|---:|---:|---:|
EOF
  row "/metrics latency median (ms)" "$OUR_LAT_MED" "$PEER_LAT_MED"
  row "/metrics latency p95 (ms)" "$OUR_LAT_P95" "$PEER_LAT_P95"
  row "/metrics latency max (ms)" "$OUR_LAT_MAX" "$PEER_LAT_MAX"
  row "exporter CPU per collection (ms, ticks)" "$OUR_CPU_COLL_TICK" "$PEER_CPU_TICK"
  row "exporter CPU per collection (ms, schedstat)" "$OUR_CPU_COLL_NS" "$PEER_CPU_NS"
  row "exporter CPU per scrape (ms, ticks)" "$OUR_CPU_SCRAPE_TICK" "$PEER_CPU_TICK"
  row "exporter CPU per scrape (ms, schedstat)" "$OUR_CPU_SCRAPE_NS" "$PEER_CPU_NS"
  row "exporter CPU per collection + scrape (ms, ticks)" "$OUR_TOTAL_TICK" "$PEER_CPU_TICK"
  row "exporter CPU per collection + scrape (ms, schedstat)" "$OUR_TOTAL_NS" "$PEER_CPU_NS"
  row "exporter CPU when not scraped (ms per s)" "$OUR_IDLE_MS_S" "$PEER_IDLE_MS_S" "—"
  row "PostgreSQL backend CPU per collection (ms, ticks)" "$OUR_PG_COLL_TICK" "$PEER_PG_TICK"
  row "PostgreSQL backend CPU per collection (ms, schedstat)" "$OUR_PG_COLL_NS" "$PEER_PG_NS"
  row "PostgreSQL backend CPU per scrape (ms, ticks)" "$OUR_PG_SCRAPE_TICK" "$PEER_PG_TICK"
  row "PostgreSQL backend CPU per scrape (ms, schedstat)" "$OUR_PG_SCRAPE_NS" "$PEER_PG_NS"
  row "RSS after warm-up (MB)" "$(mb "$OUR_RSS_WARM")" "$(mb "$PEER_RSS_WARM")"
  row "RSS after the runs (MB)" "$(mb "$OUR_RSS_END")" "$(mb "$PEER_RSS_END")"
  row "VmHWM after warm-up (MB)" "$(mb "$OUR_HWM_WARM")" "$(mb "$PEER_HWM_WARM")"
  row "VmHWM after the runs (MB)" "$(mb "$OUR_HWM_END")" "$(mb "$PEER_HWM_END")"
  row "PSS after the runs (MB)" "$(mb "$OUR_PSS_END")" "$(mb "$PEER_PSS_END")"
  row "private memory (USS) after the runs (MB)" "$(mb "$OUR_USS_END")" "$(mb "$PEER_USS_END")"
  row "connections to PostgreSQL (warm-up / end)" "$OUR_CONN_WARM / $OUR_CONN_END" "$PEER_CONN_WARM / $PEER_CONN_END" "—"
  row "series in /metrics" "$OUR_SERIES" "$PEER_SERIES"
  row "series without self-metrics/boilerplate" "$OUR_SERIES_CORE" "$PEER_SERIES_CORE"
  row "bytes of /metrics (plain)" "$OUR_BYTES" "$PEER_BYTES"
  row "bytes of /metrics (gzip)" "$OUR_GZ" "$PEER_GZ"
  cat <<EOF

Raw tick counts: ours phase A $A_TICKS_OUR (exporter) / $A_TICKS_BE (backends), phase B $B_TICKS_OUR;
peer phase C $C_TICKS_PEER (exporter) / $C_TICKS_BE (backends). Peer series include $PEER_SETTINGS pg_settings_* series.

## pg_stat_statements since the reset

Ours: $PGSS_COLL collections (phases A–C; the slow tier runs every $SLOW_INTERVAL). Peer: $PEER_SCRAPES_SINCE_RESET scrapes (phase C).
"per coll." = total_exec_time ÷ collections. Planning time with pg_stat_statements.track_planning = on.

EOF
  local who coll label
  for who in "$PG_EXPORTER_USER" "$PEER_ROLE"; do
    if [[ $who == "$PG_EXPORTER_USER" ]]; then coll=$PGSS_COLL label=runbook_exporter; else coll=$PEER_SCRAPES_SINCE_RESET label=postgres_exporter; fi
    awk -F'\t' -v who="$who" -v coll="$coll" -v label="$label" '
      $1 == who { n++; calls[n] = $2; tot[n] = $3; mean[n] = $4; plan[n] = $5; rows[n] = $6; q[n] = $7; sum += $3; psum += $5 }
      END {
        printf "### %s (role %s): %.3f ms exec + %.3f ms planning per collection, %d statements\n\n", label, who,
               (coll ? sum / coll : 0), (coll ? psum / coll : 0), n
        print "| calls | exec total ms | exec mean ms | exec per coll. ms | plan total ms | rows | query |"
        print "|---:|---:|---:|---:|---:|---:|---|"
        for (i = 1; i <= n; i++) {
          gsub(/\|/, "\\|", q[i])
          printf "| %s | %s | %s | %.3f | %s | %s | `%s` |\n", calls[i], tot[i], mean[i], (coll ? tot[i] / coll : 0), plan[i], rows[i], q[i]
        }
        print ""
      }' "$WORK/pg_stat_statements.tsv"
  done
}

if [[ -n $REPORT ]]; then
  report | tee "$REPORT"
else
  report
fi
log "done; tearing down"
