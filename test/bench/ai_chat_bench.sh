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
# Issue 10 section 7 adds two references to every round, against the same nginx:
#   - the Portkey AI gateway (npm @portkey-ai/gateway, pinned version, installed with npm into
#     BENCH_PORTKEY_DIR, run with node on BENCH_SERVER_CPU like the backend), with bare_post on
#     BENCH_CLIENT_CPU as its client posting the same body through it (x-portkey-provider:
#     openai, x-portkey-custom-host: nginx): client -> gateway (cpu 1) -> nginx, as
#     pgbench -> backend (cpu 1) -> nginx;
#   - pgsql-http (https://github.com/pramsey/pgsql-http) from SQL: the same POST with the same
#     Authorization header, as a user writes it: http(('POST', url, ARRAY[http_header(
#     'Authorization', 'Bearer ...')], 'application/json', body)::http_request), at its default
#     settings (a new connection per request: pgsql-http sets CURLOPT_FORBID_REUSE unless
#     http.curlopt_tcp_keepalive is set), and once more with http.curlopt_tcp_keepalive = 1 (the
#     connection kept, as ai_chat and the bare extension do). Its source is not part of this
#     repository and this script fetches nothing but Debian and npm packages: give it a checkout,
#     PGSQL_HTTP_SRC=<dir> (git clone https://github.com/pramsey/pgsql-http, optionally
#     `git checkout v1.7.0`); the script builds a copy of it with PGXS against this PostgreSQL
#     (libcurl4-openssl-dev from Debian if curl-config is missing) and installs it (under
#     BENCH_DESTDIR when set). Without PGSQL_HTTP_SRC: postgresql-15-http when Debian packages it
#     (bookworm does not), else the script says so and the bare HTTP extension stands in.
#
# Settings (environment): BENCH_CALLS=20000 (bare POSTs, all rounds), BENCH_SECONDS=20
# (pgbench ai_chat, all rounds), BENCH_SELECT1_SECONDS=10, BENCH_ROUNDS=10,
# BENCH_NGINX_CPU=0, BENCH_CLIENT_CPU=0 (pgbench), BENCH_SERVER_CPU=1 (backend, bare_post).
# BENCH_PORTKEY_CALLS=10000 (posts through Portkey, all rounds), BENCH_PORTKEY=0 skips it,
# BENCH_PORTKEY_DIR=/var/tmp/celaest-bench-portkey (npm's install, kept between runs).
# Extra server settings: CELAEST_PG_OPTIONS="-o name=value ..." (see scripts/cluster.sh).
# A private install (a relocated PostgreSQL copy, make install DESTDIR=...) and its running cluster (PGHOST/PGPORT
# set, the postmaster started under `taskset -c BENCH_SERVER_CPU`): BENCH_DESTDIR=<the install's
# DESTDIR, e.g. /opt/pgx-NAME> measures that cluster instead of starting a pg_virtualenv one;
# the reference extension is installed under the same DESTDIR and autovacuum is turned off
# there (ALTER SYSTEM).
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
export BENCH_PORTKEY=${BENCH_PORTKEY:-1}
export BENCH_PORTKEY_CALLS=${BENCH_PORTKEY_CALLS:-10000}
BENCH_PORTKEY_DIR=${BENCH_PORTKEY_DIR:-/var/tmp/celaest-bench-portkey}
PORTKEY_VERSION=1.15.2

fail() { echo "ai_chat_bench: $*" >&2; exit 1; }

# --- tools ----------------------------------------------------------------------------
echo_module=/usr/lib/nginx/modules/ngx_http_echo_module.so
if ! command -v nginx >/dev/null || [ ! -f "$echo_module" ]; then
  [ "$(id -u)" = 0 ] || fail "needs nginx-light and libnginx-mod-http-echo (apt-get install as root)"
  echo "installing nginx-light and libnginx-mod-http-echo"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx-light libnginx-mod-http-echo >/dev/null ||
    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx-light libnginx-mod-http-echo >/dev/null; }
