#!/usr/bin/env bash
# clang-tidy over the PostgreSQL glue (src/pg) with the checks in .clang-tidy
# (bugprone-exception-escape: no C++ exception may leave an entry point PostgreSQL calls).
# Exit status 1 on any finding. Runs the files two at a time (nproc at most).
set -euo pipefail
cd "$(dirname "$0")/.."

PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
CLANG_TIDY=${CLANG_TIDY:-clang-tidy}
JOBS=${JOBS:-$(( $(nproc) < 2 ? $(nproc) : 2 ))}
VERSION=$(sed -n "s/^default_version = '\(.*\)'/\1/p" celaest.control)
# The flags the Makefile compiles src/pg with (server headers as system headers: not ours).
export TIDY_FLAGS="-std=c++17 -Isrc -isystem $("$PG_CONFIG" --includedir-server) -DCELAEST_VERSION=\"$VERSION\""
export CLANG_TIDY

files=$(ls src/pg/*/*.cpp)
echo "tidy: $CLANG_TIDY over $(echo "$files" | wc -l) files in src/pg ($JOBS at a time)"
# Each file's findings are printed whole; xargs exits non-zero when any run did.
if ! echo "$files" | xargs -P "$JOBS" -n 1 sh -c \
  'out=$("$CLANG_TIDY" --quiet "$0" -- $TIDY_FLAGS 2>&1); status=$?; [ $status -ne 0 ] && printf "%s\n" "$out"; exit $status'
then
  echo "tidy: FAILED (findings above)"
  exit 1
fi
echo "tidy: no findings"
