"""Caps are rendered for people in one place (``veil.formats.cap_display``):
kind and a short storage-index prefix, never key material. Covers the
display itself, the scrubber behind every message and log line, ``str`` and
``repr`` of every cap object and of errors, and the in-process error paths
of the cap parsers and the command line (the grid paths are in
tests/integration/test_cli_inputs.py)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from veil.errors import CapabilityError, FormatError, NotFound, UsageError, VeilError
from veil.formats import base32, cap_display
from veil.formats import mutable_caps as mc
from veil.formats.caps import CHKReadCap, LiteralCap, UnknownCap, parse_cap, parse_read_cap
from veil.frontends.cli.main import ScrubbingFormatter, main

KEY16 = st.binary(min_size=16, max_size=16)
KEY32 = st.binary(min_size=32, max_size=32)


def key_windows(cap: str, width: int = 16) -> set[str]:
    """Every ``width``-character piece of the cap's key fields (all but the kind)."""
    body = cap.removeprefix("ro.").removeprefix("imm.").split(":")[2:]
    return {f[i : i + width] for f in body if len(f) >= width for i in range(len(f) - width + 1)}


def assert_no_key(text: str, *caps: str) -> None:
    for cap in caps:
        leaked = [w for w in key_windows(cap) if w in text]
        assert not leaked, f"{len(leaked)} key pieces of {cap[:12]}… in {text!r}"


def all_caps(k1: bytes, k2: bytes, fp: bytes) -> list[object]:
    write = mc.SSKWriteCap(k1, fp)
    mdmf = mc.SSKWriteCap(k1, fp, mdmf=True)
    chk = CHKReadCap(k1, fp, 3, 10, 12345)
    return [
        write,
        write.read_cap(),
        write.verify_cap(),
        mdmf,
        mdmf.read_cap(),
        chk,
        chk.verify_cap(),
        LiteralCap(k2),
        mc.DirCap(write),
        mc.DirCap(write.read_cap()),
        mc.DirCap(mdmf),
        mc.DirCap(chk),
        mc.DirCap(LiteralCap(k2)),
        UnknownCap("URI:NEWKIND:" + base32.b2a(k1 + k2)),
    ]


@given(KEY16, KEY16, KEY32)
def test_str_and_repr_of_every_cap_hold_no_key(k1: bytes, k2: bytes, fp: bytes) -> None:
    for cap in all_caps(k1, k2, fp):
        text = cap.to_string()  # type: ignore[attr-defined]
        assert_no_key(str(cap) + repr(cap) + f"{cap}" + str([cap]), text)
        assert_no_key(cap_display.describe(cap) + cap_display.describe_text(text), text)


def test_describe_shows_kind_and_storage_index_prefix() -> None:
    write = mc.SSKWriteCap(bytes(range(16)), bytes(range(32)))
    si = base32.b2a(write.read_cap().storage_index)
    assert cap_display.describe(mc.DirCap(write)) == f"URI:DIR2 (SI {si[:5]}…)"
    assert cap_display.describe(write.read_cap()) == f"URI:SSK-RO (SI {si[:5]}…)"
    assert cap_display.describe(write.verify_cap()) == f"URI:SSK-Verifier (SI {si[:5]}…)"
    assert cap_display.describe(mc.DirCap(write.read_cap())).startswith("URI:DIR2-RO (SI ")
    mdmf = mc.DirCap(mc.SSKWriteCap(bytes(16), bytes(32), mdmf=True))
    assert cap_display.describe(mdmf).startswith("URI:DIR2-MDMF (SI ")
    assert cap_display.describe(LiteralCap(b"hello")) == "URI:LIT (5 bytes)"
    assert cap_display.describe(mc.DirCap(LiteralCap(b""))) == "URI:DIR2-LIT (0 bytes)"
    chk = CHKReadCap(bytes(16), bytes(32), 3, 10, 99)
    assert cap_display.describe(chk) == cap_display.describe_text(chk.to_string())
    assert cap_display.describe_text("URI:CHK:junk") == "URI:CHK"
    assert cap_display.describe_text("no cap at all") == "an unrecognised cap"
    assert str(write) == cap_display.describe(write)


@given(KEY16, KEY32)
def test_scrub_describes_caps_wherever_they_are(k: bytes, fp: bytes) -> None:
    write = mc.DirCap(mc.SSKWriteCap(k, fp)).to_string()
    forms = [
        f"{write}/docs/a.txt is a file",
        f"'ro.{write}' and imm.{write}",
        write.replace(":", "%3A") + "?t=json",
        f"{write[:34]}… is truncated",
        f"uri:dir2:{write[9:]}",
        write.upper(),
        "pb://" + base32.b2a(k) + "@127.0.0.1:4/" + base32.b2a(fp),
    ]
    for text in forms:
        assert_no_key(cap_display.scrub(text), write)
    assert cap_display.scrub(forms[0]).endswith("/docs/a.txt is a file")
    assert cap_display.scrub(forms[0]).startswith("URI:DIR2 (SI ")


