#!/usr/bin/env bash
# Every benchmark under benchmarks/, in order; each prints RESULT lines.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/services.sh
ensure_postgres
# bench_submit.py drives the service with wrk (a C load generator; Debian package wrk).
if ! command -v wrk >/dev/null; then
  echo "bench: installing Debian's wrk"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
  fi || echo "bench: wrk unavailable; bench_submit.py falls back to its asyncio client"
fi
for b in benchmarks/bench_*.py; do
  echo "== $b"
  .venv/bin/python "$b"
done
