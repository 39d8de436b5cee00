#!/usr/bin/env bash
# Inside scripts/cluster.sh: runs pg_regress, the integration tests and the upgrade test, and fails if the
# server log shows a backend terminated by a signal. pg_regress needs no mock provider; the
# integration tests start their own (conftest.py's mock_server, via mock_process.py) and
# check the server log for crashes after every test themselves (conftest.py's server_log).
# The grep below stays for pg_regress, whose tests have no such hook.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
# Debian's interpreter: pytest and psycopg2 come from Debian packages (python3-pytest, python3-psycopg2).
PYTHON=${PYTHON:-/usr/bin/python3}

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
