"""Reading a web API request as Tahoe does: arguments, paths and bodies.

Arguments come from the query string or from form fields (``multipart/form-data``
or url-encoded), the query first, as Tahoe's ``get_arg``. ``path_segments``
splits the raw path of ``/uri/CAP/a/b`` into percent-decoded names (a name may
hold an encoded ``%2F`` only to be refused: names never hold ``/``). Bodies are
read with limits stated before anything is read: ``spool_body`` streams an
upload into an unnamed temporary file in the node's ``tmp/`` (mode 0700), so a
large upload never sits in memory; ``small_body`` refuses (413) a body larger
than the caller allows, from its Content-Length or as it arrives.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, cast
from urllib.parse import parse_qsl, unquote

from aiohttp import BodyPartReader, web

from veil.adapters.web.wapi_errors import EMPTY_COMPONENT, WebError

CHUNK = 256 * 1024
MAX_JSON_BODY = 16 * 1024 * 1024  # children of mkdir-with-children, set-children
MAX_MUTABLE_BODY = 64 * 1024 * 1024  # SDMF/MDMF writes (the CLI's limit too)


@dataclass
class Args:
    """The query arguments and (for POSTs) the form fields of one request."""

    query: dict[str, str]
    fields: dict[str, str] = field(default_factory=dict)
    file: bytes | None = None  # the ``file`` field of a form upload
    file_name: str | None = None
    raw: bytes | None = None  # a url-encoded body, read to parse its fields

    def get(self, name: str, default: str | None = None) -> str | None:
        if name in self.query:
            return self.query[name]
        return self.fields.get(name, default)

    def text(self, name: str, default: str = "") -> str:
        value = self.get(name)
        return default if value is None else value

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.get(name)
        return default if value is None else boolean(value)

    @property
    def t(self) -> str:
        return self.text("t").strip()


def boolean(value: str) -> bool:
    low = value.lower()
    if low not in ("true", "t", "1", "false", "f", "0", "on", "off"):
        raise WebError(f"invalid boolean argument: {value!r}", 400)
    return low in ("true", "t", "1", "on")


def replace_arg(args: Args) -> bool | str:
    """``replace=``: true (default), false, or ``only-files``."""
    value = args.text("replace", "true")
    if value.lower() == "only-files":
        return "only-files"
    try:
        return boolean(value)
    except WebError:
        raise WebError(f"invalid replace= argument: {value!r}", 400) from None


def file_format(args: Args, default: str | None = "CHK") -> str | None:
    """``format=`` (CHK, SDMF, MDMF) or ``mutable=true`` (SDMF), as Tahoe's get_format."""
    value = args.get("format")
    if not value:
        return "SDMF" if args.flag("mutable") else default
    if value.upper() in ("CHK", "SDMF", "MDMF"):
        return value.upper()
    raise WebError(f"Unknown format: {value}, I know CHK, SDMF, MDMF", 400)


async def read_args(request: web.Request, *, max_form: int = MAX_MUTABLE_BODY) -> Args:
    """The arguments; a POST's form fields too (its ``file`` field kept as bytes)."""
    args = Args(dict(request.query))
    ctype = request.headers.get("Content-Type", "")
    if request.method != "POST":
        return args
    if ctype.startswith("multipart/form-data"):
        _check_length(request, max_form)
        reader = await request.multipart()
        total = 0
        async for part in reader:
            if not isinstance(part, BodyPartReader) or part.name is None:
                continue
            data = bytearray()
            while chunk := await part.read_chunk(CHUNK):
                total += len(chunk)
                if total > max_form:
                    raise too_large(max_form)
                data += chunk
            if part.name == "file":
                args.file, args.file_name = bytes(data), part.filename
            else:
                args.fields[part.name] = data.decode("utf-8", "replace")
    elif ctype.startswith("application/x-www-form-urlencoded"):
        # as Tahoe, the fields are parsed and the body stays readable as it came
        args.raw = await small_body(request, MAX_JSON_BODY)
        text = args.raw.decode("utf-8", "replace")
        args.fields.update(parse_qsl(text, keep_blank_values=True))
    return args


def too_large(limit: int) -> WebError:
    return WebError(f"request body too large: this call accepts at most {limit} bytes", 413)


def _check_length(request: web.Request, limit: int) -> None:
    if request.content_length is not None and request.content_length > limit:
        raise too_large(limit)


async def small_body(request: web.Request, limit: int) -> bytes:
    """The whole body, refused past ``limit`` bytes (before reading, when it says its size)."""
    _check_length(request, limit)
    data = bytearray()
    while chunk := await request.content.read(CHUNK):
        data += chunk
        if len(data) > limit:
            raise too_large(limit)
    return bytes(data)


async def body_of(request: web.Request, args: Args, limit: int) -> bytes:
    """The body of a request whose arguments were read (a url-encoded one was kept)."""
    if args.raw is not None:
        if len(args.raw) > limit:
            raise too_large(limit)
        return args.raw
    return await small_body(request, limit)


def spool_dir(node_dir: Path) -> Path:
    tmp = node_dir / "tmp"
    tmp.mkdir(mode=0o700, exist_ok=True)
    os.chmod(tmp, 0o700)
    return tmp


async def spool_body(request: web.Request, node_dir: Path) -> tuple[BinaryIO, int]:
    """The body in an unnamed temporary file (rewound) and its size."""
    f = cast(BinaryIO, tempfile.TemporaryFile(dir=spool_dir(node_dir)))  # noqa: SIM115
    size = 0
    try:
        while chunk := await request.content.read(CHUNK):
            f.write(chunk)
            size += len(chunk)
        f.seek(0)
    except BaseException:
        f.close()
        raise
    return f, size


def path_segments(raw_path: str, prefix: str) -> list[str]:
    """The percent-decoded segments after ``prefix`` (a trailing slash gives a last "")."""
    rest = raw_path[len(prefix) :]
    try:
        segments = [unquote(s, errors="strict") for s in rest.split("/")] if rest else []
    except UnicodeDecodeError:
        raise WebError("a name in the path is not UTF-8", 400, page=True) from None
    for seg in segments[:-1]:
        if not seg:
            raise WebError(EMPTY_COMPONENT, 400, page=True)
    if segments and segments[-1] == "":
        segments.pop()
    for seg in segments[1:]:
        if "/" in seg or seg in (".", ".."):
            raise WebError(f"{seg!r} is not a valid name in a directory", 400, page=True)
    return segments
