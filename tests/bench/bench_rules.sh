#!/usr/bin/env bash
# The rule engine next to Prometheus (issue 5 §8): 1,000 generated rules over ~100k generated
# series; our evaluation round pinned to one core, then Debian's prometheus evaluating the same
# rule file on the same series, scraped from `bench_rules serve`. Prints a markdown report on
# stdout, progress on stderr; asserts nothing. About 5 minutes with the defaults.
#   tests/bench/bench_rules.sh [BUILD_DIR]
#   PROM_SECONDS=240 BASE_SECONDS=90 ROUNDS=15 WARMUP=45 PLAIN=1 KEEP=1 BENCH_DIR=/tmp/x REPORT=/tmp/r.md
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"
BUILD=${1:-build}
PROM_SECONDS=${PROM_SECONDS:-240}
PROMETHEUS=${PROMETHEUS:-/usr/bin/prometheus}
PLAIN=${PLAIN:-0}
BASE_SECONDS=${BASE_SECONDS:-90}
KEEP=${KEEP:-0}
SEED=${SEED:-1}
STACK_UP=0
WORK=${BENCH_DIR:-$(mktemp -d /tmp/rbrules.XXXXXX)}
mkdir -p "$WORK"
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  teardown_stack_and_work
}
trap cleanup EXIT

cmake --build "$BUILD" -j2 --target bench_rules >&2
BIN="$BUILD/tests/bench_rules"
"$BIN" gen "$WORK" "$SEED"
log "generated $(wc -l <"$WORK/series.prom") series and $(grep -c -E '^      - (alert|record):' "$WORK/rules.yml") rules in $WORK"
promtool check rules "$WORK/rules.yml" >"$WORK/promtool.txt" 2>&1 || die "promtool rejects the generated rules: $(tail -3 "$WORK/promtool.txt")"

log "ours: ingest and evaluate on a fake clock, pinned to CPU 0"
taskset -c 0 "$BIN" run "$WORK/rules.yml" "$SEED" >"$WORK/ours.txt"
if [[ $PLAIN == 1 ]]; then
  log "ours again: annotations without templates"
  taskset -c 0 "$BIN" run "$WORK/rules_plain.yml" "$SEED" >"$WORK/ours_plain.txt"
fi
kv() { awk -F= -v k="$2" '$1 == k { print $2 }' "$1"; }

SPORT=$(pick_port)
taskset -c 1 "${AS_NOBODY[@]}" "$BIN" serve "$SPORT" "$SEED" >"$WORK/serve.txt" 2>&1 &
PIDS+=($!)
chmod -R a+rwX "$WORK"

# Runs Prometheus pinned to CPU 0 for SECONDS with or without the rule file; every 15 s appends
# "sum of prometheus_rule_group_last_duration_seconds, groups, process CPU seconds" to ROUNDS_FILE
# and leaves its last /metrics in $WORK/prom_metrics.txt. Stops it unless KEEP_RUNNING=1.
run_prometheus() { # NAME SECONDS RULES(0|1) ROUNDS_FILE
  local name=$1 seconds=$2 rules=$3 out=$4 start
  PPORT=$(pick_port)
  {
    printf 'global:\n  scrape_interval: 15s\n  scrape_timeout: 10s\n  evaluation_interval: 15s\n'
    ((rules)) && printf 'rule_files: ["%s"]\n' "$WORK/rules.yml"
    printf 'scrape_configs:\n  - job_name: bench\n    honor_labels: true\n'
    printf '    static_configs: [{targets: ["127.0.0.1:%s"]}]\n' "$SPORT"
  } >"$WORK/prometheus-$name.yml"
  taskset -c 0 "${AS_NOBODY[@]}" "$PROMETHEUS" --config.file="$WORK/prometheus-$name.yml" \
    --storage.tsdb.path="$WORK/prom-data-$name" --web.listen-address="127.0.0.1:$PPORT" \
    --storage.tsdb.retention.time=1h >"$WORK/prometheus-$name.log" 2>&1 &
  PROM_PID=$!
  PIDS+=("$PROM_PID")
  PROM="http://127.0.0.1:$PPORT"
  for _ in $(seq 50); do curl -sf "$PROM/-/ready" >/dev/null && break; sleep 0.2; done
  curl -sf "$PROM/-/ready" >/dev/null || die "prometheus did not start: $(tail -3 "$WORK/prometheus-$name.log")"
  : >"$out"
  start=$(date +%s)
  while (($(date +%s) - start < seconds)); do
    sleep 15
    scrape "$PROM/metrics" "$WORK/prom_metrics.txt" || continue
    awk '/^prometheus_rule_group_last_duration_seconds\{/ { s += $NF; n++ }
         /^process_cpu_seconds_total / { c = $2 }
         END { printf "%.6f %d %s\n", s, n, c }' "$WORK/prom_metrics.txt" >>"$out"
  done
  if [[ ${KEEP_RUNNING:-0} != 1 ]]; then kill "$PROM_PID"; wait "$PROM_PID" 2>/dev/null || true; fi
}
# CPU per 15 s round over the rounds after the first SKIP.
cpu_per_round() { # ROUNDS_FILE SKIP
  awk -v skip="$2" 'NR == skip { c0 = $3 } NR > skip { c1 = $3; n++ } END { if (n) printf "%.1f", (c1 - c0) / n * 1000 }' "$1"
}

