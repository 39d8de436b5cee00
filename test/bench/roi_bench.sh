#!/usr/bin/env bash
# ROI benchmark (issue 13 §6): ROWS processed_tasks (default 10 million) over ORGS
# organizations (default 1,000) and 90 days; in one run, on warm caches:
#   SELECT count(*) FROM processed_tasks                    (the reference: the planner's cheapest plan)
#   the same count(*) forced onto a sequential scan, and count(created_at) (every row read)
#   the same roll-up in plain SQL (GROUP BY ... percentile_cont, count(DISTINCT))
#   _roi_rollup: the figures straight from the tasks (roi_summary's roll-up)
#   aggregate_roi('daily', ...) for every organization:
#     cold   - no day stored yet: reads every task and stores the 90,000 organization-days;
#     first  - into an empty roi_metrics, the days stored;
#     write floor - not aggregate_roi: the first run's 90,000 rows copied into an empty
#              roi_metrics by one INSERT ... SELECT (its two unique indexes, CHECK constraints
#              and foreign key): what any first run pays to write them, however it computes;
#     again  - nothing changed: no row rewritten       (what a dashboard's refresh does:
#     late   - after LATE old tasks (default 1,000,     the target, <= 2x the count(*) scan)
#              spread over every organization and day) were rewritten: their days are read again.
# Not part of CI (it loads ~2 GB). Run it in a throwaway cluster with celaest installed:
#   scripts/build.sh && scripts/cluster.sh test/bench/roi_bench.sh
# (PG* variables name the server; the script creates and drops its own database.)
# Settings: ROWS=10000000 ORGS=1000 REPEAT=3 (timed runs of each query; the best is reported),
# LATE=1000, KEEP=1 keeps the database.
set -euo pipefail
cd "$(dirname "$0")/../.."
HERE=test/bench/roi
ROWS=${ROWS:-10000000}
ORGS=${ORGS:-1000}
REPEAT=${REPEAT:-3}
LATE=${LATE:-1000}
DB=celaest_roi_bench

psql_admin() { psql -X -q -v ON_ERROR_STOP=1 -d "${PGDATABASE:-postgres}" "$@"; }
psql_bench() { psql -X -q -v ON_ERROR_STOP=1 -d "$DB" "$@"; }

psql_admin -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
[ "${KEEP:-0}" = 1 ] || trap 'psql_admin -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
psql_bench -c "SET client_min_messages = warning" -c "CREATE EXTENSION celaest CASCADE"

start=$(date +%s.%N)
psql_bench -v rows="$ROWS" -v orgs="$ORGS" -f "$HERE/setup.sql" >/dev/null
loaded=$(date +%s.%N)
psql_bench -c "VACUUM (ANALYZE) celaest.processed_tasks" -c "ANALYZE"
vacuumed=$(date +%s.%N)
echo "load: $(awk "BEGIN { printf \"%.1f\", $loaded - $start }") s for $ROWS rows; vacuum+analyze $(awk "BEGIN { printf \"%.1f\", $vacuumed - $loaded }") s;" \
     "table $(psql_bench -At -c "SELECT pg_size_pretty(pg_table_size('celaest.processed_tasks'))")"
echo "server: $(psql_bench -At -c "SELECT 'max_parallel_workers_per_gather=' || current_setting('max_parallel_workers_per_gather') || ', shared_buffers=' || current_setting('shared_buffers')"), $(nproc) CPUs"

# Seconds of one statement as psql's \timing sees it (the rows themselves are discarded).
time_sql() {
  psql_bench -o /dev/null -c '\timing on' -c "$1" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -1 |
    awk '{ printf "%.3f\n", $1 / 1000 }'
}
best() { sort -n | head -1; }

count_sql="SELECT count(*) FROM celaest.processed_tasks"
# count(*) is answered from the smallest index (an index-only scan; here the all-NULL, and so
# deduplicated, api_key_id index); this reads every task's row up to created_at instead: the
# floor of any pass that needs the tasks' columns from the heap.
heap_sql="SELECT count(created_at) FROM celaest.processed_tasks"
# count(*) again, forced onto a (parallel) sequential scan of the heap: an extra reference,
# the headline count(*) stays the planner's choice.
seq_sql="SET enable_indexonlyscan = off; SET enable_indexscan = off; SET enable_bitmapscan = off; $count_sql"
# The roll-up without the upsert: the pass over processed_tasks and the finished figures.
rollup_sql="SELECT count(*) FROM celaest._roi_rollup('daily', '2025-01-01', '2025-03-31', NULL, 'total')"
plain_sql="$(cat "$HERE/plain_rollup.sql")"
roi_sql="SELECT celaest.aggregate_roi('daily', '2025-01-01', '2025-03-31')"

