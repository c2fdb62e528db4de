"""Configuration that fails closed: unreadable files, broken secrets, cross-key
rules, anonymity of tub.location and the nickname, file modes, and every key
Tahoe 1.20 accepts. Each case goes through ``veil`` as a user would type it."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from veil.adapters.node.nodedir import NodeDirectory
from veil.errors import ConfigError
from veil.formats.config_schema import markdown_table, validate
from veil.formats.tor_settings import privacy_problems
from veil.frontends.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def node(tmp_path: Path) -> Path:
    path = tmp_path / "n"
    NodeDirectory.create(path)
    return path


def veil(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def refused(capsys: pytest.CaptureFixture[str], node: Path, text: str) -> None:
    """Every kind of command stops with one line naming the problem."""
    for args in (("config", "get", "client.shares.total"), ("put", "-"), ("status",)):
        code, out, err = veil(capsys, "-d", str(node), *args)
        assert code == 1 and out == "", (args, out, err)
        assert err.startswith("veil: error:") and text in err.splitlines()[0], (args, err)


# -- item 2: a file that is there but cannot be read or parsed ----------------------------


def test_tahoe_cfg_that_is_a_directory_stops_every_command(
    node: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (node / "tahoe.cfg").unlink()
    (node / "tahoe.cfg").mkdir()
    refused(capsys, node, "tahoe.cfg is a directory")


def test_tahoe_cfg_with_non_utf8_bytes_stops_every_command(
    node: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = node / "tahoe.cfg"
    cfg.write_bytes(cfg.read_bytes() + b"\n# caf\xe9\n")
    refused(capsys, node, "tahoe.cfg is not UTF-8 text")


def test_tahoe_cfg_that_is_not_ini_stops_every_command(
    node: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (node / "tahoe.cfg").write_text("[node\nnickname = x\n")
    refused(capsys, node, "cannot be parsed")


@pytest.mark.parametrize(
    "name,content,text",
    [
        ("servers.yaml", b"storage: {}\n# \xff\xfe\n", "servers.yaml is not UTF-8 text"),
        ("servers.yaml", b"storage: [\n", "servers.yaml is not valid YAML"),
        ("servers.yaml", None, "servers.yaml is a directory"),
        ("introducers.yaml", b"introducers: {\n", "introducers.yaml is not valid YAML"),
        ("introducers.yaml", b"\x80\n", "introducers.yaml is not UTF-8 text"),
    ],
)
def test_unreadable_yaml_stops_commands(
    node: Path, capsys: pytest.CaptureFixture[str], name: str, content: bytes | None, text: str
) -> None:
    path = node / "private" / name
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    code, _, err = veil(capsys, "-d", str(node), "put", "-")
    assert code == 1 and text in err.splitlines()[0], err


def test_a_dangling_link_is_not_taken_for_no_file(node: Path) -> None:
    (node / "tahoe.cfg").unlink()
    (node / "tahoe.cfg").symlink_to(node / "gone.cfg")
    with pytest.raises(ConfigError, match=r"missing \(or a dangling link\)"):
        NodeDirectory(node)


# -- item 15: empty or malformed secrets, cross-key rules, host names ---------------------


@pytest.mark.parametrize("name", ["secret", "convergence", "node.privkey", "storage.swissnum"])
@pytest.mark.parametrize("content", ["", "\n", "not base32!\n", "aaaa\n"])
def test_empty_or_malformed_secret_is_refused_at_load(
    node: Path, capsys: pytest.CaptureFixture[str], name: str, content: str
) -> None:
    if name == "storage.swissnum" and content == "aaaa\n":
        return  # any non-empty base32 swissnum is a swissnum
    (node / "private" / name).write_text(content)
    refused(capsys, node, f"private/{name} is empty or damaged")


@pytest.mark.parametrize(
    "key,value,message",
    [
        ("client.shares.needed", "50", "shares.needed=50"),
        ("client.shares.happy", "11", "shares.happy=11"),
        ("client.shares.total", "2", "shares.needed=3"),
        ("storage.hostname", "bad host/\n", "line break"),
        ("storage.hostname", "bad host/", "must be a host name"),
        ("introducer.hostname", "x_y.example", "must be a host name"),
    ],
)
def test_config_set_runs_the_cross_key_checks_and_writes_nothing(
    node: Path, capsys: pytest.CaptureFixture[str], key: str, value: str, message: str
) -> None:
    before = (node / "tahoe.cfg").read_bytes()
    code, _, err = veil(capsys, "-d", str(node), "config", "set", key, value)
    assert code == 1 and message in err and "nothing was changed" in err, err
    assert (node / "tahoe.cfg").read_bytes() == before
    NodeDirectory(node)  # still loads


def test_cross_key_rules_are_checked_at_load_too(node: Path) -> None:
    cfg = node / "tahoe.cfg"
    cfg.write_text(cfg.read_text().replace("shares.needed = 3", "shares.needed = 50"))
    with pytest.raises(ConfigError, match=r"shares\.needed=50"):
        NodeDirectory(node)


def test_create_node_refuses_a_bad_hostname_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in ("create-node", "create-introducer"):
        code, _, err = veil(capsys, command, str(tmp_path / command), "--hostname", "bad host/\n")
        assert code in (1, 2) and "host name" in err, err
        assert not (tmp_path / command / "tahoe.cfg").exists()
    assert veil(capsys, "create-node", str(tmp_path / "ok"), "--hostname", "Node.Example.")[0] == 0


# -- items 3 and 7: nickname and tub.location when hiding the IP address ------------------


def test_nickname_defaults_to_empty(node: Path) -> None:
    assert NodeDirectory(node).get("node", "nickname", "?") == ""


def test_a_nickname_with_hide_ip_gives_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    args = ["create-node", "--hide-ip", "--tor-control-port", "tcp:127.0.0.1:9"]
    with caplog.at_level(logging.WARNING):
        assert veil(capsys, *args, str(tmp_path / "quiet"))[0] == 0
        assert "nickname" not in caplog.text
        assert veil(capsys, *args, "--nickname", "alice", str(tmp_path / "named"))[0] == 0
    assert caplog.text.count("[node] nickname is set") == 1  # once, not per load


@pytest.mark.parametrize(
    "location",
    [
        "tor:192.0.2.7:3457",
        "[2001:db8::7]:3457",
        "TCP:192.0.2.7:3457",
        "tcp:host.example:3457",
        "host.example:3457",
        "192.0.2.7:3457",
        "AUTO",
        "auto",
        "tor:abcdefghijklmnop.onion:3457,tcp:192.0.2.7:3457",
        "tor:x.onion",
        "i2p:192.0.2.7:80",
        "unix:/tmp/x",
    ],
)
def test_every_tub_location_hint_that_is_not_onion_is_refused(location: str) -> None:
    problems = privacy_problems(
        {
            "node": {"reveal-IP-address": "false", "tub.location": location},
            "storage": {"enabled": "false"},
        }
    )
    assert problems and all("tub.location" in p for p in problems), problems


@pytest.mark.parametrize(
    "location",
    ["tor:abcdefghijklmnop.onion:3457", "TOR:ABCDEFGHIJKLMNOP.ONION.:3457", "i2p:x.b32.i2p", ""],
)
def test_onion_and_i2p_hints_pass(location: str) -> None:
    sections = {
        "node": {"reveal-IP-address": "false", "tub.location": location},
        "storage": {"enabled": "false"},
    }
    assert privacy_problems(sections) == []


# -- item 9: modes whatever the umask -----------------------------------------------------


@pytest.fixture
def umask_000() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_modes_are_explicit_under_umask_000(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], umask_000: None
) -> None:
    path = tmp_path / "n"
    assert (
        veil(capsys, "create-node", str(path), "--introducer", f"pb://{'A' * 43}@h:1/s#v=1")[0] == 0
    )
    assert mode(path) == 0o700 and mode(path / "private") == 0o700
    assert mode(path / "tahoe.cfg") == 0o600  # may hold fURLs
    assert mode(path / "node.pubkey") == 0o644
    for secret in (path / "private").iterdir():
        assert mode(secret) == 0o600, secret.name
    assert veil(capsys, "-d", str(path), "config", "set", "storage.reserved_space", "1G")[0] == 0
    assert mode(path / "tahoe.cfg") == 0o600
    os.chmod(path / "tahoe.cfg", 0o666)  # a Tahoe-written file keeps its mode, never o+w
    assert veil(capsys, "-d", str(path), "config", "set", "storage.reserved_space", "2G")[0] == 0
    assert mode(path / "tahoe.cfg") == 0o644


# -- item 29: every key and section Tahoe 1.20 accepts ------------------------------------

TAHOE_CFG = """\
[node]
nickname =
reveal-IP-address = true
web.port =
web.static = public_html
tub.port = tcp:3457:interface=127.0.0.1
tub.location = tcp:127.0.0.1:3457
log_gatherer.furl =
timeout.keepalive = 240
timeout.disconnect = 1800
tempdir = /tmp
[client]
helper.furl =
introducer.furl =
key_generator.furl =
mutable.format = mdmf
peers.preferred =
shares.needed = 2
shares.happy = 3
shares.total = 4
shares._max_immutable_segment_size_for_testing = 131072
storage.plugins =
force_foolscap = false
[storage]
enabled = true
readonly = false
reserved_space = 1G
storage_dir = shares-here
anonymous = true
debug_discard = false
expire.enabled = true
expire.mode = cutoff-date
expire.override_lease_duration = 60 days
expire.cutoff_date = 2024-01-01
expire.immutable = true
expire.mutable = false
plugins =
grid_management = false
force_foolscap = false
[helper]
enabled = false
[sftpd]
enabled = false
port = tcp:8022
host_pubkey_file = private/ssh_host_rsa_key.pub
host_privkey_file = private/ssh_host_rsa_key
accounts.file = private/accounts
[connections]
tcp = tcp
[tor]
enabled = true
launch = false
onion = false
[i2p]
enabled = false
sam.port = tcp:127.0.0.1:7656
launch = false
i2p.configdir = /var/lib/i2p
i2p.executable = i2p
dest = false
dest.port = 3459
dest.private_key_file = private/i2p_dest.privkey
[grid_managers]
gm0 = pub-v0-xxxx
[grid_manager_certificates]
default = private/gm0.cert
[storageserver.plugins.example]
key = value
[storageclient.plugins.example]
key = value
[storage-plugin.example]
key = value
[ftpd]
enabled = false
"""


def test_every_tahoe_key_loads_and_ignored_ones_warn_once(
    node: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    (node / "tahoe.cfg").write_text(TAHOE_CFG)
    with caplog.at_level(logging.WARNING):
        loaded = NodeDirectory(node)
        NodeDirectory(node)
        code, out, _ = veil(capsys, "-d", str(node), "config", "get", "client.shares.total")
    assert code == 0 and out == "4\n"
    assert loaded.storage_dir() == node / "shares-here"  # acted on
    assert loaded.encoding_parameters().max_segment_size == 131072
    text = caplog.text
    for ignored in ("mutable.format", "timeout.keepalive", "[grid_managers]"):
        assert text.count(ignored) == 1, ignored
    for quiet in (
        "shares.needed",
        "reserved_space",
        "web.static",
        "[helper]",
        "readonly",
        "expire",
    ):
        assert quiet not in text, quiet


def test_storage_anonymous_false_refuses_to_serve(node: Path) -> None:
    from veil.adapters.node.running import StorageNode

    cfg = node / "tahoe.cfg"
    cfg.write_text(cfg.read_text().replace("[storage]\n", "[storage]\nanonymous = false\n"))
    with pytest.raises(ConfigError, match="anonymous = false"):
        StorageNode(node)


def test_unknown_keys_are_still_refused() -> None:
    assert validate({"storage": {"expire.enabld": "true"}}, "t.cfg")
    assert validate({"sotrage": {}}, "t.cfg")


def test_readme_table_is_the_schema() -> None:
    assert markdown_table() in (ROOT / "README.md").read_text()
