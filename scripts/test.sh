#!/usr/bin/env bash
# The test command: set up (idempotent), then the default test run (no `slow` tests).
set -euo pipefail
cd "$(dirname "$0")/.."
# The browser tests drive Debian's chromium (and a CJK font, so screenshots of Chinese and Japanese text are readable); bootstrap adds them when apt is usable.
EXTRA_APT_PACKAGES="chromium chromium-driver fonts-wqy-zenhei ${EXTRA_APT_PACKAGES:-}" bash scripts/bootstrap.sh
exec .venv/bin/python -m pytest -q "$@"
