"""The one exception root of veil, and the tree under it.

Every error a user can cause or meet is a ``VeilError``; the command line turns
it into one line of text (``veil.frontends.cli.main``). Anything else that
escapes is a bug in veil. A message and its hint never hold a cap or a key:
messages name caps through ``veil.formats.cap_display``, and as a second
line of defence every ``VeilError`` scrubs its own text when it is made, so
``str``, ``repr`` and ``args`` stay clean wherever the error travels.

    VeilError
    ├── UsageError                 the user asked for something malformed
    │   └── CapabilityError        a cap string that cannot be parsed
    ├── ConfigError                a node directory or setting is wrong
    ├── FormatError                bytes that do not follow a Tahoe format
    │   └── IntegrityError         hashes do not match: corruption or forgery
    ├── StorageError               the storage server core refused a request
    │   ├── NotFound               no such share / bucket / upload
    │   ├── Unauthorized           wrong swissnum or upload secret
    │   ├── Conflict               data differs from what is already written
    │   ├── BadRequest             malformed request (ranges, secrets, bodies)
    │   ├── NotAllowed             operation not allowed in this state
    │   └── ServerFull             not enough space, or the server is read-only
    ├── RemoteError                a storage server misbehaved or is unreachable
    │   └── ServerUnavailable      cannot connect, timed out, TLS pin mismatch
    ├── UploadError                an upload could not be completed
    │   ├── UnhappinessError       too few servers to reach shares.happy
    │   └── UncoordinatedWriteError  another writer changed a mutable file meanwhile
    └── DownloadError              a file could not be rebuilt
        └── NotEnoughSharesError   fewer than k good shares were found
"""

from __future__ import annotations


class VeilError(Exception):
    """Root of every error veil raises on purpose. ``str()`` is for users."""

    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        from veil.formats.cap_display import scrub  # imported late: it imports this module

        super().__init__(scrub(str(message)))
        if hint is not None:
            self.hint = scrub(hint)


class UsageError(VeilError):
    """The user asked for something malformed or impossible."""


class CapabilityError(UsageError):
    """A capability string that veil cannot parse."""


class ConfigError(VeilError):
    """A node directory, configuration file or setting is wrong."""


class FormatError(VeilError):
    """Bytes that do not follow the Tahoe-LAFS format they claim to."""


class IntegrityError(FormatError):
    """A hash does not match: the data is corrupt or forged."""


class StorageError(VeilError):
    """The storage server core refused a request. ``status`` is the HTTP code."""

    status = 400


class NotFound(StorageError):
    status = 404


class Unauthorized(StorageError):
    status = 401


class Conflict(StorageError):
    status = 409


class BadRequest(StorageError):
    status = 400


class NotAllowed(StorageError):
    status = 405


class ServerFull(StorageError):
    status = 507


class QuotaExceeded(StorageError):
    """New shares refused because the account storing them is over its quota
    (``veil.services.storage.accounts``). Sent as HTTP 507 whose body starts with
    ``MARK``, so a client tells it from a full server."""

    status = 507
    MARK = "over quota"


class RemoteError(VeilError):
    """A storage server answered in a way the protocol does not allow."""


class ServerUnavailable(RemoteError):
    """A storage server could not be reached, timed out, or failed its TLS pin."""


class UploadError(VeilError):
    """An upload could not be completed; nothing was made readable."""


class UnhappinessError(UploadError):
    """Too few servers accepted shares to satisfy ``shares.happy``."""


class UncoordinatedWriteError(UploadError):
    """Another writer changed a mutable file at the same time."""


class DownloadError(VeilError):
    """A file could not be rebuilt from the shares found."""


class NotEnoughSharesError(DownloadError):
    """Fewer than k verified shares could be found."""
