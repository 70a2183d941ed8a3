#!/usr/bin/env bash
# Alerts per second through the notifier's durable outbox (fsync on) to a loopback receiver,
# for the Alertmanager sink (batches of 64) and the webhook sink (one notification per alert).
# Prints a markdown table; asserts nothing.
#   tests/bench/bench_notify.sh [BUILD_DIR]      ALERTS=20000 OUTBOX_DIR=/var/tmp/rbx-bench-outbox
set -euo pipefail
BUILD=${1:-build}
ALERTS=${ALERTS:-20000}
# The outbox must live on a real disk for fsync to cost what it costs in production (not tmpfs).
OUTBOX_DIR=${OUTBOX_DIR:-/var/tmp/rbx-bench-outbox-$$}
cmake --build "$BUILD" -j2 --target bench_notify >&2
"$BUILD/tests/bench_notify" "$ALERTS" "$OUTBOX_DIR" 2> >(grep -v '^\[' >&2)
echo
echo "Filesystem of the outbox: $(df -T "$(dirname "$OUTBOX_DIR")" | awk 'NR==2{print $2" on "$1}')"
