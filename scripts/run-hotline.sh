#!/usr/bin/env bash
# Starts the whole hotline on its embedded default: SQLite under ./data, jobs and
# events in-process, the simulated SMS provider, the demo city of Minghu, and the
# media server (Janus) beside it.
# Serves on http://127.0.0.1:8080 (override with CALLCENTER_HOST / CALLCENTER_PORT).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
ensure_media_tools   # Janus from Debian: started by the server itself (docs/media.md)
bash scripts/setup-python.sh
.venv/bin/callcenter migrate
.venv/bin/callcenter demo-data   # does nothing when the city is already there
exec .venv/bin/callcenter serve --host "${CALLCENTER_HOST:-127.0.0.1}" --port "${CALLCENTER_PORT:-8080}"
