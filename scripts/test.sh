#!/usr/bin/env bash
# The test command: set up (idempotent), then the default test run (no `slow` tests).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python -m pytest -q "$@"
