"""What the CLI does at start-up: aiohttp is imported without the system CA
store (veil pins certificates), and the user's OpenSSL settings are untouched."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from veil.adapters.node.nodedir import NodeDirectory
from veil.frontends.cli.main import main


@pytest.mark.parametrize("value", ["/etc/ssl/certs/ca-certificates.crt", None])
def test_user_ssl_settings_survive_a_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    NodeDirectory.create(tmp_path / "n")
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert main(["-d", str(tmp_path / "n"), "list-aliases"]) == 0
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
        assert os.environ.get(name) == value
