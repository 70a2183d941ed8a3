#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test through ctest —
# unit tests, golden files linted by promtool, and integration tests against a throwaway stack
# of real servers — then the unit, integration, conformance and fuzz seed tests again under
# ASan+UBSan, and the unit and integration tests under TSan.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${RUNBOOK_JOBS:-2}

scripts/install-deps.sh

build() {  # build DIR [cmake args...] [--target TARGET...]
  local dir=$1; shift
  local args=() targets=()
  while [ $# -gt 0 ] && [ "$1" != --target ]; do args+=("$1"); shift; done
  [ $# -gt 0 ] && { shift; targets=(--target "$@"); }
  mkdir -p "$dir"
  cmake -S . -B "$dir" "${args[@]}" > "$dir/cmake.log" 2>&1 || { cat "$dir/cmake.log"; exit 1; }
  cmake --build "$dir" -j"$jobs" "${targets[@]}"
}

# Line tables only (-g1): enough for perf and sanitizer reports, and the build takes a fraction of
# full debug info's time. Sanitizer builds at -O0: compiling the template engine with ASan at -O2
# takes several times longer, and the tests find the same errors.
build build -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG"
ctest --test-dir build --output-on-failure -j"$jobs"

if [ "${RUNBOOK_SKIP_SANITIZERS:-0}" != 1 ]; then
  # The sanitizer builds compile the test programs in batches (RUNBOOK_UNITY_TESTS); the main
  # build does not, so a test file that misses an include still fails there.
  build build-asan -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS="-O0 -g1" -DRUNBOOK_SANITIZE=address,undefined \
    -DRUNBOOK_UNITY_TESTS=ON
  ctest --test-dir build-asan --output-on-failure -j"$jobs" -L "unit|integration|conformance|fuzz"
  # TSan only where threads run: the unit and integration tests; the conformance runners and the
  # fuzz seed replays are single-threaded, so their programs are not built.
  build build-tsan -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS="-O0 -g1" -DRUNBOOK_SANITIZE=thread \
    -DRUNBOOK_UNITY_TESTS=ON --target unit_tests integration_tests
  ctest --test-dir build-tsan --output-on-failure -j"$jobs" -L "unit|integration" -E "^fuzz seeds"
fi
