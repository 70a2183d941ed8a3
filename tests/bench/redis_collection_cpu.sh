#!/usr/bin/env bash
# Exporter CPU per Redis collection: the recipe behind the issue 3 bar ("under 0.5 ms CPU per
# collection"), as one command so that every rerun measures the same thing.
#
#   one Redis target, interval 100ms, keys [{key: axiomdb:commands}, {pattern: "axiomdb:*"}],
#   Redis filled as bench_redis_pgbouncer.sh does, `rules: {files: []}`; the exporter pinned to
#   one core; on-CPU time of all its threads (/proc/PID/task/*/schedstat, ns) over WINDOW_SECONDS
#   divided by the delta of runbook_exporter_collections_total; modes with 0, 1 and 2 scrapes of
#   /metrics per collection (one curl process at a fixed rate, a new connection per scrape, curl's
#   own CPU not counted); ROUNDS rounds, the binaries alternating within each round; medians.
#
# Environment:
#   EXPORTERS="A [B ...]"  binaries to compare (default build/runbook_exporter); e.g. before/after
#   ROUNDS=3               rounds (each measures every binary in every mode once)
#   WINDOW_SECONDS=20      measuring window per figure
#   MODES="0 1 2"          scrapes of /metrics per collection
#   INTERVAL_MS=100        collection interval (timeout = interval)
#   CPU=1                  core for `taskset -c` (empty: not pinned)
#   STACK_DIR=DIR          use the stack already running in DIR (its stack.env), filled already or
#                          not; otherwise one is brought up in the work dir and torn down
#   KEEP=1                 keep the work dir (configs, logs)
set -euo pipefail
umask 022

ROOT=$(cd -- "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/../.." && pwd)
STACK_SH=$ROOT/scripts/stack.sh
# shellcheck source=lib.sh
source "$ROOT/tests/bench/lib.sh"
read -r -a BINS <<<"${EXPORTERS:-$ROOT/build/runbook_exporter}"
ROUNDS=${ROUNDS:-3}
WINDOW_SECONDS=${WINDOW_SECONDS:-20}
MODES=${MODES:-0 1 2}
INTERVAL_MS=${INTERVAL_MS:-100}
CPU=${CPU-1}
KEEP=${KEEP:-0}

[[ $ROUNDS =~ ^[0-9]+$ ]] && ((ROUNDS >= 1)) || die "ROUNDS must be a number >= 1"
[[ $WINDOW_SECONDS =~ ^[0-9]+$ ]] && ((WINDOW_SECONDS >= 2)) || die "WINDOW_SECONDS must be a number >= 2"
[[ $INTERVAL_MS =~ ^[0-9]+$ ]] && ((INTERVAL_MS >= 10)) || die "INTERVAL_MS must be a number >= 10"
for m in $MODES; do [[ $m =~ ^[0-9]+$ ]] || die "MODES: '$m' is not a number"; done
for b in "${BINS[@]}"; do [[ -x $b ]] || die "$b is not an executable (build runbook_exporter first)"; done
[[ -z $CPU || $CPU =~ ^[0-9]+$ ]] || die "CPU must be a core number or empty"
for tool in curl redis-cli taskset awk; do command -v "$tool" >/dev/null || die "$tool is required"; done

WORK=$(mktemp -d /tmp/rbredcpu.XXXXXX)
chmod 755 "$WORK"
STACK_UP=0 STACK=$WORK/stack
OUR_PID="" CURL_PID=""
cleanup() {
  local rc=$? pid
  trap - EXIT INT TERM
  for pid in "$CURL_PID" "$OUR_PID"; do [[ -n $pid ]] && kill "$pid" 2>/dev/null || true; done
  for pid in "$CURL_PID" "$OUR_PID"; do [[ -n $pid ]] && wait "$pid" 2>/dev/null || true; done
  teardown_stack_and_work
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ -n ${STACK_DIR:-} ]]; then
  STACK=$(realpath -- "$STACK_DIR")
else
  log "bringing up the stack in $STACK (~20 s)"
  STACK_UP=1
  "$STACK_SH" up "$STACK" --watch $$ >"$WORK/stack-up.log" 2>&1 || { cat "$WORK/stack-up.log" >&2; die "stack up failed"; }
fi
set -a
# shellcheck disable=SC1091
source "$STACK/stack.env"
set +a

rcli() { REDISCLI_AUTH=$(<"$REDIS_PASSWORD_FILE") redis-cli --no-auth-warning -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }
# The data of bench_redis_pgbouncer.sh with its defaults (lib.sh: redis_fill_commands).
if [[ $(rcli -n 0 LLEN axiomdb:commands) != 1234 ]]; then
  log "filling Redis"
  { printf 'FLUSHALL\n'; redis_fill_commands 1234 200 50; } | rcli >/dev/null
  [[ $(rcli -n 0 LLEN axiomdb:commands) == 1234 ]] || die "filling Redis failed"
fi

CONFIG=$WORK/runbook.yml
cat >"$CONFIG" <<EOF
# tests/bench/redis_collection_cpu.sh: one Redis target every ${INTERVAL_MS}ms, no rules
global: {interval: ${INTERVAL_MS}ms, timeout: ${INTERVAL_MS}ms, slow_interval: 1m}
rules: {files: []}
targets:
  postgres: []
  pgbouncer: []
  certificates: []
  redis:
    - {name: redis, host: 127.0.0.1, port: $REDIS_PORT, user: $REDIS_EXPORTER_USER,
       password_file: $REDIS_EXPORTER_PASSWORD_FILE,
       keys: [{db: 0, key: "axiomdb:commands"}, {db: 0, pattern: "axiomdb:*"}]}
