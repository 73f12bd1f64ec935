"""SVG snapshots of every screen at 80x24 and 120x40 (pytest-textual-snapshot).

Deterministic by construction: fixed data written into the store by the test
(two done scans of "acme" with their events), every stored time rewritten to
a fixed instant shown in UTC, the thread backend (a fixed header), a live
scan panel fed a fixed `Progress`, no animation and no blinking cursor.

    .venv/bin/python -m pytest tests/test_snapshots.py --snapshot-update   # after a deliberate UI change
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from support import frozen
from support.frozen import settle, showing, until, utc_thread_world
from support.world import World, fake_scan, project_with_targets
from textual.pilot import Pilot

from assetmon_tui.core.progress import ModuleProgress, Progress
from assetmon_tui.events import compute_events
from assetmon_tui.store import event_log, leases, repo

pytestmark = pytest.mark.one_store  # the store is not what this tests: the SQLite pass is enough

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]
STARTED = 1_795_000_000.0  # the live scan's start, as a time.time() value


@pytest.fixture(autouse=True)
def fixed_world(monkeypatch):
    with utc_thread_world(monkeypatch):
        yield


# minutes after the row's hour, by column name (other columns: on the hour), so that a
# column added to a table does not move the times shown
MINUTES = {"started_at": 1, "finished_at": 4, "heartbeat": 4, "last_seen": 3, "updated_at": 3, "next_run_at": 30}


def freeze_times() -> None:
    frozen.freeze_times(MINUTES)


@pytest.fixture
def data() -> dict[str, Any]:
    """acme with two done scans (dev.acme.test and a Redis port appear in the second) and their events."""
    project = project_with_targets("acme")
    world = World()
    first = fake_scan(project.id, world)
    compute_events(first)
    later = world.copy()
    later.names["dev.acme.test"] = ("ok", [("A", "10.0.0.4")])
    later.services[("10.0.0.2", 6379)] = "redis"
    later.http["https://www.acme.test/"]["title"] = "Acme shop"
    second = fake_scan(project.id, later)
    compute_events(second)
    freeze_times()
    return {"project": project.id, "scans": [first, second], "events": event_log.unacknowledged_count()}


@pytest.fixture
def live_scan(data, monkeypatch) -> int:
    """A third scan, running: the dispatcher reports it with a fixed Progress (and reaps nothing)."""
    from assetmon_tui.dispatch import Dispatcher

    scan = repo.create_scan(data["project"], ["dns", "ports", "http", "js"], {})
    assert leases.claim(scan.id, "thread", "test:1", 60, 3)
    freeze_times()
    row = repo.get_scan(scan.id)
    progress = Progress(
        scan_id=scan.id,
        state="running",
        modules={
            "dns": ModuleProgress("done", 12, 12),
            "ports": ModuleProgress("running", 45, 100),
            "http": ModuleProgress("pending"),
            "js": ModuleProgress("pending"),
        },
        counters={"hosts": 7, "services": 3},
        message="probing 10.0.0.2",
        started_at=STARTED,
        finished_at=STARTED + 95,  # elapsed is fixed: 1m35s
    )
    monkeypatch.setattr(Dispatcher, "reap", lambda self: [])
    monkeypatch.setattr(Dispatcher, "active", lambda self: [(row, progress)])
    return scan.id


@pytest.fixture
def aged(data) -> dict[str, Any]:
    """Two more done scans of acme (gone after 2 misses): in the third, old.acme.test
    answers NXDOMAIN and ports 10.0.0.2:22 and 10.0.0.3:80 close (unconfirmed); in the
    fourth they are still missing (gone), so is 10.0.0.3 (unconfirmed: no port, no name),
    http://api.acme.test/ no longer answers (unconfirmed) and shop.acme.test is new."""
    world = World()
    world.names["dev.acme.test"] = ("ok", [("A", "10.0.0.4")])
    world.services[("10.0.0.2", 6379)] = "redis"
    world.http["https://www.acme.test/"]["title"] = "Acme shop"
    world.names["old.acme.test"] = ("nxdomain", [])
    del world.services[("10.0.0.2", 22)]
    del world.services[("10.0.0.3", 80)]
    third = fake_scan(data["project"], world, options={"gone_after": 2})
    compute_events(third)
    del world.http["http://api.acme.test/"]
    world.names["shop.acme.test"] = ("ok", [("A", "10.0.0.1")])
    fourth = fake_scan(data["project"], world, options={"gone_after": 2})
    compute_events(fourth)
    freeze_times()
    return {**data, "scans": [*data["scans"], third, fourth], "events": event_log.unacknowledged_count()}


