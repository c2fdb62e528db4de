"""The web UI in a real browser (headless Chromium) against a running client
node: the status page, an alias made, a file uploaded, listed, downloaded and
compared, a backup run to its end and restored, and the pages used without
JavaScript. The tests share one logged-in page and run in this order."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import Recorder
from tests.integration.web_ui_node import UiNode

Shot = Callable[[Page, str], Path]


def test_status_page_says_the_grid_is_ready(page: Page, node: UiNode, shot: Shot) -> None:
    page.goto(node.base + "/")
    expect(page.locator("#verdict")).to_contain_text("Ready. 3 of 3 storage servers answered")
    expect(page.locator("#servers tbody tr")).to_have_count(3)
    shot(page, "01-status")


def test_create_an_alias(page: Page, node: UiNode, shot: Shot) -> None:
    page.get_by_role("link", name="Files", exact=True).click()
    page.get_by_label("Alias name").fill("photos")
    page.get_by_role("button", name="Make it").click()
    expect(page.locator("h1")).to_have_text("photos")
    expect(page.locator("main")).to_contain_text("This folder is empty.")
    assert "photos:" in (node.client / "private" / "aliases").read_text()
    page.goto(node.base + "/ui/files")
    expect(page.locator("#aliases")).to_contain_text("photos")
    shot(page, "02-aliases")


def test_upload_see_it_listed_download_and_compare(
    page: Page, node: UiNode, shot: Shot, tmp_path: Path
) -> None:
    data = os.urandom(200_000)
    local = tmp_path / "holiday notes.bin"
    local.write_bytes(data)
    page.goto(node.base + "/ui/files")
    page.get_by_role("link", name="photos").click()
    page.locator("input[type=file]").set_input_files(str(local))
    page.get_by_role("button", name="Upload").click()
    row = page.locator("#listing tbody tr", has_text="holiday notes.bin")
    expect(row).to_contain_text("200.0 KB")
    shot(page, "03-folder-with-file")
    with page.expect_download() as info:
        row.get_by_role("link", name="holiday notes.bin").click()
    download = info.value
    assert download.suggested_filename == "holiday notes.bin"
    assert Path(download.path()).read_bytes() == data


def test_run_a_backup_see_it_finish_and_restore_it(
    page: Page, node: UiNode, shot: Shot, tmp_path: Path
) -> None:
    source = tmp_path / "Documents"
    (source / "letters").mkdir(parents=True)
    for i in range(12):
        (source / "letters" / f"letter-{i}.txt").write_bytes(os.urandom(3000 + i * 500))
    (source / "todo.txt").write_text("water the plants\n")
    page.goto(node.base + "/ui/backups")
    shot(page, "04-backups")
    page.get_by_label("Folder on this computer").fill(str(source))
    page.get_by_label("Keep it in alias").select_option("photos")
    page.get_by_role("button", name="Back up now").click()
    expect(page.locator("#state")).to_have_text("done")
    expect(page.locator("main")).to_contain_text("13 files sent")
    expect(page.locator("#bar")).to_have_attribute("value", "100")
    shot(page, "05-backup-done")
    page.get_by_role("link", name="Back to backups").click()
    page.get_by_role("button", name="Show snapshots").click()
    expect(page.locator("#snapshots tbody tr")).to_have_count(1)
    expect(page.locator("#snapshots")).to_contain_text("newest")
    shot(page, "06-snapshots")
    target = tmp_path / "restored"
    page.get_by_label("restore into folder").fill(str(target))
    page.get_by_role("button", name="Restore here").click()
    expect(page.locator("#state")).to_have_text("done")
    shot(page, "07-restore-done")
    for f in source.rglob("*"):
        if f.is_file():
            assert (target / f.relative_to(source)).read_bytes() == f.read_bytes()


def test_create_a_recovery_blob_with_friends_and_check_it(
    page: Page, node: UiNode, shot: Shot, tmp_path: Path
) -> None:
    page.goto(node.base + "/ui/recovery")
    page.locator("#passphrase").fill("password123")
    expect(page.locator("#meter")).to_contain_text("too weak")
    page.locator("#passphrase").fill("")
    shot(page, "10-recovery")
    suggested = page.locator("#suggested").inner_text().strip()
    page.get_by_label("Also split it among friends").select_option("2-of-3")
    page.get_by_role("button", name="Make the recovery file").click()
    expect(page.locator("main")).to_contain_text("Your recovery file is ready.")
    expect(page.locator("#shares li")).to_have_count(3)
    words = [w.strip() for w in page.locator("#shares pre").all_inner_texts()]
    shot(page, "11-recovery-made")
    with page.expect_download() as info:
        page.locator("#download").click()
    blob = tmp_path / "veil-recovery.blob"
    info.value.save_as(str(blob))
    assert blob.stat().st_size > 0
    page.goto(node.base + "/ui/recovery")
    page.get_by_label("Recovery file").set_input_files(str(blob))
    page.get_by_label("Passphrase", exact=True).fill(suggested)
    page.get_by_label("Friends' words").fill("\n".join(words[:2]))
    page.get_by_role("button", name="Check it").click()
    expect(page.locator("main")).to_contain_text("The passphrase opens this file")
    expect(page.locator("#checked")).to_contain_text("all there")
    shot(page, "12-recovery-checked")


def test_check_and_repair_an_alias(page: Page, node: UiNode, shot: Shot) -> None:
    page.goto(node.base + "/ui/repair")
    page.locator("#repair tr", has_text="photos").get_by_role(
        "button", name="Check and repair"
    ).click()
    expect(page.locator("#state")).to_have_text("done")
    expect(page.locator("main")).to_contain_text("healthy")
    shot(page, "13-repair-done")
    page.get_by_role("link", name="Back to repair").click()
    expect(page.locator("#repair")).to_contain_text("done")
    shot(page, "14-repair")


def test_the_pages_work_without_javascript(
    browser: Browser, node: UiNode, recorder: Recorder, shot: Shot, tmp_path: Path
) -> None:
    context = recorder.attach(browser.new_context(java_script_enabled=False))
    try:
        page = context.new_page()
        page.goto(node.login_url())
        expect(page.locator("#verdict")).to_contain_text("Ready.")
        page.get_by_role("link", name="Files", exact=True).click()
        page.get_by_label("Alias name").fill("no-script")
        page.get_by_role("button", name="Make it").click()
        expect(page.locator("h1")).to_have_text("no-script")
        page.get_by_label("Folder name").fill("inside")
        page.get_by_role("button", name="Make folder").click()
        expect(page.locator("#listing")).to_contain_text("inside/")
        shot(page, "08-no-javascript")
        source = tmp_path / "Pictures"
        source.mkdir()
        for i in range(5):
            (source / f"p{i}.jpg").write_bytes(os.urandom(40_000))
        page.get_by_role("link", name="Backups").click()
        page.get_by_label("Folder on this computer").fill(str(source))
        page.get_by_label("Keep it in alias").select_option("no-script")
        page.get_by_role("button", name="Back up now").click()
        # the job page reloads itself (<meta http-equiv=refresh>) until the backup ends
        expect(page.locator("#state")).to_have_text("done", timeout=30_000)
        expect(page.locator("main")).to_contain_text("5 files sent")
    finally:
        context.close()


def test_a_page_opened_without_webopen_says_what_to_do(
    browser: Browser, node: UiNode, recorder: Recorder, shot: Shot
) -> None:
    context = recorder.attach(browser.new_context())
    try:
        page = context.new_page()
        page.goto(node.base + "/ui/files")
        expect(page.locator("main")).to_contain_text("veil webopen")
        expect(page.locator("main")).not_to_contain_text("photos")
        shot(page, "09-locked")
    finally:
        context.close()
