"""The TUI as a daily tool: help generated from the action registry, quitting
(with one confirmation when local scans would die), a worker that is still
starting, layouts that fit 80 columns, deleting with a confirmation, and a
notification when a scan ends. Real app, real store, real scans on loopback."""

from __future__ import annotations

import time

import pytest
from support.scenario import estate, make_project
from test_ui import text_of, until
from textual.widgets import DataTable, Static

from assetmon_tui.core.config import get_settings
from assetmon_tui.store import repo
from assetmon_tui.ui.actions import actions_of
from assetmon_tui.ui.app import WORKER_STARTING, AssetMonApp
from assetmon_tui.ui.screens.forms import ConfirmForm
from assetmon_tui.ui.screens.help import HelpScreen

SIZE = (80, 24)


@pytest.fixture
def thread_backend(monkeypatch):
    monkeypatch.setenv("ASSETMON_BACKEND", "thread")
    get_settings.cache_clear()


def notified(app: AssetMonApp, part: str) -> bool:
    return any(part in n.message for n in app._notifications)


def help_text(app: AssetMonApp) -> str:
    return text_of(app.screen.query_one("#help-keys", Static))


async def test_help_lists_every_key_of_the_screen_and_the_global_ones(thread_backend):
    make_project("acme", ["acme.test"])
    app = AssetMonApp()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.project_id is not None, what="project loaded")
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
        shown = help_text(app)
        for action in actions_of(app.dashboard) + actions_of(app):
            if action.keys and action.palette:
                assert action.key_display in shown and (action.title or action.label) in shown, action
        assert "Wide/narrow" in shown and "Scan details" in shown  # keys that the footer has no room for
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.dashboard, what="help closed by Escape")

        await pilot.press("r")  # another screen's help lists its own keys
        await until(pilot, lambda: app.screen is not app.dashboard, what="results")
        results = app.screen
        await pilot.press("f1")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), what="help on results")
        shown = help_text(app)
        assert "Filter" in shown and "Everywhere" in shown and "New project" not in shown
        await pilot.press("question_mark")
        await until(pilot, lambda: app.screen is results, what="help closed by ?")


async def test_palette_shows_keys_and_replaces_textuals_keys_panel(thread_backend):
    app = AssetMonApp()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.dispatcher is not None, what="start-up")
        commands = {c.title: c.help for c in app.get_system_commands(app.dashboard)}
        assert "Keys" not in commands  # its panel ignored Escape: our help screen does the job
        assert commands["Help: keys"].endswith("(?/f1)")
        assert commands["Launch scan"].endswith("(s)") and commands["Scan details"].endswith("(i)")


async def test_ctrl_c_quits_at_once_without_local_scans(thread_backend):
    app = AssetMonApp()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.dispatcher is not None, what="start-up")
        await pilot.press("ctrl+c")
        await until(pilot, lambda: not app.is_running, what="the app to exit")


@pytest.fixture
def slow_scan(monkeypatch):
    """A project whose thread scan stays busy on a page that answers only after a minute."""
    monkeypatch.setenv("ASSETMON_HTTP_TIMEOUT", "60")
    get_settings.cache_clear()
    with estate(slow=True) as e:
        yield e, make_project("acme", [e.url])


async def test_quit_with_a_local_scan_asks_once_and_says_what_it_cancels(thread_backend, slow_scan):
    e, project_id = slow_scan
    app = AssetMonApp()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.project_id == project_id, what="project loaded")
        await until(pilot, lambda: app.dispatcher is not None, what="the start-up thread's dispatcher")
        assert app.dispatcher is not None
        scan = app.dispatcher.submit(project_id, ["dns", "http"], e.options())
        await until(pilot, lambda: app.query(f"#scan-panel-{scan.id}"), what="the scan's panel")

        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, ConfirmForm), what="the confirmation")
        assert f"#{scan.id} (acme)" in app.screen.question and "cancel" in app.screen.question
        await pilot.press("n")
        await until(pilot, lambda: app.screen is app.dashboard, what="back on the dashboard")
        assert app.is_running and repo.get_scan(scan.id).status == "running"

        await pilot.press("ctrl+c")  # the same question
        await until(pilot, lambda: isinstance(app.screen, ConfirmForm), what="the confirmation again")
        await pilot.press("ctrl+c")  # a second Ctrl+C (or q) is a yes
        await until(pilot, lambda: not app.is_running, what="the app to exit")
    assert repo.get_scan(scan.id).status == "cancelled"


