"""Hostile and careless requests to veil's web API: clear errors, nothing changed.

Malformed caps, caps of the wrong kind, path traversal in names, huge bodies,
methods that do not exist, and the ``/private/`` token; afterwards the
directory is as it was and the gateway's log holds no cap. Also the gateway's
own safety: loopback by default, another interface refused when the node
hides its IP address and warned about otherwise.
"""

from __future__ import annotations

import logging
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from veil.adapters.web.gateway import check_interface, parse_web_port
from veil.errors import ConfigError

from .wapi_gateway import http, running_gateway

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    with running_gateway(tmp_path_factory.mktemp("wapi-hostile")) as (url, node):
        yield url, node


@pytest.fixture(scope="module")
def root(gateway: tuple[str, Path]) -> str:
    url, _ = gateway
    cap = http("POST", url + "/uri?t=mkdir", b"").text
    assert http("PUT", f"{url}/uri/{cap}/kept.txt", b"kept").status == 201
    return cap


def listing(url: str, cap: str) -> object:
    return http("GET", f"{url}/uri/{cap}?t=json").json()[1]["children"]


def test_malformed_and_wrong_kind_caps(gateway: tuple[str, Path], root: str) -> None:
    url, _ = gateway
    before = listing(url, root)
    file_cap = http("GET", f"{url}/uri/{root}/kept.txt?t=uri").text
    ro = http("GET", f"{url}/uri/{root}?t=readonly-uri").text
    chk = http("PUT", url + "/uri", b"c" * 5000).text
    verifier = http("GET", f"{url}/uri/{chk}?t=json").json()[1]["verify_uri"]
    cases = [
        ("GET", "/uri/URI:CHK:notbase32:x:3:10:100", None, 400),
        ("GET", "/uri/URI:DIR2:abc", None, 400),
        ("PUT", "/uri/URI:SSK:zzzz:zzzz", b"x", 400),
        ("PUT", f"/uri/{ro}/new.txt", b"x", 400),  # a read-only directory
        ("POST", f"/uri/{ro}?t=mkdir&name=x", b"", 400),
        ("POST", f"/uri/{ro}?t=unlink&name=kept.txt", b"", 400),
        ("PUT", f"/uri/{chk}", b"replace an immutable file?", 400),
        ("GET", f"/uri/{verifier}", None, 400),  # a verify cap reads nothing
        ("GET", f"/uri/{root}/kept.txt/below", None, 400),  # a file has no children
        ("PUT", f"/uri/{root}/kept.txt/below", b"x", 409),  # nor gets any
        ("POST", f"/uri/{root}?t=uri&name=bad&uri=URI:CHK:broken", b"", 400),
        ("POST", f"/uri/{root}?t=mkdir-with-children&name=x", b"{not json", 400),
        ("POST", f"/uri/{root}?t=relink&from_name=kept.txt&to_dir={file_cap}", b"", 400),
    ]
    for method, path, body, status in cases:
        answer = http(method, url + path, body)
        assert answer.status == status, (method, path, answer.status, answer.text)
        assert "Traceback" not in answer.text and "URI:" not in answer.text, answer.text
    assert listing(url, root) == before


def test_path_traversal_in_names(gateway: tuple[str, Path], root: str) -> None:
    url, _ = gateway
    before = listing(url, root)
    for path in (
        f"/uri/{root}/..%2F..%2Fetc%2Fpasswd",
        f"/uri/{root}/a%2Fb",
        f"/uri/{root}/%2E%2E",
        f"/uri/{root}/./x",
        f"/uri/{root}/x//y",
        f"/uri/{root}/%ff%fe",
    ):
        answer = http("PUT", url + path, b"x")
        assert answer.status == 400, (path, answer.status, answer.text)
    for query in (
        "t=mkdir&name=..",
        "t=mkdir&name=a/b",
        "t=uri&name=.&uri=URI:LIT:pa",
        "t=rename&from_name=kept.txt&to_name=../x",
        "t=rename&from_name=kept.txt&to_name=..",
    ):
        answer = http("POST", f"{url}/uri/{root}?{query}", b"")
        assert answer.status == 400, (query, answer.status, answer.text)
    assert listing(url, root) == before


