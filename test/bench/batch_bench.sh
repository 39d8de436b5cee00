#!/usr/bin/env bash
# Benchmark of issue 12 (P2 and sustained): a batch of BENCH_TASKS tasks (default 1,000) against
# a provider that answers every request after 100 ms (nginx, echo_sleep), default settings, a
# plan without caps: seconds from submit_batch to the last task's completed_at, with every task
# completed and accounted. Side by side, in the same run: the floor, the same number of POSTs
# all in flight at once through one bare libcurl multi handle (test/bench/batch/bare_multi.cpp).
#
#   scripts/build.sh && test/bench/batch_bench.sh
#
# Settings (environment): BENCH_TASKS=1000, BENCH_ROUNDS=3, BENCH_DELAY=0.1 (provider latency,
# seconds), BENCH_SUSTAINED_TASKS=0 (set e.g. 20000 for the sustained figure, tasks/s),
# BENCH_CHECK_SENT=1 (0: report the provider requests per batch instead of failing when they
# are not one per task, to measure older builds).
# Extra server settings: CELAEST_PG_OPTIONS="-o name=value ..." (see scripts/cluster.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
export BENCH_TASKS=${BENCH_TASKS:-1000}
export BENCH_ROUNDS=${BENCH_ROUNDS:-3}
export BENCH_DELAY=${BENCH_DELAY:-0.1}
export BENCH_SUSTAINED_TASKS=${BENCH_SUSTAINED_TASKS:-0}

fail() { echo "batch_bench: $*" >&2; exit 1; }
[ -f /usr/lib/nginx/modules/ngx_http_echo_module.so ] && command -v nginx >/dev/null ||
  fail "needs nginx-light and libnginx-mod-http-echo (see test/bench/ai_chat_bench.sh)"

# The bare client and the runner hold a socket per transfer in flight.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

. test/bench/lib/nginx.sh
bench_scratch batch-bench
g++ -std=c++17 -O2 -o "$WORK/bare_multi" test/bench/batch/bare_multi.cpp -lcurl
# What the runner sends for one task (the shape of the body; its size is what matters).
printf '%s' '{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You answer benchmarks."},{"role":"user","content":"Echo w1"}],"temperature":0.2,"max_tokens":64}' >"$WORK/body.json"

PORT=$(bench_free_port) || fail "no free loopback port"
export BENCH_PORT=$PORT
# Not pinned by default (the runner is a background worker): BENCH_NGINX_CPU=0 pins nginx.
PROBE_CURL_OPTS="-X POST -d {}" bench_start_nginx test/bench/batch/nginx.conf.in \
  "${BENCH_NGINX_CPU:-0-$(($(nproc) - 1))}" "$PORT" "http://127.0.0.1:$PORT/v1/chat/completions" \
  "s#@DELAY@#$BENCH_DELAY#g"

# BENCH_CLUSTER=current: the cluster PGHOST/PGPORT point at, with the celaest of the pg_config
# first in PATH (e.g. a relocated install made with make install DESTDIR=...); default: a
# throwaway scripts/cluster.sh one.
if [ "${BENCH_CLUSTER:-}" = current ]; then
  so="$(pg_config --pkglibdir)/celaest.so"
else
  so="$(/usr/lib/postgresql/15/bin/pg_config --pkglibdir)/celaest.so"
fi
[ -f "$so" ] || fail "celaest is not installed ($so): run scripts/build.sh"
echo "build: installed celaest.so of $(date -u -r "$so" '+%Y-%m-%d %H:%M:%S UTC'), checkout $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "provider: nginx on 127.0.0.1:$PORT answering after ${BENCH_DELAY} s; $BENCH_TASKS tasks, $BENCH_ROUNDS rounds; $(nproc) cores"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "${BENCH_CLUSTER:-}" = current ]; then
  bash "$ROOT/test/bench/batch/in_cluster.sh"
else
  scripts/cluster.sh bash "$ROOT/test/bench/batch/in_cluster.sh"
fi
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
