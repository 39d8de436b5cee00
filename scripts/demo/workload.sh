#!/usr/bin/env bash
# Inside scripts/cluster.sh: the demo workload, printed as it runs.
set -euo pipefail
cd "$(dirname "$0")/../.."

port_file=$(mktemp)
/usr/bin/python3 test/mock/mock_provider.py --port 0 --port-file "$port_file" &
mock_pid=$!
trap 'kill $mock_pid 2>/dev/null' EXIT
for _ in $(seq 50); do [ -s "$port_file" ] && break; sleep 0.1; done
MOCK="http://127.0.0.1:$(cat "$port_file")"

# provider → (mock base URL, mock key, real key variable)
declare -A MOCK_BASE=([openai]="$MOCK/openai/v1" [anthropic]="$MOCK/anthropic" [gemini]="$MOCK/gemini/v1beta"
                      [groq]="$MOCK/groq/openai/v1" [deepseek]="$MOCK/deepseek" [local]="$MOCK/ollama")
declare -A REAL_KEY=([openai]="${OPENAI_API_KEY:-}" [anthropic]="${ANTHROPIC_API_KEY:-}"
                     [gemini]="${GEMINI_API_KEY:-${GOOGLE_API_KEY:-}}" [groq]="${GROQ_API_KEY:-}"
                     [deepseek]="${DEEPSEEK_API_KEY:-}")

psql_q() { psql -X -q -v ON_ERROR_STOP=1 -d postgres "$@"; }

echo "== CELAEST demo: $(psql_q -tAc "CREATE EXTENSION IF NOT EXISTS celaest CASCADE; SELECT celaest.version()")"
psql_q -f scripts/demo/seed.sql

for provider in openai anthropic gemini groq deepseek local; do
  secret=${REAL_KEY[$provider]:-}
  if [ -n "$secret" ]; then
    echo "   $provider: REAL provider (key from the environment, public endpoint)"
    # The secret goes in through a psql variable (quoted by psql), never on a command line.
    psql_q -v provider="$provider" -v secret="$secret" >/dev/null <<'SQL'
SELECT celaest.add_api_key(:'provider', 'demo-env', :'secret');
SQL
  else
    echo "   $provider: mock provider at ${MOCK_BASE[$provider]}"
    if [ "$provider" != local ]; then
      psql_q -v provider="$provider" -v url="${MOCK_BASE[$provider]}" >/dev/null <<'SQL'
SELECT celaest.add_api_key(:'provider', 'demo-mock', 'sk-good-demo-' || :'provider' || '-0001',
                           jsonb_build_object('base_url', :'url', 'priority', 10));
SQL
    else
      psql_q -c "ALTER SYSTEM SET celaest.local_base_url = '${MOCK_BASE[local]}'" -c "SELECT pg_reload_conf()" >/dev/null
    fi
  fi
done
sleep 0.2
psql_q -f scripts/demo/calls.sql