fi
apt_install() {  # non-interactive; the package lists are refreshed once if the first try fails
  [ "$(id -u)" = 0 ] || fail "needs $* (apt-get install as root)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null ||
    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null; }
}
if [ "$BENCH_PORTKEY" = 1 ]; then
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "installing nodejs and npm"
    apt_install nodejs npm || fail "cannot install nodejs and npm"
  fi
  portkey_server="$BENCH_PORTKEY_DIR/node_modules/@portkey-ai/gateway/build/start-server.js"
  if [ ! -f "$portkey_server" ] ||
     [ "$(node -p "require('$BENCH_PORTKEY_DIR/node_modules/@portkey-ai/gateway/package.json').version" 2>/dev/null)" != "$PORTKEY_VERSION" ]; then
    echo "installing @portkey-ai/gateway@$PORTKEY_VERSION into $BENCH_PORTKEY_DIR (npm)"
    mkdir -p "$BENCH_PORTKEY_DIR"
    (cd "$BENCH_PORTKEY_DIR" && npm install --no-audit --no-fund --loglevel=error "@portkey-ai/gateway@$PORTKEY_VERSION" >/dev/null) ||
      fail "npm could not install @portkey-ai/gateway@$PORTKEY_VERSION"
  fi
fi
# pgsql-http: built from the checkout in PGSQL_HTTP_SRC (below, once the scratch directory exists),
# else from Debian when this release packages it for PostgreSQL 15 (see the header).
export BENCH_PGSQL_HTTP=0
export BENCH_PGSQL_HTTP_VERSION=
PGSQL_HTTP_SRC=${PGSQL_HTTP_SRC:-}
if [ -n "$PGSQL_HTTP_SRC" ]; then
  [ -f "$PGSQL_HTTP_SRC/http.c" ] && [ -f "$PGSQL_HTTP_SRC/http.control" ] ||
    fail "PGSQL_HTTP_SRC=$PGSQL_HTTP_SRC is not a checkout of pgsql-http (no http.c, http.control)"
  command -v curl-config >/dev/null || apt_install libcurl4-openssl-dev || fail "cannot install libcurl4-openssl-dev"
elif [ -f /usr/share/postgresql/15/extension/http.control ]; then
  BENCH_PGSQL_HTTP=1; BENCH_PGSQL_HTTP_VERSION="Debian postgresql-15-http"
elif apt-cache show postgresql-15-http >/dev/null 2>&1 && apt_install postgresql-15-http; then
  BENCH_PGSQL_HTTP=1; BENCH_PGSQL_HTTP_VERSION="Debian postgresql-15-http"
else
  echo "pgsql-http: PGSQL_HTTP_SRC is unset and this Debian release does not package postgresql-15-http;" \
       "the bare HTTP extension stands in (see the header: PGSQL_HTTP_SRC=<a checkout of pgsql-http>)"
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
PORTKEY_PID=
cleanup() {
  for pid in "$NGINX_PID" "$PORTKEY_PID"; do
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

g++ -std=c++17 -O2 -o "$WORK/bare_post" test/bench/bare_post.cpp -lcurl
# The reference extension (a bare synchronous HTTP POST from SQL), into this PostgreSQL.
pg_config_bin=/usr/lib/postgresql/15/bin/pg_config
export BENCH_DESTDIR=${BENCH_DESTDIR:-}
make -s -C test/bench/http_reference PG_CONFIG="$pg_config_bin" >/dev/null
make -s -C test/bench/http_reference PG_CONFIG="$pg_config_bin" ${BENCH_DESTDIR:+DESTDIR="$BENCH_DESTDIR"} install >/dev/null ||
  fail "cannot install test/bench/http_reference (run as root)"
# pgsql-http from the given checkout: a copy is built (the checkout is left as it is).
if [ -n "$PGSQL_HTTP_SRC" ]; then
  mkdir "$WORK/pgsql-http"
  (cd "$PGSQL_HTTP_SRC" && tar --exclude=.git -cf - .) | tar -xf - -C "$WORK/pgsql-http"
  BENCH_PGSQL_HTTP_VERSION="pgsql-http $(sed -n "s/^default_version *= *'\{0,1\}\([^']*\)'\{0,1\}.*/\1/p" "$PGSQL_HTTP_SRC/http.control")"
  if git -C "$PGSQL_HTTP_SRC" rev-parse --git-dir >/dev/null 2>&1; then
    BENCH_PGSQL_HTTP_VERSION+=" ($(git -C "$PGSQL_HTTP_SRC" describe --tags --always 2>/dev/null))"
  fi
  { make -C "$WORK/pgsql-http" PG_CONFIG="$pg_config_bin" &&
    make -C "$WORK/pgsql-http" PG_CONFIG="$pg_config_bin" ${BENCH_DESTDIR:+DESTDIR="$BENCH_DESTDIR"} install; } \
    >"$WORK/pgsql-http.log" 2>&1 || { tail -n 30 "$WORK/pgsql-http.log" >&2; fail "cannot build and install pgsql-http from $PGSQL_HTTP_SRC"; }
  BENCH_PGSQL_HTTP=1
  echo "pgsql-http: $BENCH_PGSQL_HTTP_VERSION built from $PGSQL_HTTP_SRC and installed${BENCH_DESTDIR:+ under $BENCH_DESTDIR}"
