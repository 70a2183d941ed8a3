#!/usr/bin/env bash
# Runs `promtool check metrics` on every golden exposition file. Fails on any finding whose metric
# name is not in the allow-list, and on allow-list entries that no golden file needs any more.
# Allow-list format: "<metric name> <reason...>", one a line, '#' comments.
set -euo pipefail
promtool=$1 golden_dir=$2 allowlist=$3
declare -A allowed used
while read -r name reason; do
  [[ -z "$name" || "$name" == \#* ]] && continue
  [[ -n "$reason" ]] || { echo "$allowlist: entry $name has no reason"; exit 1; }
  allowed[$name]=1
done < "$allowlist"
status=0 files=0
while IFS= read -r -d '' f; do
  files=$((files + 1))
  while IFS= read -r line; do
    [[ -z "$line" ]] && continue
    name=${line%% *}
    if [[ -n "${allowed[$name]:-}" ]]; then
      used[$name]=1
    else
      echo "${f#"$golden_dir"/}: $line"
      status=1
    fi
  done < <("$promtool" check metrics < "$f" 2>&1 || true)
done < <(find "$golden_dir" -name '*.prom' -print0 | sort -z)
for name in "${!allowed[@]}"; do
  if [[ -z "${used[$name]:-}" ]]; then
    echo "$allowlist: $name is allowed but no golden file needs it any more"
    status=1
  fi
done
[[ $files -gt 0 ]] || { echo "no golden files under $golden_dir"; exit 1; }
echo "promtool: $files golden files checked"
exit $status