RESOLVER = "3 of 12 names got no definitive answer (3 timeout): they keep what they had"
PROBES = "2 of 9 gave no answer (timeout), e.g. https://[bold]x[/bold].acme.test/\x1b]0;pwned\x07"
WARNINGS = [
    f"resolver A,AAAA,CNAME: failed ({RESOLVER})",
    f"web probes: failed ({PROBES})",
    "ct acme.test: failed (connection refused: http://127.0.0.1:9/)",
]


@pytest.fixture
def warned(data, monkeypatch) -> dict[str, Any]:
    """A third scan done with two failed sources (one reason carries hostile text), then
    a fourth, running, whose fixed Progress has three warnings."""
    from assetmon_tui.dispatch import Dispatcher
    from assetmon_tui.events import as_of
    from assetmon_tui.events.items import inventory

    counts = inventory([i for i, _ in as_of(data["project"])[1]]).as_dict()
    done = repo.create_scan(data["project"], ["dns", "ports", "http"], {"nameservers": ["127.0.0.1:5353"]})
    assert leases.claim(done.id, "thread", "test:1", 60, 3)
    sources = [
        {"source": "port scan", "step": "ports", "status": "ok", "reason": ""},
        {"source": "resolver A,AAAA,CNAME", "step": "dns", "status": "failed", "reason": RESOLVER},
        {"source": "web probes", "step": "http", "status": "failed", "reason": PROBES},
    ]
    repo.finish_scan(done.id, "done", summary={"warnings": 2, "inventory": counts}, sources=sources)
    live = repo.create_scan(data["project"], ["subdomains", "dns", "http"], {})
    assert leases.claim(live.id, "thread", "test:1", 60, 3)
    freeze_times()
    row = repo.get_scan(live.id)
    progress = Progress(
        scan_id=live.id,
        state="running",
        modules={
            "subdomains": ModuleProgress("done", 1, 1),
            "dns": ModuleProgress("done", 12, 12),
            "http": ModuleProgress("running", 4, 9),
        },
        counters={"hosts": 7, "endpoints": 2},
        message="http: running",
        warnings=WARNINGS,
        started_at=STARTED,
        finished_at=STARTED + 95,
    )
    monkeypatch.setattr(Dispatcher, "reap", lambda self: [])
    monkeypatch.setattr(Dispatcher, "active", lambda self: [(row, progress)])
    return {**data, "done": done.id, "live": live.id}


# -- driving the app ----------------------------------------------------------------------


def text_of(widget: Any) -> str:
    """What a Static shows, as plain text."""
    import io

    from rich.console import Console

    console = Console(file=io.StringIO(), width=200, record=True)
    console.print(widget.content)
    return console.export_text()


def dashboard_ready(data: dict[str, Any], scans: int) -> Callable[[Pilot], Awaitable[None]]:
    async def ready(pilot: Pilot) -> None:
        app: Any = pilot.app
        await until(
            pilot,
            lambda: (
                app.dispatcher is not None
                and app.project_id == data["project"]
                and app.query_one("#scans").row_count == scans
                and app.query_one("#targets").row_count == 2
                and "Local thread" in app.sub_title
                and (f"{data['events']} new events" in app.sub_title)
            ),
            "the dashboard",
        )

    return ready


def view(data: dict[str, Any], scans: int, then: Callable[[Pilot], Awaitable[None]] | None = None):
    async def run_before(pilot: Pilot) -> None:
        pilot.app.animation_level = "none"  # e.g. the tabs' underline, which slides when a label grows
        await dashboard_ready(data, scans)(pilot)
        if then is not None:
            await then(pilot)
        await settle(pilot)

    return run_before


def press(*keys: str, until_shown: tuple[str, ...] = ()) -> Callable[[Pilot], Awaitable[None]]:
    async def run(pilot: Pilot) -> None:
        await pilot.press(*keys)
        await showing(pilot, *until_shown)

    return run