log "Prometheus without rules (scrape and TSDB only) for ${BASE_SECONDS} s, pinned to CPU 0"
run_prometheus base "$BASE_SECONDS" 0 "$WORK/prom_base_rounds.txt"
P_BASE_CPU=$(cpu_per_round "$WORK/prom_base_rounds.txt" 2)
log "Prometheus with the rules for ${PROM_SECONDS} s, pinned to CPU 0"
KEEP_RUNNING=1 run_prometheus rules "$PROM_SECONDS" 1 "$WORK/prom_rounds.txt"
m="$WORK/prom_metrics.txt"
P_SERIES=$(sample "$m" prometheus_tsdb_head_series "")
P_APPENDED=$(awk '/^prometheus_tsdb_head_samples_appended_total/ { s += $NF } END { printf "%.0f", s }' "$m")
P_RSS=$(sample "$m" process_resident_memory_bytes "")
P_HEAP=$(sample "$m" go_memstats_heap_inuse_bytes "")
P_FAILS=$(awk '/^prometheus_rule_evaluation_failures_total\{/ { s += $NF } END { print s + 0 }' "$m")
P_MISSED=$(awk '/^prometheus_rule_group_iterations_missed_total\{/ { s += $NF } END { print s + 0 }' "$m")
P_FIRING=$(curl -s "$PROM/api/v1/query" --data-urlencode 'query=count(ALERTS{alertstate="firing"}) or vector(0)' |
  sed -n 's/.*"value":\[[^,]*,"\([^"]*\)"\].*/\1/p')
P_PENDING=$(curl -s "$PROM/api/v1/query" --data-urlencode 'query=count(ALERTS{alertstate="pending"}) or vector(0)' |
  sed -n 's/.*"value":\[[^,]*,"\([^"]*\)"\].*/\1/p')
# Rounds after the first 2 minutes, when the groups have full 5m-ish data and the head is warm.
SKIP=8
P_MED=$(awk -v skip=$SKIP 'NR > skip { print $1 * 1000 }' "$WORK/prom_rounds.txt" | sort -g |
  awk '{ a[NR] = $1 } END { if (NR) printf "%.1f", (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }')
P_MAX=$(awk -v skip=$SKIP 'NR > skip { print $1 * 1000 }' "$WORK/prom_rounds.txt" | sort -g | tail -1)
P_CPU_PER_ROUND=$(cpu_per_round "$WORK/prom_rounds.txt" $SKIP)
P_MAX_GROUP=$(awk '/^prometheus_rule_group_last_duration_seconds\{/ { if ($NF > m) m = $NF } END { printf "%.1f", m * 1000 }' "$m")
P_GROUPS=$(tail -1 "$WORK/prom_rounds.txt" | awk '{ print $2 }')

