"""Mutable and directory caps, the mutable key chain (digest §1.2 vectors),
attenuation, and the cap commands (attenuate, add-alias, list-aliases)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from veil.adapters.node.nodedir import NodeDirectory
from veil.errors import CapabilityError
from veil.formats import base32
from veil.formats.caps import CHKReadCap, LiteralCap, UnknownCap
from veil.formats.hashes import tagged_hash
from veil.formats.mutable_caps import (
    DirCap,
    SSKReadCap,
    SSKVerifyCap,
    SSKWriteCap,
    attenuate,
    data_key,
    parse_any,
    parse_user_cap,
    readkey_from_writekey,
    storage_index_from_readkey,
    write_enabler,
    write_enabler_master,
)
from veil.frontends.cli.main import main

WRITEKEY = bytes(range(16))
FINGERPRINT = bytes(range(32))
FP = "aaaqeayeaudaocajbifqydiob4ibceqtcqkrmfyydenbwha5dypq"
WRITECAP = f"URI:SSK:aaaqeayeaudaocajbifqydiob4:{FP}"
READCAP = f"URI:SSK-RO:zlnpn42lu7xedonux53kr42hsm:{FP}"
VERIFYCAP = f"URI:SSK-Verifier:axmc3zjy3mkanylpyx7u2zuqum:{FP}"


def test_key_chain_vectors() -> None:
    readkey = readkey_from_writekey(WRITEKEY)
    assert readkey.hex() == "cadaf6f34ba7ee41b9b4bf76a8f34793"
    assert storage_index_from_readkey(readkey).hex() == "05d82de538db1406e16fc5ff4d6690a3"
    wem = write_enabler_master(WRITEKEY)
    assert wem.hex() == "f57f1d678a75602b959d26384c58b66c26d147093e906f7a49f0a02ae54a6e0c"
    assert (
        write_enabler(wem, bytes(20)).hex()
        == "d384ba0ef64b421eee3ea0bf06326709ac0c307adfef33930988268e0bdc645f"
    )
    assert data_key(b"\x11" * 16, readkey).hex() == "f39787c248a273aa8225144bc1a6617b"
    assert (
        tagged_hash(b"tag", b"val").hex()
        == "3d144894c774733d31aa0545f2ce69c6cd347c22e621f1ebc6099d4275730c88"
    )


def test_sdmf_cap_vectors() -> None:
    write = SSKWriteCap(WRITEKEY, FINGERPRINT)
    assert write.to_string() == WRITECAP
    assert write.read_cap().to_string() == READCAP
    assert write.verify_cap().to_string() == VERIFYCAP
    assert parse_any(WRITECAP) == write
    assert parse_any(READCAP) == write.read_cap()
    assert parse_any(VERIFYCAP) == write.verify_cap()
    assert "aaaqe" not in repr(write)  # keys stay out of logs


def test_mdmf_and_directory_forms() -> None:
    mdmf = parse_any(WRITECAP.replace("URI:SSK:", "URI:MDMF:") + ":3:131073")  # 1.9.0a1 hints
    assert isinstance(mdmf, SSKWriteCap) and mdmf.mdmf
    assert mdmf.to_string() == WRITECAP.replace("URI:SSK:", "URI:MDMF:")  # extras dropped
    assert attenuate(mdmf).to_string() == READCAP.replace("URI:SSK-RO:", "URI:MDMF-RO:")
    assert isinstance(parse_any(WRITECAP + ":3:131073"), UnknownCap)  # SSK is anchored
    for file_prefix, dir_prefix in [
        ("URI:SSK:", "URI:DIR2:"),
        ("URI:MDMF:", "URI:DIR2-MDMF:"),
    ]:
        dir_text = WRITECAP.replace("URI:SSK:", dir_prefix)
        d = parse_any(dir_text)
        assert isinstance(d, DirCap) and d.to_string() == dir_text
        ro = attenuate(d)
        expect = READCAP.replace("URI:SSK-RO:", dir_prefix.rstrip(":") + "-RO:")
        assert ro.to_string() == expect, file_prefix
        verify = attenuate(d, verify=True).to_string()
        assert verify == VERIFYCAP.replace(
            "URI:SSK-Verifier:", dir_prefix.rstrip(":") + "-Verifier:"
        )
    lit = parse_any("URI:DIR2-LIT:")
    assert isinstance(lit, DirCap) and lit.file == LiteralCap(b"")
    assert attenuate(lit) == lit


def test_chk_directories_and_files() -> None:
    chk = f"URI:CHK:{base32.b2a(bytes(16))}:{base32.b2a(bytes(32))}:3:10:1000"
    d = parse_any(chk.replace("URI:CHK:", "URI:DIR2-CHK:"))
    assert isinstance(d, DirCap) and isinstance(d.file, CHKReadCap)
    assert attenuate(d) == d  # immutable: already read-only
    assert attenuate(d, verify=True).to_string().startswith("URI:DIR2-CHK-Verifier:")
    with pytest.raises(CapabilityError, match="no verify cap"):
        attenuate(parse_user_cap("URI:LIT:nbswy3dp"), verify=True)


def test_prefix_annotations_and_garbage() -> None:
    assert isinstance(parse_any("ro." + WRITECAP), UnknownCap)  # ro. refuses write caps
    assert isinstance(parse_any("ro." + READCAP), SSKReadCap)
    assert isinstance(parse_any("imm." + READCAP), UnknownCap)  # imm. refuses mutables
    for bad in (WRITECAP[:-1], WRITECAP + "x", "URI:DIR2:abc:def", "URI:SSK-RW:x:y"):
        assert isinstance(parse_any(bad), UnknownCap)
    with pytest.raises(CapabilityError, match="malformed capability"):
        parse_user_cap(WRITECAP[:-3])
    with pytest.raises(CapabilityError, match="not a capability veil knows"):
        parse_user_cap("http://example.org/")


@given(st.binary(min_size=16, max_size=16), st.binary(min_size=32, max_size=32), st.booleans())
def test_attenuation_matches_the_key_chain(writekey: bytes, fp: bytes, mdmf: bool) -> None:
    write = SSKWriteCap(writekey, fp, mdmf)
    read = attenuate(write)
    verify = attenuate(write, verify=True)
    assert isinstance(read, SSKReadCap) and read.readkey == readkey_from_writekey(writekey)
    assert isinstance(verify, SSKVerifyCap)
    assert verify.storage_index == storage_index_from_readkey(read.readkey)
    assert attenuate(read, verify=True) == verify
    for cap in (write, read, verify, DirCap(write), DirCap(read), DirCap(verify)):
        assert parse_any(cap.to_string()) == cap


def _veil(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_attenuate_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert _veil(capsys, "attenuate", WRITECAP)[1] == READCAP + "\n"
    assert _veil(capsys, "attenuate", "--verify", WRITECAP)[1] == VERIFYCAP + "\n"
    dir_cap = WRITECAP.replace("URI:SSK:", "URI:DIR2:")
    assert _veil(capsys, "attenuate", dir_cap)[1].startswith("URI:DIR2-RO:")
    code, _, err = _veil(capsys, "attenuate", "URI:SSK:nonsense")
    assert code == 1 and "malformed capability" in err and "Traceback" not in err


def test_aliases(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    node = tmp_path / "n"
    NodeDirectory.create(node, storage=False)
    dir_cap = WRITECAP.replace("URI:SSK:", "URI:DIR2:")
    assert _veil(capsys, "-d", str(node), "add-alias", "tahoe", dir_cap)[0] == 0
    code, _, err = _veil(capsys, "-d", str(node), "add-alias", "tahoe", dir_cap)
    assert code == 1 and "already exists" in err
    code, _, err = _veil(capsys, "-d", str(node), "add-alias", "file", WRITECAP)
    assert code == 1 and "directory" in err
    code, _, err = _veil(capsys, "-d", str(node), "add-alias", "a:b", dir_cap)
    assert code == 1 and "without ':'" in err
    text = (node / "private" / "aliases").read_text()
    assert text == f"tahoe: {dir_cap}\n"  # Tahoe's format
    assert (node / "private" / "aliases").stat().st_mode & 0o777 == 0o600
    out = _veil(capsys, "-d", str(node), "list-aliases")[1]
    assert out == f"tahoe: {dir_cap}\n"
    ro = _veil(capsys, "-d", str(node), "list-aliases", "--readonly-uri")[1]
    assert ro.startswith("tahoe: URI:DIR2-RO:")
    rows = json.loads(_veil(capsys, "-d", str(node), "list-aliases", "--json")[1])
    assert rows == {"tahoe": {"readwrite": dir_cap, "readonly": ro.split(": ", 1)[1].strip()}}
    (node / "private" / "aliases").write_text("garbage line\n")
    code, _, err = _veil(capsys, "-d", str(node), "list-aliases")
    assert code == 1 and "line 1 is not 'name: cap'" in err
