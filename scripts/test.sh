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
pytest=(.venv/bin/python -m pytest -q -p no:cacheprovider --durations=30)
beside=(tests/tor tests/i2p)
if [ $# -gt 0 ] || [ "$(id -u)" != 0 ] || ! unshare -n true 2>/dev/null; then
  exec "${pytest[@]}" "$@"
fi
# The Tor and I2P suites spend most of their time waiting on their private
# networks (Debian 12's i2pd answers each SAM session on a 20 s poll), so they run
# beside the rest, in a network namespace of their own: their packet captures see
# their own traffic only, and no port of theirs meets one of the other suites;
# niced, so that the rest keeps the CPU when both want it.
log=$(mktemp /tmp/veil-beside.XXXXXX)
nice -n 10 unshare -n -- sh -c 'ip link set lo up && exec "$@"' sh "${pytest[@]}" "${beside[@]}" >"$log" 2>&1 &
bg=$!
stop_beside() { if kill -0 "$bg" 2>/dev/null; then kill -TERM "$bg"; fi; }
trap stop_beside EXIT
rc=0
"${pytest[@]}" "${beside[@]/#/--ignore=}" || rc=$?
bgrc=0
wait "$bg" || bgrc=$?
trap - EXIT
echo "== pytest ${beside[*]} (ran beside the rest, in a network namespace of its own)"
cat "$log"
rm -f "$log"
echo "== pytest: the rest exited $rc, ${beside[*]} exited $bgrc"
[ "$rc" -eq 0 ] && [ "$bgrc" -eq 0 ]
