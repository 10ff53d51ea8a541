#!/usr/bin/env bash
# Runs pirn's benchmarks and prints the table of docs/performance.md.
#   scripts/bench.sh [-benchtime 2s] [-count 3] [-skip-rss]
set -euo pipefail
cd "$(dirname "$0")/.."
exec go run ./internal/tools/benchtable "$@"