EOF
chmod 644 "$CONFIG"

PIN=()
[[ -n $CPU ]] && PIN=(taskset -c "$CPU")

collections() { # URL
  scrape "$1" "$WORK/.counter.prom" && sample "$WORK/.counter.prom" runbook_exporter_collections_total 'target="redis"'
}
ctx_switches() { # PID -> voluntary + involuntary over all threads
  cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^(voluntary|nonvoluntary)_ctxt_switches:/ { n += $2 } END { print n + 0 }'
}

# One figure: BIN MODE -> "cpu_us_per_collection ctx_per_collection scrapes_per_collection"
measure() {
  local bin=$1 mode=$2 port url c0 c1 n0 n1 x0 x1 deadline rate
  port=$(pick_port)
  url=http://127.0.0.1:$port/metrics
  "${AS_NOBODY[@]}" "${PIN[@]}" "$bin" --config "$CONFIG" --web.listen-address "127.0.0.1:$port" \
    </dev/null >"$WORK/exporter.log" 2>&1 &
  OUR_PID=$!
  deadline=$((SECONDS + 30))
  until [[ $(collections "$url" 2>/dev/null || true) =~ ^[0-9]+$ ]] &&
    (($(collections "$url") >= 20)) && [[ $(sample "$WORK/.counter.prom" redis_up 'target="redis"') == 1 ]]; do
    ((SECONDS < deadline)) || { cat "$WORK/exporter.log" >&2; die "$bin: not collecting Redis after 30 s"; }
    kill -0 "$OUR_PID" 2>/dev/null || { cat "$WORK/exporter.log" >&2; die "$bin exited"; }
    sleep 0.5
  done
  if ((mode > 0)); then
    # One curl at a fixed rate, its requests numbered so that each is a new URL; curl does not
    # reuse the connection (CivetWeb closes it), as Prometheus' first scrape or curl-based checks.
    rate=$((mode * 1000 / INTERVAL_MS))
    curl -s --rate "$rate/s" -H 'Connection: close' "$url?n=[1-1000000]" >/dev/null 2>&1 &
    CURL_PID=$!
    sleep 1
  fi
  c0=$(collections "$url")
  n0=$(cpu_ns "$OUR_PID") x0=$(ctx_switches "$OUR_PID")
  sleep "$WINDOW_SECONDS"
  n1=$(cpu_ns "$OUR_PID") x1=$(ctx_switches "$OUR_PID")
  c1=$(collections "$url")
  if [[ -n $CURL_PID ]]; then kill "$CURL_PID" 2>/dev/null || true; wait "$CURL_PID" 2>/dev/null || true; CURL_PID=""; fi
  kill "$OUR_PID" 2>/dev/null || true
  wait "$OUR_PID" 2>/dev/null || true
  OUR_PID=""
  awk -v n="$((n1 - n0))" -v x="$((x1 - x0))" -v c="$(fcalc "$c1 - $c0" 0)" -v m="$mode" -v w="$WINDOW_SECONDS" -v i="$INTERVAL_MS" \
    'BEGIN { printf "%.0f %.1f %.0f\n", n / c / 1000, x / c, c * 100 / (w * 1000 / i) }'
}

median() { tr ' ' '\n' | awk 'NF' | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

declare -A CPU_US CTX PCT
log "${#BINS[@]} binaries × modes [$MODES] × $ROUNDS rounds × ${WINDOW_SECONDS} s; pinned to ${CPU:-no core}"
for ((r = 1; r <= ROUNDS; r++)); do
  for mode in $MODES; do
    for ((b = 0; b < ${#BINS[@]}; b++)); do
      read -r us ctx pct < <(measure "${BINS[b]}" "$mode")
      log "round $r, $mode scrapes/collection, ${BINS[b]}: $us µs, $ctx context switches per collection ($pct % of the collections due; load $(cut -d' ' -f1 /proc/loadavg))"
      CPU_US[$b:$mode]="${CPU_US[$b:$mode]:-} $us"
      CTX[$b:$mode]="${CTX[$b:$mode]:-} $ctx"
      PCT[$b:$mode]="${PCT[$b:$mode]:-} $pct"
    done
  done
done

printf '\n# Exporter CPU per Redis collection (tests/bench/redis_collection_cpu.sh)\n\n'
printf '* %s, %s rounds × %s s, interval %s ms, pinned to core %s, load at the end %s\n' \
  "$(date -u +%FT%TZ)" "$ROUNDS" "$WINDOW_SECONDS" "$INTERVAL_MS" "${CPU:-none}" "$(cut -d' ' -f1-3 /proc/loadavg)"
for ((b = 0; b < ${#BINS[@]}; b++)); do printf '* binary %d: %s (%s)\n' "$b" "${BINS[b]}" "$("${BINS[b]}" --version 2>&1 | head -1)"; done
printf '\n| scrapes per collection | binary | µs CPU per collection (rounds → median) | context switches per collection |\n|---:|---:|---:|---:|\n'
for mode in $MODES; do
  for ((b = 0; b < ${#BINS[@]}; b++)); do
    printf '| %s | %s | %s → **%s** | %s |\n' "$mode" "$b" "$(echo "${CPU_US[$b:$mode]}" | sed 's/^ //; s/ /, /g')" \
      "$(echo "${CPU_US[$b:$mode]}" | median)" "$(echo "${CTX[$b:$mode]}" | median)"
  done
done
