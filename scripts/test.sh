#!/usr/bin/env bash
# Set up, lint (ruff, import layers, dead code), and run the whole test suite against a real local stack
# (embedded PostgreSQL, SeaweedFS S3 and a Prefect server, started and stopped by the tests).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/lint-imports          # the floors: imports only go down (pyproject.toml)
.venv/bin/vulture               # no dead code (pyproject.toml, vulture_whitelist.py)
export PREFECT_SERVER_ANALYTICS_ENABLED=false DO_NOT_TRACK=1
.venv/bin/python -m pytest "$@"