o="$WORK/ours.txt"
p="$WORK/ours_plain.txt"
report() {
echo "## Rule engine: $(kv "$o" rules) rules in $(kv "$o" groups) groups over $(kv "$o" series_generated) series ($(kv "$o" targets) targets)"
echo
echo "Ours: $(kv "$o" warmup) collections of warm-up then $(kv "$o" rounds) measured rounds, $(( $(kv "$o" step_ms) / 1000 )) s apart on a fake clock,"
echo "one thread pinned to CPU 0. Prometheus $("$PROMETHEUS" --version 2>&1 | awk 'NR==1 { print $3 }'): the same rule file, scraping the"
echo "same series every 15 s for ${PROM_SECONDS} s (pinned to CPU 0; the series server on CPU 1), rounds after the first $((SKIP * 15)) s;"
echo "before that ${BASE_SECONDS} s without rules for its scrape and TSDB cost. Prometheus runs its groups concurrently: on one"
echo "core, a group's duration includes waiting for the others, so the sum over groups exceeds the round's work once"
echo "Prometheus falls behind (iterations missed > 0); its CPU per round is then the comparable figure."
echo
echo "| | runbook_exporter | Prometheus |"
echo "|---|---:|---:|"
echo "| evaluation round, median (ms) | $(kv "$o" round_wall_median_ms) | $P_MED (sum of prometheus_rule_group_last_duration_seconds) |"
echo "| evaluation round, p90 / max (ms) | $(kv "$o" round_wall_p90_ms) / $(kv "$o" round_wall_max_ms) | — / $P_MAX |"
echo "| CPU per round (ms) | $(kv "$o" round_cpu_median_ms) (evaluation only) | $(fcalc "$P_CPU_PER_ROUND - $P_BASE_CPU" 1) (process CPU per 15 s with rules, $P_CPU_PER_ROUND, minus without, $P_BASE_CPU) |"
echo "| slowest group, last evaluation (ms) | $(awk -F= '$1 == "slow_group" { split($2, a, " "); print a[2]; exit }' "$o") (median) | $P_MAX_GROUP |"
if [[ $PLAIN == 1 ]]; then
  echo "| round without annotation templates, median / p90 (ms) | $(kv "$p" round_wall_median_ms) / $(kv "$p" round_wall_p90_ms) | — |"
fi
echo "| ingest of one collection of every target (ms) | $(kv "$o" ingest_all_targets_median_ms) | — |"
echo "| series held | $(kv "$o" store_series) | $P_SERIES (head) |"
echo "| samples held | $(kv "$o" store_samples) | $P_APPENDED appended to the head (all kept) |"
echo "| bytes per stored sample | $(kv "$o" store_bytes_per_sample) (store's accounting), $(kv "$o" rss_bytes_per_sample) (RSS delta) | $(fcalc "$P_RSS / $P_APPENDED" 1) (RSS / samples appended) |"
echo "| bytes per series | $(kv "$o" store_bytes_per_series) (store's accounting) | $(fcalc "$P_RSS / $P_SERIES" 0) (RSS / head series), $(fcalc "$P_HEAP / $P_SERIES" 0) (Go heap in use / head series) |"
echo "| memory | store $(mb "$(($(kv "$o" store_bytes) / 1024))") MB, RSS delta $(mb "$(kv "$o" rss_delta_kb)") MB | RSS $(fcalc "$P_RSS / 1048576" 1) MB |"
echo "| alerts firing / pending at the end | $(kv "$o" alerts_firing) / $(kv "$o" alerts_pending) | $P_FIRING / $P_PENDING |"
echo "| rule evaluation failures | $(kv "$o" rule_errors) rules | $P_FAILS evaluations (iterations missed: $P_MISSED) |"
echo
echo "Slowest groups (ours, median ms): $(awk -F= '$1 == "slow_group" { printf "%s%s", sep, $2; sep = ", " }' "$o")."
echo "Prometheus groups reporting: $P_GROUPS."
echo
echo "Caveats: Prometheus keeps every sample (2 h head) and pays for scraping and its TSDB in the same"
echo "process; ours keeps only what the rules read (newest two points, or the ranges' history). Prometheus'"
echo "ranges hold at most $((PROM_SECONDS / 15)) points after ${PROM_SECONDS} s; ours are full (warm-up $(( $(kv "$o" warmup) * $(kv "$o" step_ms) / 60000 )) min)."
}
report | tee "${REPORT:-/dev/null}"
