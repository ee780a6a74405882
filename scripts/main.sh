#!/usr/bin/env bash
# The main job: set up (idempotent), then the whole pipeline on the embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/monosemantic pipeline "${RUN_DIR:-runs/main}" "$@"
