#!/usr/bin/env bash
# Alert template expansion with and without parsing at every expansion (tests/bench/bench_templates.cpp).
# Prints a markdown table; asserts nothing. Use a release build.
#   tests/bench/bench_templates.sh [BUILD_DIR] [EXPANSIONS]
set -euo pipefail
BUILD=${1:-build}
cmake --build "$BUILD" -j2 --target bench_templates >&2
"$BUILD/tests/bench_templates" "${2:-20000}"
