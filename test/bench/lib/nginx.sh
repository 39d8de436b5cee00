# Sourced by the benchmark scripts that put nginx (echo module) in front of CELAEST as a
# provider: a scratch directory, a free loopback port, nginx started from a template and
# stopped on exit. The caller defines fail() first.
#   bench_scratch NAME           -> WORK (a fresh directory, removed on exit), BENCH_WORK exported
#   bench_free_port              -> prints a loopback port nothing listens on
#   bench_start_nginx TEMPLATE CPU PORT PROBE_URL [sed expressions...]
#                                -> nginx from TEMPLATE (@PREFIX@, @PORT@ filled, and the extra
#                                   sed expressions), pinned to CPU, up once PROBE_URL answers
#                                   (curl -sf, extra curl options in PROBE_CURL_OPTS)

NGINX_PID=
bench_cleanup() {
  if [ -n "$NGINX_PID" ] && kill -0 "$NGINX_PID" 2>/dev/null; then
    kill -TERM "$NGINX_PID" 2>/dev/null || true
    wait "$NGINX_PID" 2>/dev/null || true
  fi
  [ -z "${WORK:-}" ] || rm -rf "$WORK"
}

bench_scratch() {
  WORK=$(mktemp -d "/tmp/celaest-$1.XXXXXX")
  chmod 755 "$WORK"
  export BENCH_WORK=$WORK
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

bench_free_port() {
  local candidate
  for _ in $(seq 1 50); do
    candidate=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then echo "$candidate"; return 0; fi
  done
  return 1
}

bench_start_nginx() {
  local template=$1 cpu=$2 port=$3 probe=$4
  shift 4
  local expressions=(-e "s#@PREFIX@#$WORK#g" -e "s#@PORT@#$port#g")
  for expression in "$@"; do expressions+=(-e "$expression"); done
  sed "${expressions[@]}" "$template" >"$WORK/nginx.conf"
  taskset -c "$cpu" nginx -p "$WORK" -c "$WORK/nginx.conf" -e "$WORK/error.log" &
  NGINX_PID=$!
  for _ in $(seq 1 100); do
    # shellcheck disable=SC2086
    curl -sf -o /dev/null ${PROBE_CURL_OPTS:-} "$probe" && return 0
    kill -0 "$NGINX_PID" 2>/dev/null || { cat "$WORK/error.log" >&2 || true; fail "nginx did not start"; }
    sleep 0.05
  done
  fail "nginx did not answer $probe"
}
