#!/usr/bin/env bash
# Installs the real Tahoe-LAFS 1.20.0 (veil's interop oracle and benchmark rival)
# into a virtualenv of its own, kept apart from veil's and cached between runs.
#
#   VEIL_TAHOE_VENV   where the virtualenv lives (default ~/.cache/veil/tahoe-1.20.0)
#   PYTHON            interpreter used to create it (default python3, 3.11)
#
# Idempotent: when "$VENV/bin/tahoe --version" already reports 1.20.0 nothing is
# done. Prints the path of the tahoe executable on stdout (last line); progress
# and timings go to stderr.
set -euo pipefail

VERSION=1.20.0
VENV=${VEIL_TAHOE_VENV:-$HOME/.cache/veil/tahoe-$VERSION}
PY=${PYTHON:-python3}

installed() {
    [ -x "$VENV/bin/tahoe" ] && "$VENV/bin/tahoe" --version 2>/dev/null | grep -qF "tahoe-lafs/$VERSION"
}

if installed; then
    echo "$VENV/bin/tahoe"
    exit 0
fi

start=$(date +%s)
echo "install-tahoe: installing tahoe-lafs==$VERSION into $VENV" >&2
rm -rf "$VENV"
mkdir -p "$(dirname "$VENV")"
"$PY" -m venv "$VENV"
log="$VENV/pip-install.log"
# pip's output (including harmless "Location ... is ignored" warnings from local
# index mirrors) goes to a log file, shown only if the install fails.
if ! "$VENV/bin/python" -m pip install --disable-pip-version-check "tahoe-lafs==$VERSION" >"$log" 2>&1; then
    grep -v '^WARNING: Location' "$log" >&2
    echo "install-tahoe: pip install failed (full log: $log)" >&2
    exit 1
fi
if ! installed; then
    echo "install-tahoe: $VENV/bin/tahoe does not report tahoe-lafs/$VERSION" >&2
    exit 1
fi
echo "install-tahoe: done in $(($(date +%s) - start)) s" >&2
echo "$VENV/bin/tahoe"
