"""Recovery passphrases: generated from a packaged wordlist, rated with zxcvbn.

``generate`` picks words from the EFF long wordlist that ``xkcdpass`` ships
(7776 words, about 12.9 bits each) with the system's secure random source.
``rate`` asks zxcvbn (Dropbox's estimator) how many guesses a passphrase
would take; ``require_strong`` refuses one below ``MIN_GUESSES_LOG10``
(the blob is open to offline guessing by whoever holds it, slowed only by
Argon2id) unless the user said ``--weak-passphrase-ok``.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from functools import lru_cache

from veil.formats.recovery_blob import RecoveryError

DEFAULT_WORDS = 7
MIN_WORDS = 6
MIN_GUESSES_LOG10 = 16.0  # ~53 bits: years of Argon2id guessing on many machines
RATED_CHARS = 100  # zxcvbn slows down on long input; the rest only adds strength


@lru_cache(maxsize=1)
def _wordlist() -> tuple[str, ...]:
    from xkcdpass import xkcd_password  # type: ignore[import-untyped]

    words = xkcd_password.generate_wordlist(
        wordfile=xkcd_password.locate_wordfile("eff-long"), min_length=3, max_length=9
    )
    return tuple(sorted(set(words)))


def generate(words: int = DEFAULT_WORDS) -> str:
    if words < MIN_WORDS:
        raise RecoveryError(f"a generated passphrase has at least {MIN_WORDS} words")
    wordlist = _wordlist()
    return " ".join(secrets.choice(wordlist) for _ in range(words))


def generated_bits(words: int = DEFAULT_WORDS) -> float:
    return words * math.log2(len(_wordlist()))


@dataclass(frozen=True)
class Rating:
    guesses_log10: float
    score: int  # zxcvbn's 0-4
    warning: str
    suggestions: tuple[str, ...]

    @property
    def strong(self) -> bool:
        return self.guesses_log10 >= MIN_GUESSES_LOG10


def rate(passphrase: str) -> Rating:
    from zxcvbn import zxcvbn  # type: ignore[import-untyped]

    result = zxcvbn(passphrase[:RATED_CHARS])
    feedback = result.get("feedback") or {}
    return Rating(
        float(result["guesses_log10"]),
        int(result["score"]),
        str(feedback.get("warning") or ""),
        tuple(str(s) for s in feedback.get("suggestions") or ()),
    )


def require_strong(passphrase: str, *, weak_ok: bool) -> Rating:
    if not passphrase:
        raise RecoveryError("the passphrase is empty")
    rating = rate(passphrase)
    if rating.strong or weak_ok:
        return rating
    why = rating.warning or "it would be guessed too soon by whoever gets the blob"
    raise RecoveryError(
        f"this passphrase is too weak (about 10^{rating.guesses_log10:.0f} guesses; "
        f"at least 10^{MIN_GUESSES_LOG10:.0f} needed): {why.rstrip('.')}",
        hint="press Enter at the prompt to take a generated one, or use "
        "--weak-passphrase-ok if you really mean it",
    )


__all__ = ["Rating", "generate", "rate", "require_strong"]
