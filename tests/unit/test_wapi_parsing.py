"""The web API's request parsing and counting, without a server: Range headers,
path segments, arguments, deep-stats buckets, Tahoe's error statuses."""

from __future__ import annotations

import pytest

from veil.adapters.web.wapi_deep_stats import DeepStats
from veil.adapters.web.wapi_errors import WebError, status_and_text
from veil.adapters.web.wapi_files import _range, content_type
from veil.adapters.web.wapi_nodes import Node, child_json, file_json
from veil.adapters.web.wapi_requests import Args, boolean, file_format, path_segments, replace_arg
from veil.adapters.web.wapi_session import check_name
from veil.errors import CapabilityError, NotEnoughSharesError, UsageError
from veil.formats.dirnode import Entry


@pytest.mark.parametrize(
    ("header", "want"),
    [
        (None, None),
        ("bytes=0-9", (0, 9)),
        ("bytes=90-", (90, 99)),
        ("bytes=-10", (90, 99)),
        ("bytes=-500", (0, 99)),  # a suffix longer than the file: all of it
        ("bytes=5-1000", (5, 99)),
        ("bytes=0-1,5-6", (0, 1)),  # only the first range, as Tahoe
        ("bytes=9-3", None),  # last < first: ignored
        ("bytes=200-", None),  # open past the end: last < first, ignored (as Tahoe)
        ("items=0-1", None),
        ("bytes=a-b", None),
    ],
)
def test_range_header(header: str | None, want: tuple[int, int] | None) -> None:
    assert _range(header, 100) == want


def test_range_beyond_the_end_is_416() -> None:
    with pytest.raises(WebError) as e:
        _range("bytes=100-200", 100)
    assert e.value.code == 416 and str(e.value) == "First beyond end of file"


def test_path_segments() -> None:
    assert path_segments("/uri/URI%3ALIT%3Apa", "/uri/") == ["URI:LIT:pa"]
    assert path_segments("/uri/CAP/a/b%20c/", "/uri/") == ["CAP", "a", "b c"]
    for bad in ("/uri/CAP//x", "/uri/CAP/a%2Fb", "/uri/CAP/..", "/uri/CAP/%2E", "/uri/CAP/%ff"):
        with pytest.raises(WebError) as e:
            path_segments(bad, "/uri/")
        assert e.value.code == 400 and e.value.page


def test_arguments() -> None:
    args = Args({"t": " json ", "replace": "only-files"}, {"format": "mdmf"})
    assert args.t == "json" and replace_arg(args) == "only-files" and file_format(args) == "MDMF"
    assert file_format(Args({"mutable": "true"})) == "SDMF"
    assert file_format(Args({})) == "CHK" and file_format(Args({}), None) is None
    assert [boolean(v) for v in ("true", "T", "1", "on", "false", "off", "0")] == [
        True,
        True,
        True,
        True,
        False,
        False,
        False,
    ]
    for bad in (Args({"format": "zip"}), Args({"replace": "maybe"})):
        with pytest.raises(WebError):
            file_format(bad) if "format" in bad.query else replace_arg(bad)
    for name in (".", "..", "", "a/b"):
        with pytest.raises(WebError):
            check_name(name)
    assert check_name("Cafe\u0301") == "Caf\u00e9"  # NFC, as Tahoe's directories


def test_deep_stats_buckets_are_tahoes() -> None:
    stats = DeepStats()
    bounds = [stats.which_bucket(n) for n in (0, 1, 3, 4, 10, 11, 31, 32, 100, 101, 316, 317, 1000)]
    assert bounds == [
        (0, 0),
        (1, 3),
        (1, 3),
        (4, 10),
        (4, 10),
        (11, 31),
        (11, 31),
        (32, 100),
        (32, 100),
        (101, 316),
        (101, 316),
        (317, 1000),
        (317, 1000),
    ]


def test_json_of_a_literal_file_and_child() -> None:
    lit = Node.from_text("URI:LIT:nbswy3dp")
    assert file_json(lit, 5) == [
        "filenode",
        {"mutable": False, "format": "CHK", "size": 5, "ro_uri": "URI:LIT:nbswy3dp"},
    ]
    kind, fields = child_json(Node.from_entry(Entry("URI:LIT:nbswy3dp"), None, "x"))  # type: ignore[arg-type]
    assert kind == "filenode" and fields["metadata"] == {} and "verify_uri" not in fields


def test_statuses_are_tahoes() -> None:
    assert status_and_text(NotEnoughSharesError("2 of 3"))[0] == 410
    assert status_and_text(CapabilityError("bad cap")) == (400, "bad cap")
    assert status_and_text(UsageError("no"))[0] == 400
    assert content_type("a.png") == ("image/png", None)
    assert content_type("unknown")[0] == "text/plain"
