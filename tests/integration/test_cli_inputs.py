"""The command line, as a real process against a real local grid, given hostile
or unusual input: caps where they do not belong (no key material may reach
the terminal), special local files on both sides of get/put/cp, moves of a
directory into itself, and inputs that used to end in a traceback."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

VEIL = [sys.executable, "-m", "veil.frontends.cli.main"]


@dataclass
class Result:
    code: int
    out: str
    err: str


def veil(*args: str, input: bytes | None = None, timeout: float = 60) -> Result:
    """``veil ARGS`` as its own process."""
    r = subprocess.run([*VEIL, *args], input=input, capture_output=True, timeout=timeout)
    return Result(r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode())


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("grid") / "g"
    shares = ["--shares-needed", "2", "--shares-happy", "2", "--shares-total", "3"]
    r = veil("grid", "start", str(root), "--servers", "3", *shares)
    assert r.code == 0, r.err
    try:
        assert veil("-d", str(root / "client"), "create-alias", "a").code == 0
        yield str(root / "client")
    finally:
        veil("grid", "stop", str(root))


class Cli:
    """Runs commands against the grid's client: in this process (through the same
    ``main`` and its one rendering point, so the many setup and error-path runs
    stay fast on a loaded machine) or, with ``real=True``, as a real process."""

    def __init__(
        self, node: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        self.node, self.capsys, self.monkeypatch = node, capsys, monkeypatch

    def __call__(self, *args: str, input: bytes = b"", real: bool = False) -> Result:
        if real:
            return veil("-d", self.node, *args, input=input)
        from veil.frontends.cli.main import main

        self.monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(input)))
        try:
            code = main(["-d", self.node, *args])
        except SystemExit as exc:  # argparse
            code = int(exc.code or 0)
        out, err = self.capsys.readouterr()
        return Result(code, out, err)

    def ok(self, *args: str, input: bytes = b"", real: bool = False) -> str:
        r = self(*args, input=input, real=real)
        assert r.code == 0, r.err
        return r.out


@pytest.fixture
def cli(grid: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    return Cli(grid, capsys, monkeypatch)


def assert_no_key(text: str, *caps: str) -> None:
    """No 16-character piece of any cap's key fields (all but the kind) is in ``text``."""
    for cap in caps:
        fields = [f for f in cap.split(":")[2:] if len(f) >= 16]
        leaked = [
            f[i : i + 16] for f in fields for i in range(len(f) - 15) if f[i : i + 16] in text
        ]
        assert not leaked, f"{len(leaked)} key pieces of {cap[:12]}… in {text!r}"


def one_line_error(r: Result) -> str:
    """The command failed with ``veil: error:`` (and maybe a hint), no traceback."""
    assert r.code == 1, (r.code, r.err)
    assert "Traceback" not in r.err and r.err.startswith("veil: error: "), r.err
    assert len(r.err.splitlines()) <= 2, r.err
    return r.err


# -- item 1: no key material in any message --------------------------------------------


