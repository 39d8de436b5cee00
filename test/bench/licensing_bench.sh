#!/usr/bin/env bash
# Licensing benchmark (issue 5 §7), pgbench, 8 clients, in one run:
#   check_limit(org, 'ai_requests', 1)        against  SELECT 1              (target >= 50%)
#   consume_quota(org) over 1,000 organizations against a bare
#   UPDATE licenses SET ai_requests_used = ai_requests_used + 1 WHERE id = $1  (target >= 85%)
# plus reserve_ai_request (consume + one license_usage_log row), for information, and
#   check_limit as an end user (role bench_end_user, authenticated level, JWT claims, row-level
#   security on) against check_limit as the superuser                      (target >= 50%)
#
# Run it in a throwaway cluster with celaest preloaded, e.g.
#   scripts/cluster.sh test/bench/licensing_bench.sh
#   pg_virtualenv -t -v 15 -o shared_preload_libraries=celaest test/bench/licensing_bench.sh
# (PG* variables name the server; the script creates and drops its own database.)
#
# Each round runs the pairs back to back (baseline and function adjacent in time, their
# order alternating between rounds), so a noisy neighbour hits both sides of a ratio
# alike; the ratio reported is the median of the per-round ratios. Every pgbench and
# the server are pinned the same way with taskset for every workload.
#
# Settings (environment):
#   DURATION=10    seconds per pgbench run        ROUNDS=5       rounds
#   CLIENTS=8      pgbench clients                THREADS=2      pgbench threads (-j)
#   PGBENCH_CPUS   taskset list for pgbench       SERVER_CPUS    taskset list for the server
#                  (both default to every CPU: 0-(nproc-1))
#   PROTOCOL=prepared   pgbench -M (prepared, extended or simple)
#   STRICT=1       exit 1 when a target is missed (default: report only)
set -euo pipefail
cd "$(dirname "$0")/../.."
HERE=test/bench/licensing

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-5}
CLIENTS=${CLIENTS:-8}
THREADS=${THREADS:-2}
PROTOCOL=${PROTOCOL:-prepared}
ALL_CPUS="0-$(($(nproc) - 1))"
PGBENCH_CPUS=${PGBENCH_CPUS:-$ALL_CPUS}
SERVER_CPUS=${SERVER_CPUS:-$ALL_CPUS}
DB=celaest_licensing_bench

psql_admin() { psql -X -q -v ON_ERROR_STOP=1 -d "${PGDATABASE:-postgres}" "$@"; }
psql_bench() { psql -X -q -v ON_ERROR_STOP=1 -d "$DB" "$@"; }

psql_admin -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
trap 'psql_admin -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
psql_bench -c "SET client_min_messages = warning" -c "CREATE EXTENSION celaest CASCADE"
psql_bench -f "$HERE/setup.sql" >/dev/null
# The end user logs in like the superuser (pg_virtualenv's clusters ask for PGPASSWORD).
[ -n "${PGPASSWORD:-}" ] && psql_bench -c "ALTER ROLE bench_end_user PASSWORD '$PGPASSWORD'" >/dev/null

# Pin the server: the postmaster and every process it has (new backends inherit it).
postmaster_pid=$(head -1 "$(psql_bench -At -c 'SHOW data_directory')/postmaster.pid" 2>/dev/null || true)
if [ -n "$postmaster_pid" ] && taskset -a -p -c "$SERVER_CPUS" "$postmaster_pid" >/dev/null 2>&1; then
  for child in $(pgrep -P "$postmaster_pid" || true); do taskset -a -p -c "$SERVER_CPUS" "$child" >/dev/null 2>&1 || true; done
  server_pinning="server on CPUs $SERVER_CPUS"
else
  server_pinning="server NOT pinned (cannot read postmaster.pid or set its affinity from here)"
fi

calc() { awk "BEGIN { print $1 }"; }

# One pgbench run; prints the TPS (excluding connection time).
run() {
  local script=$1 duration=${2:-$DURATION} user=()
  [ "$script" = check_limit_end_user ] && user=(-U bench_end_user)
  taskset -c "$PGBENCH_CPUS" pgbench "${user[@]}" -n -M "$PROTOCOL" -c "$CLIENTS" -j "$THREADS" -T "$duration" \
      -f "$HERE/$script.sql" "$DB" 2>&1 |
    sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p'
}

