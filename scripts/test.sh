#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test through ctest —
# unit tests, golden files linted by promtool, and integration tests against a throwaway stack
# of real servers — then the unit, integration, conformance and fuzz seed tests again under
# ASan+UBSan, and the unit and integration tests under TSan.
#
# Each stage prints how long it took ("test.sh: ... took N s"); .ci/README.md has the budget.
# The integration tests run one at a time and mostly wait on servers, so while one stage's tests
# run, the next stage's build uses the idle cores (RUNBOOK_OVERLAP=0 runs everything in sequence).
# The test output of an overlapped stage is kept in DIR/ctest.log and printed when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${RUNBOOK_JOBS:-2}
overlap=${RUNBOOK_OVERLAP:-1}
start=$SECONDS

scripts/install-deps.sh

# Ninja schedules the whole graph: the test programs' objects compile while the libraries they
# link are still being built.
generator=()
command -v ninja > /dev/null && generator=(-G Ninja)

timed() {  # timed LABEL COMMAND...: runs COMMAND and prints how long it took
  local label=$1 t0=$SECONDS rc=0
  shift
  "$@" || rc=$?
  echo "test.sh: $label took $((SECONDS - t0)) s$([ $rc = 0 ] || echo ", exit status $rc")"
  return $rc
}

build() {  # build DIR [cmake args...] [--target TARGET...]
  local dir=$1; shift
  local args=() targets=()
  while [ $# -gt 0 ] && [ "$1" != --target ]; do args+=("$1"); shift; done
  [ $# -gt 0 ] && { shift; targets=(--target "$@"); }
  mkdir -p "$dir"
  # A tree configured earlier with another generator cannot switch in place.
  if [ -f "$dir/CMakeCache.txt" ] && ! grep -qx "CMAKE_GENERATOR:INTERNAL=${generator[1]:-Unix Makefiles}" \
    "$dir/CMakeCache.txt"; then
    rm -rf "$dir/CMakeCache.txt" "$dir/CMakeFiles"
  fi
  cmake -S . -B "$dir" "${generator[@]}" "${args[@]}" > "$dir/cmake.log" 2>&1 ||
    { cat "$dir/cmake.log"; return 1; }
  cmake --build "$dir" -j"$jobs" "${targets[@]}"
}

# A stage's tests: in the foreground, or overlapped with the next build: in the background, their
# output in DIR/ctest.log, printed by finish_tests.
tests_pid=""
tests_dir=""
run_tests() {  # run_tests DIR [ctest args...]
  local dir=$1
  shift
  if [ "$overlap" = 1 ]; then
    ctest --test-dir "$dir" --output-on-failure -j"$jobs" "$@" > "$dir/ctest.log" 2>&1 &
    tests_pid=$!
    tests_dir=$dir
  else
    timed "tests in $dir" ctest --test-dir "$dir" --output-on-failure -j"$jobs" "$@"
  fi
}
finish_tests() {
  [ -n "$tests_pid" ] || return 0
  local rc=0 waited=$SECONDS
  wait "$tests_pid" || rc=$?
  tests_pid=""
  cat "$tests_dir/ctest.log"
  local took
  took=$(sed -n 's/^Total Test time (real) = *//p' "$tests_dir/ctest.log")
  echo "test.sh: tests in $tests_dir took ${took:-?} (overlapped with the next build; ended" \
    "$((SECONDS - waited)) s after it)$([ $rc = 0 ] || echo ", exit status $rc")"
  return $rc
}
# A failed build must not leave a background ctest behind (its stack's watchdog follows ctest).
trap '[ -z "$tests_pid" ] || kill "$tests_pid" 2> /dev/null || true' EXIT

# Line tables only (-g1): enough for perf and sanitizer reports, and the build takes a fraction of
# full debug info's time. The test programs' own code at -Og (RUNBOOK_TEST_COMPILE_OPTIONS): at -O2
# it took half the build's compile time; what they test is built at -O2. Sanitizer builds at -O0:
# compiling the template engine with ASan at -O2 takes several times longer, and the tests find
# the same errors.
timed "build (RelWithDebInfo)" build build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG" -DRUNBOOK_TEST_COMPILE_OPTIONS=-Og
run_tests build

if [ "${RUNBOOK_SKIP_SANITIZERS:-0}" != 1 ]; then
  # The sanitizer builds compile the test programs in batches (RUNBOOK_UNITY_TESTS); the main
  # build does not, so a test file that misses an include still fails there.
  timed "build (ASan+UBSan)" build build-asan -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS="-O0 -g1" \
    -DRUNBOOK_SANITIZE=address,undefined -DRUNBOOK_UNITY_TESTS=ON
  finish_tests
  run_tests build-asan -L "unit|integration|conformance|fuzz"
  # TSan only where threads run: the unit and integration tests; the conformance runners and the
  # fuzz seed replays are single-threaded, so their programs are not built.
  timed "build (TSan)" build build-tsan -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS="-O0 -g1" \
    -DRUNBOOK_SANITIZE=thread -DRUNBOOK_UNITY_TESTS=ON --target unit_tests integration_tests
  finish_tests
  overlap=0 run_tests build-tsan -L "unit|integration" -E "^fuzz seeds"
fi
finish_tests
echo "test.sh: all stages took $((SECONDS - start)) s"
