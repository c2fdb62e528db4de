"""``veil recovery create|restore|check``: everything back from a passphrase and a blob.

``create OUT`` seals what a fresh machine needs (grid, backup tasks, caps:
read-only unless ``--with-write-caps``) into a blob that cannot be told
from random bytes, optionally split among friends (``--friends K-of-N``:
SLIP-39 share files beside OUT). ``restore BLOB [--share FILE|-]...`` makes
the client node and restores every backup to its directory; ``check BLOB``
says whether the passphrase and shares open it and whether the grid still
holds every snapshot. Passphrases are read without echo, or from
``--passphrase-fd``. docs/travel.md.
"""

from __future__ import annotations

import argparse
import getpass
import os
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from veil.errors import UsageError
from veil.frontends import runtime

if TYPE_CHECKING:
    from veil.formats.recovery_document import RecoveryDocument


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("recovery", help="recovery blobs: create, restore, check (docs/travel.md)")
    cmds = p.add_subparsers(dest="recovery_command", metavar="ACTION")
    cmds.required = True
    c = cmds.add_parser("create", help="write a recovery blob for this node")
    c.add_argument("out", metavar="OUT")
    c.add_argument("--with-write-caps", action="store_true", help="let backups go on from it")
    c.add_argument("--friends", default=None, metavar="K-of-N", help="split among N friends")
    c.add_argument("--text", action="store_true", help="write the text form (e-mail, paper)")
    c.add_argument("--low-memory", action="store_true", help="Argon2id with 256 MiB, not 512")
    c.add_argument("--weak-passphrase-ok", action="store_true", help="accept a weak passphrase")
    _passphrase_fd(c)
    c.set_defaults(func=lambda a: runtime.run(_create(a)))
    for name, what in (("restore", "restore everything from a blob"), ("check", "check a blob")):
        r = cmds.add_parser(name, help=what)
        r.add_argument("blob", metavar="BLOB")
        r.add_argument(
            "--share",
            action="append",
            default=[],
            metavar="FILE",
            help="a friend's share file, or - to type its words (repeatable)",
        )
        _passphrase_fd(r)
        r.set_defaults(
            func=lambda a: runtime.run(
                _restore(a) if a.recovery_command == "restore" else _check(a)
            )
        )


def _passphrase_fd(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--passphrase-fd",
        type=int,
        default=None,
        metavar="FD",
        help="read the passphrase from this file descriptor (first line)",
    )


def _say(line: str) -> None:
    sys.stderr.write(line + "\n")


def _to_terminal(text: str) -> None:
    """Shown to the person at the terminal only: never to stdout or a log."""
    try:
        with open("/dev/tty", "w", encoding="utf-8") as tty:
            tty.write(text)
    except OSError:
        raise UsageError(
            "no terminal to show a generated passphrase on",
            hint="give one with --passphrase-fd FD",
        ) from None


def _read_fd(fd: int) -> str:
    if fd == 0:  # stdin may also carry a typed share (--share -): read it by lines
        try:
            return sys.stdin.readline().rstrip("\n").rstrip("\r")
        except UnicodeDecodeError:
            raise UsageError("the passphrase on stdin is not UTF-8") from None
    chunks = []
    try:
        while chunk := os.read(fd, 4096):
            chunks.append(chunk)
            if b"\n" in chunk:
                break
    except OSError as exc:
        raise UsageError(f"--passphrase-fd {fd}: {exc.strerror}") from None
    try:
        return b"".join(chunks).decode("utf-8").split("\n")[0].rstrip("\r")
    except UnicodeDecodeError:
        raise UsageError(f"--passphrase-fd {fd}: the passphrase is not UTF-8") from None


def _new_passphrase(args: argparse.Namespace) -> str:
    from veil.services.recovery import passphrase

    if args.passphrase_fd is not None:
        text = _read_fd(args.passphrase_fd)
    else:
        suggested = passphrase.generate()
        _to_terminal(
            "A generated passphrase (write it down; keep it apart from the blob):\n\n"
            f"  {suggested}\n\n"
        )
        text = getpass.getpass("Passphrase (Enter to take the generated one): ") or suggested
        if text != suggested and getpass.getpass("The same passphrase again: ") != text:
            raise UsageError("the two passphrases differ; nothing was written")
    rating = passphrase.require_strong(text, weak_ok=args.weak_passphrase_ok)
    if not rating.strong:
        _say(
            "warning: a weak passphrase (--weak-passphrase-ok): whoever gets the blob may guess it"
        )
    return text


