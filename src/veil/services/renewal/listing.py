"""The verify-cap list of a tree, kept on the grid for a renewal cap's holder.

``collect`` walks a tree the owner can read and gathers the verify cap of
every object in it (directories and files, each once; LIT objects hold their
data in the cap and need nothing). The list is an immutable file of one cap
per line — no names, no sizes, no read caps (LIT-sized lists are padded
to be stored as CHK files). ``publish`` uploads a new list and
points the renewal cap's mutable pointer at it (the owner's write cap is
needed for that); each backup calls it to add its new snapshot.
``read`` is the holder's side: pointer → list → verify caps.
"""

from __future__ import annotations

from veil.errors import CapabilityError, IntegrityError
from veil.formats import cap_display
from veil.formats import mutable_caps as mc
from veil.formats.caps import CHKReadCap, CHKVerifyCap, LiteralCap, UnknownCap, parse_cap
from veil.formats.params import LIT_SIZE_THRESHOLD
from veil.services.directories import Directories
from veil.services.immutable.downloader import Downloader
from veil.services.immutable.uploader import Uploader
from veil.services.mutable.files import MutableFiles

HEADER = "veil verify-cap list v1"
VerifyCap = CHKVerifyCap | mc.SSKVerifyCap | mc.DirCap


def verify_cap_of(cap: mc.FileCap | mc.DirCap) -> VerifyCap | None:
    """The verify cap of an object on the grid (None for LIT objects)."""
    file = cap.file if isinstance(cap, mc.DirCap) else cap
    if isinstance(file, LiteralCap):
        return None
    weak = mc.attenuate(cap, verify=True)
    assert isinstance(weak, CHKVerifyCap | mc.SSKVerifyCap | mc.DirCap)
    return weak


async def collect(dirs: Directories, root: mc.DirCap) -> list[VerifyCap]:
    """Verify caps of everything reachable from ``root`` (root first)."""
    out: list[VerifyCap] = []
    seen: set[bytes] = set()
    todo: list[mc.FileCap | mc.DirCap] = [root]
    while todo:
        node = todo.pop(0)
        si = cap_display.storage_index(node)
        if si is None or si in seen:
            continue
        seen.add(si)
        v = verify_cap_of(node)
        if v is not None:
            out.append(v)
        if isinstance(node, mc.DirCap):
            for entry in (await dirs.children(node)).values():
                child = mc.parse_any(entry.rw_cap or entry.ro_cap or "")
                if not isinstance(child, UnknownCap):
                    todo.append(child)
    return out


def pack(caps: list[VerifyCap]) -> bytes:
    text = ("\n".join([HEADER, *(c.to_string() for c in caps)]) + "\n").encode()
    return text.ljust(LIT_SIZE_THRESHOLD + 1, b"\n")  # a CHK file: it has leases to renew


def unpack(data: bytes) -> list[VerifyCap]:
    lines = data.decode("utf-8", "replace").splitlines()
    if not lines or lines[0] != HEADER:
        raise IntegrityError("the verify-cap list is damaged (no header)")
    out: list[VerifyCap] = []
    for line in lines[1:]:
        if not line:
            continue
        cap = mc.parse_any(line)
        if not isinstance(cap, CHKVerifyCap | mc.SSKVerifyCap | mc.DirCap) or (
            isinstance(cap, mc.DirCap) and not isinstance(cap.file, CHKVerifyCap | mc.SSKVerifyCap)
        ):
            raise CapabilityError("the verify-cap list holds something other than verify caps")
        out.append(cap)
    return out


async def publish(
    uploader: Uploader,
    files: MutableFiles,
    pointer: mc.SSKWriteCap | None,
    caps: list[VerifyCap],
) -> tuple[mc.SSKWriteCap, CHKReadCap]:
    """Upload the list and point ``pointer`` at it (a new pointer when None);
    returns (pointer write cap, list read cap). The holder renews the list and
    the pointer themselves too (``renew``), so neither needs to be on the list."""
    listed = await uploader.upload_bytes(pack(caps))
    final = listed.cap
    if not isinstance(final, CHKReadCap):
        raise IntegrityError("the verify-cap list is too small to be stored as a CHK file")
    text = final.to_string().encode()
    if pointer is None:
        pointer = await files.create(text)
    else:
        await files.overwrite(pointer, text)
    return pointer, final


async def read(
    files: MutableFiles, downloader: Downloader, pointer: mc.SSKReadCap
) -> tuple[CHKReadCap, list[VerifyCap]]:
    """The holder's side: the current list's read cap and its verify caps."""
    text = (await files.read(pointer)).decode("ascii", "replace").strip()
    cap = parse_cap(text)
    if not isinstance(cap, CHKReadCap):
        raise IntegrityError("the renewal pointer does not hold a verify-cap list")
    return cap, unpack(await downloader.download_bytes(cap))
