#!/usr/bin/env bash
# The part of test/bench/ai_chat_bench.sh that runs inside the throwaway cluster
# (scripts/cluster.sh, started under `taskset -c $BENCH_SERVER_CPU` so that the postmaster
# and every backend it forks run on that core). Not meant to be run by hand.
#
# Expects from ai_chat_bench.sh: BENCH_PORT (nginx), BENCH_WORK (scratch directory holding
# bare_post and nginx's capture.log), BENCH_CALLS, BENCH_SECONDS, BENCH_SELECT1_SECONDS,
# BENCH_ROUNDS, BENCH_NGINX_CPU, BENCH_SERVER_CPU, BENCH_CLIENT_CPU.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${BENCH_PORT:?}" "${BENCH_WORK:?}"
rounds=${BENCH_ROUNDS}
url="http://127.0.0.1:${BENCH_PORT}/v1/chat/completions"
psql=(psql -X -q -v ON_ERROR_STOP=1)

fail() { echo "ai_chat_bench: $*" >&2; exit 1; }

# --- data, and one call through the capturing location -------------------------------
"${psql[@]}" -v port="$BENCH_PORT" -f "$here/setup.sql"
first=$("${psql[@]}" -At -c \
  "SELECT celaest.ai_chat('[{\"role\":\"user\",\"content\":\"hi\"}]', NULL, '00000000-0000-4000-8000-0000000000b1')")
echo "first call (capture): $first"
case "$first" in *'"status": "completed"'*) ;; *) fail "the capture call did not complete" ;; esac

# The exact body ai_chat POSTed, for the bare libcurl loop (nginx writes one line per
# request; the trailing newline is not part of the body).
[ -s "$BENCH_WORK/capture.log" ] || fail "nginx recorded no request body"
printf '%s' "$(tail -n 1 "$BENCH_WORK/capture.log")" >"$BENCH_WORK/body.json"
echo "request body ($(wc -c <"$BENCH_WORK/body.json") bytes): $(cat "$BENCH_WORK/body.json")"

# Swap the capturing key for the benchmark key: the pool then holds exactly one key.
"${psql[@]}" -v port="$BENCH_PORT" <<'SQL'
SET client_min_messages = warning;
DELETE FROM celaest.ai_api_pool WHERE key_name = 'capture';
SELECT celaest.add_api_key('openai', 'bench', 'sk-bench',
                           jsonb_build_object('base_url', format('http://127.0.0.1:%s/v1', :'port'))) IS NOT NULL AS added \gset
TRUNCATE celaest.license_usage_log, celaest.processed_tasks;
VACUUM ANALYZE;
CHECKPOINT;
SQL

# The reference: the same POST from SQL through a bare synchronous HTTP extension.
"${psql[@]}" -c "CREATE EXTENSION IF NOT EXISTS http_reference"
body_literal=$(sed "s/'/''/g" "$BENCH_WORK/body.json")
printf "SELECT length(bench_http_post('%s', '%s'));\n" "$url" "$body_literal" >"$BENCH_WORK/http_reference.sql"
"${psql[@]}" -At -f "$BENCH_WORK/http_reference.sql" >/dev/null || fail "the reference extension cannot POST to $url"

