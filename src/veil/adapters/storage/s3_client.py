"""A synchronous face on an aiobotocore S3 client, for the S3 share backend.

The storage core (``veil.services.storage.server``) is synchronous and runs on
one worker thread; aiobotocore is asynchronous. ``S3Connection`` owns an event
loop on a thread of its own and one aiobotocore client on it: ``call`` runs
one S3 operation and waits for it, ``submit`` starts one and returns a future
(part uploads run while the next chunk arrives). The signer, retries and
checksums are botocore's; nothing here builds a request by hand.

Every failure reaches the caller as ``OSError`` (the ``Backend`` contract),
with one line naming the operation and S3's error code and never a secret:
``S3Missing`` for a key that is not there, ``S3Conflict`` when a conditional
write finds the object changed. ``requests`` counts the operations sent, by
name (the figures of docs/s3.md).

Credentials come from ``S3Credentials`` (read from ``private/`` by
``veil.adapters.node.running``); their ``repr`` shows no secret.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import threading
from collections import Counter, OrderedDict
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import aiohttp
from aiobotocore.config import AioConfig  # type: ignore[import-untyped]
from aiobotocore.session import get_session  # type: ignore[import-untyped]
from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")
MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound", "NoSuchUpload"})
CONFLICT_CODES = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})


class S3Error(OSError):
    """An S3 operation failed (unreachable endpoint, refused, server error)."""


class S3Missing(S3Error):
    """The object (or multipart upload) does not exist."""


class S3Conflict(S3Error):
    """A conditional write found the object changed since it was read."""


class S3BadRange(S3Error):
    """A ranged read starts beyond the object's end."""


@dataclass(frozen=True)
class S3Credentials:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(default="", repr=False)


@dataclass(frozen=True)
class S3Settings:
    """Where shares go: ``[storage] s3.*`` of tahoe.cfg plus the credentials."""

    endpoint: str  # empty: AWS's endpoint for the region
    bucket: str
    prefix: str
    region: str
    credentials: S3Credentials

    @property
    def key_prefix(self) -> str:
        """The prefix every key starts with: empty, or ending in one slash."""
        p = self.prefix.strip("/")
        return p + "/" if p else ""


_SESSION: list[Any] = []  # one botocore session: its service model loads once per process
_SESSION_LOCK = threading.Lock()


def _session() -> Any:
    with _SESSION_LOCK:
        if not _SESSION:
            _SESSION.append(get_session())
        return _SESSION[0]


def _describe(op: str, exc: BaseException) -> S3Error:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", "")) or str(
            exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
        )
        message = f"S3 {op} failed: {code} {err.get('Message', '')}".strip()
        if code in MISSING_CODES:
            return S3Missing(errno.ENOENT, message)
        if code in CONFLICT_CODES:
            return S3Conflict(errno.EAGAIN, message)
        if code in ("InvalidRange", "416"):
            return S3BadRange(errno.EINVAL, message)
        return S3Error(errno.EIO, message)
    # BotoCoreError's text names the endpoint URL and the fault, never credentials
    return S3Error(errno.EIO, f"S3 {op} failed: {type(exc).__name__}: {exc}")