# -- the snapshots ------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_dashboard_with_a_live_scan(snap_compare, data, live_scan, size):
    from assetmon_tui.ui.app import AssetMonApp

    async def panel(pilot: Pilot) -> None:
        await showing(pilot, f"Scan #{live_scan} · acme", "hosts 7  services 3", "probing 10.0.0.2", "thread · 1m35s")

    assert snap_compare(AssetMonApp(), terminal_size=size, run_before=view(data, 3, panel))


@pytest.mark.parametrize("size", SIZES)
def test_dashboard_with_warnings(snap_compare, warned, size):
    """The live panel's first two warnings and how many more; the scans table's "done 2 warn"."""
    from assetmon_tui.ui.app import AssetMonApp

    async def panel(pilot: Pilot) -> None:
        await showing(pilot, f"Scan #{warned['live']} · acme", "! resolver A,AAAA,CNAME", "1 more warning", "2 warn")

    assert snap_compare(AssetMonApp(), terminal_size=size, run_before=view(warned, 4, panel))


def test_scan_details(snap_compare, warned):
    """i on a done scan: what it ran with, its inventory, the sources that failed and why."""
    from assetmon_tui.ui.app import AssetMonApp

    async def details(pilot: Pilot) -> None:
        scans: Any = pilot.app.query_one("#scans")
        scans.focus()
        scans.move_cursor(row=1)  # the done scan with warnings (the running one is first)
        await pilot.press("i")
        await showing(pilot, f"Scan #{warned['done']} · acme", "Sources that failed or were skipped", "web probes")

    assert snap_compare(AssetMonApp(), terminal_size=(80, 24), run_before=view(warned, 4, details))


@pytest.mark.parametrize("size", SIZES)
def test_scan_form(snap_compare, data, size):
    from assetmon_tui.ui.app import AssetMonApp

    assert snap_compare(
        AssetMonApp(),
        terminal_size=size,
        run_before=view(data, 2, press("s", until_shown=("Start scan", "new subdomains"))),  # prefilled
    )


@pytest.mark.parametrize("tab", ["hosts", "dns", "services", "http"])
@pytest.mark.parametrize("size", SIZES)
def test_results(snap_compare, data, size, tab):
    from assetmon_tui.ui.app import AssetMonApp

    key = {"hosts": "1", "dns": "2", "services": "3", "http": "4"}[tab]
    # the detail pane of the first row of the tab (host details come from a thread worker)
    detail = {
        "hosts": ("host", "10.0.0.1", "443", "first seen"),
        "dns": ("type", "api.acme.test", "10.0.0.2", "ttl"),
        "services": ("address", "10.0.0.1", "port", "80"),
        "http": ("url", "http://api.acme.test/", "API v1", "first seen"),
    }[tab]

    async def results(pilot: Pilot) -> None:
        app: Any = pilot.app
        await pilot.press("r")
        await until(
            pilot,
            lambda: app.screen.query("#table-http") and app.screen.query_one("#table-http").row_count == 2,
            "results",
        )
        await pilot.press(key)
        await until(
            pilot, lambda: all(d in text_of(app.screen.query_one("#detail")) for d in detail), "the detail pane"
        )
        await app.workers.wait_for_complete([w for w in app.workers if w.group == "detail"])

        def underline_settled() -> bool:  # Textual places it after a relabel, sometimes before the new layout
            tab = app.screen.query_one("#tabs-list > Tab.-active")
            underline = app.screen.query_one("Underline")
            span = tab.virtual_region.shrink(tab.styles.gutter).column_span
            if (underline.highlight_start, underline.highlight_end) == span:
                return True
            tab.label = tab.label  # Relabelled: the underline is placed again, now with the layout done
            return False

        await until(pilot, underline_settled, "the tab underline under the active tab (its label grew)")

    assert snap_compare(AssetMonApp(), terminal_size=size, run_before=view(data, 2, results))


@pytest.mark.parametrize("size", SIZES)
def test_results_history(snap_compare, aged, size):
    """The latest scan's whole history (h): new, open, unconfirmed and gone (dimmed) hosts."""
    from assetmon_tui.ui.app import AssetMonApp

    async def results(pilot: Pilot) -> None:
        await pilot.press("r")
        await showing(pilot, f"as of scan #{aged['scans'][-1]}", "(latest)", "gone (hidden)")
        await pilot.press("h")
        await showing(pilot, "gone (shown)", "old.acme.test", "unconfirmed")
        await until(pilot, lambda: "host" in text_of(pilot.app.screen.query_one("#detail")), "the detail pane")

    assert snap_compare(AssetMonApp(), terminal_size=size, run_before=view(aged, 4, results))


