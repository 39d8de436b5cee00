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
# BENCH_IN_CLUSTER=1 runs in the cluster PG* already points at instead of a throwaway one.
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

WORK=$(mktemp -d /tmp/celaest-health-bench.XXXXXX)
chmod 755 "$WORK"
export BENCH_WORK=$WORK
NGINX_PID=
cleanup() {
  if [ -n "$NGINX_PID" ] && kill -0 "$NGINX_PID" 2>/dev/null; then
    kill -TERM "$NGINX_PID" 2>/dev/null || true
    wait "$NGINX_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

g++ -std=c++17 -O2 -o "$WORK/bare_multi" test/bench/batch/bare_multi.cpp -lcurl

PORT=
for _ in $(seq 1 50); do
  candidate=$((20000 + RANDOM % 40000))
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then PORT=$candidate; break; fi
done
[ -n "$PORT" ] || fail "no free loopback port"
export BENCH_PORT=$PORT
sed -e "s#@PREFIX@#$WORK#g" -e "s#@PORT@#$PORT#g" -e "s#@DELAY@#$BENCH_DELAY#g" \
  test/bench/health/nginx.conf.in >"$WORK/nginx.conf"
taskset -c "$BENCH_NGINX_CPU" nginx -p "$WORK" -c "$WORK/nginx.conf" -e "$WORK/error.log" &
NGINX_PID=$!
for _ in $(seq 1 100); do
  curl -sf -o /dev/null "http://127.0.0.1:$PORT/v1/models" && break
  kill -0 "$NGINX_PID" 2>/dev/null || { cat "$WORK/error.log" >&2 || true; fail "nginx did not start"; }
  sleep 0.05
done

echo "checkout $(git rev-parse --short HEAD 2>/dev/null || echo '?'); $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "provider: nginx on 127.0.0.1:$PORT (cpu $BENCH_NGINX_CPU) answering GET /v1/models after ${BENCH_DELAY} s; $BENCH_KEYS keys, $BENCH_ROUNDS rounds"
if [ "${BENCH_IN_CLUSTER:-0}" = 1 ]; then
  /usr/bin/python3 "$ROOT/test/bench/health/in_cluster.py"
else
  scripts/cluster.sh /usr/bin/python3 "$ROOT/test/bench/health/in_cluster.py"
fi
