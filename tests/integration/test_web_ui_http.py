"""The web UI over HTTP against a running client node on a local process grid:
safety headers on every response, sessions only from ``veil webopen``,
cross-site and token-less form posts refused with nothing changed, a foreign
``Host`` refused, hostile names refused or shown escaped, huge bodies
refused, and upload/download byte for byte; no cap in any page."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.integration.web_ui_node import Reply, UiNode, ui_node

pytestmark = pytest.mark.integration
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiNode]:
    with ui_node(tmp_path_factory.mktemp("web-ui")) as n:
        yield n


@pytest.fixture(scope="module")
def session(node: UiNode) -> str:
    return node.login()


def token_in(page: Reply) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert found, page.text
    return found[1]


def csrf(node: UiNode, session: str) -> str:
    """The token the node's own pages put in their forms for this session."""
    return token_in(node.request("GET", "/ui/files", cookie=session))


def aliases(node: UiNode) -> str:
    return (node.client / "private" / "aliases").read_text()


def test_every_response_carries_the_safety_headers(node: UiNode, session: str) -> None:
    for path, cookie in [
        ("/", session),
        ("/", None),
        ("/?t=json", None),
        ("/ui/files", session),
        ("/ui/static/style.css", None),
        ("/ui/login?ticket=nothing", None),
        ("/no/such/page", None),
    ]:
        r = node.request("GET", path, cookie=cookie)
        assert r.headers["X-Frame-Options"] == "DENY", path
        assert r.headers["Referrer-Policy"] == "no-referrer", path
        assert r.headers["X-Content-Type-Options"] == "nosniff", path
        csp = r.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp, path
        assert "unsafe-inline" not in csp and "http" not in csp and "*" not in csp, path


def test_the_ui_opens_only_with_a_fresh_ticket_once(node: UiNode) -> None:
    r = node.request("GET", "/ui/files")
    assert r.status == 401 and "veil webopen" in r.text and "tahoe" not in r.text
    login = node.login_url().removeprefix(node.base)
    first = node.request("GET", login)
    assert first.status == 303 and first.headers["Location"] == "/"
    assert (
        "HttpOnly" in first.headers["Set-Cookie"]
        and "SameSite=Strict" in first.headers["Set-Cookie"]
    )
    again = node.request("GET", login)
    assert again.status == 401 and "veil_ui" not in again.cookies
    assert node.request("GET", "/ui/files", cookie="made-up").status == 401
    away = node.login_url().removeprefix(node.base).replace("next=/", "next=//evil.example/")
    assert node.request("GET", away).headers["Location"] == "/"