def test_scrub_keeps_ordinary_text() -> None:
    for text in (
        "copy the whole cap, e.g. URI:DIR2:…:… or URI:CHK:…:…:3:10:12345",
        "internationalization of /home/alice/notes-2024/todo.txt failed",
        "server v0-abcdefghi: unreachable; 3 of 10 shares, 0x1f2e3d4c5b6a79880",
        "",
    ):
        assert cap_display.scrub(text) == text
    server_id = "v0-" + base32.b2a(os.urandom(32))
    assert cap_display.scrub(f"server {server_id} has no 'ann:'") == (
        f"server {server_id[:12]}… has no 'ann:'"
    )
    assert cap_display.scrub(cap_display.scrub(server_id)) == cap_display.scrub(server_id)


def test_errors_scrub_their_own_text() -> None:
    cap = mc.DirCap(mc.SSKWriteCap(os.urandom(16), os.urandom(32))).to_string()
    for exc in (
        UsageError(f"{cap} is bad", hint=f"try {cap}/x"),
        NotFound(f"no such file: {cap}/a"),
        FormatError(cap),
    ):
        assert isinstance(exc, VeilError)
        assert_no_key(str(exc) + repr(exc) + repr(exc.args) + (exc.hint or ""), cap)
        assert "URI:DIR2 (SI " in str(exc)


def test_parse_errors_name_no_key() -> None:
    chk = CHKReadCap(os.urandom(16), os.urandom(32), 3, 10, 1000).to_string()
    write = mc.SSKWriteCap(os.urandom(16), os.urandom(32)).to_string()
    bad = [
        chk[:-1] + "x",  # not canonical
        chk.replace(":3:10:", ":30:10:"),  # impossible share counts
        write[:-3],  # truncated
        write.replace("URI:SSK:", "URI:SSK-Verifier:") + "Q",
        write.replace("URI:SSK:", "URI:DIR2:") + ":extra",
        "ro." + write,  # ro. refuses a write cap
        write.replace("URI:SSK:", "URI:XYZ:"),
    ]
    for text in bad:
        for parse in (mc.parse_user_cap, parse_read_cap):
            with pytest.raises(CapabilityError) as info:
                parse(text)
            assert_no_key(str(info.value) + (info.value.hint or ""), text)
    with pytest.raises(FormatError) as err:
        base32.a2b(base32.b2a(os.urandom(16))[:-1] + "9")
    assert "characters" in str(err.value)


def test_numbers_of_any_length_are_malformed_not_a_traceback() -> None:
    chk = CHKReadCap(os.urandom(16), os.urandom(32), 3, 10, 1000).to_string()
    huge = chk.rsplit(":", 1)[0] + ":" + "9" * 4301
    assert isinstance(parse_cap(huge), UnknownCap)
    assert isinstance(parse_cap(chk.replace(":3:10:", ":" + "3" * 5000 + ":10:")), UnknownCap)
    with pytest.raises(CapabilityError, match="malformed"):
        mc.parse_user_cap(huge)
    with pytest.raises(CapabilityError, match="malformed"):
        parse_read_cap(huge)


def test_cli_renders_without_keys(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    write = mc.SSKWriteCap(os.urandom(16), os.urandom(32))
    dir_cap = mc.DirCap(write).to_string()
    chk = CHKReadCap(os.urandom(16), os.urandom(32), 3, 10, 1000).to_string()
    huge = chk.rsplit(":", 1)[0] + ":" + "9" * 4301
    for argv in (
        ["attenuate", huge],
        ["attenuate", chk[:-12]],
        ["attenuate", "--verify", dir_cap[:40]],
        ["-d", str(tmp_path), "add-alias", "x", chk],
    ):
        assert main(argv) == 1
        out, err = capsys.readouterr()
        assert err.startswith("veil: error: ") and "Traceback" not in err
        assert_no_key(out + err, dir_cap, chk)
    with pytest.raises(SystemExit) as info:  # argparse quotes what it cannot parse
        main([dir_cap])
    assert info.value.code == 2
    out, err = capsys.readouterr()
    assert "invalid choice" in err
    assert_no_key(out + err, dir_cap)


def test_log_lines_are_scrubbed() -> None:
    cap = mc.DirCap(mc.SSKWriteCap(os.urandom(16), os.urandom(32))).to_string()
    record = logging.LogRecord("veil", logging.INFO, __file__, 1, "linked %s", (cap,), None)
    line = ScrubbingFormatter("%(levelname)s %(message)s").format(record)
    assert line.startswith("INFO linked URI:DIR2 (SI ")
    assert_no_key(line, cap)
