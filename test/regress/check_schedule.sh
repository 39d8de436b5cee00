#!/usr/bin/env bash
# Every pg_regress test is scheduled, and every scheduled test has its SQL and expected output
# (the Makefile runs what test/regress/schedule names; an unscheduled file would never run).
set -euo pipefail
cd "$(dirname "$0")"
status=0
scheduled=$(sed -n 's/^test: *//p' schedule | tr ' ' '\n' | sed '/^$/d' | sort)
files=$(find sql -maxdepth 1 -name '*.sql' -printf '%f\n' | sed 's/\.sql$//' | sort)
for t in $(comm -23 <(echo "$files") <(echo "$scheduled")); do
  echo "test/regress/sql/$t.sql is not in test/regress/schedule"; status=1
done
for t in $scheduled; do
  [ -f "sql/$t.sql" ] || { echo "scheduled test $t has no test/regress/sql/$t.sql"; status=1; }
  [ -f "expected/$t.out" ] || { echo "scheduled test $t has no test/regress/expected/$t.out"; status=1; }
done
dups=$(echo "$scheduled" | uniq -d)
[ -z "$dups" ] || { echo "scheduled more than once: $dups"; status=1; }
exit $status
