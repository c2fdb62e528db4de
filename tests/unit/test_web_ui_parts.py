"""The web UI's parts without a network: one-time tickets and sessions, the
redirect guard, names typed by users, the Host check, the status verdicts in
words, and jobs that end well or badly."""

from __future__ import annotations

import asyncio
import os
import stat
import time
from pathlib import Path

import pytest
from aiohttp.test_utils import make_mocked_request

from veil.adapters.web.security import SESSION_COOKIE, csrf_token, loopback_host
from veil.adapters.web.ui.access import (
    TICKET_LIFETIME,
    Sessions,
    issue_ticket,
    safe_next,
    ticket_dir,
)
from veil.adapters.web.ui.files_page import plain_name
from veil.adapters.web.ui.jobs import Job, JobBoard
from veil.adapters.web.ui.status_page import _verdict
from veil.errors import UsageError


def _with_cookie(session: str) -> object:
    return make_mocked_request(
        "GET", "/ui/files", headers={"Cookie": f"{SESSION_COOKIE}={session}"}
    )


def test_a_ticket_opens_one_session_once(tmp_path: Path) -> None:
    (tmp_path / "private").mkdir()
    ticket = issue_ticket(tmp_path)
    folder = ticket_dir(tmp_path)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    (made,) = folder.iterdir()
    assert stat.S_IMODE(made.stat().st_mode) == 0o600 and ticket not in made.name
    sessions = Sessions(tmp_path)
    session = sessions.redeem(ticket)
    assert session is not None and sessions.valid(_with_cookie(session))  # type: ignore[arg-type]
    assert sessions.redeem(ticket) is None
    assert not sessions.valid(_with_cookie("guessed"))  # type: ignore[arg-type]


def test_an_old_ticket_opens_nothing(tmp_path: Path) -> None:
    (tmp_path / "private").mkdir()
    ticket = issue_ticket(tmp_path)
    (made,) = ticket_dir(tmp_path).iterdir()
    old = time.time() - TICKET_LIFETIME - 5
    os.utime(made, (old, old))
    assert Sessions(tmp_path).redeem(ticket) is None
    assert list(ticket_dir(tmp_path).iterdir()) == []  # and it is gone


@pytest.mark.parametrize(
    ("asked", "went"),
    [
        ("/ui/files/browse?alias=a", "/ui/files/browse?alias=a"),
        ("/", "/"),
        ("//evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/ui//evil.example", "/"),
        ("/ui/login?ticket=x", "/"),
        ("/\\evil.example", "/"),
    ],
)
def test_after_login_only_pages_of_this_ui(asked: str, went: str) -> None:
    assert safe_next(asked) == went


@pytest.mark.parametrize("name", ["", " ", ".", "..", "a/b", "a\\b", "bell\x07", "x" * 300])
def test_names_that_are_not_one_plain_name_are_refused(name: str) -> None:
    with pytest.raises(UsageError):
        plain_name(name)


def test_a_plain_name_is_kept_nfc() -> None:
    assert plain_name(" Cafe\u0301 notes.txt ") == "Caf\u00e9 notes.txt"


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        ("127.0.0.1:3456", True),
        ("localhost:3456", True),
        ("[::1]:3456", True),
        ("127.0.0.1", True),
        ("rebound.example:3456", False),
        ("192.0.2.5:3456", False),
        ("abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuvwx.onion", True),
    ],
)
def test_only_this_computers_own_names_pass_the_host_check(host: str, ok: bool) -> None:
    assert loopback_host(make_mocked_request("GET", "/ui/files", headers={"Host": host})) is ok


def test_csrf_tokens_belong_to_one_session() -> None:
    assert csrf_token("a") == csrf_token("a") != csrf_token("b")
    assert len(csrf_token("a")) == 64


def _status(reached: int) -> dict[str, int | bool]:
    return {
        "reached": reached,
        "known": 5,
        "needed": 2,
        "happy": 4,
        "happiness_reachable": reached >= 4,
    }


def test_the_status_says_in_words_what_works() -> None:
    assert "Ready. 4 of 5" in _verdict(_status(4))
    assert "Reading works, saving does not yet" in _verdict(_status(3))
    assert "Not connected: 1 of 5" in _verdict(_status(1))


async def test_jobs_end_done_partly_done_or_failed_in_words() -> None:
    board = JobBoard()

    async def fine(job: Job) -> str:
        job.total_files, job.total_bytes = 2, 10
        job.on_file(4, True)
        assert job.percent == 40
        job.on_file(6, False)
        return "all saved"

    async def skipping(job: Job) -> str:
        job.on_warning("not backed up (permission denied): /x")
        return "saved, one skipped"

    async def broken(job: Job) -> str:
        raise UsageError("that folder is gone", hint="type it again")

    jobs = [board.start("backup", t, w) for t, w in (("a", fine), ("b", skipping), ("c", broken))]
    for _ in range(50):
        if all(j.state != "running" for j in jobs):
            break
        await asyncio.sleep(0.01)
    assert [j.state for j in jobs] == ["done", "partly done", "failed"]
    assert jobs[0].as_json()["percent"] == 100 and jobs[0].message == "all saved"
    assert jobs[2].message == "that folder is gone (type it again)"
    assert [j.title for j in board.recent("backup")] == ["c", "b", "a"]
