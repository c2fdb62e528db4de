"""The UI's backups: run one and watch it, list snapshots, restore one.

The same backups as ``veil backup`` / ``snapshots`` / ``restore`` (Tahoe's
layout, ``ALIAS:PATH/Archives/<time>`` and ``Latest``), over
``veil.services.backup``. A backup or restore runs in the node as a job
(``veil.adapters.web.ui.jobs``) and its page refreshes itself until it ends.
Folders on this computer are typed as paths; a restore goes only into an
empty or new folder (``prepare_target`` refuses anything else, as the
command line does without ``--overwrite``).
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from veil.adapters.node.backupdb import BackupDB
from veil.adapters.node.node_backup import make_snapshot
from veil.adapters.node.recovery_state import refuse_read_only
from veil.adapters.web.ui.files_page import alias_root, folder, path_parts
from veil.adapters.web.ui.html import esc, form, notice, page, size, url, when
from veil.adapters.web.ui.jobs import Job, JobBoard
from veil.adapters.web.ui.shared_client import client_of, shared_of
from veil.errors import UsageError
from veil.formats import mutable_caps as mc
from veil.services.backup.backup_run import BackupRun
from veil.services.backup.metadata import Excluder
from veil.services.backup.restore_run import RestoreRun, finish_target, prepare_target
from veil.services.backup.snapshots import (
    LATEST,
    archives_of,
    list_snapshots,
)

Register = Callable[..., None]


def _count(root: Path) -> tuple[int, int]:
    files = nbytes = 0
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                files, nbytes = files + 1, nbytes + st.st_size
    return files, nbytes


def _local_dir(text: str) -> Path:
    path = Path(os.path.expanduser(text.strip()))
    if not text.strip() or not path.is_absolute():
        raise UsageError(
            "type the whole path of the folder, starting with / (e.g. /home/amnesia/Persistent)"
        )
    return path


def _field(form_data: Any, name: str) -> str:
    value = form_data.get(name, "")
    return value.strip() if isinstance(value, str) else ""


def add_routes(get: Register, post: Register, jobs: JobBoard) -> None:
    async def overview(request: web.Request, node_dir: Path) -> web.Response:
        from veil.adapters.node.aliases import Aliases

        aliases = sorted(Aliases(node_dir).load())
        options = "".join(f"<option>{esc(a)}</option>" for a in aliases)
        recent = "".join(
            f'<li><a href="/ui/jobs/{esc(j.id)}">{esc(j.title)}</a>: {esc(j.state)}</li>'
            for j in jobs.recent("backup") + jobs.recent("restore")
        )
        if not aliases:
            start = notice("Make an alias on the Files page first: backups are kept in one.")
        else:
            start = form(
                request,
                "/ui/backups/run",
                '<p><label>Folder on this computer <input name="local" required size="40" '
                'placeholder="/home/amnesia/Persistent/Documents"></label></p>'
                f'<p><label>Keep it in alias <select name="alias">{options}</select></label> '
                '<label>under <input name="path" value="backups" size="20"></label></p>'
                "<button>Back up now</button>",
            )
        find = (
            '<form method="get" action="/ui/backups/snapshots">'
            f'<label>Alias <select name="alias">{options}</select></label> '
            '<label>under <input name="path" value="backups" size="20"></label> '
            "<button>Show snapshots</button></form>"
        )
        body = (
            "<p>A backup saves a copy of a whole folder. Each run is kept as a snapshot; "
            "files that did not change are not sent again.</p>"
            f"<h2>Back up a folder</h2>{start}"
            f"<h2>Snapshots and restoring</h2>{find}"
            + (f'<h2>Recent runs</h2><ul id="jobs">{recent}</ul>' if recent else "")
        )
        return page(request, "Backups", body, current="/ui/backups")

    async def run_backup(request: web.Request, node_dir: Path) -> web.Response:
        data = await request.post()
        local = _local_dir(_field(data, "local"))
        alias, parts = _field(data, "alias"), path_parts(_field(data, "path"))
        if not local.is_dir():
            raise UsageError(f"{local} is not a folder on this computer")
        alias_root(node_dir, alias)
        target = f"{alias}:{'/'.join(parts)}"
        refuse_read_only(node_dir, target)

        shared = shared_of(request)

        async def work(job: Job) -> str:
            job.total_files, job.total_bytes = await asyncio.to_thread(_count, local)
            with BackupDB.of_node(node_dir) as db:
                async with shared.use() as client:
                    run = BackupRun(
                        client.uploader(),
                        client.directories(),
                        db,
                        excluder=Excluder([]),
                        on_file=job.on_file,
                        on_warning=job.on_warning,
                    )
                    root = alias_root(node_dir, alias)
                    made = await make_snapshot(
                        client, node_dir, run, local, (root, parts), target, []
                    )
            for line in made.warnings:
                job.on_warning(line)
            s = made.summary
            return (
                f"Snapshot {made.name} saved: {s.files_new} files sent, {s.files_unchanged} "
                f"unchanged, {len(s.skipped) + len(s.unreadable)} skipped."
            )

        job = jobs.start("backup", f"Backup of {local}", work)
        raise web.HTTPSeeOther(f"/ui/jobs/{job.id}")

    async def snapshots(request: web.Request, node_dir: Path) -> web.Response:
        alias, parts = request.query.get("alias", ""), path_parts(request.query.get("path", ""))
        async with client_of(request) as client:
            base = await folder(client, node_dir, alias, parts)
            found = await list_snapshots(client.directories(), base)
            latest = (await client.directories().children(base)).get(LATEST)
        rows = "".join(
            f"<tr><td>{esc(when(s.time))}</td><td>{esc(s.files)}</td><td>{esc(size(s.bytes))}</td>"
            f"<td>{'newest' if latest and latest.ro_cap == s.cap.to_string() else ''}</td><td>"
            + form(
                request,
                url("/ui/backups/restore", alias=alias, path="/".join(parts), snapshot=s.name),
                '<input name="target" required size="30" aria-label="restore into folder" '
                'placeholder="/home/amnesia/restored"> <button>Restore here</button>',
            )
            + "</td></tr>"
            for s in reversed(found)
        )
        body = (
            f"<p>Backups kept in {esc(alias)}:/{esc('/'.join(parts))}. To restore, type a new "
            "or empty folder on this computer.</p>"
            '<table id="snapshots"><thead><tr><th>Taken</th><th>Files</th><th>Size</th>'
            f"<th></th><th>Restore into</th></tr></thead><tbody>{rows}</tbody></table>"
        )
        return page(request, "Snapshots", body, current="/ui/backups")

    async def restore(request: web.Request, node_dir: Path) -> web.Response:
        alias, parts = request.query.get("alias", ""), path_parts(request.query.get("path", ""))
        name = request.query.get("snapshot", "")
        target = _local_dir(_field(await request.post(), "target"))
        prepare_target(target, overwrite=False)

        shared = shared_of(request)

        async def work(job: Job) -> str:
            async with shared.use() as client:
                dirs = client.directories()
                base = await folder(client, node_dir, alias, parts)
                archived = (await dirs.children(await archives_of(dirs, base))).get(name)
                cap = mc.parse_any(archived.ro_cap or "") if archived else None
                if not isinstance(cap, mc.DirCap):
                    raise UsageError(f"there is no snapshot {name!r} here")
                stats = archived.metadata.get("veil", {}) if archived else {}
                if isinstance(stats, dict):
                    job.total_files, job.total_bytes = stats.get("files"), stats.get("bytes_total")
                run = RestoreRun(
                    dirs, client.downloader(), on_file=job.on_file, on_warning=job.on_warning
                )
                s = await run.run(cap, target)
            finish_target(target)
            return f"Restored {s.files_written} files into {target}, {len(s.skipped)} skipped."

        job = jobs.start("restore", f"Restore of {name} into {target}", work)
        raise web.HTTPSeeOther(f"/ui/jobs/{job.id}")

    async def job_page(request: web.Request, node_dir: Path) -> web.Response:
        job = jobs.jobs.get(request.match_info["id"])
        if job is None:
            return page(
                request,
                "Not found",
                notice("No such run (the node may have restarted)."),
                status=404,
            )
        back = "/ui/repair" if job.kind == "repair" else "/ui/backups"
        pct = job.percent
        bar = (
            f'<progress id="bar" max="100" value="{pct}">{pct}%</progress>'
            if pct is not None
            else ""
        )
        done = f"{job.files} files, {size(job.bytes)}"
        if job.kind == "repair":
            done = f"{job.files} files and folders checked"
        elif job.total_files is not None:
            done += f" of {job.total_files} files, {size(job.total_bytes)}"
        lines = "".join(f"<li>{esc(w)}</li>" for w in job.warnings)
        kind = {"running": "info", "done": "good", "partly done": "warn"}.get(job.state, "bad")
        body = (
            f'<div id="job" data-job="{esc(job.id)}">'
            f"{notice(job.message or 'Working... this page updates by itself.', kind)}"
            f'<p>State: <strong id="state">{esc(job.state)}</strong></p>{bar}'
            f'<p id="done">{esc(done)}</p>'
            + (f"<h2>Warnings</h2><ul>{lines}</ul>" if lines else "")
            + f'</div><p><a href="{back}">Back to {back.rsplit("/", 1)[1]}</a></p>'
        )
        refresh = 2 if job.state == "running" else None
        return page(request, job.title, body, refresh=refresh, current=back)

    async def job_json(request: web.Request, node_dir: Path) -> web.Response:
        job = jobs.jobs.get(request.match_info["id"])
        if job is None:
            return web.json_response({"error": "no such job"}, status=404)
        return web.json_response(job.as_json())

    get("/ui/backups", overview)
    post("/ui/backups/run", run_backup)
    get("/ui/backups/snapshots", snapshots)
    post("/ui/backups/restore", restore)
    get("/ui/jobs/{id}", job_page)
    get("/ui/api/jobs/{id}", job_json, api=True)
