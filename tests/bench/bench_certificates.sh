#!/usr/bin/env bash
# Side-by-side cost of one TLS certificate probe: runbook_exporter (one certificates target, the
# endpoint collector) vs Debian's prometheus-blackbox-exporter (tcp prober with tls, PEERS.md §4),
# both against the stack's openssl s_server (valid certificate, CA file, SNI localhost).
# Our exporter probes on its own schedule and /metrics serves the latest result; blackbox probes
# when /probe is scraped. So the figures per probe are: ours = CPU over an unscraped window ÷
# collections, and the collection's own duration; blackbox = CPU and latency per /probe scrape.
# Prints a markdown report (figures, never asserted) and tears everything down.
#
# Environment overrides:
#   SCRAPES=200          sequential scrapes per exporter (latency; blackbox CPU per probe)
#   WINDOW_SECONDS=30    our unscraped window (CPU per collection)
#   INTERVAL=200ms       our collection interval during the window (timeout = interval)
#   EXPORTER=build/runbook_exporter   BLACKBOX=/usr/bin/prometheus-blackbox-exporter
#   BENCH_DIR=DIR  KEEP=1  REPORT=FILE   as in the other benchmarks (see tests/bench/README.md)
set -euo pipefail
umask 022

ROOT=$(cd -- "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/../.." && pwd)
STACK_SH=$ROOT/scripts/stack.sh
# shellcheck source=lib.sh
source "$ROOT/tests/bench/lib.sh"
EXPORTER=${EXPORTER:-$ROOT/build/runbook_exporter}
BLACKBOX=${BLACKBOX:-/usr/bin/prometheus-blackbox-exporter}
SCRAPES=${SCRAPES:-200}
WINDOW_SECONDS=${WINDOW_SECONDS:-30}
INTERVAL=${INTERVAL:-200ms}
KEEP=${KEEP:-0}
REPORT=${REPORT:-}

[[ $SCRAPES =~ ^[0-9]+$ ]] && ((SCRAPES >= 20)) || die "SCRAPES must be a number >= 20"
[[ $WINDOW_SECONDS =~ ^[0-9]+$ ]] && ((WINDOW_SECONDS >= 5)) || die "WINDOW_SECONDS must be a number >= 5"
[[ $INTERVAL =~ ^[0-9]+(ms|s)$ ]] || die "INTERVAL must look like 1s or 200ms"
[[ -x $EXPORTER ]] || die "$EXPORTER not built (cmake --build build -j2 --target runbook_exporter)"
[[ -x $BLACKBOX ]] || die "$BLACKBOX not found (apt-get install prometheus-blackbox-exporter)"
for tool in curl awk ss setpriv; do command -v "$tool" >/dev/null || die "$tool is required"; done
TICK_HZ=$(getconf CLK_TCK)

if [[ -n ${BENCH_DIR:-} ]]; then
  WORK=$(realpath -m -- "$BENCH_DIR")
  mkdir -p -- "$WORK"
else
  WORK=$(mktemp -d /tmp/rbbench.XXXXXX)
fi
chmod 755 "$WORK"
STACK=$WORK/stack
STACK_UP=0
OUR_PID="" PEER_PID=""

