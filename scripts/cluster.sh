#!/usr/bin/env bash
# Runs a command inside a throwaway PostgreSQL 15 cluster with celaest preloaded.
# The server runs as the postgres user (pg_virtualenv), so this works as root too.
# Inside the command: PGHOST/PGPORT/PGUSER/PGPASSWORD are set, and CELAEST_SERVER_LOG names
# the server log. Extra server settings: CELAEST_PG_OPTIONS="-o name=value ...".
set -euo pipefail
cd "$(dirname "$0")/.."
inner=$(printf '%q ' "$@")
# shellcheck disable=SC2086
# The launcher serves only `postgres` unless CELAEST_DATABASES says otherwise (empty: every
# database with the extension): each test module's database would otherwise get workers.
# CELAEST_PRELOAD=off starts the server without the library preloaded (CREATE EXTENSION loads it).
preload="shared_preload_libraries=celaest"
[ "${CELAEST_PRELOAD:-on}" = off ] && preload="shared_preload_libraries="
exec pg_virtualenv -t -v 15 \
  -o "$preload" \
  -o "celaest.encryption_key=${CELAEST_ENCRYPTION_KEY:-celaest-throwaway-cluster-key}" \
  -o "celaest.health_check_interval=${CELAEST_HEALTH_CHECK_INTERVAL:-0}" \
  -o "celaest.databases=${CELAEST_DATABASES-postgres}" \
  -o "max_connections=64" \
  -o "max_worker_processes=32" \
  ${CELAEST_PG_OPTIONS:-} \
  bash -c 'export CELAEST_SERVER_LOG="$(dirname "$PG_CLUSTER_CONF_ROOT")/log/postgresql-15-regress.log"; '"$inner"