def _passphrase(args: argparse.Namespace) -> str:
    if args.passphrase_fd is not None:
        return _read_fd(args.passphrase_fd)
    return getpass.getpass("Recovery passphrase: ")


def _shares(args: argparse.Namespace) -> list[str]:
    texts = []
    for name in args.share:
        if name == "-":
            if sys.stdin.isatty():
                texts.append(getpass.getpass("A share's words (not shown): "))
            else:
                try:
                    texts.append(sys.stdin.readline())
                except UnicodeDecodeError:
                    raise UsageError("the share on stdin is not UTF-8 text") from None
            continue
        try:
            texts.append(Path(name).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            why = getattr(exc, "strerror", None) or "not a share file"
            raise UsageError(f"cannot read the share {name}: {why}") from None
    return texts


def _open(args: argparse.Namespace) -> RecoveryDocument:
    from veil.services.recovery.blob_files import open_blob

    try:
        data = Path(args.blob).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read the blob {args.blob}: {exc.strerror}") from None
    shares = _shares(args)
    doc, _ = open_blob(data, lambda: _passphrase(args), shares)
    return doc


async def _create(args: argparse.Namespace) -> int:
    from veil.adapters.node import recovery_state as state
    from veil.adapters.node.aliases import Aliases
    from veil.adapters.node.client_session import open_client
    from veil.adapters.node.files import write_private
    from veil.adapters.node.nodedir import NodeDirectory
    from veil.formats import base32, recovery_blob, recovery_shares
    from veil.formats import mutable_caps as mc
    from veil.formats.recovery_document import LatestRecord, RecoveryDocument, WriteSecrets
    from veil.services.recovery.blob_files import make_blob
    from veil.services.recovery.latest import read_latest

    node_path = Path(args.node_directory)
    node = NodeDirectory(node_path)
    friends = recovery_shares.parse_friends(args.friends) if args.friends else None
    out = Path(args.out)
    if out.is_dir():
        raise UsageError(f"{out} is a directory", hint="name the blob file to write")
    aliases = Aliases(node_path).load()
    async with open_client(node_path) as client:
        wcap = state.latest_write_cap(node_path)
        if wcap is None:  # no backup yet: an empty record that backups will fill
            made = await client.mutable_files().create(LatestRecord().to_bytes())
            wcap = made.to_string()
            state.save_latest_write_cap(node_path, wcap)
        rcap = mc.parse_any(wcap)
        read_cap = rcap.read_cap().to_string() if isinstance(rcap, mc.SSKWriteCap) else wcap
        record = await read_latest(client.mutable_files(), read_cap)
    if not args.with_write_caps:
        aliases = {n: _read_only(c) for n, c in aliases.items()}
    write = None
    if args.with_write_caps:
        write = WriteSecrets(
            base32.b2a(node.convergence_secret()), base32.b2a(node.lease_secret()), wcap
        )
    doc = RecoveryDocument(time.time(), state.grid_settings(node), aliases, read_cap, record, write)
    secret_text = _new_passphrase(args)
    kdf = recovery_blob.LOW_MEMORY_KDF if args.low_memory else recovery_blob.DEFAULT_KDF
    made_blob = make_blob(doc, secret_text, friends=friends, kdf=kdf)
    data = recovery_blob.armour(made_blob.blob).encode() if args.text else made_blob.blob
    write_private(out, data)
    share_files = []
    for number, words in enumerate(made_blob.mnemonics, 1):
        path = out.with_name(f"{out.name}.share{number}")
        write_private(path, recovery_shares.share_file_text(words))
        share_files.append(str(path))
    tier = "write caps and secrets" if write else "read-only caps"
    sys.stdout.write(
        f"wrote {out} ({len(made_blob.blob)} bytes{', as text' if args.text else ''}; {tier}; "
        f"{len(record.tasks)} backups, record #{record.counter})\n"
    )
    if friends:
        sys.stdout.write(
            f"wrote {len(share_files)} share files ({friends[0]} of them and the passphrase "
            f"open the blob): {', '.join(share_files)}\n"
            "give one to each friend; keep none of them with the blob\n"
        )
    if not record.tasks:
        _say(
            "warning: no backup is recorded yet: "
            "back up with 'veil backup', then make the blob again"
        )
    return 0


def _read_only(cap_text: str) -> str:
    from veil.formats import mutable_caps as mc

    cap = mc.parse_any(cap_text)
    if isinstance(cap, mc.DirCap | mc.SSKWriteCap):
        return mc.attenuate(cap).to_string()
    return cap_text


def _describe_tier(doc: RecoveryDocument) -> str:
    return "write caps" if doc.write_tier else "read-only caps"


async def _restore(args: argparse.Namespace) -> int:
    from veil.adapters.node.files import present

    started = time.monotonic()
    doc = _open(args)  # a wrong passphrase or share stops here: nothing written
    node_path = Path(os.path.abspath(args.node_directory))
    if present(node_path / "tahoe.cfg") or (node_path.is_dir() and any(node_path.iterdir())):
        raise UsageError(
            f"{node_path} already holds a node (or other files); a recovery makes a new one",
            hint="restore on a fresh machine, or choose another node directory: "
            "veil -d DIR recovery restore BLOB",
        )
    created = not present(node_path)
    try:
        code = await _restore_into(node_path, doc, started)
    except BaseException:
        if created:
            shutil.rmtree(node_path, ignore_errors=True)
        raise
    return code


async def _restore_into(node_path: Path, doc: RecoveryDocument, started: float) -> int:
    from veil.adapters.node import recovery_state as state
    from veil.adapters.node.aliases import Aliases
    from veil.adapters.node.client_session import open_client
    from veil.adapters.node.creation import create_client_from_grid
    from veil.adapters.node.files import write_private
    from veil.services.recovery.restore import new_roots, plan_restore, restore_tasks

    create_client_from_grid(node_path, doc.grid)
    if doc.write is not None:
        write_private(node_path / "private" / "convergence", doc.write.convergence + "\n")
        write_private(node_path / "private" / "secret", doc.write.lease + "\n")
        if doc.write.latest_write_cap:
            state.save_latest_write_cap(node_path, doc.write.latest_write_cap)
    home = Path(os.path.expanduser("~"))
    async with open_client(node_path) as client:
        plan = await plan_restore(client.mutable_files(), doc, home)
        if plan.note:
            _say(f"note: {plan.note}")
        done = await restore_tasks(client.directories(), client.downloader(), plan, on_warning=_say)
        if doc.write_tier:
            aliases = doc.aliases
        else:
            aliases = await new_roots(client.directories(), doc, plan.record)
    book = Aliases(node_path)
    for name, cap in aliases.items():
        book.add(name, cap)
    if not doc.write_tier:
        state.save_read_only_targets(node_path, [t.target for t in plan.record.tasks])
    for r in done:
        s = r.summary
        sys.stdout.write(
            f"restored {r.task.target} ({r.task.snapshot_name or 'snapshot'}) into {r.where}: "
            f"{s.files_written} files, {s.links} links, {s.dirs} directories, "
            f"{s.bytes_written} bytes\n"
        )
    sys.stdout.write(
        f"recovered node {node_path} ({_describe_tier(doc)}; record #{plan.record.counter}) "
        f"in {time.monotonic() - started:.1f}s\n"
    )
    skipped = any(r.summary.skipped or r.summary.foreign for r in done)
    return 3 if skipped else 0


async def _check(args: argparse.Namespace) -> int:
    from veil.adapters.node.recovery_state import check_on_grid

    doc = _open(args)
    made = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(doc.created))
    sys.stdout.write(
        f"the passphrase{' and shares' if args.share else ''} open this blob "
        f"(made {made}; {_describe_tier(doc)})\n"
    )
    note, results = await check_on_grid(doc)
    if note:
        sys.stdout.write(f"note: {note}\n")
    for r in results:
        state = "whole" if r.whole else f"MISSING {len(r.missing)} (e.g. {r.missing[0]})"
        sys.stdout.write(f"{r.task.target} ({r.task.snapshot_name}): {r.files} files, {state}\n")
    broken = [r for r in results if not r.whole]
    if broken:
        raise UsageError(
            f"{len(broken)} of {len(results)} snapshots are no longer whole on the grid",
            hint="back up again from a machine that still has the files",
        )
    return 0