def test_caps_in_the_wrong_place_never_reach_the_terminal(cli: Cli, tmp_path: Path) -> None:
    local = tmp_path / "f.txt"
    local.write_bytes(os.urandom(500))
    chk = cli.ok("put", str(local)).strip()
    ssk = cli.ok("put", "--mutable", str(local)).strip()
    mdmf = cli.ok("put", "--format=MDMF", str(local)).strip()
    dir2 = cli.ok("mkdir").strip()
    cli.ok("mkdir", "a:docs")
    cli.ok("put", str(local), "a:docs/f.txt")
    ro = cli.ok("attenuate", ssk).strip()
    verifier = cli.ok("attenuate", "--verify", ssk).strip()
    chk_verifier = cli.ok("attenuate", "--verify", chk).strip()
    caps = [chk, ssk, mdmf, dir2, ro, verifier, chk_verifier]
    assert chk.startswith("URI:CHK:") and dir2.startswith("URI:DIR2:")
    down = tmp_path / "down"
    down.mkdir()
    huge = chk.rsplit(":", 1)[0] + ":" + "9" * 4301
    runs = [
        # file caps where a directory is expected
        ["ls", chk],
        ["ls", ssk],
        ["ls", f"{mdmf}/x"],
        ["rm", f"{chk}/x"],
        ["ln", f"{chk}/x", "a:x"],
        ["ln", "a:docs/f.txt", f"{ssk}/x"],
        ["mv", "a:docs/f.txt", f"{chk}/x"],
        ["mkdir", f"{chk}/sub"],
        ["put", str(local), f"{chk}/x"],
        ["cp", str(local), f"{chk}/x"],
        ["cp", f"{ssk}/x", str(down)],
        # directory caps where a file (or a name inside) is expected
        ["put", "-", dir2],
        ["put", str(local), dir2],
        ["put", "--mutable", str(local), dir2],
        ["mkdir", dir2],
        ["rm", dir2],
        ["get", dir2],
        ["get", dir2, str(down / "x")],
        ["get", f"{dir2}/missing"],
        ["ls", f"{dir2}/missing"],
        ["ls", f"{dir2}/../x"],
        ["mkdir", f"{dir2}/a/b"],
        ["cp", dir2, str(down)],
        ["ln", dir2, dir2],
        ["add-alias", "bad", chk],
        # caps that are not what the command takes, and malformed ones
        ["get", verifier],
        ["get", chk_verifier],
        ["put", str(local), ro],
        ["put", str(local), verifier],
        ["put", "--offset", "3", str(local), ssk],
        ["get", chk[:-14]],
        ["get", chk.replace(":2:3:", ":9:3:")],
        ["get", huge],
        ["attenuate", huge],
        ["attenuate", dir2[:-3]],
        ["attenuate", "ro." + ssk],
        ["ls", dir2 + "x"],
        ["ls", dir2.replace("URI:DIR2:", "URI:DIR2-RO:") + ":junk"],
        ["put", dir2, "a:x"],  # a cap given as the local file name
        ["get", chk, dir2 + "/x"],  # and as the local target
        [dir2],  # argparse quotes what it cannot parse
    ]
    for args in runs:
        r = cli(*args, input=b"data")
        assert r.code != 0, args
        assert "Traceback" not in r.err, (args, r.err)
        assert_no_key(r.out + r.err, *caps)
    for args in (["put", "-", dir2], ["ls", chk], ["get", dir2], [dir2], ["mkdir", f"{ssk}/x"]):
        r = cli(*args, input=b"data", real=True)  # the same, as a real process
        assert r.code != 0 and "Traceback" not in r.err, (args, r.err)
        assert_no_key(r.out + r.err, *caps)
    assert "URI:CHK (SI " in cli("ls", chk).err  # the cap is still named: kind and SI


# -- item 11: get into special files ---------------------------------------------------


def _char_device(tmp_path: Path) -> Path:
    """A null device of our own (mknod as root), so /dev/null itself is never at risk."""
    path = tmp_path / "null"
    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    return path


def _read_fifo(path: Path, into: list[bytes]) -> threading.Thread:
    def read() -> None:
        with open(path, "rb") as f:
            into.append(f.read())

    t = threading.Thread(target=read, daemon=True)
    t.start()
    return t


def test_get_writes_into_special_files_and_keeps_links(cli: Cli, tmp_path: Path) -> None:
    data = os.urandom(40_000)
    chk = cli.ok("put", "-", input=data).strip()
    mutable = cli.ok("put", "--mutable", "-", input=data[:900]).strip()
    cli.ok("put", "-", "a:special.bin", input=data)
    null = _char_device(tmp_path)
    for cap in (chk, mutable):
        cli.ok("get", cap, str(null), real=True)
        assert stat.S_ISCHR(null.lstat().st_mode) and not (tmp_path / "null.part").exists()
    cli.ok("cp", "a:special.bin", str(null), real=True)
    assert stat.S_ISCHR(null.lstat().st_mode)

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for cap, want in ((chk, data), (mutable, data[:900])):
        got: list[bytes] = []
        reader = _read_fifo(fifo, got)
        cli.ok("get", cap, str(fifo), real=True)
        reader.join(10)
        assert got == [want] and stat.S_ISFIFO(fifo.lstat().st_mode)

    real = tmp_path / "real.bin"
    real.write_bytes(b"old")
    link = tmp_path / "link.bin"
    link.symlink_to(real.name)
    cli.ok("get", chk, str(link), real=True)
    assert link.is_symlink() and real.read_bytes() == data
    dangling = tmp_path / "dangling"
    dangling.symlink_to("made-by-get.bin")
    cli.ok("get", mutable, str(dangling))
    assert dangling.is_symlink() and (tmp_path / "made-by-get.bin").read_bytes() == data[:900]
    assert not list(tmp_path.glob("*.part"))
    one_line_error(cli("get", chk, str(tmp_path)))  # a directory: refused, not replaced


# -- item 12: put of files without a size ----------------------------------------------


