# shellcheck shell=bash
# Teardown for scripts/stack.sh: stop everything a stack started, by recorded pid, and remove the
# bulky data. Works after a half-finished `up`, is idempotent, and copes with SIGSTOPped servers.

# What a recorded pid must look like before we signal it (guards against recycled pids).
# setsid/setpriv/nohup/bash: a server caught between fork and exec.
teardown_identity_ok() { # NAME PID
  local name=$1 pid=$2 comm
  comm=$(proc_comm "$pid")
  case $comm in setsid | setpriv | nohup) return 0 ;; esac
  case $name in
    primary | replica) [[ $comm == postgres ]] ;;
    pgbouncer) [[ $comm == pgbouncer ]] ;;
    redis) [[ $comm == redis-server ]] ;;
    tls | tls_soon | tls_chain) [[ $comm == openssl ]] ;;
    watchdog) [[ $(proc_cmdline "$pid") == *" __watch $STACK_DIR "* ]] ;;
    *) return 1 ;;
  esac
}

teardown() {
  set +e
  local t0 name pid p i
  local -A role=()        # pid -> name, for every process we will stop
  local -A mine=()        # our own pid and ancestors (a watchdog's `down` runs in the watchdog)
  local -a all=() alive=()
  t0=$(now_ms)

  scan_procs
  for p in $(ancestors_of_self); do mine[$p]=1; done

  # 1. Recorded pids, then postmasters named in postmaster.pid (up may have died before recording).
  if [[ -f $PIDS_FILE ]]; then
    while read -r name pid _; do
      [[ -n ${pid:-} ]] || continue
      pid_alive "$pid" || continue
      [[ -z ${mine[$pid]:-} ]] || continue
      if teardown_identity_ok "$name" "$pid"; then
        role[$pid]=$name
      else
        warn "not touching pid $pid recorded as '$name': it is now '$(proc_comm "$pid")'"
      fi
    done <"$PIDS_FILE"
  fi
  for name in replica primary; do
    local data=$PG_DIR/$name
    [[ -f $data/postmaster.pid ]] || continue
    { read -r pid <"$data/postmaster.pid"; } 2>/dev/null || continue
    if pid_alive "$pid" && [[ $(proc_comm "$pid") == postgres && -z ${mine[$pid]:-} ]]; then
      role[$pid]=$name
    fi
  done

  # 2. Include descendants so nothing is orphaned: PostgreSQL backends (the postmaster stops
  #    them) and anything else, e.g. the watchdog's `sleep` (gets SIGTERM with its parent).
  local -a roots=("${!role[@]}")
  local root
  for root in "${roots[@]}"; do
    for p in $(descendants_of "$root"); do
      [[ -n ${role[$p]:-} || -n ${mine[$p]:-} ]] && continue
      case ${role[$root]} in primary | replica) role[$p]=pg-child ;; *) role[$p]=child ;; esac
    done
  done
  all=("${!role[@]}")
  if ((${#all[@]} == 0)); then
    msg "nothing running in $STACK_DIR"
  else
    [[ -z ${STACK_DEBUG:-} ]] || msg "$(($(now_ms) - t0)) ms: signalling ${#all[@]} processes"
    # 3. Wake frozen processes, then ask politely: pg_ctl -m immediate, SIGTERM for the rest.
    kill -CONT "${all[@]}" 2>/dev/null
    for name in replica primary; do
      for pid in "${all[@]}"; do
        [[ ${role[$pid]} == "$name" ]] || continue
        if [[ -d $PG_DIR/$name ]]; then
          as_user "$PG_BINDIR/pg_ctl" -D "$PG_DIR/$name" -m immediate -W stop >/dev/null 2>&1 ||
            kill -QUIT "$pid" 2>/dev/null
        else
          kill -QUIT "$pid" 2>/dev/null
        fi
      done
    done
    for pid in "${all[@]}"; do
      case ${role[$pid]} in primary | replica | pg-child) ;; *) kill -TERM "$pid" 2>/dev/null ;; esac
    done

    # 4. Wait up to 5 s, then SIGKILL whatever is left and wait a little more.
    for ((i = 0; i < 100; i++)); do
      alive=()
      for pid in "${all[@]}"; do pid_alive "$pid" && alive+=("$pid"); done
      ((${#alive[@]})) || break
      [[ -z ${STACK_DEBUG:-} ]] || msg "$(($(now_ms) - t0)) ms: waiting for $(for p in "${alive[@]}"; do printf '%s(%s) ' "${role[$p]}" "$p"; done)"
      sleep 0.05
    done
    if ((${#alive[@]})); then
      warn "still alive after 5 s, sending SIGKILL: $(for p in "${alive[@]}"; do printf '%s(%s) ' "${role[$p]}" "$p"; done)"
      kill -CONT "${alive[@]}" 2>/dev/null
      kill -KILL "${alive[@]}" 2>/dev/null
      for ((i = 0; i < 40; i++)); do
        alive=()
        for pid in "${all[@]}"; do pid_alive "$pid" && alive+=("$pid"); done
        ((${#alive[@]})) || break
        sleep 0.05
      done
      ((${#alive[@]} == 0)) || warn "could not kill: ${alive[*]}"
    fi
  fi

  [[ -z ${STACK_DEBUG:-} ]] || msg "$(($(now_ms) - t0)) ms: processes gone, removing data"
  # 5. Remove the data (keep logs, configs, certificates and stack.env for post-mortems).
  rm -rf -- "$PG_DIR" "$ARCHIVE_DIR" "$REDIS_DIR" "$RUN_DIR" "$ARCHIVE_FAIL_FLAG" "$PIDS_FILE"
  msg "down: $STACK_DIR stopped in $(($(now_ms) - t0)) ms (logs kept in $LOG_DIR)"
  return 0
}
