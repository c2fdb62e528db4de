#!/usr/bin/env bash
# Installs the real Tahoe-LAFS 1.20.0 (our interop oracle and benchmark rival) into
# a virtualenv of its own, kept apart from veil's and cached between runs.
# Prints the path of the tahoe executable.
set -euo pipefail
VENV=${VEIL_TAHOE_VENV:-$HOME/.cache/veil/tahoe-1.20.0}
if [ -x "$VENV/bin/tahoe" ] && "$VENV/bin/tahoe" --version 2>/dev/null | grep -q '1\.20\.0'; then
    echo "$VENV/bin/tahoe"
    exit 0
fi
PY=${PYTHON:-python3}
rm -rf "$VENV"
mkdir -p "$(dirname "$VENV")"
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
"$VENV/bin/python" -m pip install -q 'tahoe-lafs==1.20.0' 2>&1 | grep -v -E '^(WARNING: Location|  )' >&2 || true
"$VENV/bin/tahoe" --version >/dev/null
echo "$VENV/bin/tahoe"
