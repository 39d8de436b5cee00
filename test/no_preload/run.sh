#!/usr/bin/env bash
# Inside scripts/cluster.sh with CELAEST_PRELOAD=off: the library is NOT in
# shared_preload_libraries, so CREATE EXTENSION loads it late. Every SQL function must still
# work (README: "Without shared_preload_libraries every SQL function works"); only the
# background workers and the shared rate windows are missing.
set -euo pipefail
cd "$(dirname "$0")"
psql -X -v ON_ERROR_STOP=1 -q -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS celaest_no_preload" \
  -c "CREATE DATABASE celaest_no_preload"
out=$(psql -X -v ON_ERROR_STOP=1 -qAt -d celaest_no_preload -f no_preload.sql)
expected=$(cat no_preload.expected)
if [ "$out" != "$expected" ]; then
  echo "FAIL: without shared_preload_libraries"; diff <(echo "$expected") <(echo "$out"); exit 1
fi
echo "without shared_preload_libraries: CREATE EXTENSION and the SQL functions work"