async def test_header_says_starting_worker_until_the_worker_answers(monkeypatch, worker_factory):
    """./start.sh sets ASSETMON_WORKER_STARTING: no backend is chosen (and no
    scan runs in the TUI) until its worker answers."""
    monkeypatch.setenv(WORKER_STARTING, str(time.time() + 60))
    make_project("acme", ["acme.test"])
    app = AssetMonApp()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "starting worker" in app.sub_title, what="starting worker… in the header")
        # (the project first: before it is listed, s says "Create a project first")
        await until(pilot, lambda: app.project_id is not None, what="the project")
        assert app.dispatcher is None  # s says "Still starting": nothing can be submitted to the wrong backend
        await pilot.press("s")
        await until(pilot, lambda: notified(app, "Still starting"), what="the still-starting toast")
        worker_factory()
        await until(pilot, lambda: "Celery" in app.sub_title, timeout=60, what="Celery in the header")
        assert app.dispatcher is not None and app.dispatcher.health().backend == "celery"


async def test_header_gives_up_waiting_when_the_worker_never_comes(monkeypatch, redis_server):
    monkeypatch.setenv(WORKER_STARTING, str(time.time() + 2))
    app = AssetMonApp()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "starting worker" in app.sub_title, what="starting worker…")
        await until(pilot, lambda: "no worker on" in app.sub_title, what="the honest fallback")
        assert app.dispatcher is not None


def columns(table: DataTable) -> list[str]:
    return [str(c.label) for c in table.columns.values()]


async def test_scans_table_fits_80_columns_and_w_widens_it(thread_backend):
    project_id = make_project("acme", ["acme.test", "!dev.acme.test"])
    for _ in range(2):
        scan = repo.new_scan(project_id, ["dns"], {})
        repo.finish_scan(scan.id, "done")
    app = AssetMonApp()
    async with app.run_test(size=SIZE) as pilot:
        scans = app.query_one("#scans", DataTable)
        await until(pilot, lambda: scans.row_count == 2, what="scans listed")
        narrow = columns(scans)
        assert narrow[:2] == ["#", "status"] and "found" in narrow and "backend" not in narrow
        assert sum(c.get_render_width(scans) for c in scans.columns.values()) <= scans.size.width - 2
        targets = app.query_one("#targets", DataTable)
        assert columns(targets) == ["target"] and "!dev.acme.test" in str(targets.get_row_at(1)[0])

        await pilot.press("w")
        await until(pilot, lambda: "took" in columns(scans), what="more columns when wide")
        assert {"started", "found"} <= set(columns(scans))
        assert sum(c.get_render_width(scans) for c in scans.columns.values()) <= scans.size.width - 2
        await pilot.press("w")
        await until(pilot, lambda: columns(scans) == narrow, what="narrow again")

        await pilot.press("m")  # the mark shows in its row, not only in a toast
        await until(pilot, lambda: "◆" in str(scans.get_row_at(scans.cursor_row)[0]), what="the mark in the row")


async def test_deleting_a_target_asks_first(thread_backend):
    project_id = make_project("acme", ["acme.test", "api.acme.test"])
    app = AssetMonApp()
    async with app.run_test(size=SIZE) as pilot:
        targets = app.query_one("#targets", DataTable)
        await until(pilot, lambda: targets.row_count == 2, what="targets listed")
        targets.focus()
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmForm), what="the question")
        assert "acme.test" in app.screen.question and "acme" in app.screen.question
        await pilot.press("n")
        await until(pilot, lambda: app.screen is app.dashboard, what="no")
        assert len(repo.list_targets(project_id)) == 2
        await pilot.press("x", "y")
        await until(pilot, lambda: targets.row_count == 1, what="the target gone")
        assert notified(app, "deleted") and [t.value for t in repo.list_targets(project_id)] == ["api.acme.test"]


