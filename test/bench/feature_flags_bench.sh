#!/usr/bin/env bash
# is_feature_enabled: what naming the user costs (the acting-user check, API.md "Who is
# calling"), measured against the call without p_user_id in the same run, as a superuser
# (service, celaest.user_id set to the same user) and as an end user (authenticated level, JWT claims, row-level security on).
# One session per figure, a 'percentage' flag (the branch that reads the profile), rounds
# alternating the order of the pair so that a noisy neighbour hits both sides alike.
#
# Run it in a throwaway cluster with celaest preloaded, e.g.
#   scripts/cluster.sh test/bench/feature_flags_bench.sh
#   /work/wt/notes/private_cluster.sh NAME PORT WT test/bench/feature_flags_bench.sh
# (PG* variables name the server; the script creates and drops its own database.)
# Settings: CALLS=100000 calls per figure, ROUNDS=3.
set -euo pipefail
CALLS=${CALLS:-100000}
ROUNDS=${ROUNDS:-3}
DB=celaest_flag_bench
USER_ID=b1000000-0000-4000-8000-000000000001
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
trap 'psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB"' EXIT
P="psql -X -q -v ON_ERROR_STOP=1 -d $DB"
$P <<SQL
CREATE EXTENSION celaest CASCADE;
DO \$\$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
        CREATE ROLE authenticated NOLOGIN NOINHERIT;
    END IF;
END \$\$;
SELECT celaest.grant_access('authenticated', 'authenticated');
CREATE SCHEMA auth;
GRANT USAGE ON SCHEMA auth TO authenticated;
CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS
    \$\$ SELECT nullif(current_setting('request.jwt.claim.sub', true), '')::uuid \$\$;
INSERT INTO celaest.organizations (id, name, slug) VALUES ('b0000000-0000-4000-8000-000000000001', 'Bench', 'bench-flags');
INSERT INTO celaest.users_profile (id, organization_id, email, role)
    VALUES ('$USER_ID', 'b0000000-0000-4000-8000-000000000001', 'bench@flags.test', 'viewer');
INSERT INTO celaest.feature_flags (flag_key, name, is_enabled, target_type, target_percentage)
    VALUES ('bench-pct', 'Bench', true, 'percentage', 50);
SQL

# µs per call of one expression, CALLS times in one statement.
per_call() {
  local prelude=$1 expression=$2 ms
  ms=$($P -At -c "$prelude" -c '\timing on' \
         -c "SELECT count(*) FILTER (WHERE $expression) FROM generate_series(1, $CALLS)" \
       | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p')
  awk -v ms="$ms" -v n="$CALLS" 'BEGIN { printf "%.2f", ms * 1000 / n }'
}

AS_END_USER="SET ROLE authenticated; SET request.jwt.claim.sub = '$USER_ID';"
AS_SERVICE="SET celaest.user_id = '$USER_ID';"  # the same user, named by the setting
printf '%-6s %-14s %22s %22s\n' round caller "no p_user_id (us/call)" "own p_user_id (us/call)"
for round in $(seq 1 "$ROUNDS"); do
  for who in superuser end_user; do
    prelude=$AS_SERVICE; [ "$who" = end_user ] && prelude=$AS_END_USER
    if (( round % 2 )); then
      plain=$(per_call "$prelude" "celaest.is_feature_enabled('bench-pct')")
      named=$(per_call "$prelude" "celaest.is_feature_enabled('bench-pct', '$USER_ID')")
    else
      named=$(per_call "$prelude" "celaest.is_feature_enabled('bench-pct', '$USER_ID')")
      plain=$(per_call "$prelude" "celaest.is_feature_enabled('bench-pct')")
    fi
    printf '%-6s %-14s %22s %22s\n' "$round" "$who" "$plain" "$named"
  done
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
