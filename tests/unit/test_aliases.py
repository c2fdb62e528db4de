"""``private/aliases`` under concurrent writers (threads, each with its own lock
descriptor, contend on ``flock`` exactly as processes do), and ``create``
never losing a new directory's write cap."""

from __future__ import annotations

import asyncio
import io
import threading
from pathlib import Path

import pytest

from veil.adapters.node.aliases import Aliases
from veil.errors import ConfigError, UsageError

CAP = "URI:DIR2:aaaqeayeaudaocajbifqydiob4:aaaqeayeaudaocajbifqydiob4ibceqtcqkrmfyydenbwha5dypq"


def test_twenty_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    barrier = threading.Barrier(20)
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        barrier.wait()
        try:
            for j in range(5):
                Aliases(tmp_path).add(f"a{i}-{j}", CAP)
        except BaseException as exc:  # pragma: no cover - the assertion below shows it
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert set(Aliases(tmp_path).load()) == {f"a{i}-{j}" for i in range(20) for j in range(5)}
    private = tmp_path / "private"
    assert (private / "aliases").stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in private.iterdir()) == ["aliases", "aliases.lock"]  # no .tmp


def test_a_held_lock_makes_writers_wait_then_fail_clearly(tmp_path: Path) -> None:
    aliases = Aliases(tmp_path, lock_timeout=0.3)
    with aliases.locked(), pytest.raises(ConfigError, match="stayed locked"):
        Aliases(tmp_path, lock_timeout=0.3).add("x", CAP)
    aliases.add("x", CAP)
    assert aliases.load() == {"x": CAP}


async def test_create_holds_the_name_while_the_directory_is_made(tmp_path: Path) -> None:
    made: list[str] = []

    async def make() -> str:
        await asyncio.sleep(0.05)
        made.append(CAP)
        return CAP

    results = await asyncio.gather(
        *(Aliases(tmp_path).create("docs", make) for _ in range(5)), return_exceptions=True
    )
    assert results.count(CAP) == 1 and len(made) == 1  # the others stopped before making one
    assert all(isinstance(r, UsageError) for r in results if r != CAP)


async def test_a_cap_that_cannot_be_aliased_is_kept(tmp_path: Path) -> None:
    aliases = Aliases(tmp_path)
    aliases.add("old", CAP)
    private = tmp_path / "private"

    async def make() -> str:
        (private / "aliases").unlink()
        (private / "aliases").mkdir()  # the alias file can no longer be written
        return CAP

    with pytest.raises(ConfigError, match=r"aliases\.unsaved") as info:
        await aliases.create("new", make)
    assert CAP not in str(info.value)
    unsaved = private / "aliases.unsaved"
    assert unsaved.read_text() == f"new: {CAP}\n" and unsaved.stat().st_mode & 0o777 == 0o600


async def test_a_cap_that_cannot_be_saved_at_all_is_printed(tmp_path: Path) -> None:
    aliases = Aliases(tmp_path)
    out = io.StringIO()
    private = tmp_path / "private"

    async def make() -> str:
        (private / "aliases").mkdir()  # neither file can be written now
        (private / "aliases.unsaved").mkdir()
        return CAP

    with pytest.raises(ConfigError, match="printed above") as info:
        await aliases.create("new", make, out=out)
    assert CAP not in str(info.value)
    assert out.getvalue() == CAP + "\n"
