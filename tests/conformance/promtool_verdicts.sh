#!/bin/sh
# Runs each file through `promtool check rules` / `promtool test rules` and through ours, and
# requires the same exit code from both. Usage: promtool_verdicts.sh PROMTOOL OURS FILE...
# Each file is checked with both commands (a unit-test file is not a rule file and vice versa;
# the verdicts must agree either way). Files are run from their own directory, as rule_files
# paths are relative to the test file.
set -u
promtool=$1
ours=$2
shift 2
total=0
bad=0
for f in "$@"; do
  dir=$(dirname "$f")
  base=$(basename "$f")
  for cmd in check test; do
    total=$((total + 1))
    (cd "$dir" && "$promtool" $cmd rules "$base" >/dev/null 2>&1)
    want=$?
    out=$(cd "$dir" && "$ours" $cmd rules "$base" 2>&1)
    got=$?
    if [ "$want" = "$got" ]; then
      echo "agree     $cmd rules $base: exit $got"
    else
      bad=$((bad + 1))
      echo "DISAGREE  $cmd rules $base: ours exit $got, promtool exit $want"
      echo "$out" | sed 's/^/    | /'
    fi
  done
done
echo "promtool verdicts: $((total - bad))/$total agree"
[ "$bad" = 0 ]
