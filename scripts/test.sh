#!/usr/bin/env bash
# Runs every CELAEST test: C++ unit tests (CTest), the mock provider's self-test, pg_regress
# and the integration tests against a throwaway PostgreSQL 15 cluster with celaest preloaded.
# Installs what it needs first. Exit status 0 only when everything passed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

scripts/install-deps.sh
scripts/build.sh

echo "== clang-tidy: no C++ exception escapes an entry point PostgreSQL calls (.clang-tidy)"
scripts/tidy.sh

echo "== C++ unit tests (core codecs, helpers, HTTP client)"
cmake -S . -B build/core -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCELAEST_HTTP_TESTS=ON >/dev/null
cmake --build build/core -j"$(nproc)" >/dev/null
# Timing-based HTTP tests get one retry: a loaded machine can miss a 20 ms poll.
ctest --test-dir build/core --output-on-failure -j2 --repeat until-pass:2 | tail -n 3

echo "== mock provider self-test"
/usr/bin/python3 -m unittest discover -s test/mock -p 'test_*.py' 2>&1 | tail -n 3

echo "== pg_regress and integration tests in a throwaway cluster"
scripts/cluster.sh bash test/run_in_cluster.sh
