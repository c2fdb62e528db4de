#!/usr/bin/env bash
# Installs everything veil needs on a fresh Debian machine, idempotently:
# system packages (ISA-L for fast erasure coding; tor, which anonymous nodes use
# through its SOCKS port and the Tor tests run as a private network), a
# virtualenv in .venv with veil and its test tools. Safe to run again; fast
# when nothing is missing. The tests never use a system tor, only their own.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
if ! ldconfig -p 2>/dev/null | grep -q 'libisal\.so\.2'; then need_apt+=(libisal2); fi
if ! command -v tor >/dev/null || ! command -v tor-gencert >/dev/null; then need_apt+=(tor); fi
if ! command -v i2pd >/dev/null; then need_apt+=(i2pd); fi
if ! command -v chromium >/dev/null; then need_apt+=(chromium); fi
if ! command -v pagekite >/dev/null; then need_apt+=(pagekite); fi
if [ "${#need_apt[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "setup: installing ${need_apt[*]} with apt-get" >&2
        (apt-get update -q >/dev/null 2>&1 || true)
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_apt[@]}" >/dev/null \
            || echo "setup: warning: could not install ${need_apt[*]} (zfec replaces ISA-L; the Tor tests will fail without tor)" >&2
    else
        echo "setup: note: ${need_apt[*]} missing and not root (zfec replaces ISA-L; the Tor tests need tor)" >&2
    fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=.venv/.veil-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
    .venv/bin/python -m pip install -q -e '.[test]' 2>&1 | grep -v -E '^(WARNING: Location|  )' || true
    .venv/bin/python -c 'import veil, aiohttp, cbor2, zfec' 
    touch "$stamp"
fi
# Byte-compile veil's own sources: an editable install has no .pyc files, and
# with PYTHONDONTWRITEBYTECODE set every command would compile them again.
.venv/bin/python -m compileall -q src >/dev/null || true
echo "setup: ready (.venv/bin/veil)" >&2
