#!/usr/bin/env bash
# The main job: installs dependencies, builds and installs CELAEST, starts a throwaway
# PostgreSQL 15 cluster with shared_preload_libraries = 'celaest', and runs a demo workload
# against the built-in mock provider (or a real provider when its key is in the environment:
# OPENAI_API_KEY, ANTHROPIC_API_KEY, GEMINI_API_KEY, GROQ_API_KEY, DEEPSEEK_API_KEY).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
exec scripts/cluster.sh bash scripts/demo/workload.sh
