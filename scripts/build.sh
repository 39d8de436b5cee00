#!/usr/bin/env bash
# Builds celaest.so and the install script, installs them into PostgreSQL 15.
set -euo pipefail
cd "$(dirname "$0")/.."
export PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
make -s -j"$(nproc)" CELAEST_WERROR="${CELAEST_WERROR:-1}" PG_CONFIG="$PG_CONFIG"
make -s install PG_CONFIG="$PG_CONFIG"
echo "build: celaest $(sed -n "s/^default_version = '\(.*\)'/\1/p" celaest.control) installed into $($PG_CONFIG --pkglibdir)"
