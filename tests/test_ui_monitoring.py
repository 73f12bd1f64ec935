"""The monitoring screens driven by keys at 80x24: events feed and the header
count, findings with reveal and the JS file view, hostile text, scan diff,
trends, schedule and notifier forms (a real apprise delivery to loopback),
export. Data comes from the real backend functions."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from support.world import World, fake_scan, project_with_targets

from assetmon_tui.events import compute_events
from assetmon_tui.store import event_log, notifiers, schedules
from assetmon_tui.store.blobs import save_blob

SIZE = (80, 24)
SECRET = "AKIAREALSECRETVALUE1"
REDACTED = "AKIA…LUE1"
HOSTILE = "[bold]boom[/bold] \x1b]0;pwned\x07 [link=http://x]y[/link]"
JS = (
    b"/*\x1b]0;pwned\x07[bold]x[/bold]*/function init(){var cfg={key:'AKIAREALSECRETVALUE1',region:'eu'};"
    b"if(cfg.key){return cfg}return null}"
)
SHOTS = Path(os.environ.get("ASSETMON_SHOTS", "/tmp/assetmon-shots"))


@pytest.fixture(autouse=True)
def thread_backend(monkeypatch):
    monkeypatch.setenv("ASSETMON_BACKEND", "thread")  # no Redis needed: the app starts at once


@pytest.fixture
def data():
    """Two done scans of acme with differences, their events, a hostile context and title."""
    project = project_with_targets("acme")
    world = World()
    world.js["https://www.acme.test/main.js"] = save_blob(JS)
    world.findings["fp-aws"]["context"] = f'var k = "{REDACTED}"; // {HOSTILE}\nreturn k;'
    first = fake_scan(project.id, world)
    compute_events(first)
    later = world.copy()
    later.names["dev.acme.test"] = ("ok", [("A", "10.0.0.4")])
    later.services[("10.0.0.2", 6379)] = "redis"
    later.http["https://www.acme.test/"]["title"] = f"Shop {HOSTILE}"
    second = fake_scan(project.id, later)
    compute_events(second)
    return project, first, second


def app():
    from assetmon_tui.ui.app import AssetMonApp

    return AssetMonApp()


def screen_text(a) -> str:
    """What the terminal shows, as plain text (as of the last layout: see `shown`)."""
    return "\n".join(strip.text for strip in a.screen._compositor.render_strips())


async def showing(pilot, *needles: str, timeout: float = 10.0) -> str:
    """The screen once it shows every needle at once (updates land a frame or more
    after the state changes): checks of what is *absent* run on this same text."""
    for _ in range(int(timeout / 0.05)):
        await pilot.pause(0.05)
        text = screen_text(pilot.app)
        if all(n in text for n in needles):
            return text
    raise AssertionError(f"the screen never showed all of {needles}\n{screen_text(pilot.app)}")


async def until(pilot, condition, timeout: float = 10.0, what: str = "condition"):
    for _ in range(int(timeout / 0.05)):
        await pilot.pause(0.05)
        if condition():
            return
    raise AssertionError(f"timed out waiting for {what}\n{screen_text(pilot.app)}")


def on_dashboard(a) -> bool:
    from assetmon_tui.ui.screens.dashboard import DashboardScreen

    return isinstance(a.screen, DashboardScreen)


async def started(pilot):
    a = pilot.app
    await until(
        pilot,
        lambda: a.dispatcher is not None and a.project_id is not None and a.query_one("#scans").row_count > 0,
        what="the dashboard",
    )


def shot(a, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    a.save_screenshot(f"{name}.svg", str(SHOTS))


# -- events -----------------------------------------------------------------------------------


async def test_events_feed_acknowledge_and_header_count(data):
    project, _, second = data
    new = event_log.unacknowledged_count()
    assert new >= 4  # the baseline and the second scan's changes
    async with app().run_test(size=SIZE) as pilot:
        a = pilot.app
        await started(pilot)
        await until(pilot, lambda: f"{new} new events ·" in a.sub_title, what="the header count")
        await pilot.press("e")
        await until(pilot, lambda: a.screen.query_one("#events").row_count == new, what="the events")
        table = a.screen.query_one("#events")
        types = {str(table.get_row_at(i)[4]) for i in range(table.row_count)}
        assert {"host_new", "port_new", "title_changed", "baseline"} <= types
        await showing(pilot, "acme", "port_new", "host_new", f"{new} new events ·")
        shot(a, "events")

        # acknowledge the highlighted (newest) one: the header count drops
        await pilot.press("a")
        await until(pilot, lambda: event_log.unacknowledged_count() == new - 1, what="the acknowledgement")
        await until(pilot, lambda: f"{new - 1} new events ·" in a.sub_title, what="the header to drop")
        await showing(pilot, f"{new - 1} new events ·")

        # the severity filter (a minimum) hides info events; u keeps new ones only
        await pilot.press("s", "s")  # all -> low -> medium
        await until(pilot, lambda: "severity ≥ medium" in screen_text(a), what="the severity filter")
        await until(
            pilot,
            lambda: (
                table.row_count
                and all(str(table.get_row_at(i)[3]) in ("medium", "high", "critical") for i in range(table.row_count))
            ),
            what="filtered rows",
        )
        assert table.row_count < new
        await pilot.press("s", "s", "s")  # high, critical, back to all
        await until(pilot, lambda: table.row_count == new, what="all events again")

        # the hostile title: literal in the table cell (a Text, never markup) and in the detail line
        row = next(i for i in range(table.row_count) if str(table.get_row_at(i)[4]) == "title_changed")
        cell = table.get_row_at(row)[5]
        assert not isinstance(cell, str) and "[bold]boom[/bold]" in cell.plain and "\x1b" not in cell.plain
        table.move_cursor(row=row)
        text = await showing(pilot, "[bold]boom[/bold]", "[link=http://x]y[/link]")
        assert "pwned" not in text

        # Enter on an event: the diff of its scan with the one before
        row = next(i for i in range(table.row_count) if str(table.get_row_at(i)[4]) == "port_new")
        table.move_cursor(row=row)
        await pilot.press("enter")
        await until(pilot, lambda: "+ 10.0.0.2:6379" in screen_text(a), what="the event's diff")
        await pilot.press("escape")
        await until(pilot, lambda: type(a.screen).__name__ == "EventsScreen", what="back to events")

        # acknowledge everything shown: no count left in the header
        await pilot.press("A")
        await until(pilot, lambda: event_log.unacknowledged_count() == 0, what="all acknowledged")
        await until(pilot, lambda: "new event" not in a.sub_title, what="the header without a count")
        await pilot.press("escape")
        await until(pilot, lambda: on_dashboard(a), what="the dashboard")


# -- findings -----------------------------------------------------------------------------------


async def test_findings_reveal_hide_hostile_context_and_js_view(data):
    async with app().run_test(size=SIZE) as pilot:
        a = pilot.app
        await started(pilot)
        await pilot.press("f")
        await until(pilot, lambda: a.screen.query_one("#findings").row_count == 1, what="the findings")
        text = await showing(pilot, REDACTED, "aws_access_key_id", "return k;")
        assert SECRET not in text and "REVEALED" not in text
        assert "aws_access_key_id" in text and "high" in text
        # hostile context: markup shown literally, the escape sequence gone
        assert "[bold]boom[/bold]" in text and "pwned" not in text and "\x1b" not in text

        await pilot.press("v")
        await showing(pilot, SECRET, "REVEALED", "secret revealed")
        shot(a, "findings-revealed")
        await pilot.press("v")
        await until(pilot, lambda: SECRET not in screen_text(a), what="the value hidden again")
        text = await showing(pilot, REDACTED, "v reveals")
        assert SECRET not in text and "REVEALED" not in text

        # the severity filter: nothing is critical
        await pilot.press("s", "s", "s", "s")  # low, medium, high, critical
        await until(pilot, lambda: a.screen.query_one("#findings").row_count == 0, what="critical only")
        await pilot.press("s")
        await until(pilot, lambda: a.screen.query_one("#findings").row_count == 1, what="all findings")

        # the JS file, beautified in a worker process; the secret stays redacted
        await pilot.press("b")
        await until(pilot, lambda: type(a.screen).__name__ == "JsViewScreen", what="the JS view")
        area = a.screen.query_one("#js-text")
        await until(pilot, lambda: "function init()" in area.text, timeout=30, what="the beautified file")
        assert "\n" in area.text and area.read_only
        assert REDACTED in area.text and SECRET not in area.text
        assert "pwned" not in area.text and "\x1b" not in area.text and "[bold]x[/bold]" in area.text
        await showing(pilot, "beautified")
        shot(a, "js-view")
        await pilot.press("escape")
        await until(pilot, lambda: type(a.screen).__name__ == "FindingsScreen", what="back to findings")

        # a text filter; Escape in the box clears it and stays on the screen
        table = a.screen.query_one("#findings")
        await pilot.press("slash", *"nomatch", "enter")
        await until(pilot, lambda: table.row_count == 0, what="the filter")
        await pilot.press("slash", "escape")
        await until(pilot, lambda: table.row_count == 1, what="the cleared filter")
        assert type(a.screen).__name__ == "FindingsScreen"


async def test_js_view_falls_back_to_the_raw_text_on_timeout(data, monkeypatch):
    from assetmon_tui.secrets import beautify

    def too_slow(text, timeout=30.0, cache_dir=None):
        raise TimeoutError("too slow")

    monkeypatch.setattr(beautify, "beautify_file", too_slow)
    async with app().run_test(size=SIZE) as pilot:
        a = pilot.app
        await started(pilot)
        await pilot.press("f")
        await until(pilot, lambda: a.screen.query_one("#findings").row_count == 1, what="the findings")
        await pilot.press("b")
        await until(pilot, lambda: type(a.screen).__name__ == "JsViewScreen", what="the JS view")
        area = a.screen.query_one("#js-text")
        await until(pilot, lambda: "function init()" in area.text, what="the raw file")
        assert "\n" not in area.text.strip() and REDACTED in area.text and SECRET not in area.text
        await showing(pilot, "showing the raw text")


# -- diff and trends -----------------------------------------------------------------------------


async def test_diff_of_two_scans_and_trends(data):
    project, first, second = data
    async with app().run_test(size=SIZE) as pilot:
        a = pilot.app
        await started(pilot)
        scans = a.query_one("#scans")
        scans.focus()
        scans.move_cursor(row=0)  # the newest scan
        await pilot.press("d")  # with the previous done scan
        text = await showing(pilot, "+ dev.acme.test", f"Scan #{first} → scan #{second}", "+ 10.0.0.2:6379")
        assert "- dev.acme.test" not in text
        shot(a, "diff")
        await pilot.press("w")  # swapped: the new host is removed
        await until(pilot, lambda: "- dev.acme.test" in screen_text(a), what="the swapped diff")
        await pilot.press("escape")

        # mark the older scan, highlight the newer, diff
        await until(pilot, lambda: on_dashboard(a), what="the dashboard")
        scans.focus()
        scans.move_cursor(row=1)
        await pilot.press("m")
        assert a.dashboard.diff_base == first
        scans.move_cursor(row=0)
        await pilot.press("d")
        await until(pilot, lambda: "+ dev.acme.test" in screen_text(a), what="the diff from the mark")
        await pilot.press("escape")

        await until(pilot, lambda: on_dashboard(a), what="the dashboard")
        await pilot.press("t")
        await until(pilot, lambda: a.screen.query_one("#history").row_count == 2, what="the trends")
        assert [r["hosts"] for r in a.screen.history] == [3, 4]  # 3 names (their addresses are theirs), then dev
        await showing(pilot, "hosts", "findings", "+1")
        shot(a, "trends")
        await pilot.press("enter")  # the newest row: diff with the previous scan
        await until(pilot, lambda: "+ dev.acme.test" in screen_text(a), what="the diff from trends")


# -- schedule -------------------------------------------------------------------------------------


async def test_schedule_form_rejects_bad_cron_and_saves_an_interval(data):
    project, _, _ = data
    async with app().run_test(size=SIZE) as pilot:
        a = pilot.app
        await started(pilot)
        await pilot.press("S")
        await until(pilot, lambda: type(a.screen).__name__ == "ScheduleForm", what="the schedule form")
        await pilot.press(*"61 * * * *", "enter")
        await until(pilot, lambda: "bad cron line" in screen_text(a), what="the cron error")
        assert schedules.get_schedule(project.id) is None and type(a.screen).__name__ == "ScheduleForm"
        shot(a, "schedule-error")
        await pilot.press("ctrl+u", *"nonsense", "enter")
        await until(pilot, lambda: "Not an interval" in screen_text(a), what="the interval error")
        await pilot.press("ctrl+u", *"6h", "enter")
        await until(pilot, lambda: schedules.get_schedule(project.id) is not None, what="the saved schedule")
        schedule = schedules.get_schedule(project.id)
        assert schedule.kind == "interval" and schedule.interval_seconds == 6 * 3600 and schedule.enabled
        # the default profile's modules are ticked by default, and each run applies that profile
        assert schedule.modules == "subdomains,dns,ports,http,takeover"
        assert json.loads(schedule.options) == {"profile": "standard"}
        await until(pilot, lambda: on_dashboard(a), what="the form to close")

        # reopened, the form shows the saved schedule; a valid cron line replaces it
        await pilot.press("S")
        await until(pilot, lambda: "next run" in screen_text(a), what="the current schedule")
        assert a.screen.query_one("#every").value == "6h"
        await pilot.press("ctrl+u", *"0 3 * * *", "enter")
        await until(pilot, lambda: schedules.get_schedule(project.id).kind == "cron", what="the cron schedule")
        assert schedules.get_schedule(project.id).cron == "0 3 * * *"


async def test_due_schedules_run_in_thread_mode(data, monkeypatch):
    """The app starts a due schedule itself when the backend is the thread one."""
    import assetmon_tui.ui.app as app_module
    from assetmon_tui import schedule
    from assetmon_tui.store.models import utcnow

    project, _, _ = data
    monkeypatch.setattr(app_module, "SCHEDULE_INTERVAL", 0.2)
    submitted = []
    async with app().run_test(size=SIZE) as pilot:
        a = pilot.app
        await started(pilot)
        monkeypatch.setattr(a.dispatcher, "submit", lambda pid, modules, options: submitted.append((pid, modules)))
        schedule.set_schedule(project.id, interval_seconds=3600, modules=["dns"])
        schedules.save_schedule(project.id, next_run_at=utcnow())  # due now
        await until(pilot, lambda: submitted, what="the scheduled scan")
        assert submitted == [(project.id, ["dns"])]


# -- notifiers ----------------------------------------------------------------------------------


async def test_notifier_form_adds_a_url_and_sends_a_test(data, receiver):
    project, _, _ = data
    async with app().run_test(size=SIZE) as pilot:
        a = pilot.app
        await started(pilot)
        await pilot.press("N")
        await until(pilot, lambda: type(a.screen).__name__ == "NotifiersForm", what="the notifier form")
        await pilot.press(*"nonsense://nowhere", "enter")
        await until(pilot, lambda: "apprise understands" in screen_text(a), what="the URL error")
        assert notifiers.list_notifiers(project.id) == []

        await pilot.press("ctrl+u", *receiver.url, "enter")
        await until(pilot, lambda: a.screen.query_one("#notifiers").row_count == 1, what="the added notifier")
        (notifier,) = notifiers.list_notifiers(project.id)
        assert notifier.url == receiver.url and notifier.min_severity == "medium"
        await showing(pilot, "json://127.0.0.1")
        assert a.screen.query_one("#notifiers").has_focus
        await pilot.press("t")
        await until(pilot, lambda: receiver.bodies, what="the test message")
        assert receiver.bodies[0]["title"] == "AssetMon: test notification"
        await until(pilot, lambda: "delivered" in screen_text(a), what="the test result")
        shot(a, "notifiers")

        await pilot.press("space")  # switched off
        await until(pilot, lambda: not notifiers.list_notifiers(project.id)[0].enabled, what="the notifier off")
        await pilot.press("x")  # asks first: its URL may hold a token that is hard to type again
        await until(pilot, lambda: type(a.screen).__name__ == "ConfirmForm", what="the question")
        await pilot.press("n")
        await until(pilot, lambda: type(a.screen).__name__ == "NotifiersForm", what="no")
        assert len(notifiers.list_notifiers(project.id)) == 1
        await pilot.press("x", "y")
        await until(pilot, lambda: notifiers.list_notifiers(project.id) == [], what="the notifier deleted")
        await pilot.press("escape")
        await until(pilot, lambda: on_dashboard(a), what="the form to close")


# -- export ---------------------------------------------------------------------------------------


async def test_export_writes_a_json_file(data, tmp_path, monkeypatch):
    _, first, second = data
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ASSETMON_CWD", raising=False)  # ./start.sh test exports the caller's folder
    async with app().run_test(size=SIZE) as pilot:
        a = pilot.app
        await started(pilot)
        await pilot.press("E")
        await until(pilot, lambda: type(a.screen).__name__ == "ExportForm", what="the export form")
        assert a.screen.query_one("#path").value.endswith(".html")
        shot(a, "export")
        await pilot.press("enter", "down", "enter")  # the format list: html -> json
        await until(pilot, lambda: a.screen.query_one("#path").value.endswith(".json"), what="the json name")
        name = a.screen.query_one("#path").value
        assert name.startswith("acme-") and len(name) == len("acme-20261128.json")
        await pilot.press("tab", "enter")
        path = tmp_path / name
        await until(pilot, lambda: on_dashboard(a), what="the form to close")
        doc = json.loads(path.read_text())
        assert doc["project"] == "acme" and any(e["type"] == "host_new" for e in doc["events"])
        assert {h["name"] for h in doc["inventory"]["hosts"]} >= {"dev.acme.test", "www.acme.test"}
        assert SECRET not in path.read_text()

        # again, events of the second scan only: the file is replaced only after a second Enter
        await pilot.press("E")
        await until(pilot, lambda: type(a.screen).__name__ == "ExportForm", what="the export form")
        await pilot.press("enter", "down", "enter", "tab", "tab", *f"{first}x", "enter")  # x: refused
        await until(pilot, lambda: "file exists" in screen_text(a), what="the overwrite question")
        await pilot.press("enter")
        await until(pilot, lambda: on_dashboard(a), what="the form to close")
        events = json.loads(path.read_text())["events"]
        assert events and {e["scan"] for e in events} == {second}


async def test_dashboard_footer_and_palette_at_80_columns(data):
    from assetmon_tui.ui.actions import actions_of

    async with app().run_test(size=SIZE) as pilot:
        a = pilot.app
        await started(pilot)
        await pilot.pause(0.2)
        footer = (await showing(pilot, "Quit")).splitlines()[-1]
        for label in ("Scan", "Results", "Findings", "Events", "Quit"):
            assert label in footer, footer
        shot(a, "dashboard")
        # the palette offers every action of the dashboard and the global ones, with its keys
        commands = {c.title: c.help for c in a.get_system_commands(a.screen)}
        assert commands["Launch scan"] == "Choose modules and scan the project (s)"
        assert commands["Delete target"].endswith("(del/x)") and commands["Check backend"] == (
            "Ask Redis and the workers again now"
        )
        for node in (a.screen, a):
            for action in actions_of(node):
                assert not action.palette or (action.title or action.label) in commands
                name = action.name.split("(")[0].removeprefix("app.")
                assert hasattr(node, f"action_{name}") or hasattr(a, f"action_{name}"), action
        assert {"Launch scan", "Diff scans", "Change events", "Theme"} <= set(commands)

        # on another screen: that screen's actions and the global ones, not the dashboard's
        await pilot.press("f")
        await until(pilot, lambda: type(a.screen).__name__ == "FindingsScreen", what="the findings")
        titles = {c.title for c in a.get_system_commands(a.screen)}
        assert {"Reveal secret", "JS file view", "Filter", "Change events", "Check backend"} <= titles
        assert "Launch scan" not in titles
        # a palette command runs on the screen it was offered for
        (severity,) = [c for c in a.get_system_commands(a.screen) if c.title == "Minimum severity"]
        await severity.callback()
        await until(pilot, lambda: a.screen.min_severity == "low", what="the severity from the palette")