cleanup() {
  local rc=$? pid
  trap - EXIT INT TERM
  for pid in "$OUR_PID" "$PEER_PID"; do [[ -n $pid ]] && kill "$pid" 2>/dev/null || true; done
  for pid in "$OUR_PID" "$PEER_PID"; do [[ -n $pid ]] && wait "$pid" 2>/dev/null || true; done
  teardown_stack_and_work
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wait_for() { # URL AWK-CONDITION-ON-FILE PID WHO
  local f=$WORK/.ready.prom deadline=$((SECONDS + 30))
  while ((SECONDS < deadline)); do
    kill -0 "$3" 2>/dev/null || { cat "$WORK"/*.log >&2; die "$4 exited"; }
    if scrape "$1" "$f" 2>/dev/null && grep -q "$2" "$f"; then return 0; fi
    sleep 0.3
  done
  die "$4 not ready after 30 s (KEEP=1 keeps the logs in $WORK)"
}

log "work dir $WORK; bringing up the stack"
STACK_UP=1
"$STACK_SH" up "$STACK" --watch $$ >"$WORK/stack-up.log" 2>&1 || { cat "$WORK/stack-up.log" >&2; die "stack up failed"; }
# shellcheck disable=SC1091
source "$STACK/stack.env"
[[ $(cat "/proc/$TLS_SERVER_PID/comm" 2>/dev/null) == openssl ]] || die "TLS_SERVER_PID $TLS_SERVER_PID is not openssl"

# -- ours
our_port=$(pick_port)
cat >"$WORK/runbook.yml" <<EOF
global: {interval: $INTERVAL, timeout: $INTERVAL}
targets:
  certificates:
    - {name: tls, host: 127.0.0.1, port: $TLS_PORT, server_name: $TLS_SERVER_NAME, ca_file: $TLS_CA_FILE}
EOF
chmod 644 "$WORK/runbook.yml"
"${AS_NOBODY[@]}" "$EXPORTER" --config "$WORK/runbook.yml" --web.listen-address "127.0.0.1:$our_port" \
  </dev/null >"$WORK/runbook_exporter.log" 2>&1 &
OUR_PID=$!
our_url=http://127.0.0.1:$our_port
wait_for "$our_url/metrics" '^ssl_probe_success{target="tls"} 1' "$OUR_PID" runbook_exporter

collections() { scrape "$our_url/metrics" "$WORK/.c.prom"; sample "$WORK/.c.prom" runbook_exporter_collections_total 'target="tls"'; }

log "ours: ${WINDOW_SECONDS} s unscraped, probing every $INTERVAL"
c0=$(collections) t0=$(cpu_ticks "$OUR_PID") n0=$(cpu_ns "$OUR_PID") s0=$(cpu_ns "$TLS_SERVER_PID")
sleep "$WINDOW_SECONDS"
t1=$(cpu_ticks "$OUR_PID") n1=$(cpu_ns "$OUR_PID") s1=$(cpu_ns "$TLS_SERVER_PID") c1=$(collections)
coll=$(fcalc "$c1 - $c0" 0)
((coll > 0)) || die "our exporter did not collect"
our_cpu_ns=$(fcalc "($n1 - $n0) / 1e6 / $coll")
our_cpu_tick=$(fcalc "($t1 - $t0) * 1000 / $TICK_HZ / $coll")
our_srv=$(fcalc "($s1 - $s0) / 1e6 / $coll")

log "ours: the duration of $SCRAPES collections (runbook_exporter_collection_duration_seconds)"
: >"$WORK/durations.txt"
last=""
while (($(wc -l <"$WORK/durations.txt") < SCRAPES)); do
  scrape "$our_url/probe?target=tls" "$WORK/.d.prom"
  ts=$(sample "$WORK/.d.prom" runbook_exporter_last_collection_timestamp_seconds '')
  if [[ $ts != "$last" ]]; then
    sample "$WORK/.d.prom" runbook_exporter_collection_duration_seconds '' >>"$WORK/durations.txt"
    last=$ts
  fi
  sleep 0.05
done
read -r dur_med dur_p95 dur_max < <(lat_stats "$WORK/durations.txt")
log "ours: $SCRAPES scrapes of /probe?target=tls"
latency_loop "$our_url/probe?target=tls" "$SCRAPES" "$WORK/latency.ours.txt"
read -r our_med our_p95 our_max < <(lat_stats "$WORK/latency.ours.txt")
our_rss=$(mem_kb "$OUR_PID" VmRSS) our_hwm=$(mem_kb "$OUR_PID" VmHWM)
scrape "$our_url/probe?target=tls" "$WORK/runbook_exporter.prom"
kill "$OUR_PID" && wait "$OUR_PID" 2>/dev/null || true
OUR_PID=""

# -- blackbox (PEERS.md §4: tcp prober with TLS; same CA and server name)
peer_port=$(pick_port)
cat >"$WORK/blackbox.yml" <<EOF
modules:
  tls_connect:
    prober: tcp
    timeout: 5s
    tcp:
      tls: true
      tls_config:
        ca_file: $TLS_CA_FILE
        server_name: $TLS_SERVER_NAME
EOF
chmod 644 "$WORK/blackbox.yml"
"${AS_NOBODY[@]}" "$BLACKBOX" --config.file="$WORK/blackbox.yml" --web.listen-address="127.0.0.1:$peer_port" \
  </dev/null >"$WORK/blackbox_exporter.log" 2>&1 &
PEER_PID=$!
peer_url="http://127.0.0.1:$peer_port/probe?module=tls_connect&target=127.0.0.1:$TLS_PORT"
wait_for "$peer_url" '^probe_success 1' "$PEER_PID" blackbox_exporter
for ((i = 0; i < 5; i++)); do scrape "$peer_url" /dev/null; done
log "blackbox: $SCRAPES probes"
t0=$(cpu_ticks "$PEER_PID") n0=$(cpu_ns "$PEER_PID") s0=$(cpu_ns "$TLS_SERVER_PID")
latency_loop "$peer_url" "$SCRAPES" "$WORK/latency.blackbox.txt"
t1=$(cpu_ticks "$PEER_PID") n1=$(cpu_ns "$PEER_PID") s1=$(cpu_ns "$TLS_SERVER_PID")
peer_cpu_ns=$(fcalc "($n1 - $n0) / 1e6 / $SCRAPES")
peer_cpu_tick=$(fcalc "($t1 - $t0) * 1000 / $TICK_HZ / $SCRAPES")
peer_srv=$(fcalc "($s1 - $s0) / 1e6 / $SCRAPES")
read -r peer_med peer_p95 peer_max < <(lat_stats "$WORK/latency.blackbox.txt")
peer_rss=$(mem_kb "$PEER_PID" VmRSS) peer_hwm=$(mem_kb "$PEER_PID" VmHWM)
scrape "$peer_url" "$WORK/blackbox_exporter.prom"

{
  printf '## TLS certificate probe: runbook_exporter vs blackbox_exporter (tcp + TLS)\n\n'
  printf 'Stack s_server on 127.0.0.1:%s (SNI %s, CA file). Ours: %s collections in %s s (interval %s), then %s scrapes; blackbox: %s probes. %s\n\n' \
    "$TLS_PORT" "$TLS_SERVER_NAME" "$coll" "$WINDOW_SECONDS" "$INTERVAL" "$SCRAPES" "$SCRAPES" "$(date -u +%FT%TZ)"
  printf '| per probe | runbook_exporter | blackbox_exporter | ratio |\n|---|---|---|---|\n'
  row "exporter CPU, ms (schedstat)" "$our_cpu_ns" "$peer_cpu_ns"
  row "exporter CPU, ms (utime+stime, 10 ms ticks)" "$our_cpu_tick" "$peer_cpu_tick"
  row "s_server CPU, ms" "$our_srv" "$peer_srv"
  row "probe duration, median ms (ours: collection_duration; blackbox: /probe latency)" "$dur_med" "$peer_med"
  row "probe duration, p95 ms" "$dur_p95" "$peer_p95"
  row "scrape latency, median ms (ours: /probe serves the latest collection)" "$our_med" "$peer_med"
  row "RSS at the end, MB" "$(mb "$our_rss")" "$(mb "$peer_rss")"
  row "peak RSS (VmHWM), MB" "$(mb "$our_hwm")" "$(mb "$peer_hwm")"
  row "series per probe" "$(series_count "$WORK/runbook_exporter.prom")" "$(series_count "$WORK/blackbox_exporter.prom")" "—"
  printf '\nThe bar (PEERS.md §4, blackbox on the reference machine): 2.3 ms median, 1.65 ms CPU per probe, 20 MB RSS.\n'
} | if [[ -n $REPORT ]]; then tee "$REPORT"; else cat; fi