def test_results_of_an_older_scan(snap_compare, aged):
    """Enter on an older scan: its services as of then (unconfirmed, not yet gone), its snapshot's values."""
    from assetmon_tui.ui.app import AssetMonApp

    async def results(pilot: Pilot) -> None:
        scans: Any = pilot.app.query_one("#scans")
        scans.focus()
        scans.move_cursor(row=1)  # the scan before the latest
        await pilot.press("enter")
        await showing(pilot, f"as of scan #{aged['scans'][2]}", "(1 newer)")
        await pilot.press("3")
        await showing(pilot, "? 4 unconfirmed", "6379")
        await until(pilot, lambda: "latest scan only" in text_of(pilot.app.screen.query_one("#detail")), "the note")

    assert snap_compare(AssetMonApp(), terminal_size=(80, 24), run_before=view(aged, 4, results))


@pytest.mark.parametrize("size", SIZES)
def test_findings(snap_compare, data, size):
    from assetmon_tui.ui.app import AssetMonApp

    steps = press("f", until_shown=("aws_access_key_id", "AKIA…LUE1", "Findings (1/1)"))
    assert snap_compare(AssetMonApp(), terminal_size=size, run_before=view(data, 2, steps))


@pytest.mark.parametrize("size", SIZES)
def test_events(snap_compare, data, size):
    from assetmon_tui.ui.app import AssetMonApp

    steps = press("e", until_shown=(f"Events ({data['events']} shown", "host_new", "scan #"))
    assert snap_compare(AssetMonApp(), terminal_size=size, run_before=view(data, 2, steps))


@pytest.mark.parametrize("size", SIZES)
def test_diff(snap_compare, data, size):
    from assetmon_tui.ui.app import AssetMonApp

    first, second = data["scans"]

    async def diff(pilot: Pilot) -> None:
        pilot.app.query_one("#scans").focus()
        await pilot.press("d")  # the newest scan with the previous done one
        await showing(pilot, f"Scan #{first} → scan #{second}", "+ dev.acme.test", "w swaps")

    assert snap_compare(AssetMonApp(), terminal_size=size, run_before=view(data, 2, diff))


@pytest.mark.parametrize("size", SIZES)
def test_trends(snap_compare, data, size):
    from assetmon_tui.ui.app import AssetMonApp

    steps = press("t", until_shown=("2 scans", "Inventory over done scans"))
    assert snap_compare(AssetMonApp(), terminal_size=size, run_before=view(data, 2, steps))


@pytest.mark.parametrize("size", SIZES)
def test_schedule_form(snap_compare, data, size):
    from assetmon_tui.ui.app import AssetMonApp

    async def form(pilot: Pilot) -> None:
        await pilot.press("S")
        await showing(pilot, "Scheduled scans of", "No schedule yet.")

    assert snap_compare(AssetMonApp(), terminal_size=size, run_before=view(data, 2, form))


@pytest.mark.parametrize("size", SIZES)
def test_help(snap_compare, data, size):
    """? on the dashboard: its keys, then the global ones, from the action registry."""
    from assetmon_tui.ui.app import AssetMonApp

    assert snap_compare(
        AssetMonApp(), terminal_size=size, run_before=view(data, 2, press("question_mark", until_shown=("Keys",)))
    )


@pytest.mark.parametrize("size", SIZES)
def test_dashboard_wide(snap_compare, data, size):
    """w: the projects pane hidden, every scan column that fits; the marked scan (m) shows ◆."""
    from assetmon_tui.ui.app import AssetMonApp

    async def wide(pilot: Pilot) -> None:
        await pilot.press("w")
        await showing(pilot, "took")
        await pilot.press("m")
        await showing(pilot, "◆")

    assert snap_compare(AssetMonApp(), terminal_size=size, run_before=view(data, 2, wide))


def test_delete_target_asks(snap_compare, data):
    from assetmon_tui.ui.app import AssetMonApp

    async def ask(pilot: Pilot) -> None:
        pilot.app.query_one("#targets").focus()
        await pilot.press("x")
        await showing(pilot, "Delete the target")

    assert snap_compare(AssetMonApp(), terminal_size=(80, 24), run_before=view(data, 2, ask))
