#!/usr/bin/env bash
# Runs every test of cohort: installs what is missing, then
#   1. the normal build: cmocka unit tests and the simulators (ctest, two at
#      a time: this machine has 2 cores) and the end-to-end suite
#      (pytest + redis-py against real cohortd processes);
#   2. the same two under AddressSanitizer + UndefinedBehaviorSanitizer
#      (built with clang, whose UBSan also checks pointer arithmetic);
#   3. the libFuzzer targets for a bounded time (FUZZ_SECONDS, default 20).
# Stops at the first failing stage.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
fuzz_seconds=${FUZZ_SECONDS:-20}

stage() { printf '\n==== %s ====\n' "$*"; }

stage "build"
scripts/build.sh build

stage "unit tests"
(cd build && ctest -j2 --output-on-failure)

stage "end-to-end tests"
COHORTD=$root/build/cohortd /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration

stage "sanitizer build (ASan + UBSan)"
CC=clang scripts/build.sh build-asan -DCOHORT_SANITIZE=ON
export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

stage "unit tests under sanitizers"
(cd build-asan && ctest -j2 --output-on-failure)

stage "end-to-end tests under sanitizers"
COHORTD=$root/build-asan/cohortd COHORT_SANITIZED=1 \
  /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration

stage "fuzzing (${fuzz_seconds}s per target)"
CC=clang scripts/build.sh build-fuzz -DCOHORT_FUZZ=ON -DFUZZ_SECONDS="$fuzz_seconds"
(cd build-fuzz && ctest -j2 -R fuzz --output-on-failure)