async def test_a_toast_when_a_scan_ends(thread_backend):
    with estate() as e:
        project_id = make_project("acme", e.targets)
        app = AssetMonApp()
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.project_id == project_id, what="project loaded")
            await until(pilot, lambda: app.dispatcher is not None, what="the start-up thread's dispatcher")
            app.dashboard._submit((["dns"], e.options()))  # what the scan form's answer does
            # a dns-only scan of two names often ends before the dashboard's next poll sees it active
            await until(pilot, lambda: notified(app, "Scan #1 done"), timeout=60, what="the toast")


async def test_deleting_a_schedule_asks_first(thread_backend):
    from assetmon_tui.schedule import set_schedule
    from assetmon_tui.store.schedules import get_schedule

    project_id = make_project("acme", ["acme.test"])
    set_schedule(project_id, interval_seconds=6 * 3600)
    app = AssetMonApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.project_id == project_id, what="project loaded")
        await pilot.press("S")
        await until(pilot, lambda: app.screen.query("#delete"), what="the schedule form")
        form = app.screen
        await pilot.click("#delete")
        await until(pilot, lambda: isinstance(app.screen, ConfirmForm), what="the question")
        assert "acme" in app.screen.question
        await pilot.press("n")
        await until(pilot, lambda: app.screen is form, what="back on the form")
        assert get_schedule(project_id) is not None
        await pilot.click("#delete")
        await until(pilot, lambda: isinstance(app.screen, ConfirmForm), what="the question again")
        await pilot.press("y")
        await until(pilot, lambda: get_schedule(project_id) is None, what="the schedule deleted")
        await until(pilot, lambda: notified(app, "Schedule deleted"), what="the toast")


async def test_names_with_markup_are_plain_text_in_questions(thread_backend):
    """A project called "[/bold]" once crashed the TUI (MarkupError) when a question quoted it."""
    make_project("[/bold]", ["acme.test"])
    app = AssetMonApp()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.project_id is not None, what="project loaded")
        await pilot.press("D")
        await until(pilot, lambda: isinstance(app.screen, ConfirmForm), what="the question")
        assert "Delete project [/bold] and all it found?" in str(app.screen.query_one("Label").render())
        await pilot.press("n")
        await until(pilot, lambda: app.screen is app.dashboard, what="no")
        assert app.is_running


async def test_a_taken_project_name_is_refused_in_the_form(thread_backend):
    make_project("acme", ["acme.test"])
    app = AssetMonApp()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.project_id is not None, what="project loaded")
        await pilot.press("n", *"acme", "enter")
        await until(pilot, lambda: "exists already" in text_of(app.screen.query_one("#error", Static)), what="error")
        await pilot.press("ctrl+u", *"acme2", "enter")  # the form is still open: fix the name and go on
        await until(pilot, lambda: app.screen.query("#targets-input"), what="the targets form")
        assert "acme2" in str(app.screen.query_one("Label").render())
        assert [p.name for p in repo.list_projects()] == ["acme", "acme2"]


async def test_only_a_done_scan_can_be_marked_for_a_diff(thread_backend):
    project_id = make_project("acme", ["acme.test"])
    done = repo.new_scan(project_id, ["dns"], {})
    repo.finish_scan(done.id, "done")
    cancelled = repo.new_scan(project_id, ["dns"], {})
    repo.finish_scan(cancelled.id, "cancelled")
    app = AssetMonApp()
    async with app.run_test(size=SIZE) as pilot:
        scans = app.query_one("#scans", DataTable)
        await until(pilot, lambda: scans.row_count == 2, what="scans listed")
        scans.focus()
        scans.move_cursor(row=0)  # the newest first: the cancelled one
        await pilot.press("m")
        await until(pilot, lambda: notified(app, "only done scans are compared"), what="the refusal")
        assert app.dashboard.diff_base is None
        scans.move_cursor(row=1)
        await pilot.press("m")
        await until(pilot, lambda: app.dashboard.diff_base == done.id, what="the mark")
