"""The UI's repair page: are my files still whole on the servers, and mend them.

For each alias, "Check" walks everything below it (``veil.services.checker``
``deep_check``, as ``tahoe deep-check``), and "Check and repair" also puts
back missing pieces (``--repair``) and renews the servers' leases. It runs
as a job (``veil.adapters.web.ui.jobs``) whose page counts the items
checked and then says, in words, how many are healthy, repaired or not;
the last run of each alias is shown on the page (memory only, like jobs).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from veil.adapters.node.aliases import Aliases
from veil.adapters.web.ui.files_page import alias_root
from veil.adapters.web.ui.html import esc, form, page, url, when
from veil.adapters.web.ui.jobs import Job, JobBoard
from veil.adapters.web.ui.shared_client import shared_of
from veil.services.checker.deep import deep_check

Register = Callable[..., None]
SHOWN_PROBLEMS = 20


def add_routes(get: Register, post: Register, jobs: JobBoard) -> None:
    async def overview(request: web.Request, node_dir: Path) -> web.Response:
        names = sorted(Aliases(node_dir).load())
        last: dict[str, Job] = {}
        for earlier in jobs.recent("repair"):
            last.setdefault(earlier.title.split(": ", 1)[1], earlier)
        rows = []
        for name in names:
            job = last.get(name)
            seen = (
                f'<a href="/ui/jobs/{esc(job.id)}">{esc(job.state)}, {esc(when(job.started))}</a>'
                if job
                else "not checked since the node started"
            )
            buttons = form(
                request,
                url("/ui/repair/run", alias=name),
                '<button name="mode" value="check">Check</button> '
                '<button name="mode" value="repair">Check and repair</button>',
            )
            rows.append(f"<tr><td>{esc(name)}</td><td>{seen}</td><td>{buttons}</td></tr>")
        table = (
            '<table id="repair"><thead><tr><th>Alias</th><th>Last check</th><th></th></tr>'
            f"</thead><tbody>{''.join(rows)}</tbody></table>"
            if rows
            else "<p>You have no aliases yet.</p>"
        )
        body = (
            "<p>Storage servers come and go. A check asks them whether each of your files "
            "still has enough pieces; a repair puts back the missing ones, so that a file "
            "stays readable when more servers leave. Repairing now and then also tells the "
            "servers to keep your files.</p>" + table
        )
        return page(request, "Repair", body, current="/ui/repair")

    async def run(request: web.Request, node_dir: Path) -> web.Response:
        alias = request.query.get("alias", "")
        repair = (await request.post()).get("mode") == "repair"
        root = alias_root(node_dir, alias)

        shared = shared_of(request)

        async def work(job: Job) -> str:
            async with shared.use() as client:
                report = await deep_check(
                    client,
                    root,
                    repair=repair,
                    add_lease=repair,
                    progress=lambda path, r: job.on_file(0, True),
                )
            total = len(report.objects)
            healthy = report.count(lambda r: r.final.healthy)
            fixed = report.count(lambda r: r.repair_successful)
            for path, r in report.objects:
                if not r.final.healthy and len(job.warnings) < SHOWN_PROBLEMS:
                    where = "/".join(path) or "(the alias's own folder)"
                    job.on_warning(f"{where}: {r.final.summary or 'not healthy'}")
            for path, why in report.unlistable:
                job.on_warning(f"{'/'.join(path) or alias}: could not be read ({why})")
            text = f"{total} files and folders checked: {healthy} healthy"
            if repair:
                text += f", {fixed} repaired"
            if total - healthy:
                text += f", {total - healthy} need attention"
            return text + "."

        verb = "Check and repair" if repair else "Check"
        job = jobs.start("repair", f"{verb}: {alias}", work)
        raise web.HTTPSeeOther(f"/ui/jobs/{job.id}")

    get("/ui/repair", overview)
    post("/ui/repair/run", run)