# The plan of aggregate_roi's one pass over processed_tasks (the _roi_scan aggregate, run by
# _roi_rollup), as auto_explain logs nested statements: it should be a Parallel Seq Scan under
# a Gather with a partial aggregate. Taken on a run of its own (auto_explain ANALYZE adds time).
PLAN_FILE=${PLAN_FILE:-/tmp/roi_bench_plan.txt}
# log_min_duration 10 ms: not the first run's 90,000 foreign-key checks (microseconds each).
psql_bench -c "LOAD 'auto_explain'" -c "SET auto_explain.log_min_duration = 10" \
           -c "SET auto_explain.log_nested_statements = on" -c "SET auto_explain.log_analyze = on" \
           -c "SET client_min_messages = log" -o /dev/null \
           -c "SELECT celaest.aggregate_roi('daily', '2025-01-01', '2025-03-31')" 2>&1 |
  sed -n '/Query Text: SELECT celaest._roi_scan/,/^LOG:  duration/p' > "$PLAN_FILE"
echo "plan of the scan: $PLAN_FILE ($(grep -c 'Workers Launched' "$PLAN_FILE") Gather node(s): $(grep -o 'Workers Launched: [0-9]*' "$PLAN_FILE" | head -1))"

time_sql "$count_sql" >/dev/null          # warm the cache
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
count_s=$(for _ in $(seq "$REPEAT"); do time_sql "$count_sql"; done | best)
seq_s=$(for _ in $(seq "$REPEAT"); do time_sql "$seq_sql"; done | best)
heap_s=$(for _ in $(seq "$REPEAT"); do time_sql "$heap_sql"; done | best)
rollup_s=$(for _ in $(seq "$REPEAT"); do time_sql "$rollup_sql"; done | best)
plain_s=$(for _ in $(seq "$REPEAT"); do time_sql "$plain_sql"; done | best)
# Cold: as after installing, nothing stored (TRUNCATE: no dead rows left behind to read later).
psql_bench -c "TRUNCATE celaest.roi_metrics" -c "TRUNCATE celaest._roi_days"
cold_s=$(time_sql "$roi_sql")
stored_days=$(psql_bench -At -c "SELECT count(*) FROM celaest._roi_days")
psql_bench -c "TRUNCATE celaest.roi_metrics"
first_s=$(time_sql "$roi_sql")
# The write floor: the same rows inserted from a copy (the copy is made untimed; each timed
# INSERT goes into an emptied roi_metrics, and the last leaves it as the first run left it).
psql_bench -c "DROP TABLE IF EXISTS public.roi_rows_copy" \
           -c "CREATE UNLOGGED TABLE public.roi_rows_copy AS SELECT * FROM celaest.roi_metrics"
write_s=$(for _ in $(seq "$REPEAT"); do
  psql_bench -c "TRUNCATE celaest.roi_metrics" >/dev/null
  time_sql "INSERT INTO celaest.roi_metrics SELECT * FROM public.roi_rows_copy"; done | best)
psql_bench -c "DROP TABLE public.roi_rows_copy"
again_s=$(for _ in $(seq "$REPEAT"); do time_sql "$roi_sql"; done | best)
rows_out=$(psql_bench -At -c "SELECT count(*) FROM celaest.roi_metrics WHERE period_type = 'daily'")
# LATE old tasks rewritten (completed -> failed, or back), one transaction; their days are noted.
late_s=$(for _ in $(seq "$REPEAT"); do
  psql_bench -c "UPDATE celaest.processed_tasks SET status = CASE status WHEN 'completed' THEN 'failed'
                   ELSE 'completed' END::celaest.task_status
                 WHERE ctid = ANY (ARRAY(SELECT ctid FROM celaest.processed_tasks TABLESAMPLE SYSTEM (1)
                                          WHERE status IN ('completed', 'failed') LIMIT $LATE))" >/dev/null
  time_sql "$roi_sql"; done | best)
late_days=$(psql_bench -At -c "SELECT count(*) FROM celaest._roi_days")

echo "load average before the timed runs: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "count(*)                        ${count_s} s   ($(psql_bench -At -c "EXPLAIN $count_sql" | grep -o '[A-Z][A-Za-z ]*Scan[^(]*' | head -1 | sed 's/ *$//'))"
echo "count(*), sequential scan       ${seq_s} s"
echo "count(created_at) (heap floor)  ${heap_s} s"
echo "_roi_rollup (from the tasks)    ${rollup_s} s"
echo "plain SQL roll-up               ${plain_s} s"
echo "aggregate_roi, cold             ${cold_s} s   (no day stored: read every task, stored $stored_days days)"
echo "aggregate_roi, first            ${first_s} s   ($rows_out daily rows inserted, from the stored days)"
echo "  the write floor                 ${write_s} s   (the same rows inserted from a copy by one INSERT ... SELECT)"
echo "aggregate_roi, again            ${again_s} s   (nothing changed)"
echo "aggregate_roi, late writes      ${late_s} s   ($LATE old tasks rewritten before each run; $late_days days stored after)"
ratio() { awk "BEGIN { printf \"%.2f\", $1 / $2 }"; }
echo "write floor / count(*)          $(ratio "$write_s" "$count_s")x (no first run can be faster than this)"
echo "aggregate_roi / count(*)        $(ratio "$first_s" "$count_s")x first, $(ratio "$again_s" "$count_s")x again, $(ratio "$late_s" "$count_s")x after late writes, $(ratio "$cold_s" "$count_s")x cold (target <= 2x, for again and late)"
echo "plain SQL / aggregate_roi       $(ratio "$plain_s" "$first_s")x first, $(ratio "$plain_s" "$cold_s")x cold"
