#!/usr/bin/env bash
# Runs every CELAEST test: C++ unit tests (CTest), the mock provider's self-test, pg_regress
# and the integration tests against a throwaway PostgreSQL 15 cluster with celaest preloaded.
# Installs what it needs first. Exit status 0 only when everything passed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

echo "== pg_regress schedule: every test file scheduled, every scheduled test present"
test/regress/check_schedule.sh

scripts/install-deps.sh
scripts/build.sh

echo "== clang-tidy: no C++ exception escapes an entry point PostgreSQL calls (.clang-tidy)"
scripts/tidy.sh

echo "== C++ unit tests (core codecs, helpers, HTTP client)"
cmake -S . -B build/core -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCELAEST_HTTP_TESTS=ON >/dev/null
cmake --build build/core -j"$(nproc)" >/dev/null
# No retries: a test that fails only sometimes is a bug in the test or the code.
ctest --test-dir build/core --output-on-failure -j2 | tail -n 3

echo "== the same unit tests under AddressSanitizer and UndefinedBehaviorSanitizer"
cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DCELAEST_SANITIZE=ON -DCELAEST_HTTP_TESTS=ON >/dev/null
cmake --build build/asan -j"$(nproc)" >/dev/null
# The first finding aborts its test (the build has -fno-sanitize-recover=all as well).
ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1 \
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  ctest --test-dir build/asan --output-on-failure -j2 | tail -n 3

echo "== fuzz targets, 5,000 reproducible inputs each (test/fuzz)"
test/fuzz/run.sh

echo "== mock provider self-test"
/usr/bin/python3 -m unittest discover -s test/mock -p 'test_*.py' 2>&1 | tail -n 3

echo "== pg_regress and integration tests in a throwaway cluster"
scripts/cluster.sh bash test/run_in_cluster.sh

echo "== without shared_preload_libraries (CREATE EXTENSION loads the library late)"
CELAEST_PRELOAD=off scripts/cluster.sh bash test/no_preload/run.sh

echo "== the ledger after a crash: counters rebuilt from processed_tasks (its own cluster: a SIGKILL restarts the server)"
scripts/cluster.sh /usr/bin/python3 -m pytest -q -p no:cacheprovider test/ledger_crash

echo "== the launcher: every database with the extension, databases created and dropped while running"
CELAEST_DATABASES= scripts/cluster.sh /usr/bin/python3 -m pytest -q -p no:cacheprovider test/launcher
