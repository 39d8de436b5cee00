#!/usr/bin/env bash
# Benchmark of issue 4 section 8: time per call of celaest.ai_chat() against a zero-latency
# local OpenAI-compatible provider, next to a bare libcurl POST loop of the same body over a
# reused connection, in the same run, next to pgbench's `SELECT 1` (the SQL round trip) and
# next to a bare synchronous HTTP extension doing the same POST from SQL (test/bench/
# http_reference: no license, routing, key or accounting), the issue's own yardstick.
#
#   test/bench/ai_chat_bench.sh          (build and install the extension first: scripts/build.sh)
#   test/bench/ai_chat_bench.sh CMD...   (set everything up, then run CMD inside the cluster
#                                         instead of the benchmark, e.g. test/bench/ai_chat/profile.sh)
#
# What runs where (2 cores):
#   cpu 0: nginx (master + 1 worker, answering POST /v1/chat/completions with a fixed
#          chat.completion body, keep-alive) and pgbench (the SQL client);
#   cpu 1: the HTTP client under test: bare_post, or the PostgreSQL backend running ai_chat
#          (scripts/cluster.sh itself runs under `taskset -c 1`, so the postmaster and every
#          backend it forks are pinned there; the script checks both).
# So in both measurements the HTTP exchange crosses the same two cores, and the client
# side of the exchange runs on the same core.
#
# Steps: build bare_post; start nginx in the foreground on a free loopback port with its
# own prefix in a scratch directory; start a throwaway cluster (test/bench/ai_chat/in_cluster.sh):
# org, user, active license with unlimited AI quota, one OpenAI model with prices; one
# ai_chat call through nginx's capturing location records the exact request body; then the
# benchmark key (add_api_key, base_url http://127.0.0.1:PORT/v1); then BENCH_ROUNDS rounds of
# [bare_post, pgbench ai_chat, pgbench SELECT 1], interleaved so that all three see the same
# machine; every ai_chat call must be recorded as a completed task. Summary: wall time per
# call (best round, median round, all rounds pooled) and the CPU time per call of the HTTP
# client side (backend vs bare_post, pooled; robust to other load on the machine). The
# cluster runs with autovacuum off, and fsync off (pg_virtualenv), so no commit waits for
# the disk. nginx and the scratch directory are removed on exit. Profiling: ai_chat/profile.sh.
#
# Settings (environment): BENCH_CALLS=20000 (bare POSTs, all rounds), BENCH_SECONDS=20
# (pgbench ai_chat, all rounds), BENCH_SELECT1_SECONDS=10, BENCH_ROUNDS=10,
# BENCH_NGINX_CPU=0, BENCH_CLIENT_CPU=0 (pgbench), BENCH_SERVER_CPU=1 (backend, bare_post).
# Extra server settings: CELAEST_PG_OPTIONS="-o name=value ..." (see scripts/cluster.sh).
# Experiments: BENCH_EXTRA_SQL=file.sql is run (psql) after the setup, before the runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

export BENCH_CALLS=${BENCH_CALLS:-20000}
export BENCH_SECONDS=${BENCH_SECONDS:-20}
export BENCH_SELECT1_SECONDS=${BENCH_SELECT1_SECONDS:-10}
export BENCH_ROUNDS=${BENCH_ROUNDS:-10}
export BENCH_NGINX_CPU=${BENCH_NGINX_CPU:-0}
export BENCH_CLIENT_CPU=${BENCH_CLIENT_CPU:-0}
export BENCH_SERVER_CPU=${BENCH_SERVER_CPU:-1}

fail() { echo "ai_chat_bench: $*" >&2; exit 1; }