class S3Connection:
    """One S3 client on a private event loop thread; safe to call from any thread."""

    def __init__(self, settings: S3Settings, *, connect_timeout: float = 5.0) -> None:
        self.settings = settings
        self.requests: Counter[str] = Counter()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="veil-s3", daemon=True)
        self._thread.start()
        self._stack = contextlib.AsyncExitStack()
        try:
            self._client: Any = self._wait(self._open(connect_timeout))
        except BaseException:
            self._stop_loop()
            raise

    async def _open(self, connect_timeout: float) -> Any:
        s = self.settings
        config = AioConfig(
            region_name=s.region or "us-east-1",
            connect_timeout=connect_timeout,
            read_timeout=60,
            retries={"max_attempts": 3, "mode": "standard"},
            s3={"addressing_style": "path" if s.endpoint else "auto"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            max_pool_connections=16,
        )
        client = _session().create_client(
            "s3",
            endpoint_url=s.endpoint or None,
            aws_access_key_id=s.credentials.access_key_id,
            aws_secret_access_key=s.credentials.secret_access_key,
            aws_session_token=s.credentials.session_token or None,
            config=config,
        )
        return await self._stack.enter_async_context(client)

    def _start(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        if self._loop.is_closed():
            coro.close()
            raise S3Error(errno.ESHUTDOWN, "the S3 connection is closed")
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def _wait(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._start(coro).result()

    async def acall(self, op: str, **kwargs: Any) -> Any:
        """Run one S3 operation (botocore's snake_case name) on the loop thread."""
        self.requests[op] += 1
        try:
            return await getattr(self._client, op)(**kwargs)
        except (ClientError, BotoCoreError, aiohttp.ClientError, OSError) as exc:
            raise _describe(op, exc) from None

    def call(self, op: str, **kwargs: Any) -> Any:
        """Run one S3 operation with ``Bucket`` filled in, and wait for its answer."""
        return self._wait(self.acall(op, Bucket=self.settings.bucket, **kwargs))

    def submit(self, op: str, **kwargs: Any) -> concurrent.futures.Future[Any]:
        """Start one S3 operation; its future raises what ``call`` would."""
        return self._start(self.acall(op, Bucket=self.settings.bucket, **kwargs))

    def get_bytes(self, key: str, byte_range: str | None = None) -> tuple[bytes, str, int]:
        """(body, ETag, the object's whole size) of an object or of a
        ``bytes=a-b`` range of it."""
        extra = {"Range": byte_range} if byte_range else {}

        async def fetch() -> tuple[bytes, str, int]:
            answer = await self.acall("get_object", Bucket=self.settings.bucket, Key=key, **extra)
            whole = str(answer.get("ContentRange", "")).rpartition("/")[2]
            try:
                async with answer["Body"] as body:
                    data = bytes(await body.read())
                size = int(whole) if whole.isdigit() else len(data)
                return data, str(answer.get("ETag", "")), size
            except (BotoCoreError, aiohttp.ClientError, OSError) as exc:
                raise _describe("get_object", exc) from None

        return self._wait(fetch())

    def list_keys(self, prefix: str) -> list[tuple[str, int]]:
        """(key, size) of every object under ``prefix``, all pages."""

        async def walk() -> list[tuple[str, int]]:
            out: list[tuple[str, int]] = []
            token: dict[str, str] = {}
            while True:
                page = await self.acall(
                    "list_objects_v2", Bucket=self.settings.bucket, Prefix=prefix, **token
                )
                out.extend((o["Key"], int(o["Size"])) for o in page.get("Contents", ()))
                if not page.get("IsTruncated"):
                    return out
                token = {"ContinuationToken": page["NextContinuationToken"]}

        return self._wait(walk())

    def close(self) -> None:
        """Cancel what is in flight (unfinished part uploads), close the client."""
        if self._thread.is_alive() and not self._loop.is_closed():
            with contextlib.suppress(Exception):
                self._wait(self._shutdown())
            self._stop_loop()

    async def _shutdown(self) -> None:
        current = asyncio.current_task()
        pending = [task for task in asyncio.all_tasks() if task is not current]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await self._stack.aclose()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


class LRU(Generic[K, V]):
    """A small thread-safe least-recently-used map."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._limit:
                self._items.popitem(last=False)

    def drop(self, key: K) -> None:
        with self._lock:
            self._items.pop(key, None)


def share_numbers(keys: list[tuple[str, int]]) -> frozenset[int]:
    """The share numbers that end the listed keys."""
    out = set()
    for key, _ in keys:
        name = key.rpartition("/")[2]
        if name.isdigit() and len(name) <= 3:
            out.add(int(name))
    return frozenset(out)
