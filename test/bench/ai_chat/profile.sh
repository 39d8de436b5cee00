#!/usr/bin/env bash
# Where an ai_chat call's time goes. Runs inside the cluster that ai_chat_bench.sh sets up:
#
#   CELAEST_PG_OPTIONS="-o shared_preload_libraries=celaest,pg_stat_statements \
#     -o pg_stat_statements.track=all -o track_functions=all" \
#     test/bench/ai_chat_bench.sh test/bench/ai_chat/profile.sh statements
#   test/bench/ai_chat_bench.sh test/bench/ai_chat/profile.sh callgrind
#
# statements: pgbench runs ai_chat for PROFILE_SECONDS (default 8) with pg_stat_statements
#   tracking nested statements; prints the per-call execution time of every SQL statement the
#   call runs (including the foreign-key checks) and of the PL/pgSQL functions.
# callgrind: instructions per call (valgrind callgrind, deterministic, immune to other load on
#   the machine) of a single-user backend running ai_chat, over a pg_basebackup copy of the
#   cluster (the live cluster never stops), then again after each of a series of schema
#   changes applied cumulatively. They are experiments, to price each mechanism, not proposals
#   as such. With PROFILE_NATIVE=1 each step also reports the native CPU time per call
#   (single-user backend, best of 3, 2000 calls).
#   Per step: W warm-up calls, then N measured calls (PROFILE_N, default 50); the figure is
#   (Ir of W+N calls - Ir of W calls) / N, so start-up and plan caching are excluded.
#   PROFILE_STEPS=1 stops after the first step (as shipped); PROFILE_KEEP=<dir> keeps each step's
#   callgrind output there (cg.<step>.<calls>, for callgrind_annotate --inclusive=yes).
set -euo pipefail
mode=${1:-statements}
: "${BENCH_AI_CHAT_SQL:?run me through test/bench/ai_chat_bench.sh}"
q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

if [ "$mode" = statements ]; then
  q -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" ||
    { echo "profile: pg_stat_statements is not preloaded (see the usage above)" >&2; exit 1; }
  seconds=${PROFILE_SECONDS:-8}
  taskset -c "$BENCH_CLIENT_CPU" pgbench -n -c 1 -T 2 -f "$BENCH_AI_CHAT_SQL" >/dev/null 2>&1  # plans cached
  q -c "SELECT pg_stat_statements_reset(), pg_stat_reset()" >/dev/null
  taskset -c "$BENCH_CLIENT_CPU" pgbench -n -c 1 -T "$seconds" -f "$BENCH_AI_CHAT_SQL" 2>&1 | grep -E "^tps|latency average"
  q -P pager=off <<'SQL'
SELECT calls,
       round((total_exec_time / calls * 1000)::numeric, 1) AS exec_us_per_call,
       round((total_plan_time / calls * 1000)::numeric, 1) AS plan_us,
       toplevel,
       round(wal_records::numeric / calls, 1) AS wal_records,
       round(wal_bytes / calls) AS wal_bytes,
       left(regexp_replace(query, '\s+', ' ', 'g'), 100) AS statement
  FROM pg_stat_statements
 WHERE calls >= 100
 ORDER BY total_exec_time DESC
 LIMIT 25;
SELECT funcname, calls,
       round((total_time / calls * 1000)::numeric, 1) AS total_us_per_call,
       round((self_time / calls * 1000)::numeric, 1) AS self_us_per_call
  FROM pg_stat_user_functions
 WHERE calls > 0
 ORDER BY total_time DESC;
SQL
  exit 0
fi

