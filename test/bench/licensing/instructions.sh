#!/usr/bin/env bash
# Server-side cost of the licensing hot paths in CPU instructions (valgrind callgrind),
# which, unlike TPS on a shared machine, does not move with the neighbours' load.
# Each statement is PREPAREd and EXECUTEd N times in a single-user backend (no network,
# no client), each EXECUTE its own transaction, as pgbench -M prepared does; the figure
# is instructions per EXECUTE (the difference between N and 5 executions / (N - 5)).
#
# Usage (as root or the postgres user; needs valgrind and a built, installed celaest):
#   test/bench/licensing/instructions.sh            N=300 by default
# It makes its own throwaway cluster in a temporary directory and removes it.
# BENCH_DESTDIR=<DESTDIR of a private install> (make install DESTDIR=...) runs that install's
# postgres instead of the system's.
set -euo pipefail
cd "$(dirname "$0")"
HERE=$PWD
N=${N:-300}
WARM=${WARM:-50}  # organizations cycled over (of the 1,000)
BIN=${BENCH_DESTDIR:-}$(/usr/lib/postgresql/15/bin/pg_config --bindir 2>/dev/null || pg_config --bindir)
command -v valgrind >/dev/null || { echo "instructions.sh: valgrind is not installed (apt-get install valgrind)"; exit 2; }

as_pg() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/bash -c "$1"; else bash -c "$1"; fi; }
work=$(mktemp -d)
chmod 755 "$work"; [ "$(id -u)" = 0 ] && chown postgres "$work"
trap 'as_pg "$BIN/pg_ctl -D $work/data -m immediate stop" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
opts="-c shared_preload_libraries=celaest -c fsync=off -c celaest.health_check_interval=0"
as_pg "$BIN/initdb -D $work/data -A trust >/dev/null"
as_pg "$BIN/pg_ctl -D $work/data -o '-k $work -c listen_addresses= $opts' -l $work/log -w start >/dev/null"
P="psql -X -q -v ON_ERROR_STOP=1 -h $work -U postgres"
$P -d postgres -c "CREATE DATABASE bench"
$P -d bench -c "SET client_min_messages = warning" -c "CREATE EXTENSION celaest CASCADE"
$P -d bench -f "$HERE/setup.sql" >/dev/null
as_pg "$BIN/pg_ctl -D $work/data -w stop >/dev/null"

org="('00000000-0000-4000-8000-' || lpad(\$1::text, 12, '0'))::uuid"
lic="('00000000-0000-4000-9000-' || lpad(\$1::text, 12, '0'))::uuid"
instructions() {  # $1 = statement, $2 = executions; prints the total instructions
  local script=$work/script.sql
  # Both runs first touch the WARM organizations once (the per-backend copies of license
  # terms are then filled, as in any long-lived connection), then cycle over them.
  { echo "PREPARE q(int) AS $1"
    for i in $(seq "$WARM"); do echo "EXECUTE q($i);"; done
    for i in $(seq "$2"); do echo "EXECUTE q($(( (i * 7919) % WARM + 1 )));"; done; } > "$script"
  [ "$(id -u)" = 0 ] && chown postgres "$script"
  as_pg "valgrind --tool=callgrind --callgrind-out-file=$work/cg.out $BIN/postgres --single -D $work/data $opts -j bench \
         < $script > $work/out.txt 2> $work/vg.txt"
  grep -o 'Collected : [0-9]*' "$work/vg.txt" | awk '{print $3}'
}
measure() {  # $1 = label, $2 = statement
  local few many
  few=$(instructions "$2" 5); many=$(instructions "$2" "$N")
  awk -v a="$few" -v b="$many" -v n="$N" -v s="$1" 'BEGIN { printf "  %-32s %9.0f\n", s, (b - a) / (n - 5) }'
}
echo "instructions per EXECUTE (server side, prepared, $N executions over $WARM warm organizations):"
measure "SELECT 1" "SELECT 1;"
measure "check_limit(org, 'ai_requests', 1)" "SELECT celaest.check_limit($org, 'ai_requests', 1);"
measure "bare UPDATE ... WHERE id = \$1" "UPDATE celaest.licenses SET ai_requests_used = ai_requests_used + 1 WHERE id = $lic;"
measure "consume_quota(org)" "SELECT celaest.consume_quota($org, 'ai_requests', 1);"
measure "reserve_ai_request(org, NULL)" "SELECT celaest._reserve_ai_request($org, NULL);"
