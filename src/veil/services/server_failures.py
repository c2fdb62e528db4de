"""Why servers failed an upload or a download, in words for users.

Kinds that change what the user should do get their own error types:
``PinMismatch`` (the server presented another certificate than its NURL
pins: a wrong ``servers.yaml`` entry, a re-keyed server, or an attack) and
``Stalled`` (no progress while the other servers answered). ``ServerFull``
(from ``veil.errors``) is a server refusing for lack of space, ``QuotaExceeded``
one refusing because our account there is over its quota. ``summary``
turns the failures of one operation into the clause its error message
leads with, so "the servers are full" or "pin mismatch" is said, not only
"too few shares".
"""

from __future__ import annotations

from collections.abc import Sequence

from veil.errors import QuotaExceeded, ServerFull, ServerUnavailable

PIN_MISMATCH = "presented the wrong TLS certificate (pin mismatch)"


class PinMismatch(ServerUnavailable):
    """A server's TLS certificate is not the one its NURL pins."""


class Stalled(ServerUnavailable):
    """A call given up because it made no progress while others finished."""


def describe(exc: BaseException) -> str:
    """One line for a failure, never empty (a bare ``TimeoutError`` has no text)."""
    text = str(exc).strip()
    if text:
        return text
    return "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__


def entry(server_id: str, exc: BaseException) -> str:
    """``v0-abcdefghi: reason``: one failure as listed in hints."""
    return f"{server_id[:12]}: {describe(exc)}"


def summary(errors: Sequence[BaseException], asked: int) -> str:
    """What went wrong with the servers, leading clause of an error ("" if nothing).

    ``asked`` is how many servers the operation tried.
    """
    full = sum(isinstance(e, ServerFull) for e in errors)
    quota = [e for e in errors if isinstance(e, QuotaExceeded)]
    pins = sum(isinstance(e, PinMismatch) for e in errors)
    stalled = sum(isinstance(e, Stalled | TimeoutError) for e in errors)
    parts = []
    if quota:
        parts.append(f"{len(quota)} of {asked} server(s) refused: {describe(quota[0])}")
    if full:
        parts.append(f"the servers are full: {full} of {asked} server(s) refused for lack of space")
    if pins:
        parts.append(f"{pins} of {asked} server(s) {PIN_MISMATCH}")
    if stalled:
        parts.append(f"{stalled} of {asked} server(s) stopped answering")
    return "; ".join(parts)
