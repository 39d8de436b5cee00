#!/usr/bin/env bash
# Inside scripts/cluster.sh with CELAEST_PRELOAD=off: the library is NOT in
# shared_preload_libraries, so CREATE EXTENSION loads it late. Every SQL function must still
# work (README: "Without shared_preload_libraries every SQL function works"); only the
# background workers and the shared rate windows are missing.
set -euo pipefail
cd "$(dirname "$0")"
# The strict mock provider, for the AI calls (their charges without shared memory).
port_file=$(mktemp)
rm -f "$port_file"
python3 ../mock/mock_provider.py --port 0 --port-file "$port_file" &
mock_pid=$!
trap 'kill $mock_pid 2>/dev/null || true; rm -f "$port_file"' EXIT
for _ in $(seq 100); do [ -s "$port_file" ] && break; sleep 0.1; done
mock_url="http://127.0.0.1:$(cat "$port_file")/openai/v1"
psql -X -v ON_ERROR_STOP=1 -q -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS celaest_no_preload" \
  -c "CREATE DATABASE celaest_no_preload"
out=$(psql -X -v ON_ERROR_STOP=1 -v mock_url="$mock_url" -qAt -d celaest_no_preload -f no_preload.sql)
expected=$(cat no_preload.expected)
if [ "$out" != "$expected" ]; then
  echo "FAIL: without shared_preload_libraries"; diff <(echo "$expected") <(echo "$out"); exit 1
fi
echo "without shared_preload_libraries: CREATE EXTENSION and the SQL functions work"
