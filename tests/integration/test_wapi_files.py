"""Files through veil's web API on a running node: PUT /uri, GET with Range,
filename= and save=, ETag, the ?uri= redirect, mutable files and /file/."""

from __future__ import annotations

import os
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from .wapi_gateway import http, running_gateway

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_gateway(tmp_path_factory.mktemp("wapi-files")) as (url, _node):
        yield url


@pytest.fixture(scope="module")
def big(gateway: str) -> tuple[str, bytes]:
    data = os.urandom(300_000)
    answer = http("PUT", gateway + "/uri", data)
    assert answer.status == 200 and answer.text.startswith("URI:CHK:")
    return answer.text, data


def test_put_then_get_gives_the_bytes(gateway: str, big: tuple[str, bytes]) -> None:
    cap, data = big
    answer = http("GET", f"{gateway}/uri/{cap}")
    assert answer.status == 200 and answer.body == data
    assert answer.headers["Content-Type"] == "text/plain"
    assert answer.headers["Accept-Ranges"] == "bytes"
    assert answer.headers["Content-Length"] == str(len(data))
    small = http("PUT", gateway + "/uri", b"hello\n")
    assert small.text == "URI:LIT:nbswy3dpbi"  # the same LIT cap Tahoe gives


def test_range_requests(gateway: str, big: tuple[str, bytes]) -> None:
    cap, data = big
    part = http("GET", f"{gateway}/uri/{cap}", headers={"Range": "bytes=1000-1999"})
    assert part.status == 206 and part.body == data[1000:2000]
    assert part.headers["Content-Range"] == f"bytes 1000-1999/{len(data)}"
    tail = http("GET", f"{gateway}/uri/{cap}", headers={"Range": "bytes=-10"})
    assert tail.status == 206 and tail.body == data[-10:]
    open_end = http("GET", f"{gateway}/uri/{cap}", headers={"Range": "bytes=299990-"})
    assert open_end.body == data[299990:]
    beyond = http("GET", f"{gateway}/uri/{cap}", headers={"Range": "bytes=400000-500000"})
    assert beyond.status == 416 and beyond.text == "First beyond end of file"
    # an open range past the end does not parse (last < first), so, as Tahoe, it is ignored
    assert http("GET", f"{gateway}/uri/{cap}", headers={"Range": "bytes=400000-"}).status == 200
    ignored = http("GET", f"{gateway}/uri/{cap}", headers={"Range": "lines=1-2"})
    assert ignored.status == 200 and ignored.body == data


def test_filename_save_and_etag(gateway: str, big: tuple[str, bytes]) -> None:
    cap, _ = big
    answer = http("GET", f"{gateway}/uri/{cap}?filename=photo.png&save=true")
    assert answer.headers["Content-Type"] == "image/png"
    assert answer.headers["Content-Disposition"] == 'attachment; filename="photo.png"'
    etag = answer.headers["ETag"]
    assert etag.endswith("-") and len(etag) == 27
    again = http("GET", f"{gateway}/uri/{cap}", headers={"If-None-Match": etag})
    assert again.status == 304 and again.body == b""
    named = http("GET", f"{gateway}/file/{cap}/notes.txt")
    assert named.status == 200 and named.headers["Content-Type"] == "text/plain"
    named = http("GET", f"{gateway}/named/{cap}/page.html")
    assert named.headers["Content-Type"] == "text/html"
    head = http("HEAD", f"{gateway}/uri/{cap}")
    assert head.status == 200 and head.body == b"" and head.headers["Content-Length"] == "300000"


def test_uri_redirect(gateway: str, big: tuple[str, bytes]) -> None:
    cap, _ = big
    answer = http("GET", f"{gateway}/uri?uri={quote(cap)}")
    assert answer.status == 302
    assert answer.headers["Location"] == f"{gateway}/uri/{quote(cap, safe='')}"
    assert http("GET", answer.headers["Location"]).status == 200
    assert http("GET", f"{gateway}/uri").status == 400