def _raw_request(url: str, head: str) -> str:
    """Send only a request head (a body announced but never sent) and read the answer."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as s:
        s.sendall(head.encode())
        return s.recv(65536).decode("latin-1")


def test_huge_bodies_are_refused_before_they_are_read(gateway: tuple[str, Path], root: str) -> None:
    url, _ = gateway
    before = listing(url, root)
    host = urlsplit(url).netloc
    for target, size in (
        (f"/uri/{root}?t=mkdir-with-children&name=big", 17 * 2**20),
        ("/uri?t=mkdir-immutable", 17 * 2**20),
        (f"/uri/{root}/big.bin?format=MDMF", 65 * 2**20),
        ("/uri?format=SDMF", 2**40),
    ):
        method = "POST" if "mkdir" in target else "PUT"
        head = f"{method} {target} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {size}\r\n\r\n"
        answer = _raw_request(url, head)
        assert answer.startswith("HTTP/1.1 413"), (target, answer[:200])
        assert "request body too large" in answer
    assert listing(url, root) == before


def test_methods_and_unknown_routes(gateway: tuple[str, Path], root: str) -> None:
    url, _ = gateway
    assert http("PATCH", f"{url}/uri/{root}", b"").status == 405
    assert http("DELETE", f"{url}/uri/{root}").status == 400
    assert http("GET", f"{url}/nothing-here").status == 404
    assert http("POST", f"{url}/uri?t=bogus", b"").status == 400


def test_private_needs_the_token(gateway: tuple[str, Path]) -> None:
    url, node = gateway
    token_file = node / "private" / "api_auth_token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text().strip()
    assert len(token) == 44  # urlsafe base64 of 32 bytes, as Tahoe's
    refused = http("GET", f"{url}/private/")
    assert refused.status == 401
    assert refused.headers["WWW-Authenticate"] == 'tahoe-lafs realm="tahoe-lafs"'
    wrong = http("GET", f"{url}/private/", headers={"Authorization": "tahoe-lafs " + "A" * 44})
    assert wrong.status == 401
    assert (
        http("GET", f"{url}/private/", headers={"Authorization": f"Bearer {token}"}).status == 401
    )
    right = http("GET", f"{url}/private/logs", headers={"Authorization": f"tahoe-lafs {token}"})
    assert right.status == 404  # nothing mounted there: as Tahoe, once authorized


def test_no_cap_in_the_gateway_log(gateway: tuple[str, Path], root: str) -> None:
    url, node = gateway
    http("GET", f"{url}/uri/{root}/missing")
    http("POST", f"{url}/uri/{root}?t=unlink&name=missing", b"")
    log = (node / "gateway.log").read_text(errors="replace")
    assert "URI:" not in log and root.split(":")[2] not in log


def test_gateway_binds_loopback_unless_told(caplog: pytest.LogCaptureFixture) -> None:
    assert parse_web_port("3456") == ("127.0.0.1", 3456)
    assert parse_web_port("tcp:3456:interface=127.0.0.1") == ("127.0.0.1", 3456)
    check_interface("127.0.0.1", hides_ip=True)
    check_interface("::1", hides_ip=True)
    with pytest.raises(ConfigError, match="hides its IP address"):
        check_interface("0.0.0.0", hides_ip=True)
    with caplog.at_level(logging.WARNING, logger="veil.adapters.web.gateway"):
        check_interface("0.0.0.0", hides_ip=False)
    assert "prefer interface=127.0.0.1" in caplog.text
    with pytest.raises(ConfigError):
        parse_web_port("tcp:99999")


def test_filename_cannot_inject_headers(gateway: tuple[str, Path]) -> None:
    url, _ = gateway
    cap = http("PUT", url + "/uri", b"x" * 100).text
    answer = http("GET", f"{url}/uri/{cap}?save=true&filename=a%22%0d%0aSet-Cookie:%20x=1")
    assert answer.status == 200 and "Set-Cookie" not in answer.headers
    assert answer.headers["Content-Disposition"] == 'attachment; filename="a\\"Set-Cookie: x=1"'
