"""What a web API path names, and its JSON in Tahoe 1.20's shapes.

A ``Node`` is a cap (parsed by ``veil.formats.mutable_caps``), and, when it was
reached through a directory, that parent, the child's name and the edge
metadata. ``file_json``/``dir_json``/``child_json`` give the ``t=json`` answers
field for field as Tahoe's web/filenode.py and web/directory.py do
(``["filenode", {...}]``, ``["dirnode", {...}]``, ``["unknown", {...}]``; a
mutable file's size only when it was read, as Tahoe). Tahoe writes them with
``json.dumps(data, indent=1) + "\\n"`` as ``text/plain``; so does ``json_text``.
Not for reading or writing the grid: that is ``wapi_session``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from veil.formats import base32, cap_display
from veil.formats import mutable_caps as mc
from veil.formats.caps import CHKReadCap, CHKVerifyCap, LiteralCap, UnknownCap
from veil.formats.dirnode import Entry


@dataclass
class Node:
    cap: mc.AnyCap
    parent: mc.DirCap | None = None
    name: str | None = None
    metadata: dict[str, Any] | None = None

    @classmethod
    def from_text(cls, text: str) -> Node:
        return cls(mc.parse_any(text))

    @classmethod
    def from_entry(cls, entry: Entry, parent: mc.DirCap, name: str) -> Node:
        cap = mc.parse_any(entry.rw_cap or entry.ro_cap or "")
        if isinstance(cap, UnknownCap) and entry.rw_cap and entry.ro_cap:
            cap = mc.parse_any(entry.ro_cap)  # a write cap of a kind we do not know
        return cls(cap, parent, name, entry.metadata)

    # -- kinds ----------------------------------------------------------------------

    @property
    def is_dir(self) -> bool:
        return isinstance(self.cap, mc.DirCap)

    @property
    def is_unknown(self) -> bool:
        return isinstance(self.cap, UnknownCap)

    @property
    def file(self) -> mc.FileCap | UnknownCap:
        return self.cap.file if isinstance(self.cap, mc.DirCap) else self.cap

    @property
    def is_mutable(self) -> bool:
        return isinstance(self.file, mc._SSKCap)

    @property
    def is_readonly(self) -> bool:
        return not isinstance(self.file, mc.SSKWriteCap)

    @property
    def format(self) -> str:
        f = self.file
        if isinstance(f, mc._SSKCap):
            return "MDMF" if f.mdmf else "SDMF"
        return "CHK"

    # -- caps -----------------------------------------------------------------------

    def uri(self) -> str:
        return self.cap.to_string()

    def write_uri(self) -> str | None:
        return self.cap.to_string() if not self.is_readonly and not self.is_unknown else None

    def readonly_uri(self) -> str | None:
        if isinstance(self.cap, UnknownCap):
            return None
        return mc.attenuate(self.cap).to_string()

    def verify_uri(self) -> str | None:
        if isinstance(self.cap, UnknownCap) or isinstance(self.file, LiteralCap):
            return None
        return mc.attenuate(self.cap, verify=True).to_string()

    def storage_index(self) -> bytes | None:
        return None if self.is_unknown else cap_display.storage_index(self.cap)

    def storage_index_text(self) -> str:
        si = self.storage_index()
        return base32.b2a(si) if si else ""

    def known_size(self) -> int | None:
        """The size told by the cap itself (immutable files); None for mutable ones."""
        f = self.file
        if isinstance(f, LiteralCap | CHKReadCap | CHKVerifyCap):
            return int(f.size)
        return None


def _file_fields(node: Node, size: int | None) -> dict[str, Any]:
    fields: dict[str, Any] = {"mutable": node.is_mutable, "format": node.format}
    if size is not None:
        fields["size"] = size
    return fields


def file_json(node: Node, size: int | None) -> list[Any]:
    """``GET /uri/FILECAP?t=json`` (and a file reached by a path)."""
    fields = _file_fields(node, size)
    if ro := node.readonly_uri():
        fields["ro_uri"] = ro
    if rw := node.write_uri():
        fields["rw_uri"] = rw
    if verify := node.verify_uri():
        fields["verify_uri"] = verify
    if node.metadata is not None:
        fields["metadata"] = node.metadata
    return ["filenode", fields]


def child_json(child: Node) -> list[Any]:
    """One entry of a directory's ``children`` (Tahoe's ``_directory_json_metadata``)."""
    if child.is_unknown:
        kind, fields = "unknown", dict[str, Any]()
    elif child.is_dir:
        kind, fields = "dirnode", {"mutable": child.is_mutable}
    else:
        kind, fields = "filenode", _file_fields(child, child.known_size())
    fields["metadata"] = child.metadata or {}
    if child.is_unknown:
        text = child.cap.to_string()
        fields["ro_uri"] = text
        return [kind, fields]
    if rw := child.write_uri():
        fields["rw_uri"] = rw
    if ro := child.readonly_uri():
        fields["ro_uri"] = ro
    if verify := child.verify_uri():
        fields["verify_uri"] = verify
    return [kind, fields]


def dir_json(node: Node, children: dict[str, Entry]) -> list[Any]:
    assert isinstance(node.cap, mc.DirCap)
    kids = {
        name: child_json(Node.from_entry(entry, node.cap, name)) for name, entry in children.items()
    }
    contents: dict[str, Any] = {"children": kids}
    if ro := node.readonly_uri():
        contents["ro_uri"] = ro
    if rw := node.write_uri():
        contents["rw_uri"] = rw
    if verify := node.verify_uri():
        contents["verify_uri"] = verify
    contents["mutable"] = node.is_mutable
    return ["dirnode", contents]


def json_text(data: Any) -> web.Response:
    return plain(json.dumps(data, indent=1) + "\n")


def plain(text: str) -> web.Response:
    """A cap or a short answer as Tahoe's ``text_plain`` gives it."""
    return web.Response(body=text.encode(), headers={"Content-Type": "text/plain"})


def html_text(text: str, status: int = 200) -> web.Response:
    """A cap answered by a PUT or POST: Tahoe sends those as text/html."""
    return web.Response(body=text.encode(), status=status, headers={"Content-Type": "text/html"})
