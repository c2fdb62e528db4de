"""Directories through veil's web API on a running node: making them (plain, with
children, immutable, by path), linking, renaming, relinking, set-children,
replace=, and the deep operations (manifests, deep checks, /operations/)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from .wapi_gateway import http, running_gateway

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_gateway(tmp_path_factory.mktemp("wapi-dirs")) as (url, _node):
        yield url


def children(url: str, cap: str) -> dict[str, Any]:
    kids: dict[str, Any] = http("GET", f"{url}/uri/{cap}?t=json").json()[1]["children"]
    return kids


def test_make_directories(gateway: str) -> None:
    url = gateway
    plain = http("POST", url + "/uri?t=mkdir", b"")
    assert plain.status == 200 and plain.text.startswith("URI:DIR2:")
    mdmf = http("POST", url + "/uri?t=mkdir&format=MDMF", b"").text
    assert mdmf.startswith("URI:DIR2-MDMF:")
    assert http("PUT", url + "/uri?t=mkdir", b"").text.startswith("URI:DIR2:")
    refused = http("POST", url + "/uri?t=mkdir", b'{"x": 1}')
    assert refused.status == 400 and "mkdir-with-children" in refused.text
    file_cap = http("PUT", url + "/uri", b"x" * 3000).text
    kids = {"f": ["filenode", {"ro_uri": file_cap, "metadata": {"mtime": 7}}]}
    made = http("POST", url + "/uri?t=mkdir-with-children", json.dumps(kids).encode()).text
    assert children(url, made)["f"][1]["metadata"] == {"mtime": 7}
    frozen = http("POST", url + "/uri?t=mkdir-immutable", json.dumps(kids).encode()).text
    assert frozen.startswith("URI:DIR2-CHK:")
    listing = http("GET", f"{url}/uri/{frozen}?t=json").json()[1]
    assert listing["mutable"] is False and "rw_uri" not in listing
    assert http("PUT", f"{url}/uri/{frozen}/new", b"x").status == 400  # immutable
    redirect = http("POST", url + "/uri?t=mkdir&redirect_to_result=true", b"")
    assert redirect.status == 303 and redirect.headers["Location"].startswith("uri/URI%3ADIR2%3A")


def test_paths_make_intermediate_directories(gateway: str) -> None:
    url = gateway
    root = http("POST", url + "/uri?t=mkdir", b"").text
    assert http("PUT", f"{url}/uri/{root}/a/b/c.txt", b"deep").status == 201
    assert http("GET", f"{url}/uri/{root}/a/b/c.txt").body == b"deep"
    made = http("POST", f"{url}/uri/{root}/x/y?t=mkdir", b"")
    assert made.status == 200 and made.text.startswith("URI:DIR2:")
    assert set(children(url, root)) == {"a", "x"}
    assert http("PUT", f"{url}/uri/{root}/x/y?t=mkdir", b"").text == made.text
    sub = http("POST", f"{url}/uri/{root}?t=mkdir&name=sub&format=MDMF", b"").text
    assert sub.startswith("URI:DIR2-MDMF:")
    again = http("POST", f"{url}/uri/{root}?t=mkdir&name=sub&replace=false", b"")
    assert again.status == 409
    assert http("GET", f"{url}/uri/{root}/a/missing/deeper").status == 404


def test_link_rename_relink_unlink(gateway: str) -> None:
    url = gateway
    root = http("POST", url + "/uri?t=mkdir", b"").text
    other = http("POST", url + "/uri?t=mkdir", b"").text
    cap = http("PUT", url + "/uri", b"linked bytes").text
    assert http("POST", f"{url}/uri/{root}?t=uri&name=one&uri={quote(cap)}", b"").text == cap
    assert http("PUT", f"{url}/uri/{root}/two?t=uri", cap.encode()).text == cap
    refused = http("PUT", f"{url}/uri/{root}/two?t=uri&replace=false", cap.encode())
    assert refused.status == 409
    moved = http("POST", f"{url}/uri/{root}?t=rename&from_name=one&to_name=uno", b"")
    assert moved.text == "thing moved" and set(children(url, root)) == {"uno", "two"}
    meta = children(url, root)["uno"][1]["metadata"]
    assert set(meta["tahoe"]) == {"linkcrtime", "linkmotime"}
    relinked = http(
        "POST", f"{url}/uri/{root}?t=relink&from_name=uno&to_dir={quote(other)}&to_name=u", b""
    )
    assert relinked.text == "thing moved"
    assert set(children(url, root)) == {"two"} and set(children(url, other)) == {"u"}
    assert http("POST", f"{url}/uri/{root}?t=unlink&name=two", b"").text == "thing unlinked"
    assert children(url, root) == {}
    assert http("POST", f"{url}/uri/{root}?t=unlink&name=two", b"").status == 404
    assert http("DELETE", f"{url}/uri/{other}/u").text == cap
    http("POST", f"{url}/uri/{root}?t=mkdir&name=d", b"")
    only = http("PUT", f"{url}/uri/{root}/d?replace=only-files", b"x")
    assert only.status == 409  # a directory is not replaced by a file
    kids = {"s1": ["filenode", {"ro_uri": cap}], "s2": ["filenode", {"ro_uri": cap}]}
    done = http("POST", f"{url}/uri/{root}?t=set-children", json.dumps(kids).encode())
    assert done.text == "Okay so I did it." and set(children(url, root)) == {"d", "s1", "s2"}


def test_form_upload_into_a_directory(gateway: str) -> None:
    url = gateway
    root = http("POST", url + "/uri?t=mkdir", b"").text
    boundary = "b0undary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="up.txt"\r\n\r\n'
        f"uploaded by a form\r\n--{boundary}--\r\n"
    ).encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    answer = http("POST", f"{url}/uri/{root}?t=upload", body, headers)
    assert answer.status == 201 and http("GET", f"{url}/uri/{root}/up.txt").body == (
        b"uploaded by a form"
    )
    done = http("POST", f"{url}/uri/{root}?t=upload&when_done=/somewhere", body, headers)
    assert done.status == 302 and done.headers["Location"] == "/somewhere"
    away = http("POST", f"{url}/uri/{root}?t=upload&when_done=http://elsewhere/", body, headers)
    assert away.status == 200  # never a redirect to another site


def test_manifests_and_deep_checks(gateway: str) -> None:
    url = gateway
    root = http("POST", url + "/uri?t=mkdir", b"").text
    http("PUT", f"{url}/uri/{root}/big.bin", b"b" * 20_000)
    http("PUT", f"{url}/uri/{root}/sub/small.txt", b"small")
    http("PUT", f"{url}/uri/{root}/sub/m?format=SDMF", b"mutable")
    http("PUT", f"{url}/uri/{root}/loop?t=uri", root.encode())  # a directory inside itself
    lines = [
        json.loads(x)
        for x in http("POST", f"{url}/uri/{root}?t=stream-manifest", b"").text.splitlines()
    ]
    paths = [tuple(x["path"]) for x in lines[:-1]]
    assert paths == [(), ("big.bin",), ("loop",), ("sub",), ("sub", "m"), ("sub", "small.txt")]
    stats = lines[-1]["stats"]
    assert (stats["count-files"], stats["count-directories"], stats["count-mutable-files"]) == (
        3,
        3,
        1,
    )
    checked = http("POST", f"{url}/uri/{root}?t=stream-deep-check&add-lease=true", b"").text
    rows = [json.loads(x) for x in checked.splitlines()]
    assert all(r["check-results"]["results"]["healthy"] for r in rows[:-1])
    repaired = http("POST", f"{url}/uri/{root}?t=stream-deep-check&repair=true", b"").text
    first = json.loads(repaired.splitlines()[0])
    assert first["check-and-repair-results"]["repair-attempted"] is False
    one = http("POST", f"{url}/uri/{root}/big.bin?t=check&verify=true&output=JSON", b"").json()
    assert one["results"]["healthy"] and one["results"]["count-shares-good"] == 3
    page = http("POST", f"{url}/uri/{root}/big.bin?t=check", b"")
    assert page.status == 200 and "Healthy" in page.text
    start = http("POST", f"{url}/uri/{root}?t=start-manifest&ophandle=op1", b"")
    assert start.status == 302 and start.headers["Location"].startswith("/operations/op1")
    deadline = time.monotonic() + 30
    while True:
        status = http("GET", f"{url}/operations/op1?t=status&output=JSON").json()
        if status["finished"] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert status["finished"] and len(status["manifest"]) == 6
    assert http("GET", f"{url}/operations/nope?t=status&output=JSON").status == 404
    assert http("POST", f"{url}/uri/{root}?t=start-manifest", b"").status == 400
