# mypy: ignore-errors
"""Loaded (through PYTHONPATH) only by the Pagekite frontend of the relay tests.

Debian 12's pagekite 1.5.2.201011 cannot read the SNI name of a TLS
ClientHello under Python 3: its ``GetSni`` hands ``str`` data to
``struct.unpack`` and raises, so every TLS connection is refused (and the
refusal itself crashes). Upstream fixed it later by converting the data with
its ``b()`` helper before unpacking. This replaces that one method with an
equivalent reader of the same bytes, so the test runs Debian's frontend as
it would be with the fix; nothing else of Pagekite is changed.
"""

import struct

import pagekite.proto.selectables as selectables
from pagekite.compat import b, s


def _sni(self, data):
    raw = b(data)
    names = []
    pos = 5  # after the record header; a short read raises and Pagekite waits for more
    struct.unpack(">BBBH", raw[0:5])  # raises on a short read
    while pos < len(raw):
        mtype, high, low = struct.unpack(">BBH", raw[pos : pos + 4])
        body = raw[pos + 4 : pos + 4 + high * 0x10000 + low]
        pos += 4 + high * 0x10000 + low
        if mtype != 1:
            continue
        at = 34
        at += 1 + body[at]
        at += 2 + struct.unpack(">H", body[at : at + 2])[0]
        at += 1 + body[at]
        end = at + 2 + struct.unpack(">H", body[at : at + 2])[0]
        at += 2
        while at < end:
            etype, elen = struct.unpack(">HH", body[at : at + 4])
            if etype == 0:
                entry = body[at + 6 : at + 4 + elen]
                while entry:
                    ntype, nlen = struct.unpack(">BH", entry[0:3])
                    if ntype == 0:
                        names.append(s(entry[3 : 3 + nlen]).lower())
                    entry = entry[3 + nlen :]
            at += 4 + elen
    return names


selectables.MagicProtocolParser.GetSni = _sni
