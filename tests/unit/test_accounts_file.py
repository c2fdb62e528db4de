"""``veil account`` and ``private/accounts.yaml``: the commands, the file's modes and
fail-closed reading, swissnums printed only by ``add``, numbers never reused,
and the running server's view re-reading the file when it changes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from veil.adapters.http.storage_server import authorization
from veil.adapters.node.accounts import FILENAME, ServerAccounts, load
from veil.errors import ConfigError
from veil.formats.nurl import parse_nurl
from veil.frontends.cli.main import main


def veil(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


@pytest.fixture
def node(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    path = tmp_path / "store"
    assert veil(capsys, "create-node", str(path), "--port", "45678")[0] == 0
    return path


def test_add_prints_the_servers_nurl_with_its_own_swissnum(
    node: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = veil(capsys, "-d", str(node), "account", "add", "alice", "--quota", "10M")
    assert code == 0 and "alice" in err
    nurl = parse_nurl(out.strip())
    own = (node / "private" / "storage.swissnum").read_text().strip()
    assert (nurl.host, nurl.port) == ("127.0.0.1", 45678) and nurl.swissnum != own
    path = node / "private" / FILENAME
    assert path.stat().st_mode & 0o777 == 0o600
    accounts = load(path)
    alice = accounts.accounts["alice"]
    assert (alice.number, alice.quota, alice.swissnum) == (2, 10_000_000, nurl.swissnum)
    assert nurl.swissnum not in repr(alice)
    # list, set-quota, remove: never a swissnum
    for args in (("list",), ("list", "--json"), ("set-quota", "alice", "none")):
        code, out, err = veil(capsys, "-d", str(node), "account", *args)
        assert code == 0 and nurl.swissnum not in out + err
    assert load(path).accounts["alice"].quota is None
    code, out, _ = veil(capsys, "-d", str(node), "account", "list")
    assert "alice" in out and "anonymous" in out and "not counted" in out
    assert veil(capsys, "-d", str(node), "account", "set-quota", "anonymous", "0")[0] == 0
    assert load(path).anonymous_quota == 0
    assert veil(capsys, "-d", str(node), "account", "remove", "alice")[0] == 0
    code, out, _ = veil(capsys, "-d", str(node), "account", "add", "bob", "--servers-yaml")
    doc = yaml.safe_load(out)
    (entry,) = doc["storage"].values()
    bob = load(path).accounts["bob"]
    assert bob.number == 3  # alice's number is not reused
    assert entry["ann"]["anonymous-storage-FURL"].endswith("/" + bob.swissnum)
    assert parse_nurl(entry["ann"]["anonymous-storage-NURLs"][0]).swissnum == bob.swissnum


def test_mistakes_get_one_line(node: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = ("-d", str(node), "account")
    assert veil(capsys, *d, "add", "alice")[0] == 0
    for args, words in (
        (("add", "alice"), "already an account"),
        (("add", "Bad Name!"), "cannot name an account"),
        (("add", "anonymous"), "cannot name an account"),
        (("add", "carol", "--quota", "lots"), "not a size"),
        (("remove", "nobody"), "no account named 'nobody'"),
        (("set-quota", "nobody", "1G"), "no account named"),
    ):
        code, out, err = veil(capsys, *d, *args)
        assert code == 1 and words in err and out == "", (args, err)
        assert len(err.strip().splitlines()) <= 2  # the error and its hint
    path = node / "private" / FILENAME
    os.chmod(path, 0o644)
    code, _, err = veil(capsys, *d, "list")
    assert code == 1 and "can be read by others" in err
    os.chmod(path, 0o600)
    path.write_text("accounts: [1, 2")
    code, _, err = veil(capsys, *d, "list")
    assert code == 1 and "not valid YAML" in err


def test_the_server_view_follows_the_file(node: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = node / "private" / FILENAME
    view = ServerAccounts(path)
    assert view.account_of(b"Tahoe-LAFS x") is None
    _, out, _ = veil(capsys, "-d", str(node), "account", "add", "alice", "--quota", "1k")
    header = authorization(parse_nurl(out.strip()).swissnum)
    assert view.account_of(header) == 2
    assert view.limits().quotas[2] == 1000 and view.limits().name_of(2) == "alice"
    veil(capsys, "-d", str(node), "account", "remove", "alice")
    assert view.account_of(header) is None  # a removed account stops working at once
    assert view.limits().name_of(2) == "(removed account 2)"
    path.write_text("garbage: [")  # a damaged file while running: the last good view stays
    os.chmod(path, 0o600)
    assert view.account_of(header) is None
    with pytest.raises(ConfigError):
        ServerAccounts(path)  # but it stops a start
