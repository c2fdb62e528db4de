#!/usr/bin/env bash
# The whole check, from a fresh clone: install everything, then lint, type-check
# and run every test (unit, integration on loopback, live Tahoe interop).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -f scripts/install-tahoe.sh ]; then bash scripts/install-tahoe.sh >/dev/null; fi
echo "== ruff" >&2
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
echo "== mypy" >&2
.venv/bin/mypy
echo "== pytest" >&2
.venv/bin/python -m pytest -q -p no:cacheprovider --durations=30 "$@"
