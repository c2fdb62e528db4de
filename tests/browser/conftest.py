"""One headless Chromium (Debian's /usr/bin/chromium, driven by Playwright) and
one client node on a local process grid for the whole browser session.

Every request any page makes is recorded; ``no_foreign_requests`` (used by
each test) asserts that none went anywhere but the node. Screenshots go to
the test's tmp directory and are copied to /work/screenshots/ to be looked at.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.integration.web_ui_node import UiNode, ui_node

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# where screenshots are also copied for people to look at (the test's tmp dir keeps them anyway)
SHOTS = Path(os.environ["VEIL_SCREENSHOTS"]) if os.environ.get("VEIL_SCREENSHOTS") else None
STEP_TIMEOUT_MS = 20_000  # a loaded 2-core machine: generous, and still bounded
expect.set_options(timeout=STEP_TIMEOUT_MS)


@pytest.fixture(scope="package")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiNode]:
    with ui_node(tmp_path_factory.mktemp("browser-grid")) as n:
        yield n


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        # launch() gives the browser a fresh temporary profile (user-data dir) each time
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield b
        finally:
            b.close()


class Recorder:
    def __init__(self, node: UiNode) -> None:
        self.node = node
        self.urls: list[str] = []

    def attach(self, context: BrowserContext) -> BrowserContext:
        context.on("request", lambda request: self.urls.append(request.url))
        context.set_default_timeout(STEP_TIMEOUT_MS)
        return context

    def foreign(self) -> list[str]:
        here = f"127.0.0.1:{self.node.port}"
        return [u for u in self.urls if urlsplit(u).netloc != here or urlsplit(u).scheme != "http"]


@pytest.fixture(scope="package")
def recorder(node: UiNode) -> Recorder:
    return Recorder(node)


@pytest.fixture(scope="package")
def page(browser: Browser, node: UiNode, recorder: Recorder) -> Iterator[Page]:
    """A logged-in page (through ``veil webopen``'s one-time address), shared by the tests."""
    context = recorder.attach(browser.new_context(accept_downloads=True))
    p = context.new_page()
    p.goto(node.login_url())
    yield p
    context.close()


@pytest.fixture
def shot(tmp_path: Path) -> Iterator[object]:
    def take(page: Page, name: str) -> Path:
        path = tmp_path / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        if SHOTS is not None:
            SHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, SHOTS / path.name)
        return path

    yield take


@pytest.fixture(autouse=True)
def no_foreign_requests(recorder: Recorder) -> Iterator[None]:
    yield
    assert recorder.urls, "the browser made no request at all"
    assert recorder.foreign() == [], "a page asked a host other than the node"
