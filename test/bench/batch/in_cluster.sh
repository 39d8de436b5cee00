#!/usr/bin/env bash
# The part of test/bench/batch_bench.sh that runs inside the throwaway cluster. Not meant to be
# run by hand. Expects BENCH_PORT, BENCH_WORK (holding bare_multi and body.json), BENCH_TASKS,
# BENCH_ROUNDS, BENCH_SUSTAINED_TASKS.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${BENCH_PORT:?}" "${BENCH_WORK:?}"
psql=(psql -X -q -v ON_ERROR_STOP=1)
fail() { echo "batch_bench: $*" >&2; exit 1; }

"${psql[@]}" -v port="$BENCH_PORT" -f "$here/setup.sql"
# Experiments: BENCH_BEFORE_SQL / BENCH_AFTER_SQL run before the rounds / at the end.
[ -z "${BENCH_BEFORE_SQL:-}" ] || "${psql[@]}" -c "$BENCH_BEFORE_SQL"
for _ in $(seq 1 100); do
  [ "$("${psql[@]}" -At -c "SELECT count(*) FROM celaest.worker_status() WHERE worker = 'celaest batch runner' AND pid IS NOT NULL" 2>/dev/null || echo 0)" -ge 1 ] && break
  sleep 0.1
done
echo "settings: worker_concurrency=$("${psql[@]}" -At -c 'SHOW celaest.worker_concurrency')," \
     "synchronous_commit=$("${psql[@]}" -At -c 'SHOW synchronous_commit'), fsync=$("${psql[@]}" -At -c 'SHOW fsync')"

# One batch of $1 tasks: seconds from submit_batch to the last task's completed_at, checked
# complete (every task completed, one provider call and one AI request each). Waited for by
# polling the batch's status in short transactions, not by wait_batch(): a statement that runs for
# the whole batch holds its snapshot, and with it the xmin horizon, so every hot row the
# batch updates (the license, the key, the prompt, the batch) grows a version chain that no
# one may prune until it ends — the figure would measure that, not the runner.
# Requests nginx has served (stub_status), this one included.
provider_requests() {
  curl -s "http://127.0.0.1:${BENCH_PORT}/nginx_status" | awk 'NR == 3 { print $3 }'
}

run_batch() {
  local n=$1 batch submitted requests_before
  requests_before=$(provider_requests)
  IFS='|' read -r submitted batch < <("${psql[@]}" -At -F '|' -c "SELECT clock_timestamp(), celaest.submit_batch('bench-echo',
         (SELECT jsonb_agg(jsonb_build_object('word', 'w' || i)) FROM generate_series(1, $n) i),
         '00000000-0000-4000-8000-0000000000b2')")
  # The batch row's status, not batch_status(): the runner writes the row's end in the
  # transaction that records its last task, and batch_status() counts every task of the batch
  # (27 ms a call for 20,000 tasks, polled every 20 ms: a third of a core taken from the runner).
  # The figure comes from the tasks' completed_at, not from when the poll notices.
  until [ "$("${psql[@]}" -At -c "SELECT status FROM celaest.task_batches WHERE id = '$batch'")" = completed ]; do
    sleep 0.02
  done
  # Every task's request reached the provider once: no more, no fewer (the status read
  # after the batch counts itself).
  local sent=$(($(provider_requests) - requests_before - 1))
  "${psql[@]}" -At -c "SELECT format('%s %s %s %s', round(extract(epoch FROM max(completed_at) - '$submitted'::timestamptz)::numeric, 3),
              count(*) FILTER (WHERE status = 'completed'), count(*), $sent)
  FROM celaest.processed_tasks WHERE batch_id = '$batch'"
}