def test_json_uri_readonly_uri_of_a_file(gateway: str, big: tuple[str, bytes]) -> None:
    cap, data = big
    kind, fields = http("GET", f"{gateway}/uri/{cap}?t=json").json()
    assert kind == "filenode" and fields["size"] == len(data) and fields["ro_uri"] == cap
    assert fields["verify_uri"].startswith("URI:CHK-Verifier:") and "rw_uri" not in fields
    assert http("GET", f"{gateway}/uri/{cap}?t=uri").text == cap
    assert http("GET", f"{gateway}/uri/{cap}?t=readonly-uri").text == cap
    assert http("GET", f"{gateway}/uri/{cap}?t=info").status == 200
    bad = http("GET", f"{gateway}/uri/{cap}?t=nonsense")
    assert bad.status == 400 and bad.text == "GET file: bad t=nonsense"


@pytest.mark.parametrize("fmt", ["SDMF", "MDMF"])
def test_mutable_files(gateway: str, fmt: str) -> None:
    made = http("PUT", f"{gateway}/uri?format={fmt}", b"first version")
    assert made.status == 200 and made.text.startswith(f"URI:{'SSK' if fmt == 'SDMF' else 'MDMF'}:")
    cap = made.text
    assert http("GET", f"{gateway}/uri/{cap}").body == b"first version"
    assert http("PUT", f"{gateway}/uri/{cap}", b"second version").status == 200
    assert http("GET", f"{gateway}/uri/{cap}").body == b"second version"
    assert http("PUT", f"{gateway}/uri/{cap}?offset=7", b"VERSION").status == 200
    assert http("GET", f"{gateway}/uri/{cap}").body == b"second VERSION"
    kind, fields = http("GET", f"{gateway}/uri/{cap}?t=json").json()
    assert (kind, fields["mutable"], fields["format"], fields["size"]) == (
        "filenode",
        True,
        fmt,
        14,
    )
    ro = fields["ro_uri"]
    refused = http("PUT", f"{gateway}/uri/{ro}", b"nope")
    assert refused.status == 400 and "read-only cap" in refused.text
    assert http("GET", f"{gateway}/uri/{cap}").body == b"second VERSION"
    assert http("GET", f"{gateway}/uri/{cap}", headers={"Range": "bytes=0-5"}).body == b"second"


def test_mutable_flag_and_form_upload(gateway: str) -> None:
    made = http("PUT", f"{gateway}/uri?mutable=true", b"m")
    assert made.text.startswith("URI:SSK:")
    body, ctype = _form({"file": ("a.bin", b"form bytes")})
    up = http("POST", f"{gateway}/uri?t=upload", body, {"Content-Type": ctype})
    assert up.status == 200 and http("GET", f"{gateway}/uri/{up.text}").body == b"form bytes"


def _form(fields: dict[str, tuple[str, bytes] | str]) -> tuple[bytes, str]:
    boundary = "veil-test-boundary"
    out = b""
    for name, value in fields.items():
        out += f"--{boundary}\r\n".encode()
        if isinstance(value, tuple):
            out += (
                (
                    f'Content-Disposition: form-data; name="{name}"; filename="{value[0]}"\r\n\r\n'
                ).encode()
                + value[1]
                + b"\r\n"
            )
        else:
            out += f'Content-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    out += f"--{boundary}--\r\n".encode()
    return out, f"multipart/form-data; boundary={boundary}"


def test_statistics(gateway: str) -> None:
    answer = http("GET", f"{gateway}/statistics?t=json")
    assert answer.status == 200 and "stats" in answer.json()


def test_status_lists_uploads_and_downloads(gateway: str) -> None:
    data = os.urandom(200_000)
    cap = http("PUT", gateway + "/uri", data).text
    http("GET", f"{gateway}/uri/{cap}")
    status = http("GET", gateway + "/status?t=json").json()
    assert status["active"] == []
    recent = status["recent"][:2]
    assert [r["type"] for r in recent] == ["download", "upload"]
    for row in recent:
        assert row["status"] == "Finished" and row["progress"] == 1.0
        assert row["total-size"] == len(data) and len(row["storage-index-string"]) == 26
    assert "URI:" not in http("GET", gateway + "/status?t=json").text
