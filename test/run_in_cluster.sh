#!/usr/bin/env bash
# Inside scripts/cluster.sh: starts the mock provider, runs pg_regress, the integration
# tests and the upgrade test, and fails if the server log shows a backend terminated by a signal.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
# Debian's interpreter: pytest and psycopg2 come from Debian packages (python3-pytest, python3-psycopg2).
PYTHON=${PYTHON:-/usr/bin/python3}

port_file=$(mktemp)
"$PYTHON" test/mock/mock_provider.py --port 0 --port-file "$port_file" &
mock_pid=$!
trap 'kill $mock_pid 2>/dev/null' EXIT
for _ in $(seq 50); do [ -s "$port_file" ] && break; sleep 0.1; done
export CELAEST_MOCK_PORT=$(cat "$port_file")
echo "mock provider on 127.0.0.1:$CELAEST_MOCK_PORT"

if ! make -s installcheck PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config; then
  status=1
  echo "---- regression.diffs ----"; cat regression.diffs 2>/dev/null
fi

if ls test/integration/test_*.py >/dev/null 2>&1; then
  "$PYTHON" -m pytest -q -p no:cacheprovider test/integration || status=1
fi

# ALTER EXTENSION UPDATE from every released version equals a fresh install (test/upgrade).
"$PYTHON" -m pytest -q -p no:cacheprovider test/upgrade || status=1

if grep -E "terminated by signal|was terminated by exception" "$CELAEST_SERVER_LOG"; then
  echo "FAIL: a backend crashed (see above)"
  status=1
fi
if [ $status -ne 0 ]; then
  echo "---- server log (last 200 lines) ----"; tail -n 200 "$CELAEST_SERVER_LOG"
fi
exit $status