def test_a_form_post_without_its_token_changes_nothing(node: UiNode, session: str) -> None:
    before = aliases(node)
    body = urlencode({"alias": "planted"}).encode()
    for headers in (
        FORM,  # no token at all
        {**FORM, "Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},
    ):
        r = node.request("POST", "/ui/files/alias", body, headers, cookie=session)
        assert r.status == 403 and "Nothing was changed" in r.text
    wrong = urlencode({"alias": "planted", "csrf": os.urandom(32).hex()}).encode()
    assert node.request("POST", "/ui/files/alias", wrong, FORM, cookie=session).status == 403
    good = urlencode({"alias": "planted", "csrf": csrf(node, session)}).encode()
    cross = {**FORM, "Origin": "http://evil.example"}
    assert node.request("POST", "/ui/files/alias", good, cross, cookie=session).status == 403
    assert aliases(node) == before
    page = node.request("GET", "/ui/files", cookie=session)
    ok = urlencode({"alias": "made-here", "csrf": token_in(page)}).encode()
    r = node.request("POST", "/ui/files/alias", ok, FORM, cookie=session)
    assert r.status == 303 and "made-here" in aliases(node)


def test_a_foreign_host_name_is_refused(node: UiNode, session: str) -> None:
    r = node.request(
        "GET", "/ui/files", headers={"Host": f"rebound.example:{node.port}"}, cookie=session
    )
    assert r.status == 403 and "tahoe" not in r.text
    assert (
        node.request(
            "GET", "/ui/files", headers={"Host": f"localhost:{node.port}"}, cookie=session
        ).status
        == 200
    )


def _multipart(filename: str, data: bytes) -> tuple[bytes, dict[str, str]]:
    boundary = "veilboundary" + os.urandom(8).hex()
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def test_upload_then_download_gives_the_same_bytes(node: UiNode, session: str) -> None:
    data = os.urandom(150_000)
    body, headers = _multipart("report.bin", data)
    up = f"/ui/files/upload?{urlencode({'alias': 'tahoe', 'csrf': csrf(node, session)})}"
    r = node.request("POST", up, body, headers, cookie=session)
    assert r.status == 303, r.text
    listing = node.request("GET", "/ui/files/browse?alias=tahoe", cookie=session)
    assert "report.bin" in listing.text and "URI:" not in listing.text
    down = node.request("GET", "/ui/download?alias=tahoe&path=report.bin", cookie=session)
    assert down.status == 200 and down.body == data
    assert down.headers["Content-Disposition"].startswith("attachment;")
    assert "script-src" not in down.headers["Content-Security-Policy"]
    again = node.request("POST", up, body, headers, cookie=session)
    assert again.status == 400 and "already here" in again.text


def test_hostile_names_are_refused_or_shown_escaped(
    node: UiNode, session: str, tmp_path: Path
) -> None:
    before = node.cli("ls", "--json", "tahoe:")
    token = csrf(node, session)
    for name in ("../up", "a/b", "..", "", "bad\x07bell"):
        body = urlencode({"name": name, "csrf": token}).encode()
        r = node.request("POST", "/ui/files/mkdir?alias=tahoe", body, FORM, cookie=session)
        assert r.status == 400 and "Traceback" not in r.text, name
    body, headers = _multipart("..", b"x")
    up = f"/ui/files/upload?{urlencode({'alias': 'tahoe', 'csrf': token})}"
    assert node.request("POST", up, body, headers, cookie=session).status == 400
    bad = urlencode({"alias": "a:b", "csrf": token}).encode()
    assert node.request("POST", "/ui/files/alias", bad, FORM, cookie=session).status == 400
    assert node.cli("ls", "--json", "tahoe:") == before
    evil = "<img src=x onerror=alert(1)>.txt"
    (tmp_path / evil).write_bytes(b"hello")
    node.cli("cp", str(tmp_path / evil), f"tahoe:{evil}")
    page = node.request("GET", "/ui/files/browse?alias=tahoe", cookie=session)
    assert evil not in page.text and "&lt;img src=x onerror=alert(1)&gt;.txt" in page.text
    missing = node.request("GET", "/ui/files/browse?alias=tahoe&path=no/such", cookie=session)
    assert missing.status == 404 and "no such file or directory" in missing.text
    assert node.request("GET", "/ui/files/browse?alias=nope", cookie=session).status == 404


def test_a_huge_form_body_is_refused(node: UiNode, session: str) -> None:
    before = aliases(node)
    body = urlencode({"alias": "x" * 20_000_000, "csrf": csrf(node, session)}).encode()
    r = node.request("POST", "/ui/files/alias", body, FORM, cookie=session)
    assert r.status == 413 and aliases(node) == before


def test_status_json_says_whether_uploads_can_be_spread(node: UiNode, session: str) -> None:
    import json

    status = json.loads(node.request("GET", "/ui/api/status", cookie=session).body)
    assert status["reached"] == 3 and status["happiness_reachable"] is True
    assert {s["how"] for s in status["servers"]} == {"directly"}
    assert node.request("GET", "/ui/api/status").status == 401


def test_a_weak_recovery_passphrase_is_refused_and_nothing_is_made(
    node: UiNode, session: str
) -> None:
    import json

    token = csrf(node, session)
    recovery = node.client / "private" / "recovery"
    before = sorted(p.name for p in recovery.iterdir()) if recovery.exists() else []
    body = urlencode({"passphrase": "password123", "suggested": "x", "csrf": token}).encode()
    r = node.request("POST", "/ui/recovery/create", body, FORM, cookie=session)
    assert r.status == 400 and "too weak" in r.text and "/ui/recovery/blob/" not in r.text
    after = sorted(p.name for p in recovery.iterdir()) if recovery.exists() else []
    assert after == before
    rate = json.dumps({"passphrase": "correct horse"}).encode()
    plain = {"Content-Type": "application/json"}
    assert node.request("POST", "/ui/api/passphrase", rate, plain, cookie=session).status == 403
    rated = node.request(
        "POST", "/ui/api/passphrase", rate, {**plain, "X-CSRF-Token": token}, cookie=session
    )
    assert rated.status == 200 and json.loads(rated.body)["strong"] is False
    gone = node.request("GET", "/ui/recovery/blob/nothing-here", cookie=session)
    assert gone.status == 400 and "make a new one" in gone.text


def test_webopen_prints_a_one_time_address_at_a_folder(node: UiNode, tmp_path: Path) -> None:
    from tests.integration.web_ui_node import veil

    out = node.cli("webopen", "--print-only", "tahoe:")
    address = out.splitlines()[0]
    assert address.startswith(node.base + "/ui/login?ticket=") and "URI:" not in out
    r = node.request("GET", address.removeprefix(node.base))
    assert r.status == 303 and r.headers["Location"] == "/ui/files/browse?alias=tahoe"
    bad = subprocess_run(node, "webopen", "--print-only", "nope:")
    assert bad.returncode == 1 and "unknown alias 'nope'" in bad.stderr
    assert "Traceback" not in bad.stderr
    (tmp_path / "private").mkdir()
    alone = veil("-d", str(tmp_path), "webopen", code=1)
    assert alone == ""


def subprocess_run(node: UiNode, *args: str) -> Any:
    import subprocess

    from tests.integration.web_ui_node import VEIL

    return subprocess.run(
        [*VEIL, "-d", str(node.client), *args], capture_output=True, text=True, timeout=60
    )


def test_status_tells_when_servers_stop_answering(node: UiNode, session: str) -> None:
    """Last in this module: it stops two of the three servers (by their PIDs)."""
    import json
    import signal
    import time

    from veil.frontends.cli.grid import is_node_process

    for name in ("storage-00", "storage-01"):
        server = node.client.parent / name
        pid = int((server / "veil.pid").read_text())
        assert is_node_process(pid, server)
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while is_node_process(pid, server):
            assert time.monotonic() < deadline, f"{name} did not stop"
            time.sleep(0.05)
    status = json.loads(node.request("GET", "/ui/api/status", cookie=session).body)
    assert status["reached"] == 1 and status["happiness_reachable"] is False
    page = node.request("GET", "/", cookie=session)
    assert "Not connected: 1 of 3 storage servers answered" in page.text
