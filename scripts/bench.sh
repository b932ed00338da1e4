#!/usr/bin/env bash
# Every benchmark under benchmarks/, in order; each prints RESULT lines.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/services.sh
ensure_postgres
for b in benchmarks/bench_*.py; do
  echo "== $b"
  .venv/bin/python "$b"
done