# --- tools ----------------------------------------------------------------------------
echo_module=/usr/lib/nginx/modules/ngx_http_echo_module.so
if ! command -v nginx >/dev/null || [ ! -f "$echo_module" ]; then
  [ "$(id -u)" = 0 ] || fail "needs nginx-light and libnginx-mod-http-echo (apt-get install as root)"
  echo "installing nginx-light and libnginx-mod-http-echo"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx-light libnginx-mod-http-echo >/dev/null ||
    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx-light libnginx-mod-http-echo >/dev/null; }
fi
for tool in nginx pgbench psql taskset g++ curl; do
  command -v "$tool" >/dev/null || fail "$tool is not installed"
done
for cpu in "$BENCH_NGINX_CPU" "$BENCH_CLIENT_CPU" "$BENCH_SERVER_CPU"; do
  taskset -c "$cpu" true 2>/dev/null || fail "cannot pin to cpu $cpu"
done

# --- scratch directory, bare_post --------------------------------------------------------
WORK=$(mktemp -d /tmp/celaest-ai-chat-bench.XXXXXX)
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

g++ -std=c++17 -O2 -o "$WORK/bare_post" test/bench/bare_post.cpp -lcurl
# The reference extension (a bare synchronous HTTP POST from SQL), into this PostgreSQL.
pg_config_bin=/usr/lib/postgresql/15/bin/pg_config
make -s -C test/bench/http_reference PG_CONFIG="$pg_config_bin" >/dev/null
make -s -C test/bench/http_reference PG_CONFIG="$pg_config_bin" install >/dev/null ||
  fail "cannot install test/bench/http_reference (run as root)"

# --- nginx ------------------------------------------------------------------------------
free_port() {
  local port
  for _ in $(seq 1 50); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return 0; fi
  done
  return 1
}
PORT=$(free_port) || fail "no free loopback port"
export BENCH_PORT=$PORT
sed -e "s#@PREFIX@#$WORK#g" -e "s#@PORT@#$PORT#g" test/bench/ai_chat/nginx.conf.in >"$WORK/nginx.conf"
taskset -c "$BENCH_NGINX_CPU" nginx -p "$WORK" -c "$WORK/nginx.conf" -e "$WORK/error.log" &
NGINX_PID=$!
for _ in $(seq 1 100); do
  curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' -d '{}' \
    "http://127.0.0.1:$PORT/v1/chat/completions" && break
  kill -0 "$NGINX_PID" 2>/dev/null || { cat "$WORK/error.log" >&2 || true; fail "nginx did not start"; }
  sleep 0.05
done
curl -sf -o /dev/null -X POST -d '{}' "http://127.0.0.1:$PORT/v1/chat/completions" || fail "nginx does not answer on $PORT"
echo "nginx: pid $NGINX_PID on 127.0.0.1:$PORT, cpu $(taskset -pc "$NGINX_PID" | sed 's/.*: //')"

# The figures belong to the installed build: say which one it is.
so="$(/usr/lib/postgresql/15/bin/pg_config --pkglibdir 2>/dev/null || pg_config --pkglibdir)/celaest.so"
[ -f "$so" ] || fail "celaest is not installed ($so): run scripts/build.sh"
dirty=$(git status --porcelain -- src 2>/dev/null | wc -l)
export BENCH_BUILD_INFO="installed celaest.so of $(date -u -r "$so" '+%Y-%m-%d %H:%M:%S UTC') (md5 $(md5sum "$so" | cut -c1-12)), checkout $(git rev-parse --short HEAD 2>/dev/null || echo '?') with $dirty changed file(s) under src/"
echo "build: $BENCH_BUILD_INFO"

# --- the cluster, pinned from the start ---------------------------------------------------
# autovacuum off: background maintenance is not part of a call, would run on the backend's core,
# and would blur the backend CPU accounting (in_cluster.sh).
export CELAEST_PG_OPTIONS="-o autovacuum=off ${CELAEST_PG_OPTIONS:-}"
taskset -c "$BENCH_SERVER_CPU" scripts/cluster.sh bash "$ROOT/test/bench/ai_chat/in_cluster.sh" "$@"
