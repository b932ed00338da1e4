#!/usr/bin/env bash
# Start what the suite needs (PostgreSQL; later Slurm), then run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/services.sh
ensure_postgres
.venv/bin/python -m pytest "$@"