# CPU the batch runner and the ledger writer used (user + system, /proc/<pid>/stat), in clock
# ticks: a steadier figure than wall time on a shared machine.
worker_ticks() {
  local total=0 pid
  for pid in $("${psql[@]}" -At -c "SELECT pid FROM celaest.worker_status()
                                     WHERE database = current_database() AND pid IS NOT NULL
                                       AND worker IN ('celaest batch runner', 'celaest ledger writer')"); do
    total=$((total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}
ticks_per_second=$(getconf CLK_TCK)

url="http://127.0.0.1:${BENCH_PORT}/v1/chat/completions"
# The runner's CPU per round (the ledger writer's too, which folds later: it mostly lands in the
# round after) is the steadier figure on a shared machine: P2 cannot be faster than the
# runner's own CPU for the round.
echo "round  bare_multi(s)  celaest(s)  completed/total  ratio  provider requests  runner+writer CPU(s)"
best_bare=; best_batch=
for round in $(seq 1 "$BENCH_ROUNDS"); do
  read -r bare ok < <("$BENCH_WORK/bare_multi" "$url" "$BENCH_WORK/body.json" "$BENCH_TASKS") ||
    fail "bare_multi: not every request got a 200"
  round_cpu_before=$(worker_ticks)
  read -r seconds completed total sent < <(run_batch "$BENCH_TASKS")
  round_cpu=$(awk -v t=$(($(worker_ticks) - round_cpu_before)) -v hz="$ticks_per_second" 'BEGIN { printf "%.2f", t / hz }')
  [ "$completed" = "$BENCH_TASKS" ] || fail "round $round: $completed of $total tasks completed"
  # BENCH_CHECK_SENT=0: report the requests instead of failing (to measure older builds).
  [ "$sent" = "$BENCH_TASKS" ] || [ "${BENCH_CHECK_SENT:-1}" = 0 ] ||
    fail "round $round: the provider received $sent requests for $BENCH_TASKS tasks"
  printf "%5s  %13s  %10s  %15s  %5s  %17s  %20s\n" "$round" "$bare" "$seconds" "$completed/$total" \
    "$(awk -v a="$seconds" -v b="$bare" 'BEGIN { printf "%.2f", a / b }')" "$sent" "$round_cpu"
  best_bare=$(awk -v a="$bare" -v b="${best_bare:-1e9}" 'BEGIN { print (a < b ? a : b) }')
  best_batch=$(awk -v a="$seconds" -v b="${best_batch:-1e9}" 'BEGIN { print (a < b ? a : b) }')
done
echo "P2 best: bare_multi ${best_bare} s, celaest ${best_batch} s for $BENCH_TASKS tasks" \
     "($(awk -v a="$best_batch" -v b="$best_bare" 'BEGIN { printf "%.2f", a / b }') x the floor)"

# Accounting: one AI request per task on the license, one use per task on the key.
"${psql[@]}" -At -c "SELECT 'accounting: license ai_requests_used=' || ai_requests_used FROM celaest.licenses
                      WHERE organization_id = '00000000-0000-4000-8000-0000000000a2'"
# The key's uses reach its row when the ledger writer folds them (within a second).
for _ in $(seq 1 50); do
  [ "$("${psql[@]}" -At -c "SELECT celaest._ledger_state() ->> 'key_requests_unfolded'")" = 0 ] && break
  sleep 0.1
done
"${psql[@]}" -At -c "SELECT 'accounting: key usage_count=' || usage_count FROM celaest.ai_api_pool WHERE key_name = 'bench'"


if [ "${BENCH_SUSTAINED_TASKS:-0}" -gt 0 ]; then
  cpu_before=$(worker_ticks)
  read -r seconds completed total sent < <(run_batch "$BENCH_SUSTAINED_TASKS")
  cpu_after=$(worker_ticks)
  [ "$completed" = "$BENCH_SUSTAINED_TASKS" ] || fail "sustained: $completed of $total tasks completed"
  [ "$sent" = "$BENCH_SUSTAINED_TASKS" ] || [ "${BENCH_CHECK_SENT:-1}" = 0 ] ||
    fail "sustained: the provider received $sent requests for $BENCH_SUSTAINED_TASKS tasks"
  echo "sustained: $BENCH_SUSTAINED_TASKS tasks ($sent provider requests) in $seconds s =" \
       "$(awk -v n="$BENCH_SUSTAINED_TASKS" -v s="$seconds" 'BEGIN { printf "%.0f", n / s }') tasks/s;" \
       "runner + ledger writer CPU $(awk -v t=$((cpu_after - cpu_before)) -v hz="$ticks_per_second" -v n="$BENCH_SUSTAINED_TASKS" \
         'BEGIN { printf "%.2f s = %.0f us a task", t / hz, t / hz / n * 1e6 }')"
fi

[ -z "${BENCH_AFTER_SQL:-}" ] || "${psql[@]}" -P pager=off -c "$BENCH_AFTER_SQL"
# Experiments: BENCH_SHOW_LOG=PATTERN prints the server log's matching lines.
if [ -n "${BENCH_SHOW_LOG:-}" ]; then grep -E "$BENCH_SHOW_LOG" "$CELAEST_SERVER_LOG" | tail -n 200 || true; fi
