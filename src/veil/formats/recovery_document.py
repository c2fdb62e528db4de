"""What a recovery blob holds, and the mutable "latest" record every backup updates.

``RecoveryDocument`` is the blob's body (zlib-compressed JSON inside the
envelope of ``veil.formats.recovery_blob``): the grid (introducer NURLs,
static servers, encoding, anonymity settings), the aliases (read-only caps,
or write caps with ``--with-write-caps``), the read cap of the latest
record and a copy of that record as it was when the blob was made, and, in
the write tier, the node's convergence and lease secrets and the record's
write cap. ``LatestRecord`` is the JSON of the mutable file on the grid:
a counter, a time, and one ``Task`` per backup (local directory, ALIAS:PATH,
excludes, the newest snapshot's read-only cap). Pure: no I/O. Every repr is
free of caps and secrets.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from typing import Any

from veil.formats.recovery_blob import RecoveryError

FORMAT = 1


def _bad(what: str) -> RecoveryError:
    return RecoveryError(
        f"the recovery blob opened, but {what}",
        hint="it was made by a newer or damaged veil; try the newest veil",
    )


def _str_dict(value: object, what: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise _bad(f"its {what} are malformed")
    return dict(value)


@dataclass
class Task:
    """One backup: ``local`` (``~/…`` when it was under the home directory) to ``target``."""

    local: str
    target: str
    excludes: list[str] = field(default_factory=list)
    exclude_vcs: bool = False
    snapshot: str | None = field(default=None, repr=False)  # URI:DIR2-CHK: (read-only)
    snapshot_name: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "local": self.local,
            "target": self.target,
            "excludes": self.excludes,
            "exclude_vcs": self.exclude_vcs,
            "snapshot": self.snapshot,
            "snapshot_name": self.snapshot_name,
        }

    @classmethod
    def from_json(cls, d: object) -> Task:
        if not isinstance(d, dict) or not isinstance(d.get("local"), str):
            raise _bad("a backup task in it is malformed")
        excludes = d.get("excludes", [])
        if not isinstance(excludes, list) or not all(isinstance(x, str) for x in excludes):
            raise _bad("a task's excludes are malformed")
        snap, name = d.get("snapshot"), d.get("snapshot_name")
        return cls(
            d["local"],
            str(d.get("target", "")),
            excludes,
            bool(d.get("exclude_vcs", False)),
            snap if isinstance(snap, str) else None,
            name if isinstance(name, str) else None,
        )


@dataclass
class LatestRecord:
    counter: int = 0
    time: float = 0.0
    tasks: list[Task] = field(default_factory=list)

    def to_bytes(self) -> bytes:
        doc = {
            "format": FORMAT,
            "counter": self.counter,
            "time": self.time,
            "tasks": [t.as_json() for t in self.tasks],
        }
        return json.dumps(doc, sort_keys=True).encode("utf-8")

    @classmethod
    def from_json(cls, d: object) -> LatestRecord:
        if not isinstance(d, dict) or not isinstance(d.get("counter"), int):
            raise _bad("its latest record is malformed")
        tasks = d.get("tasks", [])
        if not isinstance(tasks, list):
            raise _bad("its latest record's tasks are malformed")
        return cls(d["counter"], float(d.get("time", 0.0)), [Task.from_json(t) for t in tasks])

    @classmethod
    def from_bytes(cls, data: bytes) -> LatestRecord:
        try:
            return cls.from_json(json.loads(data.decode("utf-8")))
        except (UnicodeDecodeError, ValueError):
            raise RecoveryError("the latest record on the grid is not a veil record") from None

    def with_task(self, task: Task, now: float) -> LatestRecord:
        """The record after a backup of ``task``: its entry replaced, counter + 1."""
        others = [t for t in self.tasks if (t.local, t.target) != (task.local, task.target)]
        return LatestRecord(self.counter + 1, now, [*others, task])


@dataclass
class GridSettings:
    introducers: dict[str, str] = field(repr=False)
    servers: dict[str, dict[str, Any]] = field(repr=False)
    encoding: tuple[int, int, int]
    anonymous: bool
    tor: dict[str, str] = field(default_factory=dict)  # [tor] keys, not the onion key
    connections: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "introducers": self.introducers,
            "servers": self.servers,
            "encoding": list(self.encoding),
            "anonymous": self.anonymous,
            "tor": self.tor,
            "connections": self.connections,
        }

    @classmethod
    def from_json(cls, d: object) -> GridSettings:
        if not isinstance(d, dict):
            raise _bad("its grid settings are malformed")
        enc = d.get("encoding")
        servers = d.get("servers", {})
        if not (isinstance(enc, list) and len(enc) == 3 and all(isinstance(x, int) for x in enc)):
            raise _bad("its encoding parameters are malformed")
        if not isinstance(servers, dict) or not all(isinstance(v, dict) for v in servers.values()):
            raise _bad("its server list is malformed")
        return cls(
            _str_dict(d.get("introducers", {}), "introducers"),
            servers,
            (enc[0], enc[1], enc[2]),
            bool(d.get("anonymous", False)),
            _str_dict(d.get("tor", {}), "Tor settings"),
            _str_dict(d.get("connections", {}), "connection settings"),
        )


@dataclass
class WriteSecrets:
    convergence: str = field(repr=False)
    lease: str = field(repr=False)
    latest_write_cap: str | None = field(default=None, repr=False)


@dataclass
class RecoveryDocument:
    created: float
    grid: GridSettings
    aliases: dict[str, str] = field(repr=False)  # name -> cap (read-only unless write tier)
    latest_cap: str | None = field(repr=False)  # read cap of the latest record
    latest: LatestRecord
    write: WriteSecrets | None = field(default=None, repr=False)

    @property
    def write_tier(self) -> bool:
        return self.write is not None

    def to_body(self) -> bytes:
        doc: dict[str, Any] = {
            "format": FORMAT,
            "created": self.created,
            "grid": self.grid.as_json(),
            "aliases": self.aliases,
            "latest_cap": self.latest_cap,
            "latest": json.loads(self.latest.to_bytes()),
        }
        if self.write is not None:
            doc["write"] = {
                "convergence": self.write.convergence,
                "lease": self.write.lease,
                "latest_write_cap": self.write.latest_write_cap,
            }
        return zlib.compress(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode(), 9)

    @classmethod
    def from_body(cls, body: bytes) -> RecoveryDocument:
        try:
            d = json.loads(zlib.decompress(body).decode("utf-8"))
        except (zlib.error, UnicodeDecodeError, ValueError):
            raise _bad("its contents cannot be read") from None
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise _bad("its contents are in a format this veil does not know")
        latest_cap = d.get("latest_cap")
        write = d.get("write")
        secrets = None
        if isinstance(write, dict):
            w = _str_dict({k: v for k, v in write.items() if v is not None}, "write secrets")
            if "convergence" not in w or "lease" not in w:
                raise _bad("its write secrets are incomplete")
            secrets = WriteSecrets(w["convergence"], w["lease"], w.get("latest_write_cap"))
        return cls(
            float(d.get("created", 0.0)),
            GridSettings.from_json(d.get("grid")),
            _str_dict(d.get("aliases", {}), "aliases"),
            latest_cap if isinstance(latest_cap, str) else None,
            LatestRecord.from_json(d.get("latest")),
            secrets,
        )


__all__ = ["GridSettings", "LatestRecord", "RecoveryDocument", "Task", "WriteSecrets"]
