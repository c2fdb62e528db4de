"""veil's web API against a live Tahoe 1.20 gateway on the same grid, for the same caps.

Each test asks both gateways the same question and compares the answers field
by field: status codes, the caps made (immutable ones are convergent, so both
make the same), ``t=json`` of files and directories (made by either side),
errors, redirects, manifests and check results.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from tests.integration.wapi_gateway import Answer, http

from .tahoe_harness import TahoeGrid
from .wapi_pair import veil_beside


@pytest.fixture(scope="module")
def both(
    small_tahoe_grid: TahoeGrid, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """(Tahoe's URL, veil's URL)."""
    tahoe = small_tahoe_grid.clients[0]
    with veil_beside(tahoe, tmp_path_factory.mktemp("veil-beside")) as (url, _node):
        yield tahoe.url, url


def ask(
    both: tuple[str, str],
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[Answer, Answer]:
    tahoe, veil = both
    return http(method, tahoe + path, body, headers), http(method, veil + path, body, headers)


def same_json(a: Answer, b: Answer) -> Any:
    assert (a.status, a.headers.get("Content-Type")) == (b.status, b.headers.get("Content-Type"))
    left, right = a.json(), b.json()
    assert left == right
    return left


def tree(both: tuple[str, str], via: str) -> str:
    """A directory with every kind of child, made through one gateway; returns its cap."""
    url = dict(zip(("tahoe", "veil"), both, strict=True))[via]
    root = http("POST", url + "/uri?t=mkdir", b"").text
    assert http("PUT", f"{url}/uri/{root}/small.txt", b"small").status == 201
    assert http("PUT", f"{url}/uri/{root}/big.bin", os.urandom(70_000)).status == 201
    assert http("PUT", f"{url}/uri/{root}/notes?format=SDMF", b"sdmf notes").status == 201
    assert http("PUT", f"{url}/uri/{root}/log?format=MDMF", b"mdmf log").status == 201
    assert http("POST", f"{url}/uri/{root}?t=mkdir&name=sub", b"").status == 200
    assert http("PUT", f"{url}/uri/{root}/sub/deeper/leaf.txt", b"leaf").status == 201
    return root


def test_the_same_immutable_caps(both: tuple[str, str]) -> None:
    for data in (b"", b"tiny", os.urandom(60_000)):
        a, b = ask(both, "PUT", "/uri", data)
        assert (a.status, a.text) == (b.status, b.text)
        same_json(*ask(both, "GET", f"/uri/{a.text}?t=json"))
        ra, rb = ask(both, "GET", f"/uri/{a.text}")
        assert ra.body == rb.body == data
        assert ra.headers.get("ETag") == rb.headers.get("ETag")


@pytest.mark.parametrize("via", ["tahoe", "veil"])
def test_directory_json_is_the_same(both: tuple[str, str], via: str) -> None:
    root = tree(both, via)
    listing = same_json(*ask(both, "GET", f"/uri/{root}?t=json"))
    assert set(listing[1]["children"]) == {"small.txt", "big.bin", "notes", "log", "sub"}
    ro = listing[1]["ro_uri"]
    same_json(*ask(both, "GET", f"/uri/{ro}?t=json"))
    for name in ("small.txt", "big.bin", "notes", "log", "sub"):
        same_json(*ask(both, "GET", f"/uri/{root}/{name}?t=json"))
    same_json(*ask(both, "GET", f"/uri/{root}/sub/deeper?t=json"))
    for t in ("uri", "readonly-uri"):
        a, b = ask(both, "GET", f"/uri/{root}/notes?t={t}")
        assert (a.status, a.text) == (b.status, b.text)
    a, b = ask(both, "GET", f"/uri/{root}/log")
    assert a.body == b.body == b"mdmf log"


def test_immutable_directories_are_the_same_cap(both: tuple[str, str]) -> None:
    tahoe, _ = both
    a = http("PUT", tahoe + "/uri", os.urandom(5000)).text
    kids = {
        "a.bin": ["filenode", {"ro_uri": a, "metadata": {"mtime": 1.5}}],
        "lit.txt": ["filenode", {"ro_uri": "URI:LIT:nbswy3dp", "metadata": {}}],
    }
    body = json.dumps(kids).encode()
    made = ask(both, "POST", "/uri?t=mkdir-immutable", body)
    assert made[0].status == made[1].status == 200
    assert made[0].text == made[1].text and made[0].text.startswith("URI:DIR2-CHK:")
    same_json(*ask(both, "GET", f"/uri/{made[0].text}?t=json"))
    mutable = http("PUT", tahoe + "/uri?format=SDMF", b"m").text
    bad = json.dumps({"m": ["filenode", {"rw_uri": mutable, "metadata": {}}]}).encode()
    refused = ask(both, "POST", "/uri?t=mkdir-immutable", bad)
    assert refused[0].status == refused[1].status == 400


def _key_arg() -> str:
    from base64 import urlsafe_b64encode

    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
    )

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = key.private_bytes(Encoding.DER, PrivateFormat.TraditionalOpenSSL, NoEncryption())
    return urlsafe_b64encode(der).decode()


def test_mkdir_with_private_key_makes_tahoes_cap(both: tuple[str, str]) -> None:
    """Gridsync's rootcap: the cap follows from the key, so a key used by one gateway is
    refused by the other (its storage index is taken), and veil reads what Tahoe made."""
    tahoe, veil = both
    first, second = _key_arg(), _key_arg()
    made_by_tahoe = http("POST", f"{tahoe}/uri?t=mkdir&private-key={first}", b"")
    assert made_by_tahoe.status == 200
    assert http("POST", f"{veil}/uri?t=mkdir&private-key={first}", b"").status == 500
    made_by_veil = http("POST", f"{veil}/uri?t=mkdir&private-key={second}", b"")
    assert made_by_veil.status == 200 and made_by_veil.text.startswith("URI:DIR2:")
    assert http("POST", f"{tahoe}/uri?t=mkdir&private-key={second}", b"").status == 500
    same_json(*ask(both, "GET", f"/uri/{made_by_tahoe.text}?t=json"))
    same_json(*ask(both, "GET", f"/uri/{made_by_veil.text}?t=json"))
    bad = ask(both, "POST", "/uri?t=mkdir&private-key=bm90LWEta2V5", b"")
    assert bad[1].status == 400  # Tahoe answers a bad key with a 500 traceback page


def test_mkdir_with_children(both: tuple[str, str]) -> None:
    kids = {"x": ["filenode", {"ro_uri": "URI:LIT:pa", "metadata": {"k": "v"}}]}
    for url in both:
        made = http("POST", f"{url}/uri?t=mkdir-with-children", json.dumps(kids).encode())
        assert made.status == 200
        same_json(*ask(both, "GET", f"/uri/{made.text}?t=json"))


def test_errors_are_tahoes(both: tuple[str, str]) -> None:
    tahoe, _ = both
    root = tree(both, "tahoe")
    cases = [
        ("GET", f"/uri/{root}/missing", None),
        ("GET", f"/uri/{root}?t=bogus", None),
        ("POST", f"/uri/{root}?t=bogus", b""),
        ("GET", f"/uri/{root}/small.txt?t=bogus", None),
        ("GET", "/uri/not-a-cap", None),
        ("GET", f"/uri/{root}//small.txt", None),
        ("PUT", f"/uri/{root}/small.txt?replace=false", b"new"),
        ("POST", f"/uri/{root}?t=unlink&name=nothing", b""),
        ("POST", f"/uri/{root}?t=rename&from_name=small.txt", b""),
        ("POST", "/uri?t=mkdir&format=CHK", b""),
        ("PUT", "/uri?format=XYZ", b"x"),
    ]
    for method, path, body in cases:
        a, b = ask(both, method, path, body)
        assert (a.status, a.text) == (b.status, b.text), (method, path)
    big = http("GET", f"{tahoe}/uri/{root}/big.bin?t=uri").text
    a, b = ask(both, "GET", f"/uri/{big}", headers={"Range": "bytes=90000-90001"})
    assert (a.status, a.text) == (b.status, b.text) == (416, "First beyond end of file")
    a, b = ask(both, "GET", f"/uri/{root}/small.txt")  # nothing was replaced
    assert a.body == b.body == b"small"


def test_changes_answer_as_tahoe(both: tuple[str, str]) -> None:
    tahoe, veil = both
    for url in both:
        root = http("POST", url + "/uri?t=mkdir", b"").text
        steps = [
            ("PUT", f"/uri/{root}/a.txt", b"a"),
            ("PUT", f"/uri/{root}/a.txt", b"a2"),
            ("PUT", f"/uri/{root}/link?t=uri", b"URI:LIT:pa"),
            ("POST", f"/uri/{root}?t=uri&name=l2&uri=URI:LIT:pa", b""),
            ("POST", f"/uri/{root}?t=rename&from_name=l2&to_name=l3", b""),
            ("POST", f"/uri/{root}?t=mkdir&name=d", b""),
            ("POST", f"/uri/{root}?t=relink&from_name=l3&to_dir={quote(root)}/d", b""),
            ("POST", f"/uri/{root}?t=unlink&name=link", b""),
            ("DELETE", f"/uri/{root}/a.txt", None),
            ("PUT", f"/uri/{root}/d?t=mkdir", b""),
        ]
        got = [http(m, url + p, body) for m, p, body in steps]
        if url == tahoe:
            tahoe_got, tahoe_root = got, root
        else:
            veil_got, veil_root = got, root
    for step, a, b in zip(steps, tahoe_got, veil_got, strict=True):
        assert a.status == b.status, step
        if not a.text.startswith("URI:DIR2:"):
            assert a.text == b.text, step
    ta = http("GET", f"{tahoe}/uri/{tahoe_root}/d?t=json").json()
    va = http("GET", f"{veil}/uri/{veil_root}/d?t=json").json()
    assert set(ta[1]["children"]) == set(va[1]["children"]) == {"l3"}


def test_uri_redirect_is_tahoes(both: tuple[str, str]) -> None:
    tahoe, veil = both
    cap = http("PUT", tahoe + "/uri", b"redirected").text
    a, b = ask(both, "GET", f"/uri?uri={quote(cap)}")
    assert a.status == b.status == 302
    assert a.headers["Location"].removeprefix(tahoe) == b.headers["Location"].removeprefix(veil)


def test_stream_manifest_is_the_same(both: tuple[str, str]) -> None:
    root = tree(both, "tahoe")
    a, b = ask(both, "POST", f"/uri/{root}?t=stream-manifest", b"")
    assert a.status == b.status == 200
    left = [json.loads(line) for line in a.text.splitlines()]
    right = [json.loads(line) for line in b.text.splitlines()]
    assert sorted(map(json.dumps, left[:-1])) == sorted(map(json.dumps, right[:-1]))
    assert [x["path"] for x in left[:-1]] == [x["path"] for x in right[:-1]]
    assert left[-1]["type"] == right[-1]["type"] == "stats"
    for key in (
        "count-files",
        "count-directories",
        "count-immutable-files",
        "count-mutable-files",
        "count-literal-files",
    ):
        assert left[-1]["stats"][key] == right[-1]["stats"][key], key


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(v) for k, v in value.items()}
    if isinstance(value, list):
        return sorted((_sorted(v) for v in value), key=json.dumps)
    return value


def test_check_results_are_the_same(both: tuple[str, str]) -> None:
    root = tree(both, "tahoe")
    for name in ("big.bin", "small.txt"):
        a, b = ask(both, "POST", f"/uri/{root}/{name}?t=check&output=JSON", b"")
        assert a.status == b.status == 200, name
        assert _sorted(a.json()) == _sorted(b.json()), name
    # a mutable file's shares are named as Tahoe names them: seqN-ROOT-shN
    a, b = ask(both, "POST", f"/uri/{root}/notes?t=check&output=JSON", b"")
    assert _sorted(a.json()) == _sorted(b.json())
    assert all("-sh" in name for name in a.json()["results"]["sharemap"])
    a, b = ask(
        both,
        "POST",
        f"/uri/{root}/big.bin?t=check&verify=true&repair=true&add-lease=true&output=JSON",
        b"",
    )
    assert _sorted(a.json()) == _sorted(b.json())


def _finished(url: str, handle: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        status: dict[str, Any] = http(
            "GET", f"{url}/operations/{handle}?t=status&output=JSON"
        ).json()
        if status["finished"] or time.monotonic() > deadline:
            return status
        time.sleep(0.2)


def test_background_operations_are_the_same(both: tuple[str, str]) -> None:
    root = tree(both, "tahoe")
    for n, (t, extra) in enumerate(
        [
            ("start-manifest", ""),
            ("start-deep-stats", ""),
            ("start-deep-size", ""),
            ("start-deep-check", ""),
            ("start-deep-check", "&repair=true"),
        ]
    ):
        handle = f"op-{n}-{os.urandom(4).hex()}"
        a, b = ask(both, "POST", f"/uri/{root}?t={t}&ophandle={handle}{extra}", b"")
        assert a.status == b.status == 302
        left, right = (_finished(url, handle) for url in both)
        assert left["finished"] and right["finished"]
        assert _sorted(left) == _sorted(right), t


def test_welcome_json_is_the_same(both: tuple[str, str]) -> None:
    left, right = (http("GET", url + "/?t=json").json() for url in both)
    assert left["introducers"] == right["introducers"]

    def servers(doc: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
        return {
            s["nodeid"]: (s["connection_status"], s["nickname"], s["version"], sorted(s))
            for s in doc["servers"]
        }

    assert servers(left) == servers(right)
