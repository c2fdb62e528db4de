"""Friends' shares of a recovery blob's key: SLIP-39 mnemonics (``shamir-mnemonic``).

``split(k, n)`` makes a fresh 32-byte friends' secret and ``n`` SLIP-39
shares of it (one group, threshold ``k``; word lists with a checksum that a
person can copy by hand); any ``k`` give the secret back and fewer reveal
nothing about it. The secret alone opens nothing: the blob's key also needs
the passphrase (``veil.formats.recovery_blob.derive_key``). A share file is
the words on one line, padded with spaces to ``SHARE_FILE_BYTES`` so every
share file has the same size. Error messages never quote a share's words.
Pure: no I/O.
"""

from __future__ import annotations

import nacl.utils
import shamir_mnemonic  # type: ignore[import-untyped]
from shamir_mnemonic.share import Share  # type: ignore[import-untyped]

from veil.formats.recovery_blob import RecoveryError

SECRET_BYTES = 32
SHARE_FILE_BYTES = 512
MAX_SHARES = 16  # SLIP-39's limit for one group


def parse_friends(text: str) -> tuple[int, int]:
    """``K-of-N`` (e.g. ``3-of-5``) as (k, n)."""
    k_text, sep, n_text = text.partition("-of-")
    if not sep or not k_text.isdigit() or not n_text.isdigit():
        raise RecoveryError(f"--friends {text!r}: write it as K-of-N, e.g. 3-of-5")
    k, n = int(k_text), int(n_text)
    if not 1 <= k <= n <= MAX_SHARES:
        raise RecoveryError(
            f"--friends {text}: need 1 <= K <= N <= {MAX_SHARES}",
            hint="e.g. --friends 2-of-3 or 3-of-5",
        )
    return k, n


def split(k: int, n: int) -> tuple[bytes, list[str]]:
    """A new friends' secret and its ``n`` mnemonics, any ``k`` of which rebuild it."""
    secret = nacl.utils.random(SECRET_BYTES)
    (mnemonics,) = shamir_mnemonic.generate_mnemonics(
        1, [(k, n)], secret, b"", extendable=True, iteration_exponent=0
    )
    return secret, list(mnemonics)


def share_file_text(mnemonic: str) -> str:
    line = mnemonic.strip() + "\n"
    return line + " " * (SHARE_FILE_BYTES - 1 - len(line)) + "\n"


def _words(text: str) -> str:
    return " ".join(text.lower().split())


def combine(texts: list[str]) -> bytes:
    """The friends' secret from share texts (files or typed words)."""
    mnemonics = list(dict.fromkeys(_words(t) for t in texts if t.strip()))
    shares = []
    for number, words in enumerate(mnemonics, 1):
        try:
            shares.append(Share.from_mnemonic(words))
        except shamir_mnemonic.MnemonicError:
            raise RecoveryError(
                f"share {number} is not a valid share (a word is mistyped or missing)",
                hint="compare it with the paper copy word by word",
            ) from None
    if not shares:
        raise RecoveryError("no share was given", hint="--share FILE (or --share - to type one)")
    first = shares[0]
    if any(s.common_parameters() != first.common_parameters() for s in shares):
        raise RecoveryError(
            "these shares come from different sets; all must belong to this blob's set",
            hint="ask each friend for the share they hold for this blob",
        )
    threshold = first.member_threshold
    if len(shares) < threshold:
        raise RecoveryError(
            f"{threshold} shares are needed to open this blob; {len(shares)} given",
            hint="ask one more friend for theirs",
        )
    try:
        secret: bytes = shamir_mnemonic.combine_mnemonics(mnemonics[:threshold])
        return secret
    except shamir_mnemonic.MnemonicError:
        raise RecoveryError(
            "these shares do not fit together (two copies of one share, or from different sets)",
            hint="each share must be a different friend's, of this blob's set",
        ) from None


__all__ = ["SHARE_FILE_BYTES", "combine", "parse_friends", "share_file_text", "split"]
