#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan) in build/fuzz and runs each on its seed
# corpus test/fuzz/corpus/<target> for a few seconds. Exit status 1 on any finding: the
# input is kept as build/fuzz/findings/<target>-crash-… (replay: build/fuzz/test/fuzz/<target> FILE).
#
#   test/fuzz/run.sh                          # CI: every target, the same 5,000 inputs each time
#   FUZZ_SECONDS=600 test/fuzz/run.sh decode_gemini template    # exploring: 600 s, some targets
#
# CI runs are reproducible (a fixed seed and a fixed number of inputs, every seed of the
# corpus included, nothing remembered from earlier runs): a red CI is a real finding that
# replays, never the luck of one run. Exploring (FUZZ_SECONDS) is what finds new bugs.
#
# New inputs the fuzzer finds go to build/fuzz/new-corpus/<target>, not into the checked-in
# corpus; merge the useful ones by hand with `-merge=1 test/fuzz/corpus/<target> DIR`.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_EACH=${FUZZ_SECONDS:-}
RUNS_EACH=${FUZZ_RUNS:-5000}
TARGETS=(decode_openai decode_anthropic decode_gemini decode_ollama error_body http_date retry_hint template json_output)
[ $# -gt 0 ] && TARGETS=("$@")
BUILD=build/fuzz

CXX=clang++ cmake -S . -B "$BUILD" -DCELAEST_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"${FUZZ_BUILD_JOBS:-2}" --target "${TARGETS[@]}" >/dev/null

mkdir -p "$BUILD/findings"
# halt_on_error: the first finding stops the run; detect_leaks: a leak is a finding too.
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
failed=()
for target in "${TARGETS[@]}"; do
  log="$BUILD/findings/$target.log"
  if [ -n "$SECONDS_EACH" ]; then
    new="$BUILD/new-corpus/$target"
    budget=(-max_total_time="$SECONDS_EACH")
  else
    new=$(mktemp -d)
    budget=(-seed=1 -runs="$RUNS_EACH")
  fi
  mkdir -p "$new"
  # The first directory receives new inputs; the checked-in seeds are only read.
  if "$BUILD/test/fuzz/$target" "${budget[@]}" -timeout=10 -rss_limit_mb=2048 \
       -print_final_stats=1 -artifact_prefix="$BUILD/findings/$target-" \
       "$new" "test/fuzz/corpus/$target" >"$log" 2>&1; then
    runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || echo "?")
    cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -n 1 || true)
    echo "fuzz $target: ok (${runs} runs, ${cov:-cov: ?})"
    [ -n "$SECONDS_EACH" ] || rm -rf "$new"
  else
    echo "fuzz $target: FINDING — see $log"
    tail -n 40 "$log"
    failed+=("$target")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: findings in ${failed[*]}"
  exit 1
fi
echo "fuzz: ${#TARGETS[@]} targets, no findings"