echo "licensing benchmark: $(nproc) CPUs, pgbench $CLIENTS clients / $THREADS threads on CPUs $PGBENCH_CPUS, $server_pinning"
echo "  -M $PROTOCOL, $ROUNDS rounds x ${DURATION}s per workload, 1,000 organizations; $(psql_bench -At -c 'SELECT version()' | cut -d, -f1)"
for warm in select1 check_limit bare_update consume_quota reserve_ai_request check_limit_end_user; do run "$warm" 2 >/dev/null; done
psql_bench -c "VACUUM ANALYZE celaest.licenses" >/dev/null

declare -A tps
ratios_check=()
ratios_consume=()
ratios_reserve=()
ratios_end_user=()
for round in $(seq "$ROUNDS"); do
  if [ $((round % 2)) -eq 1 ]; then order=(select1 check_limit bare_update consume_quota reserve_ai_request check_limit_end_user)
  else order=(check_limit_end_user check_limit select1 reserve_ai_request consume_quota bare_update); fi
  declare -A this=()
  for workload in "${order[@]}"; do
    this[$workload]=$(run "$workload")
    tps[$workload]="${tps[$workload]:-} ${this[$workload]}"
  done
  psql_bench -c "VACUUM celaest.licenses" >/dev/null
  ratios_check+=("$(calc "${this[check_limit]} / ${this[select1]}")")
  ratios_consume+=("$(calc "${this[consume_quota]} / ${this[bare_update]}")")
  ratios_reserve+=("$(calc "${this[reserve_ai_request]} / ${this[bare_update]}")")
  ratios_end_user+=("$(calc "${this[check_limit_end_user]} / ${this[check_limit]}")")
  printf "  round %d: SELECT 1 %8.0f  check_limit %8.0f  (%5.1f%%) | bare UPDATE %7.0f  consume_quota %7.0f  (%5.1f%%)  reserve_ai_request %7.0f (%5.1f%%)\n" \
    "$round" "${this[select1]}" "${this[check_limit]}" "$(calc "100 * ${ratios_check[-1]}")" \
    "${this[bare_update]}" "${this[consume_quota]}" "$(calc "100 * ${ratios_consume[-1]}")" \
    "${this[reserve_ai_request]}" "$(calc "100 * ${ratios_reserve[-1]}")"
  printf "           check_limit as end user %7.0f  (%5.1f%% of check_limit as superuser)\n" \
    "${this[check_limit_end_user]}" "$(calc "100 * ${ratios_end_user[-1]}")"
  unset this
done

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
# shellcheck disable=SC2086
{
  m_select1=$(median ${tps[select1]}); m_check=$(median ${tps[check_limit]})
  m_bare=$(median ${tps[bare_update]}); m_consume=$(median ${tps[consume_quota]})
  m_reserve=$(median ${tps[reserve_ai_request]})
  m_end_user=$(median ${tps[check_limit_end_user]})
}
r_check=$(median "${ratios_check[@]}")
r_consume=$(median "${ratios_consume[@]}")
r_reserve=$(median "${ratios_reserve[@]}")
r_end_user=$(median "${ratios_end_user[@]}")
verdict() { if [ "$(calc "($1 >= $2) ? 1 : 0")" = 1 ]; then echo "meets"; else echo "MISSES"; fi; }

echo
echo "median TPS over $ROUNDS rounds, ratio = median of the per-round ratios:"
printf "  SELECT 1            %9.0f\n" "$m_select1"
printf "  check_limit         %9.0f   %5.1f%% of SELECT 1     (target >= 50%%: %s)\n" "$m_check" \
  "$(calc "100 * $r_check")" "$(verdict "$r_check" 0.50)"
printf "  bare UPDATE         %9.0f\n" "$m_bare"
printf "  consume_quota       %9.0f   %5.1f%% of bare UPDATE  (target >= 85%%: %s)\n" "$m_consume" \
  "$(calc "100 * $r_consume")" "$(verdict "$r_consume" 0.85)"
printf "  reserve_ai_request  %9.0f   %5.1f%% of bare UPDATE  (consume + one license_usage_log row; no target)\n" \
  "$m_reserve" "$(calc "100 * $r_reserve")"
printf "  check_limit, end user %7.0f   %5.1f%% of check_limit as superuser (row-level security on; target >= 50%%: %s)\n" \
  "$m_end_user" "$(calc "100 * $r_end_user")" "$(verdict "$r_end_user" 0.50)"

if [ "${STRICT:-0}" = 1 ] && { [ "$(verdict "$r_check" 0.50)" != meets ] || [ "$(verdict "$r_consume" 0.85)" != meets ]; }; then
  exit 1
fi
