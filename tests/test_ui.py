"""The dashboard driven by keys only, at 80x24, against real scans."""

from __future__ import annotations

import threading

import pytest
from support.frozen import screen_text
from support.scenario import WEB_ADDRESS, estate, make_project
from textual.widgets import DataTable, Input, OptionList, Static

from assetmon_tui.core.config import get_settings
from assetmon_tui.store import repo
from assetmon_tui.ui.app import AssetMonApp
from assetmon_tui.ui.panels import ScanPanel
from assetmon_tui.ui.screens.forms import ScanForm

SIZE = (80, 24)


def text_of(widget: Static) -> str:
    """What a Static shows, as plain text (its content may be any Rich renderable)."""
    import io

    from rich.console import Console

    console = Console(file=io.StringIO(), width=200, record=True)
    console.print(widget.content)
    return console.export_text()


async def until(pilot, condition, timeout: float = 20.0, what: str = "condition"):
    for _ in range(int(timeout / 0.05)):
        await pilot.pause(0.05)
        if condition():
            return
    raise AssertionError(f"timed out waiting for {what}\n{screen_text(pilot)}")


@pytest.fixture
def thread_backend(monkeypatch):
    monkeypatch.setenv("ASSETMON_BACKEND", "thread")
    get_settings.cache_clear()


async def test_create_project_scan_watch_and_open_results(thread_backend, monkeypatch):
    # The home page waits until the panel has shown the scan running: a two-name
    # scan can otherwise end between two polls of the dashboard.
    gate = threading.Event()
    monkeypatch.setenv("ASSETMON_HTTP_TIMEOUT", "60")
    get_settings.cache_clear()
    with estate(gate=gate) as e:
        app = AssetMonApp()
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.dispatcher is not None, what="start-up")
            await until(pilot, lambda: "Local thread" in app.sub_title, what="backend in the header")
            await pilot.press("n")
            await pilot.press(*"acme", "enter")
            await until(pilot, lambda: isinstance(app.screen.focused, Input), what="targets form")
            await pilot.press(*"www.scan.test api.scan.test", "enter")
            await until(pilot, lambda: app.query_one("#targets", DataTable).row_count == 2, what="targets listed")
            (project,) = repo.list_projects()
            assert project.name == "acme"

            await pilot.press("s")
            # typed once the form is prefilled (from a thread): before, a prefill could land between
            # the space and its toggle message, and tick "subdomains" again
            await until(pilot, lambda: isinstance(app.screen, ScanForm) and app.screen.loaded, what="the scan form")
            await pilot.press("space")  # untick "subdomains" (a 9,600-name brute force): not under test here
            await pilot.press("tab", *str(e.web.port), "tab", *e.dns.address, "enter")
            await until(pilot, lambda: app.query(ScanPanel), what="a live scan panel")
            panel = app.query_one(ScanPanel)
            seen_states = set()

            def finished() -> bool:
                if panel.progress:
                    seen_states.add(panel.progress.state)
                if "running" in seen_states:
                    gate.set()
                return not app.query(ScanPanel)

            await until(pilot, finished, what="the scan to finish")
            assert "running" in seen_states
            scans = app.query_one("#scans", DataTable)
            await until(
                pilot,
                lambda: scans.row_count == 1 and "done" in str(scans.get_row_at(0)[1]),
                what="the scan row to say done",
            )

            await pilot.press("r")
            await until(
                pilot,
                lambda: (
                    app.screen.query("#table-hosts") and app.screen.query_one("#table-hosts", DataTable).row_count >= 3
                ),
                what="results",
            )
            await pilot.press("4")  # HTTP tab
            http = app.screen.query_one("#table-http", DataTable)
            # www and api (a CNAME to www); the tab fills once the whole inventory is read (a thread)
            await until(pilot, lambda: http.row_count == 2, what="the HTTP rows")
            await pilot.press("down")
            detail = app.screen.query_one("#detail", Static)
            await until(pilot, lambda: f"www.scan.test:{e.web.port}" in text_of(detail), what="detail pane")
            shown = text_of(detail)
            assert "Scan [bold]Test[/] Home" in shown and "\x1b" not in shown
            await pilot.press("1")
            await pilot.press("down")
            await until(pilot, lambda: WEB_ADDRESS in text_of(detail), what="host detail with records")
            await pilot.press("escape")
            assert isinstance(app.screen.focused, (OptionList, DataTable))