[ "$mode" = callgrind ] || { echo "profile: mode is statements or callgrind" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "profile: valgrind is not installed" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "profile: callgrind mode runs the backend as postgres (su): run as root" >&2; exit 1; }
N=${PROFILE_N:-50}; W=10
tmp=$(mktemp -d /tmp/celaest-ai-chat-profile.XXXXXX)
chmod 755 "$tmp"; chown postgres "$tmp"
trap 'rm -rf "$tmp"' EXIT
postgres_bin=${BENCH_DESTDIR:-}$(/usr/lib/postgresql/15/bin/pg_config --bindir)/postgres
# pg_virtualenv's settings are in its configuration file; a private cluster's (BENCH_DESTDIR) are
# on its command line, so the single-user backend gets those again.
if [ -n "${BENCH_DESTDIR:-}" ]; then
  conf_arg=""
  extra_settings=$(q -At -c "SELECT string_agg(format('-c %s=%s', name, setting), ' ') FROM pg_settings
                              WHERE source = 'command line' AND name NOT IN ('port', 'listen_addresses', 'unix_socket_directories')")
  extra_settings+=" -c celaest.encryption_key=$(q -At -c "SHOW celaest.encryption_key")"  # not listed in pg_settings
else
  conf_arg="-c config_file='$PG_CLUSTER_CONF_ROOT/15/regress/postgresql.conf'"
  extra_settings=""
fi
call="SELECT celaest.ai_chat('[{\"role\":\"user\",\"content\":\"hi\"}]', NULL, '00000000-0000-4000-8000-0000000000b1');"
for n in 0 "$N" 2000; do
  for ((i = 0; i < W + n; i++)); do echo "$call"; done >"$tmp/calls_$n.sql"
done
chmod 644 "$tmp"/*.sql

single() {  # single [valgrind...] < input: a single-user backend on a fresh copy of the snapshot
  rm -rf "$tmp/run"; su postgres -c "cp -a '$tmp/copy' '$tmp/run'"
  su postgres -c "cd /tmp && taskset -c $BENCH_SERVER_CPU $* $postgres_bin --single -D '$tmp/run' $conf_arg $extra_settings \
    -c data_directory='$tmp/run' postgres"
}
step() {
  local label=$1 ir0 irn native=""
  rm -rf "$tmp/copy"
  su postgres -c "PGPASSWORD='${PGPASSWORD:-}' pg_basebackup -h '$PGHOST' -p '$PGPORT' -U '$PGUSER' -D '$tmp/copy' -X stream -c fast"
  for n in 0 "$N"; do
    single valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.$n" <"$tmp/calls_$n.sql" >"$tmp/out_$n" 2>"$tmp/err_$n"
  done
  [ "$(grep -c '"completed"' "$tmp/out_$N")" = $((W + N)) ] || { tail -5 "$tmp/out_$N" "$tmp/err_$N" >&2; echo "profile: calls failed" >&2; exit 1; }
  ir0=$(sed -n 's/.*I *refs: *//p' "$tmp/err_0" | tr -d ,); irn=$(sed -n 's/.*I *refs: *//p' "$tmp/err_$N" | tr -d ,)
  if [ "${PROFILE_NATIVE:-0}" = 1 ]; then
    local best0=1e9 best1=1e9 t
    for _ in 1 2 3; do
      t=$( { TIMEFORMAT='%3U %3S'; time single <"$tmp/calls_0.sql" >/dev/null 2>&1; } 2>&1 | awk '{ print $1 + $2 }')
      best0=$(awk -v a="$best0" -v b="$t" 'BEGIN { print (b < a) ? b : a }')
      t=$( { TIMEFORMAT='%3U %3S'; time single <"$tmp/calls_2000.sql" >/dev/null 2>&1; } 2>&1 | awk '{ print $1 + $2 }')
      best1=$(awk -v a="$best1" -v b="$t" 'BEGIN { print (b < a) ? b : a }')
    done
    native=$(awk -v a="$best0" -v b="$best1" 'BEGIN { printf " | native %5.0f us CPU/call", (b - a) * 1e6 / 2000 }')
  fi
  printf '%-78s %6.0f kIr/call%s\n' "$label" "$(awk -v a="$ir0" -v b="$irn" -v n="$N" 'BEGIN { print (b - a) / n / 1000 }')" "$native"
  steps_done=$((steps_done + 1))
  if [ -n "${PROFILE_KEEP:-}" ]; then
    mkdir -p "$PROFILE_KEEP"; cp "$tmp/cg.0" "$PROFILE_KEEP/cg.$steps_done.0"; cp "$tmp/cg.$N" "$PROFILE_KEEP/cg.$steps_done.$N"
  fi
  if [ "${PROFILE_STEPS:-0}" != 0 ] && [ "$steps_done" -ge "${PROFILE_STEPS}" ]; then exit 0; fi
}
steps_done=0
drop_all() {  # drop_all <contype c|f> table...
  local kind=$1; shift
  local list; list=$(printf "'%s'::regclass," "$@"); list=${list%,}
  q -c "DO \$\$ DECLARE r record; BEGIN
          FOR r IN SELECT conrelid::regclass AS t, conname FROM pg_constraint
                    WHERE contype = '$kind' AND conrelid IN ($list) LOOP
            EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', r.t, r.conname);
          END LOOP; END \$\$"
}

echo "instructions per ai_chat call (user space; kernel time of the HTTP exchange not included)"
step "as shipped"
drop_all c celaest.processed_tasks celaest.licenses celaest.ai_api_pool celaest.license_usage_log
step "+ no CHECK constraints on processed_tasks, licenses, ai_api_pool, usage_log"
drop_all f celaest.license_usage_log
step "+ no foreign keys on license_usage_log"
drop_all f celaest.processed_tasks
step "+ no foreign keys on processed_tasks"
q -c "DO \$\$ DECLARE r record; BEGIN FOR r IN SELECT indexrelid::regclass AS ix FROM pg_index
        WHERE NOT indisprimary AND indrelid = 'celaest.processed_tasks'::regclass LOOP
        EXECUTE format('DROP INDEX %s', r.ix); END LOOP; END \$\$"
step "+ processed_tasks without secondary indexes"
q -c "DROP TRIGGER IF EXISTS processed_tasks_enforce_max_concurrent_tasks ON celaest.processed_tasks;
      DROP TRIGGER IF EXISTS licenses_set_updated_at ON celaest.licenses;
      DROP TRIGGER IF EXISTS ai_api_pool_set_updated_at ON celaest.ai_api_pool;
      ALTER FUNCTION celaest.ai_chat(jsonb, text, uuid, jsonb) RESET search_path"
step "+ no other triggers on those tables, no SET clause on ai_chat()"
