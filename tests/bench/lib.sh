#!/usr/bin/env bash
# Helpers shared by the benchmarks in tests/bench/ (sourced, not run): logging, ports, CPU and
# memory of processes from /proc, scraping, latency statistics and the report table.

# As root, run exporters as nobody (like PEERS.md §8); otherwise as ourselves. Either way they die
# with the benchmark (parent-death signal).
if [[ $(id -u) -eq 0 ]]; then
  AS_NOBODY=(setpriv --reuid=nobody --regid=nogroup --clear-groups --pdeathsig KILL)
else
  AS_NOBODY=(setpriv --pdeathsig KILL)
fi

# The end of every benchmark's cleanup: the stack down if it came up (STACK_UP, STACK_SH, STACK),
# and the work directory WORK removed unless KEEP=1 or the caller chose it with BENCH_DIR.
teardown_stack_and_work() {
  if ((STACK_UP)); then "$STACK_SH" down "$STACK" >/dev/null 2>&1 || log "stack down failed (see $STACK/logs)"; fi
  if [[ $KEEP == 1 ]]; then
    log "kept $WORK"
  elif [[ -z ${BENCH_DIR:-} ]]; then
    rm -rf -- "$WORK"
  fi
}

log() { printf 'bench: %s\n' "$*" >&2; }

die() { printf 'bench: ERROR: %s\n' "$*" >&2; exit 1; }

fcalc() { awk "BEGIN { printf \"%.${2:-3}f\", $1 }"; }

pick_port() {
  local p i
  for ((i = 0; i < 200; i++)); do
    p=$((30000 + RANDOM % 30000))
    if [[ -z $(ss -Htln "sport = :$p" 2>/dev/null) ]]; then printf '%s' "$p"; return 0; fi
  done
  die "no free port found"
}

# Sum of utime+stime (clock ticks) of the given pids; missing pids count 0.
cpu_ticks() {
  local pid sum=0 line rest
  local -a fld
  for pid in "$@"; do
    { line=$(<"/proc/$pid/stat"); } 2>/dev/null || continue
    rest=${line##*) }
    read -r -a fld <<<"$rest"
    sum=$((sum + fld[11] + fld[12])) # fields 14 and 15 of stat; rest starts at field 3
  done
  printf '%s' "$sum"
}

# Sum of on-CPU time (ns, /proc/PID/task/*/schedstat) over all threads of the given pids.
cpu_ns() {
  local pid sum=0 t v _
  for pid in "$@"; do
    for t in /proc/"$pid"/task/*/schedstat; do
      read -r v _ <"$t" 2>/dev/null || continue
      sum=$((sum + v))
    done
  done
  printf '%s' "$sum"
}

mem_kb() { # PID FIELD(VmRSS|VmHWM)
  awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"
}

smaps_kb() { # PID FIELD(Pss|Private)
  awk -v k="$2" '$1 == "Pss:" && k == "Pss" { v = $2 }
    ($1 == "Private_Clean:" || $1 == "Private_Dirty:") && k == "Private" { v += $2 }
    END { print v + 0 }' "/proc/$1/smaps_rollup"
}

scrape() { # URL OUTFILE
  curl -s --max-time 30 -o "$2" "$1"
}

# Value of a sample: metric name + a substring its label set must contain ("" = no labels).
sample() { # FILE NAME LABEL-SUBSTRING
  awk -v n="$2" -v l="$3" '
    index($0, n "{") == 1 && index($0, l) { v = $NF; found = 1 }
    $1 == n && l == "" { v = $2; found = 1 }
    END { if (found) print v }' "$1"
}

latency_loop() { # URL N OUTFILE
  local i
  : >"$3"
  for ((i = 0; i < $2; i++)); do
    curl -s -o /dev/null --max-time 30 -w '%{time_total}\n' "$1" >>"$3"
  done
}

lat_stats() { # FILE-OF-SECONDS -> "median p95 max" in ms
  sort -g "$1" | awk '{ a[NR] = $1 * 1000 }
    END { n = NR; med = (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
          i = int(0.95 * n); if (i < 0.95 * n) i++; if (i < 1) i = 1
          printf "%.2f %.2f %.2f\n", med, a[i], a[n] }'
}

series_count() { # FILE [EXCLUDE-REGEX]
  awk -v ex="${2:-^$}" '!/^#/ && NF { name = $1; sub(/\{.*/, "", name); if (ex == "^$" || name !~ ex) n++ } END { print n + 0 }' "$1"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "—"; else printf "%.2f×\n", a / b }'; }

mb() { fcalc "$1 / 1024" 1; }

row() { printf '| %s | %s | %s | %s |\n' "$1" "$2" "$3" "${4:-$(ratio "$2" "$3")}"; }

# The Redis data of PEERS.md §2, as redis-cli input: db0 a list axiomdb:commands of LIST_LEN and
# one key of every other type under axiomdb:*; db1 DB1_KEYS keys with a TTL; db2 DB2_KEYS strings
# and a list. Shared by bench_redis_pgbouncer.sh and redis_collection_cpu.sh so both measure the
# same keyspace.
redis_fill_commands() { # LIST_LEN DB1_KEYS DB2_KEYS
  local list_len=$1 db1_keys=$2 db2_keys=$3 i j
  for ((i = 1; i <= list_len; i += 500)); do
    printf 'RPUSH axiomdb:commands'
    for ((j = i; j < i + 500 && j <= list_len; j++)); do printf ' cmd-%d' "$j"; done
    printf '\n'
  done
  printf '%s\n' 'SET axiomdb:leader node-1' 'SET axiomdb:epoch 42' \
    'HSET axiomdb:config replicas 3 quorum 2 region eu-west-1 mode raft' \
    'SADD axiomdb:nodes node-1 node-2 node-3' 'ZADD axiomdb:lag 0 node-1 12 node-2 40 node-3' \
    'RPUSH action_jobs job-1 job-2 job-3'
  for ((i = 1; i <= 10; i++)); do printf 'XADD axiomdb:events * seq %d kind heartbeat\n' "$i"; done
  printf 'SELECT 1\n'
  for ((i = 1; i <= db1_keys; i++)); do printf 'SET cache:%d value-%d EX %d\n' "$i" "$i" $((3600 + i)); done
  printf 'SELECT 2\n'
  for ((i = 1; i <= db2_keys; i++)); do printf 'SET job:%d pending\n' "$i"; done
  printf 'RPUSH queue:default a b c\n'
}