def test_put_reads_what_unsized_files_yield(cli: Cli, tmp_path: Path) -> None:
    proc = Path("/proc/version").read_text()
    cap = cli.ok("put", "/proc/version", real=True).strip()
    assert cap != "URI:LIT:" and cli.ok("get", cap) == proc
    cli.ok("cp", "/proc/version", "a:version")
    assert cli.ok("get", "a:version") == proc
    # a block device: its size is found by seeking to its end
    image = tmp_path / "disk.img"
    content = os.urandom(512 * 300)
    image.write_bytes(content)
    loop = subprocess.run(
        ["losetup", "--find", "--show", str(image)], capture_output=True, check=True, timeout=30
    ).stdout.decode()
    try:
        cap = cli.ok("put", loop.strip(), real=True).strip()
        assert cap.endswith(f":{len(content)}")
        out = tmp_path / "back.img"
        cli.ok("get", cap, str(out))
        assert out.read_bytes() == content
        # and get writes into a block device (here the loop device over our image)
        other = cli.ok("put", "-", input=content[::-1]).strip()
        cli.ok("get", other, loop.strip(), real=True)
        assert stat.S_ISBLK(os.stat(loop.strip()).st_mode)
        assert image.read_bytes() == content[::-1]
    finally:
        subprocess.run(["losetup", "-d", loop.strip()], check=True, timeout=30)
    # a FIFO is read to its end, as standard input is
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    feed = os.urandom(200_000)

    def write() -> None:
        with open(fifo, "wb") as f:
            f.write(feed)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    cap = cli.ok("put", str(fifo), real=True).strip()
    writer.join(10)
    cli.ok("get", cap, str(tmp_path / "fifo.out"))
    assert (tmp_path / "fifo.out").read_bytes() == feed
    # an endless device is refused after a bound, quickly, with one line
    started = time.monotonic()
    for args in (
        ["put", "/dev/zero"],
        ["put", "--mutable", "/dev/zero"],
        ["cp", "/dev/zero", "a:z"],
    ):
        assert "MiB" in one_line_error(cli(*args, real=True))
    assert time.monotonic() - started < 60


# -- item 13: mv of a directory into itself --------------------------------------------


def test_mv_refuses_to_move_a_directory_into_itself(cli: Cli) -> None:
    cli.ok("mkdir", "a:tree")
    cli.ok("mkdir", "a:tree/inner")
    cli.ok("put", "-", "a:tree/inner/f.txt", input=b"kept")
    before = cli.ok("ls", "--json", "a:")
    assert "into itself" in one_line_error(cli("mv", "a:tree", "a:tree/inner", real=True))
    for target in ("a:tree/new", "a:tree/inner/deeper", "a:tree"):
        err = one_line_error(cli("mv", "a:tree", target))
        assert "into itself" in err or "same link" in err
    cli.ok("ln", "a:tree", "a:same-tree")  # another path to the same directory
    assert "into itself" in one_line_error(cli("mv", "a:tree", "a:same-tree/inner/x"))
    cli.ok("rm", "a:same-tree")
    assert cli.ok("ls", "--json", "a:").count("tree") == before.count("tree")
    assert cli.ok("get", "a:tree/inner/f.txt") == "kept"
    cli.ok("mv", "a:tree/inner", "a:moved")  # a real move still works
    assert cli.ok("get", "a:moved/f.txt") == "kept"


# -- items 15 and 16: --offset, huge numbers, empty names, non-UTF-8 names -------------


def test_put_offset_is_checked_before_anything_is_read(cli: Cli, tmp_path: Path) -> None:
    local = tmp_path / "small"
    local.write_bytes(b"0123456789")
    mdmf = cli.ok("put", "--format=MDMF", str(local)).strip()
    assert "write cap" in one_line_error(cli("put", "--offset", "5", str(local), real=True))
    one_line_error(cli("put", "--offset", "5", str(local), "a:x"))
    for offset in (10**30, 10**12, 10**8, 64 * 2**20):
        started = time.monotonic()
        err = one_line_error(
            cli("put", "--offset", str(offset), str(local), mdmf, real=offset > 2**64)
        )
        assert "64 MiB" in err and time.monotonic() - started < 20
    err = one_line_error(cli("put", "--offset", str(64 * 2**20 - 4), str(local), mdmf))
    assert "64 MiB" in err
    cli.ok("put", "--offset", "2", "-", mdmf, input=b"ab")
    assert cli.ok("get", mdmf) == "01ab456789"


def test_former_tracebacks_are_one_line(cli: Cli, tmp_path: Path) -> None:
    chk = cli.ok("put", "-", input=os.urandom(100)).strip()
    huge = chk.rsplit(":", 1)[0] + ":" + "9" * 4301
    assert "malformed" in one_line_error(cli("get", huge, real=True))
    assert "malformed" in one_line_error(cli("attenuate", huge, real=True))
    assert "empty file name" in one_line_error(cli("get", chk, "", real=True))
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "good.txt").write_bytes(b"good")
    (tree / os.fsdecode(b"caf\xe9.txt")).write_bytes(b"latin-1 name")
    r = cli("cp", "-r", str(tree), "a:", real=True)
    assert r.code == 1 and "Traceback" not in r.err, r.err
    assert "not valid UTF-8" in r.err and "1 item(s) skipped" in r.err
    assert cli.ok("ls", "a:tree").split() == ["good.txt"]
