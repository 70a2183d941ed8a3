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
  cmake -S . -B "$dir" "$@" > "$dir/cmake.log" 2>&1 || { cat "$dir/cmake.log"; exit 1; }
  cmake --build "$dir" -j"$jobs"
}

# Line tables only (-g1): enough for perf and sanitizer reports, and the build takes a fraction of
# full debug info's time. Sanitizer builds at -O0: compiling the template engine with ASan at -O2
# takes several times longer, and the tests find the same errors.
build build -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG"
ctest --test-dir build --output-on-failure -j"$jobs"

if [ "${RUNBOOK_SKIP_SANITIZERS:-0}" != 1 ]; then
  build build-asan -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS="-O0 -g1" -DRUNBOOK_SANITIZE=address,undefined
  ctest --test-dir build-asan --output-on-failure -j"$jobs" -L "unit|integration|conformance|fuzz"
  build build-tsan -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS="-O0 -g1" -DRUNBOOK_SANITIZE=thread
  ctest --test-dir build-tsan --output-on-failure -j"$jobs" -L "unit|integration|conformance|fuzz"
fi