# pgsql-http (PGSQL_HTTP_SRC, or Debian's): the same POST from SQL with the same Authorization
# header, written as a user would (http_post() takes no headers, so http() with an http_request);
# the response is parsed into its composite (status, content type, headers, body) as pgsql-http
# always does. At its default settings (a new connection per request), and with
# http.curlopt_tcp_keepalive = 1 (the connection kept), set for the pgbench session by PGOPTIONS.
if [ "${BENCH_PGSQL_HTTP:-0}" = 1 ]; then
  "${psql[@]}" -c "CREATE EXTENSION IF NOT EXISTS http"
  printf "SELECT status FROM http(('POST', '%s', ARRAY[http_header('Authorization', 'Bearer sk-bench')], 'application/json', '%s')::http_request);\n" \
    "$url" "$body_literal" >"$BENCH_WORK/pgsql_http.sql"
  [ "$("${psql[@]}" -At -f "$BENCH_WORK/pgsql_http.sql")" = 200 ] || fail "pgsql-http cannot POST to $url"
  [ "$(PGOPTIONS="-c http.curlopt_tcp_keepalive=1 -c http.keepalive=1" "${psql[@]}" -At -f "$BENCH_WORK/pgsql_http.sql")" = 200 ] ||
    fail "pgsql-http (keepalive) cannot POST to $url"
  # Its defaults: no curl option set (http_list_curlopt() is empty), so no keepalive (FORBID_REUSE).
  echo "pgsql-http: ${BENCH_PGSQL_HTTP_VERSION:-installed}; options set by default: [$("${psql[@]}" -At -c "LOAD 'http'; SELECT string_agg(curlopt || '=' || value, ', ') FROM http_list_curlopt()")]," \
       "http.curlopt_tcp_keepalive = '$("${psql[@]}" -At -c "LOAD 'http'; SHOW http.curlopt_tcp_keepalive")'"
fi
# Portkey: bare_post posting the same body through the gateway (its client, on pgbench's core).
portkey_args=()
if [ -n "${BENCH_PORTKEY_PORT:-}" ]; then
  portkey_args=("http://127.0.0.1:${BENCH_PORTKEY_PORT}/v1/chat/completions" "$BENCH_WORK/body.json"
                "x-portkey-provider: openai" "x-portkey-custom-host: http://127.0.0.1:${BENCH_PORT}/v1")
fi

