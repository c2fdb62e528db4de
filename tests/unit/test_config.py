"""tahoe.cfg validation and `veil config`, tried as a new user would."""

from __future__ import annotations

from pathlib import Path

import pytest

from veil.adapters.node.nodedir import NodeDirectory
from veil.errors import ConfigError
from veil.formats.config_schema import hides_ip, validate
from veil.frontends.cli.main import main


@pytest.fixture
def node(tmp_path: Path) -> Path:
    path = tmp_path / "n"
    NodeDirectory.create(path)
    return path


def run(node: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["-d", str(node), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_set_get_list(node: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(node, capsys, "config", "set", "storage.reserved_space", "10G")[0] == 0
    assert run(node, capsys, "config", "get", "storage.reserved_space")[1] == "10G\n"
    assert run(node, capsys, "config", "get", "client.shares.happy")[1] == "7\n"
    code, out, _ = run(node, capsys, "config", "list")
    assert code == 0 and "storage.reserved_space = 10G" in out
    assert NodeDirectory(node).storage_settings().reserved_space == 10**10


@pytest.mark.parametrize(
    "key,value,message",
    [
        ("storage.reserved_space", "lots", "must be a size"),
        ("client.shares.neded", "3", "not a known key"),
        ("client.shares.needed", "three", "whole number"),
        ("storage.port", "70000", "between 0 and 65535"),
        ("storage.readonly", "maybe", "true or false"),
        ("nod.nickname", "x", "not SECTION.KEY"),
    ],
)
def test_bad_values_are_refused_and_change_nothing(
    node: Path, capsys: pytest.CaptureFixture[str], key: str, value: str, message: str
) -> None:
    before = (node / "tahoe.cfg").read_text()
    code, _, err = run(node, capsys, "config", "set", key, value)
    assert code == 1 and message in err and err.startswith("veil: error:")
    assert (node / "tahoe.cfg").read_text() == before


def test_typos_in_the_file_stop_everything_with_one_line(node: Path) -> None:
    cfg = node / "tahoe.cfg"
    cfg.write_text(cfg.read_text() + "\n[sotrage]\nenabled = true\n")
    with pytest.raises(ConfigError, match=r"unknown section \[sotrage\]"):
        NodeDirectory(node)
    cfg.write_text("not an ini file")
    with pytest.raises(ConfigError, match="cannot be parsed"):
        NodeDirectory(node)


def test_anonymity_settings_fail_closed(node: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert not hides_ip({"node": {"reveal-IP-address": "true"}})
    assert hides_ip({"node": {"reveal-ip-address": "false"}})
    assert hides_ip({"node": {"anonymize": "true"}})  # the older synonym
    run(node, capsys, "config", "set", "node.anonymize", "true")
    code, _, err = run(node, capsys, "put", "-")
    assert code == 1 and "refusing to start" in err
    assert "runs a storage server" in err and "Traceback" not in err


def test_tahoe_written_keys_are_accepted() -> None:
    tahoe_cfg = {
        "node": {
            "nickname": "",
            "reveal-IP-address": "true",
            "web.port": "tcp:3456",
            "web.static": "public_html",
            "tub.port": "disabled",
            "tub.location": "disabled",
        },
        "client": {
            "helper.furl": "",
            "shares.needed": "2",
            "shares.happy": "3",
            "shares.total": "3",
        },
        "storage": {"enabled": "false", "reserved_space": "1G"},
        "helper": {"enabled": "false"},
    }
    assert validate(tahoe_cfg, "tahoe.cfg") == []
