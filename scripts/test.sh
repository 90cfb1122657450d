#!/usr/bin/env bash
# Runs the whole test suite: lint, types, then pytest on SQLite and on a real
# PostgreSQL. Installs and starts what is missing (as root, or with sudo).
# Extra arguments go to pytest, e.g. scripts/test.sh -k workflow
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh

bash scripts/setup-python.sh test
ensure_postgres
ensure_redis
ensure_voice_tools
ensure_chromium
ensure_media_tools

export CALLCENTER_TEST_POSTGRES_URL=${CALLCENTER_TEST_POSTGRES_URL:-$PG_URL}
export CALLCENTER_TEST_REDIS_URL=${CALLCENTER_TEST_REDIS_URL:-$REDIS_URL}
echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
.venv/bin/python -m pytest -p no:cacheprovider "$@"