# --- where everything runs -------------------------------------------------------------
postmaster=$(head -n 1 "$("${psql[@]}" -At -c 'SHOW data_directory')/postmaster.pid")
# A backend's own affinity, read by a shell it forks (COPY FROM PROGRAM: $PPID is the backend).
backend_cpus=$("${psql[@]}" -At -c "CREATE TEMP TABLE affinity (line text);
  COPY affinity FROM PROGRAM 'taskset -pc \$PPID'; SELECT regexp_replace(line, '.*: ', '') FROM affinity")
echo "pinning: nginx -> cpu $BENCH_NGINX_CPU | bare_post -> cpu $BENCH_SERVER_CPU |" \
  "postmaster $postmaster -> cpu $(taskset -pc "$postmaster" | sed 's/.*: //'), a backend -> cpu $backend_cpus |" \
  "pgbench -> cpu $BENCH_CLIENT_CPU"
[ "$(taskset -pc "$postmaster" | sed 's/.*: //')" = "$BENCH_SERVER_CPU" ] || fail "postmaster is not pinned to cpu $BENCH_SERVER_CPU"
[ "$backend_cpus" = "$BENCH_SERVER_CPU" ] || fail "backends are not pinned to cpu $BENCH_SERVER_CPU"

if [ -n "${BENCH_EXTRA_SQL:-}" ]; then
  echo "applying BENCH_EXTRA_SQL=$BENCH_EXTRA_SQL (an experiment, not the product as shipped)"
  "${psql[@]}" -f "$BENCH_EXTRA_SQL"
fi

# With arguments: run them in this set-up cluster (nginx up, data in place) instead of the
# benchmark, e.g. for profiling. They get BENCH_URL, BENCH_BODY,
# BENCH_AI_CHAT_SQL, BENCH_SELECT1_SQL and BENCH_WORK/bare_post.
if [ $# -gt 0 ]; then
  export BENCH_URL=$url BENCH_BODY=$BENCH_WORK/body.json BENCH_AI_CHAT_SQL=$here/ai_chat.sql BENCH_SELECT1_SQL=$here/select1.sql
  exec "$@"
fi

# --- the runs, interleaved in rounds so that all three see the same machine -------------
# Wall time per call is the figure of the target. CPU time per call of the HTTP client side
# (the backend, or bare_post) is printed too: it is far less disturbed by other work on the
# machine. The backend's CPU is read from the postmaster's cutime+cstime (the CPU of children
# it has reaped): the pgbench backend is the only child that exits during a pgbench run
# (autovacuum is off in this cluster), so the difference is that backend's CPU, in ticks.
per_round_calls=$(( (BENCH_CALLS + rounds - 1) / rounds ))
per_round_seconds=$(( (BENCH_SECONDS + rounds - 1) / rounds ))
per_round_select1=$(( (BENCH_SELECT1_SECONDS + rounds - 1) / rounds ))
(( per_round_seconds >= 1 && per_round_select1 >= 1 )) || fail "each round needs at least 1 s of pgbench"
ticks=$(getconf CLK_TCK)
reaped_cpu() { awk '{ print $16 + $17 }' "/proc/$postmaster/stat"; }

# pgbench: prints "<transactions> <failed> <us per transaction> <backend CPU ticks>".
# PGBENCH_OPTIONS: the session's PGOPTIONS (settings for that run only).
run_pgbench() {
  local script=$1 seconds=$2 out before after
  before=$(reaped_cpu)
  out=$(PGOPTIONS="${PGBENCH_OPTIONS:-${PGOPTIONS:-}}" taskset -c "$BENCH_CLIENT_CPU" pgbench -n -c 1 -j 1 -T "$seconds" -f "$script" 2>&1) ||
    { echo "$out" >&2; fail "pgbench $script failed"; }
  sleep 0.1  # let the postmaster reap the backend
  after=$(reaped_cpu)
  awk -v cpu=$((after - before)) '
    /^number of transactions actually processed:/ { n = $6 }
    /^number of failed transactions:/ { failed = $5 }
    /^tps = / { tps = $3 }
    END { if (n == "" || tps == "") exit 1; printf "%s %s %.1f %d\n", n, (failed == "" ? 0 : failed), 1e6 / tps, cpu }
  ' <<<"$out" || { echo "$out" >&2; fail "cannot read pgbench's report"; }
}

# bare_post: prints "<total ms> <us per call> <CPU seconds (user+sys, from bash's time)>".
run_bare() {
  local line cpu TIMEFORMAT='%3U %3S'
  { cpu=$( { time taskset -c "$BENCH_SERVER_CPU" "$BENCH_WORK/bare_post" "$url" "$BENCH_WORK/body.json" "$1" \
               >"$BENCH_WORK/bare.out" 2>/dev/null; } 2>&1 ); } || fail "bare_post failed"
  line=$(cat "$BENCH_WORK/bare.out")  # bare_post: N calls, total X ms, Y us/call
  awk -v cpu="$cpu" '{ split(cpu, c, " "); print $5, $7, c[1] + c[2] }' <<<"$line"
}

# Posts through Portkey: prints "<us per call>" (bare_post on the client core).
run_portkey() {
  local line
  line=$(taskset -c "$BENCH_CLIENT_CPU" "$BENCH_WORK/bare_post" "${portkey_args[0]}" "${portkey_args[1]}" "$1" \
           "${portkey_args[@]:2}" 2>/dev/null) || fail "posting through Portkey failed"
  awk '{ print $7 }' <<<"$line"
}

# node compiles the gateway's hot paths as they run: its first thousands of calls are slower
# (3 ms, then 1.3 ms here). Warm it up first, as a long-running gateway would be.
if [ ${#portkey_args[@]} -gt 0 ]; then
  echo "Portkey warm-up (${BENCH_PORTKEY_WARMUP:-3000} calls): $(run_portkey "${BENCH_PORTKEY_WARMUP:-3000}") us/call"
fi
echo "load average before the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
declare -a bare_us chat_us sel_us
bare_calls=0; bare_ms=0; bare_cpu=0; chat_n=0; chat_us_sum=0; chat_ticks=0; sel_n=0; sel_us_sum=0; sel_ticks=0
declare -a ref_us; ref_n=0; ref_us_sum=0
pk_us=(); pgh_us=(); pk_calls=0; pk_us_sum=0; pgh_n=0; pgh_us_sum=0; pgh_ticks=0; ref_ticks=0
pghk_us=(); pghk_n=0; pghk_us_sum=0; pghk_ticks=0
per_round_portkey=$(( (BENCH_PORTKEY_CALLS + rounds - 1) / rounds ))
for ((r = 1; r <= rounds; r++)); do
  read -r b_ms b_us b_cpu < <(run_bare "$per_round_calls")
  read -r c_n c_failed c_us c_ticks < <(run_pgbench "$here/ai_chat.sql" "$per_round_seconds")
  [ "$c_failed" = 0 ] || fail "$c_failed ai_chat transactions failed"
  read -r s_n s_failed s_us s_ticks < <(run_pgbench "$here/select1.sql" "$per_round_select1")
  read -r h_n h_failed h_us h_ticks < <(run_pgbench "$BENCH_WORK/http_reference.sql" "$per_round_select1")
  [ "$h_failed" = 0 ] || fail "$h_failed reference POSTs failed"
  ref_us+=("$h_us"); ref_n=$((ref_n + h_n)); ref_ticks=$((ref_ticks + h_ticks))
  ref_us_sum=$(awk -v a="$ref_us_sum" -v n="$h_n" -v u="$h_us" 'BEGIN { print a + n * u }')
  extra=
  if [ ${#portkey_args[@]} -gt 0 ]; then
    p_us=$(run_portkey "$per_round_portkey")
    pk_us+=("$p_us"); pk_calls=$((pk_calls + per_round_portkey))
    pk_us_sum=$(awk -v a="$pk_us_sum" -v n="$per_round_portkey" -v u="$p_us" 'BEGIN { print a + n * u }')
    extra+=$(printf ' | Portkey %7.1f us/call (%d)' "$p_us" "$per_round_portkey")
  fi
  if [ "${BENCH_PGSQL_HTTP:-0}" = 1 ]; then
    read -r g_n g_failed g_us g_ticks < <(run_pgbench "$BENCH_WORK/pgsql_http.sql" "$per_round_select1")
    [ "$g_failed" = 0 ] || fail "$g_failed pgsql-http POSTs failed"
    pgh_us+=("$g_us"); pgh_n=$((pgh_n + g_n)); pgh_ticks=$((pgh_ticks + g_ticks))
    pgh_us_sum=$(awk -v a="$pgh_us_sum" -v n="$g_n" -v u="$g_us" 'BEGIN { print a + n * u }')
    read -r k_n k_failed k_us k_ticks < <(PGBENCH_OPTIONS="-c http.curlopt_tcp_keepalive=1 -c http.keepalive=1" run_pgbench "$BENCH_WORK/pgsql_http.sql" "$per_round_select1")
    [ "$k_failed" = 0 ] || fail "$k_failed pgsql-http (keepalive) POSTs failed"
    pghk_us+=("$k_us"); pghk_n=$((pghk_n + k_n)); pghk_ticks=$((pghk_ticks + k_ticks))
    pghk_us_sum=$(awk -v a="$pghk_us_sum" -v n="$k_n" -v u="$k_us" 'BEGIN { print a + n * u }')
    extra+=$(printf ' | pgsql-http %6.1f us/call (%d), keepalive %6.1f (%d)' "$g_us" "$g_n" "$k_us" "$k_n")
  fi
  printf 'round %2d/%d: bare_post %6.1f us/call (%d calls) | ai_chat %7.1f us/call (%d calls) | SELECT 1 %5.1f us/call (%d) | reference extension %6.1f us/call (%d)%s\n' \
    "$r" "$rounds" "$b_us" "$per_round_calls" "$c_us" "$c_n" "$s_us" "$s_n" "$h_us" "$h_n" "$extra"
  bare_us+=("$b_us"); chat_us+=("$c_us"); sel_us+=("$s_us")
  bare_calls=$((bare_calls + per_round_calls))
  bare_ms=$(awk -v a="$bare_ms" -v b="$b_ms" 'BEGIN { print a + b }')
  bare_cpu=$(awk -v a="$bare_cpu" -v b="$b_cpu" 'BEGIN { print a + b }')
  chat_n=$((chat_n + c_n)); chat_ticks=$((chat_ticks + c_ticks))
  chat_us_sum=$(awk -v a="$chat_us_sum" -v n="$c_n" -v u="$c_us" 'BEGIN { print a + n * u }')
  sel_n=$((sel_n + s_n)); sel_ticks=$((sel_ticks + s_ticks))
  sel_us_sum=$(awk -v a="$sel_us_sum" -v n="$s_n" -v u="$s_us" 'BEGIN { print a + n * u }')
done

# --- every ai_chat call must have reached nginx and been recorded as completed ----------
read -r completed failed_tasks used < <("${psql[@]}" -At -F ' ' -c "
  SELECT count(*) FILTER (WHERE status = 'completed'), count(*) FILTER (WHERE status <> 'completed'),
         (SELECT ai_requests_used FROM celaest.licenses
           WHERE organization_id = '00000000-0000-4000-8000-0000000000a1' AND status = 'active')
    FROM celaest.processed_tasks")
echo "recorded: $completed completed task(s), $failed_tasks other; license ai_requests_used = $used"
[ "$failed_tasks" = 0 ] || fail "$failed_tasks ai_chat call(s) were not completed"
[ "$completed" = "$chat_n" ] || fail "pgbench ran $chat_n ai_chat calls but $completed tasks were recorded"

min() { printf '%s\n' "$@" | sort -g | head -n 1; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
best_bare=$(min "${bare_us[@]}"); best_chat=$(min "${chat_us[@]}"); best_sel=$(min "${sel_us[@]}")
med_bare=$(median "${bare_us[@]}"); med_chat=$(median "${chat_us[@]}"); med_sel=$(median "${sel_us[@]}")
all_bare=$(awk -v ms="$bare_ms" -v n="$bare_calls" 'BEGIN { printf "%.1f", ms * 1000 / n }')
all_chat=$(awk -v t="$chat_us_sum" -v n="$chat_n" 'BEGIN { printf "%.1f", t / n }')
all_sel=$(awk -v t="$sel_us_sum" -v n="$sel_n" 'BEGIN { printf "%.1f", t / n }')
cpu_bare=$(awk -v s="$bare_cpu" -v n="$bare_calls" 'BEGIN { printf "%.1f", s * 1e6 / n }')
cpu_chat=$(awk -v t="$chat_ticks" -v k="$ticks" -v n="$chat_n" 'BEGIN { printf "%.1f", t * 1e6 / k / n }')
cpu_sel=$(awk -v t="$sel_ticks" -v k="$ticks" -v n="$sel_n" 'BEGIN { printf "%.1f", t * 1e6 / k / n }')

echo
echo "================================ ai_chat benchmark ================================"
echo "build: ${BENCH_BUILD_INFO:-unknown}"
echo "server: $("${psql[@]}" -At -c "SELECT format('fsync=%s synchronous_commit=%s autovacuum=%s', current_setting('fsync'), current_setting('synchronous_commit'), current_setting('autovacuum'))") (pg_virtualenv runs with fsync=off: no commit waits for the disk)"
echo "pinning: nginx + pgbench on cpu $BENCH_NGINX_CPU/$BENCH_CLIENT_CPU, backend + bare_post on cpu $BENCH_SERVER_CPU; $rounds rounds of [${per_round_calls} bare POSTs, ${per_round_seconds} s ai_chat, ${per_round_select1} s SELECT 1]"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (other work on these 2 cores inflates the wall figures)"
echo "wall, best round (noise only ever adds time):"
echo "ai_chat: $best_chat us/call | bare libcurl POST: $best_bare us/call | ratio $(ratio "$best_chat" "$best_bare")"
echo "SELECT 1 (SQL round trip floor): $best_sel us/call | ai_chat minus SELECT 1: $(awk -v a="$best_chat" -v b="$best_sel" 'BEGIN { printf "%.1f", a - b }') us/call"
echo "wall, median round: ai_chat $med_chat | bare POST $med_bare | ratio $(ratio "$med_chat" "$med_bare") | SELECT 1 $med_sel us/call"
echo "wall, all rounds pooled: ai_chat $all_chat us/call ($chat_n calls) | bare POST $all_bare us/call ($bare_calls calls) | ratio $(ratio "$all_chat" "$all_bare") | SELECT 1 $all_sel us/call"
echo "CPU of the HTTP client side, pooled: ai_chat backend $cpu_chat us/call | bare_post $cpu_bare us/call | ratio $(ratio "$cpu_chat" "$cpu_bare") | SELECT 1 backend $cpu_sel us/call"
best_ref=$(min "${ref_us[@]}"); med_ref=$(median "${ref_us[@]}")
all_ref=$(awk -v t="$ref_us_sum" -v n="$ref_n" 'BEGIN { printf "%.1f", t / n }')
cpu_ref=$(awk -v t="$ref_ticks" -v k="$ticks" -v n="$ref_n" 'BEGIN { printf "%.1f", t * 1e6 / k / n }')
echo "bare synchronous HTTP extension (http_reference, same POST from SQL): best $best_ref | median $med_ref | pooled $all_ref us/call; backend CPU $cpu_ref us/call pooled; ratio to the bare POST (best) $(ratio "$best_ref" "$best_bare"); ai_chat / reference (best) $(ratio "$best_chat" "$best_ref"), CPU $(ratio "$cpu_chat" "$cpu_ref")"
if [ ${#pk_us[@]} -gt 0 ]; then
  best_pk=$(min "${pk_us[@]}"); med_pk=$(median "${pk_us[@]}")
  all_pk=$(awk -v t="$pk_us_sum" -v n="$pk_calls" 'BEGIN { printf "%.1f", t / n }')
  echo "Portkey gateway (client -> node gateway on cpu $BENCH_SERVER_CPU -> nginx): best $best_pk | median $med_pk | pooled $all_pk us/call; ai_chat / Portkey: best $(ratio "$best_chat" "$best_pk"), median $(ratio "$med_chat" "$med_pk")"
fi
pgh_line="pgsql-http: not measured (PGSQL_HTTP_SRC unset, and not packaged for this Debian release); the bare HTTP extension stands in"
yardstick=$best_ref; yardstick_name="the bare HTTP extension (stand-in for pgsql-http)"
if [ ${#pgh_us[@]} -gt 0 ]; then
  best_pgh=$(min "${pgh_us[@]}"); med_pgh=$(median "${pgh_us[@]}")
  all_pgh=$(awk -v t="$pgh_us_sum" -v n="$pgh_n" 'BEGIN { printf "%.1f", t / n }')
  cpu_pgh=$(awk -v t="$pgh_ticks" -v k="$ticks" -v n="$pgh_n" 'BEGIN { printf "%.1f", t * 1e6 / k / n }')
  best_pghk=$(min "${pghk_us[@]}"); med_pghk=$(median "${pghk_us[@]}")
  all_pghk=$(awk -v t="$pghk_us_sum" -v n="$pghk_n" 'BEGIN { printf "%.1f", t / n }')
  cpu_pghk=$(awk -v t="$pghk_ticks" -v k="$ticks" -v n="$pghk_n" 'BEGIN { printf "%.1f", t * 1e6 / k / n }')
  pgh_line="pgsql-http (${BENCH_PGSQL_HTTP_VERSION:-?}) http() POST with the Authorization header, default settings (new connection per request): best $best_pgh | median $med_pgh | pooled $all_pgh us/call; backend CPU $cpu_pgh us/call pooled; ai_chat / pgsql-http: best $(ratio "$best_chat" "$best_pgh"), median $(ratio "$med_chat" "$med_pgh"), CPU $(ratio "$cpu_chat" "$cpu_pgh")
pgsql-http with http.curlopt_tcp_keepalive = 1 (connection kept): best $best_pghk | median $med_pghk | pooled $all_pghk us/call; backend CPU $cpu_pghk us/call pooled; ai_chat / pgsql-http keepalive: best $(ratio "$best_chat" "$best_pghk"), CPU $(ratio "$cpu_chat" "$cpu_pghk")"
  yardstick=$best_pgh; yardstick_name="pgsql-http (default settings)"
fi
echo "$pgh_line"
echo "target (issue 4 section 8): wall ratio <= 2.00"
if [ ${#pk_us[@]} -gt 0 ]; then
  echo "targets (issue 10 section 7), best rounds: ai_chat / Portkey $(ratio "$best_chat" "$best_pk") (<= 0.50) | ai_chat / $yardstick_name $(ratio "$best_chat" "$yardstick") (<= 1.50)"
fi
echo "===================================================================================="
