#!/usr/bin/env bash
# The main job on a local default: a grid of 10 storage servers on loopback,
# a sample file put and got back, caps shown, bytes compared, grid stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VEIL=.venv/bin/veil
work=$(mktemp -d "${TMPDIR:-/tmp}/veil-demo.XXXXXX")
trap '"$VEIL" grid stop "$work/grid" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

"$VEIL" grid start "$work/grid" --servers 10
client="$work/grid/client"
head -c 5000000 /dev/urandom > "$work/sample.bin"
echo "sample file: 5000000 random bytes"
cap=$("$VEIL" -d "$client" put "$work/sample.bin")
echo "read cap:    $cap"
"$VEIL" -d "$client" put --json "$work/sample.bin" | head -c 400; echo
"$VEIL" -d "$client" get "$cap" "$work/back.bin"
if cmp -s "$work/sample.bin" "$work/back.bin"; then
    echo "downloaded bytes match the original"
else
    echo "MISMATCH: downloaded bytes differ" >&2; exit 1
fi
small=$(echo "hello from veil" | "$VEIL" -d "$client" put -)
echo "small file cap: $small  ->  $("$VEIL" -d "$client" get "$small")"
"$VEIL" grid stop "$work/grid"
