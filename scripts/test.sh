#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test through ctest —
# unit tests, golden files linted by promtool, and integration tests against a throwaway stack
# of real servers — then the unit and integration tests again under ASan+UBSan, and the
# threaded tests under TSan.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${RUNBOOK_JOBS:-2}

scripts/install-deps.sh

build() {  # build DIR [cmake args...]
  local dir=$1; shift
  mkdir -p "$dir"
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" > "$dir/cmake.log" 2>&1 || { cat "$dir/cmake.log"; exit 1; }
  cmake --build "$dir" -j"$jobs"
}

build build
ctest --test-dir build --output-on-failure -j"$jobs"

if [ "${RUNBOOK_SKIP_SANITIZERS:-0}" != 1 ]; then
  build build-asan -DRUNBOOK_SANITIZE=address,undefined
  ctest --test-dir build-asan --output-on-failure -j"$jobs" -L "unit|integration|conformance|fuzz"
  build build-tsan -DRUNBOOK_SANITIZE=thread
  ctest --test-dir build-tsan --output-on-failure -j"$jobs" -L "unit|integration|conformance|fuzz"
fi