async def test_malformed_target_is_refused_in_the_form(thread_backend):
    project_id = make_project("acme", ["acme.test"])
    app = AssetMonApp()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.project_id == project_id, what="project loaded")
        await pilot.press("a", *"good.test bad..name", "enter")
        await pilot.pause(0.2)
        error = app.screen.query_one("#error", Static)
        assert "bad..name" in text_of(error)
        await pilot.press("escape")
    assert [t.value for t in repo.list_targets(project_id)] == ["acme.test"]


@pytest.fixture
def slow_estate(monkeypatch):
    """A project whose scan stays busy on a page that answers only after a minute."""
    monkeypatch.setenv("ASSETMON_HTTP_TIMEOUT", "60")
    get_settings.cache_clear()
    with estate(slow=True) as e:
        yield e, make_project("acme", [e.url])


async def launch_scan(pilot, app, nameserver: str, ready=lambda app: True) -> None:
    """Open the project, start a scan by keys (default modules, our DNS server), see its panel."""
    await until(
        pilot, lambda: app.project_id is not None and app.dispatcher is not None and ready(app), what="project loaded"
    )
    await pilot.press("s")  # before the dispatcher, it would only say "Still starting"
    await until(pilot, lambda: isinstance(app.screen, ScanForm) and app.screen.loaded, what="the scan form")
    await pilot.press("tab", "tab", *nameserver, "enter")
    # (60 s: a cold first scan in a process imports and compiles the pipeline while the UI waits)
    await until(pilot, lambda: app.query(ScanPanel), timeout=60, what="a live scan panel")


async def test_cancel_from_the_dashboard(thread_backend, slow_estate):
    e, project_id = slow_estate
    app = AssetMonApp()
    async with app.run_test(size=SIZE) as pilot:
        await launch_scan(pilot, app, e.dns.address)
        await until(
            pilot,
            lambda: (
                app.query_one(ScanPanel).progress
                and app.query_one(ScanPanel).progress.modules.get("http")
                and app.query_one(ScanPanel).progress.modules["http"].status == "running"
            ),
            what="http running",
        )
        await pilot.press("c")
        await until(pilot, lambda: not app.query(ScanPanel), timeout=10, what="the panel to go")
    (scan,) = repo.list_scans(project_id)
    assert scan.status == "cancelled"


async def test_restarted_tui_reattaches_to_a_celery_scan(slow_estate, worker):  # the worker sees the long timeout
    e, project_id = slow_estate
    first = AssetMonApp()
    async with first.run_test(size=SIZE) as pilot:
        await launch_scan(pilot, first, e.dns.address, ready=lambda app: "Celery" in app.sub_title)
    (scan,) = repo.list_scans(project_id)
    assert scan.backend == "celery" and scan.status in ("queued", "running")

    second = AssetMonApp()  # a new TUI process would see exactly this
    async with second.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: second.query(f"#scan-panel-{scan.id}"), what="re-attached panel")
        panel = second.query_one(ScanPanel)
        await until(pilot, lambda: panel.progress and panel.progress.state == "running", what="live progress")
        await pilot.press("c")
        await until(pilot, lambda: not second.query(ScanPanel), timeout=30, what="cancelled")
    assert repo.get_scan(scan.id).status == "cancelled"


async def test_closing_the_tui_cancels_its_local_scans(thread_backend, slow_estate):
    e, project_id = slow_estate
    app = AssetMonApp()
    async with app.run_test(size=SIZE) as pilot:
        await launch_scan(pilot, app, e.dns.address)
    (scan,) = repo.list_scans(project_id)
    assert scan.status == "cancelled" and scan.finished_at is not None