fi

# --- nginx ------------------------------------------------------------------------------
free_port() {
  local port
  for _ in $(seq 1 50); do
    # Below the kernel's ephemeral range (32768-60999): pgsql-http's default of one connection per
    # request leaves thousands of local ports in TIME_WAIT, which a listener cannot bind.
    port=$((20000 + RANDOM % 12000))
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

# --- the Portkey gateway, on the backend's core, in front of the same nginx --------------
export BENCH_PORTKEY_PORT=
if [ "$BENCH_PORTKEY" = 1 ]; then
  BENCH_PORTKEY_PORT=$(free_port) || fail "no free loopback port for Portkey"
  (cd "$BENCH_PORTKEY_DIR" && NODE_ENV=production exec taskset -c "$BENCH_SERVER_CPU" \
     node "$portkey_server" --port="$BENCH_PORTKEY_PORT" --headless >"$WORK/portkey.log" 2>&1) &
  PORTKEY_PID=$!
  for _ in $(seq 1 200); do
    curl -sf -o /dev/null "http://127.0.0.1:$BENCH_PORTKEY_PORT/" && break
    kill -0 "$PORTKEY_PID" 2>/dev/null || { cat "$WORK/portkey.log" >&2 || true; fail "Portkey did not start"; }
    sleep 0.05
  done
  curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' -H 'Authorization: Bearer sk-bench' \
    -H 'x-portkey-provider: openai' -H "x-portkey-custom-host: http://127.0.0.1:$PORT/v1" \
    -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}' \
    "http://127.0.0.1:$BENCH_PORTKEY_PORT/v1/chat/completions" || fail "Portkey does not relay to nginx"
  echo "portkey: @portkey-ai/gateway $PORTKEY_VERSION, node $(node --version), pid $PORTKEY_PID on 127.0.0.1:$BENCH_PORTKEY_PORT, cpu $(taskset -pc "$PORTKEY_PID" | sed 's/.*: //')"
fi

# The figures belong to the installed build: say which one it is.
so="$BENCH_DESTDIR$(/usr/lib/postgresql/15/bin/pg_config --pkglibdir 2>/dev/null || pg_config --pkglibdir)/celaest.so"
[ -f "$so" ] || fail "celaest is not installed ($so): run scripts/build.sh"
dirty=$(git status --porcelain -- src 2>/dev/null | wc -l)
export BENCH_BUILD_INFO="installed celaest.so of $(date -u -r "$so" '+%Y-%m-%d %H:%M:%S UTC') (md5 $(md5sum "$so" | cut -c1-12)), checkout $(git rev-parse --short HEAD 2>/dev/null || echo '?') with $dirty changed file(s) under src/"
echo "build: $BENCH_BUILD_INFO"

# --- the cluster, pinned from the start ---------------------------------------------------
# autovacuum off: background maintenance is not part of a call, would run on the backend's core,
# and would blur the backend CPU accounting (in_cluster.sh).
if [ -n "$BENCH_DESTDIR" ]; then
  [ -n "${PGHOST:-}" ] && [ -n "${PGPORT:-}" ] || fail "BENCH_DESTDIR needs the running cluster's PGHOST and PGPORT"
  psql -X -q -v ON_ERROR_STOP=1 -c "ALTER SYSTEM SET autovacuum = off" -c "SELECT pg_reload_conf()" >/dev/null
  bash "$ROOT/test/bench/ai_chat/in_cluster.sh" "$@"
  exit
fi
export CELAEST_PG_OPTIONS="-o autovacuum=off ${CELAEST_PG_OPTIONS:-}"
taskset -c "$BENCH_SERVER_CPU" scripts/cluster.sh bash "$ROOT/test/bench/ai_chat/in_cluster.sh" "$@"
