"""A recovery blob made from a document, and opened back into one.

``make_blob`` seals a ``RecoveryDocument`` under the passphrase (and, with
``friends=(k, n)``, a fresh friends' secret split into ``n`` SLIP-39
shares, which it returns). ``open_blob`` checks the shares first (too few,
from another set, mistyped: each one line, before the slow key derivation),
then tries the known parameter sets. Whoever holds the blob and fewer than
``k`` shares learns nothing; with the passphrase alone, nothing either.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from veil.formats import recovery_blob, recovery_shares
from veil.formats.recovery_blob import DEFAULT_KDF, KDF_SETS, KdfParams, Opened, RecoveryError
from veil.formats.recovery_document import RecoveryDocument


@dataclass
class MadeBlob:
    blob: bytes
    mnemonics: list[str]  # the friends' shares (empty without --friends)

    def __repr__(self) -> str:
        return f"MadeBlob({len(self.blob)} bytes, {len(self.mnemonics)} shares)"


def make_blob(
    doc: RecoveryDocument,
    passphrase: str,
    *,
    friends: tuple[int, int] | None = None,
    kdf: KdfParams = DEFAULT_KDF,
) -> MadeBlob:
    secret: bytes | None = None
    mnemonics: list[str] = []
    if friends is not None:
        secret, mnemonics = recovery_shares.split(*friends)
    blob = recovery_blob.encrypt(
        doc.to_body(),
        passphrase.encode("utf-8"),
        kdf=kdf,
        friends_secret=secret,
        friends=friends,
    )
    return MadeBlob(blob, mnemonics)


def open_blob(
    data: bytes,
    passphrase: str | Callable[[], str],
    shares: list[str],
    *,
    kdfs: tuple[KdfParams, ...] = KDF_SETS,
) -> tuple[RecoveryDocument, Opened]:
    """The document in a blob file's bytes (raw or text form). ``passphrase`` may be
    a function, asked only once the blob and shares are known to be whole."""
    blob = recovery_blob.read_blob(data)
    secret = recovery_shares.combine(shares) if shares else None
    if callable(passphrase):
        passphrase = passphrase()
    if not passphrase:
        raise RecoveryError("the passphrase is empty")
    opened = recovery_blob.decrypt(
        blob, passphrase.encode("utf-8"), friends_secret=secret, kdfs=kdfs
    )
    return RecoveryDocument.from_body(opened.body), opened


__all__ = ["MadeBlob", "make_blob", "open_blob"]
