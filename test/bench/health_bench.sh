#!/usr/bin/env bash
# Benchmark of issue 12 (P5): check_api_keys() over BENCH_KEYS API keys (default 1,000) at a
# provider answering GET /v1/models after 50 ms (nginx), in a new session, against the floor
# measured in the same run: the same GETs all in flight at once through one bare libcurl multi
# handle (test/bench/batch/bare_multi.cpp). Also checks the server log for descriptor errors.
# nginx on cpu 0; bare_multi and the checking backend both on cpu 1 (taskset).
#
#   scripts/build.sh && test/bench/health_bench.sh       (~1 min, as root)
#
# Settings (environment): BENCH_KEYS=1000, BENCH_ROUNDS=5, BENCH_DELAY=0.05 (seconds).
# BENCH_CLUSTER=current runs in the cluster PG* already points at instead of a throwaway one.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
export BENCH_KEYS=${BENCH_KEYS:-1000}
export BENCH_ROUNDS=${BENCH_ROUNDS:-5}
export BENCH_DELAY=${BENCH_DELAY:-0.05}
export BENCH_NGINX_CPU=${BENCH_NGINX_CPU:-0}
export BENCH_CHECK_CPU=${BENCH_CHECK_CPU:-1}

fail() { echo "health_bench: $*" >&2; exit 1; }
[ -f /usr/lib/nginx/modules/ngx_http_echo_module.so ] && command -v nginx >/dev/null ||
  fail "needs nginx-light and libnginx-mod-http-echo (see test/bench/ai_chat_bench.sh)"
for tool in taskset g++ curl psql; do command -v "$tool" >/dev/null || fail "$tool is not installed"; done

# bare_multi holds a socket per request in flight.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

. test/bench/lib/nginx.sh
bench_scratch health-bench
g++ -std=c++17 -O2 -o "$WORK/bare_multi" test/bench/batch/bare_multi.cpp -lcurl
PORT=$(bench_free_port) || fail "no free loopback port"
export BENCH_PORT=$PORT
bench_start_nginx test/bench/health/nginx.conf.in "$BENCH_NGINX_CPU" "$PORT" "http://127.0.0.1:$PORT/v1/models" \
  "s#@DELAY@#$BENCH_DELAY#g"

echo "checkout $(git rev-parse --short HEAD 2>/dev/null || echo '?'); $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "provider: nginx on 127.0.0.1:$PORT (cpu $BENCH_NGINX_CPU) answering GET /v1/models after ${BENCH_DELAY} s; $BENCH_KEYS keys, $BENCH_ROUNDS rounds"
if [ "${BENCH_CLUSTER:-}" = current ]; then
  /usr/bin/python3 "$ROOT/test/bench/health/in_cluster.py"
else
  scripts/cluster.sh /usr/bin/python3 "$ROOT/test/bench/health/in_cluster.py"
fi
