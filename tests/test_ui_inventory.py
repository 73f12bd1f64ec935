"""One inventory everywhere, driven by keys at 80x24: Results as of a chosen
scan (older or latest) with unconfirmed and gone assets marked, the history
toggle, counts that are the scan's `events.Inventory` (in Results, the scans
table and Trends); and scans whose sources failed: their warnings in the
live panel, "done N warn" in the scans table and the scan details modal.
The store is filled by `support.world` (World, fake_scan, compute_events)
or by real thread-backend scans against a nameserver port nothing answers."""

from __future__ import annotations

import io
import json
import time

import pytest
from rich.console import Console
from support.loopback import free_port
from support.scenario import WEB_ADDRESS, estate, make_project
from support.world import World, fake_scan, project_with_targets
from textual.app import App, ComposeResult
from textual.widgets import DataTable

from assetmon_tui.core.config import get_settings
from assetmon_tui.events import as_of, compute_events
from assetmon_tui.events.items import Inventory, inventory
from assetmon_tui.store import leases, repo
from assetmon_tui.ui.app import AssetMonApp
from assetmon_tui.ui.panels import ScanDetails, ScanPanel
from assetmon_tui.ui.screens.results import ResultsScreen
from assetmon_tui.ui.screens.trends import TrendsScreen

SIZE = (80, 24)
HOSTILE = "[bold]boom[/bold] \x1b]0;pwned\x07 [link=http://x]y[/link]"


@pytest.fixture(autouse=True)
def thread_backend(monkeypatch):
    monkeypatch.setenv("ASSETMON_BACKEND", "thread")  # no Redis needed: the app starts at once
    get_settings.cache_clear()


def screen_text(app) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def text_of(renderable) -> str:
    console = Console(file=io.StringIO(), width=200, record=True)
    console.print(renderable)
    return console.export_text()


async def until(pilot, condition, timeout: float = 15.0, what: str = "condition"):
    for _ in range(int(timeout / 0.05)):
        await pilot.pause(0.05)
        if condition():
            return
    raise AssertionError(f"timed out waiting for {what}\n{screen_text(pilot.app)}")


async def showing(pilot, *needles: str, timeout: float = 15.0) -> str:
    """The screen once it shows every needle at once."""
    for _ in range(int(timeout / 0.05)):
        await pilot.pause(0.05)
        text = screen_text(pilot.app)
        if all(n in text for n in needles):
            return text
    raise AssertionError(f"the screen never showed all of {needles}\n{screen_text(pilot.app)}")


async def started(pilot, scans: int):
    a = pilot.app
    await until(
        pilot,
        lambda: a.dispatcher is not None and a.project_id is not None and a.query_one("#scans").row_count == scans,
        what="the dashboard",
    )


def counts_line(n: Inventory) -> str:
    """The counts Results shows for an inventory (its second line)."""
    return (
        f"{n.hosts} host{'s' if n.hosts != 1 else ''} ({n.names} name{'s' if n.names != 1 else ''}, "
        f"{n.addresses} address{'es' if n.addresses != 1 else ''})"
    )


MARKS = {"+": "new", "?": "unconfirmed", "×": "gone", "*": "reopened", " ": "open"}


def rows(screen: ResultsScreen, tab: str) -> dict[str, str]:
    """A results table as {key: status from its mark} (key: the first cell, and the port for services)."""
    table = screen.query_one(f"#table-{tab}", DataTable)
    out = {}
    for i in range(table.row_count):
        mark, *cells = [str(c) for c in table.get_row_at(i)]
        out[f"{cells[0]}:{cells[1]}" if tab == "services" else cells[0]] = MARKS[mark]
    return out


def results_of(app) -> ResultsScreen:
    assert isinstance(app.screen, ResultsScreen), type(app.screen)
    return app.screen


# -- an estate that loses things: unconfirmed, then gone ----------------------------------------


@pytest.fixture
def aging():
    """Three done scans of acme (gone after 2 misses): in the second, old.acme.test
    answers NXDOMAIN and ports 10.0.0.3:80 and 10.0.0.2:22 close (unconfirmed),
    Redis opens; in the third they are still missing (gone), dev.acme.test appears
    and http://api.acme.test/ stops answering (unconfirmed). A fourth scan failed."""
    project = project_with_targets("acme")
    world = World()
    first = fake_scan(project.id, world)
    compute_events(first)
    second_world = world.copy()
    second_world.names["old.acme.test"] = ("nxdomain", [])
    del second_world.services[("10.0.0.3", 80)]
    del second_world.services[("10.0.0.2", 22)]
    second_world.services[("10.0.0.2", 6379)] = "redis"
    second = fake_scan(project.id, second_world, options={"gone_after": 2})
    compute_events(second)
    third_world = second_world.copy()
    third_world.names["dev.acme.test"] = ("ok", [("A", "10.0.0.4")])
    del third_world.http["http://api.acme.test/"]
    third = fake_scan(project.id, third_world, options={"gone_after": 2})
    compute_events(third)
    failed = fake_scan(project.id, third_world, modules=("dns",), status="failed")
    return project.id, [first, second, third, failed]


def test_the_aging_estate_has_unconfirmed_and_gone_items(aging):
    """What the UI tests below rely on, straight from events.as_of."""
    project_id, (first, second, third, _) = aging
    statuses = {sid: {i.entity: status for i, status in as_of(project_id, sid)[1]} for sid in (first, second, third)}
    assert statuses[second]["host:old.acme.test"] == "unconfirmed"
    assert statuses[second]["service:10.0.0.2:22"] == "unconfirmed"
    assert statuses[third]["host:old.acme.test"] == "gone"
    assert statuses[third]["service:10.0.0.2:22"] == "gone"
    assert statuses[third]["http:http://api.acme.test/"] == "unconfirmed"
    assert statuses[third]["host:dev.acme.test"] == "new"


async def test_results_as_of_latest_and_older_scans_with_marks_toggle_and_counts(aging):
    project_id, (first, second, third, failed) = aging
    latest = inventory([i for i, _ in as_of(project_id)[1]])
    older = inventory([i for i, _ in as_of(project_id, second)[1]])
    assert latest.gone == 4 and latest.unconfirmed == 2 and older.unconfirmed == 4 and older.gone == 0
    async with AssetMonApp().run_test(size=SIZE) as pilot:
        a = pilot.app
        await started(pilot, 4)

        # r: the latest snapshotted scan (the failed one has no inventory), gone left out
        await pilot.press("r")
        await showing(pilot, f"as of scan #{third}", "(latest)", "× 4 gone (hidden)", "? 2 unconfirmed")
        screen = results_of(a)
        assert screen.view.counts == latest  # the counts shown are the Inventory's
        await showing(pilot, counts_line(latest), "3 services", "2 web", "1 script", "1 finding")
        hosts = rows(screen, "hosts")
        assert "old.acme.test" not in hosts  # gone: left out of the inventory
        assert hosts["10.0.0.3"] == "unconfirmed" and hosts["dev.acme.test"] == "new"
        assert hosts["www.acme.test"] == "open"
        assert "10.0.0.2:22" not in rows(screen, "services")

        # h: the whole history, gone ones included and dimmed
        await pilot.press("h")
        await showing(pilot, "× 4 gone (shown)", "old.acme.test")
        hosts = rows(screen, "hosts")
        assert hosts["old.acme.test"] == "gone"
        table = screen.query_one("#table-hosts", DataTable)
        gone_row = next(i for i in range(table.row_count) if str(table.get_row_at(i)[1]) == "old.acme.test")
        assert all("dim" in str(cell.style) for cell in table.get_row_at(gone_row))
        assert screen.view.counts == latest  # the same inventory: only the rows shown differ
        await pilot.press("slash", *"gone", "enter")  # the filter matches the status too
        await until(pilot, lambda: rows(screen, "hosts") == {"old.acme.test": "gone"}, what="the gone filter")
        await pilot.press("slash", "escape")
        await until(pilot, lambda: len(rows(screen, "hosts")) == 7, what="the filter cleared")
        await pilot.press("3")
        services = rows(screen, "services")
        assert services["10.0.0.2:22"] == "gone" and services["10.0.0.3:80"] == "gone"
        assert services["10.0.0.2:6379"] == "open"
        await pilot.press("4")
        assert rows(screen, "http")["http://api.acme.test/"] == "unconfirmed"
        detail = screen.query_one("#detail")
        await until(pilot, lambda: "unconfirmed (missed by 1 scan" in text_of(detail.content), what="the detail")

        # [: the scan before, where the lost things were only unconfirmed
        await pilot.press("left_square_bracket")
        await showing(pilot, f"as of scan #{second}", "(1 newer)", "? 4 unconfirmed", "× 0 gone")
        await until(pilot, lambda: screen.view.counts == older, what="the older counts")
        assert counts_line(older) in screen_text(a)
        await pilot.press("1")
        hosts = rows(screen, "hosts")
        assert hosts["old.acme.test"] == "unconfirmed" and "dev.acme.test" not in hosts
        await pilot.press("3")
        assert rows(screen, "services")["10.0.0.2:6379"] == "new"  # new as of the scan that found it
        # an older scan: its snapshot's values, no live extras (the note says so)
        await until(pilot, lambda: "latest scan only" in text_of(detail.content), what="the older scan's note")
        await pilot.press("right_square_bracket")
        await showing(pilot, f"as of scan #{third}", "(latest)")
        await pilot.press("escape")

        # Enter on a scan row: Results as of that scan
        scans = a.query_one("#scans", DataTable)
        await until(pilot, lambda: type(a.screen).__name__ == "DashboardScreen", what="the dashboard")
        scans.focus()
        scans.move_cursor(row=3)  # the oldest
        await pilot.press("enter")
        await showing(pilot, f"as of scan #{first}", "(2 newer)", "? 0 unconfirmed")
        assert results_of(a).view.counts == inventory([i for i, _ in as_of(project_id, first)[1]])
        await pilot.press("escape")
        await until(pilot, lambda: type(a.screen).__name__ == "DashboardScreen", what="the dashboard")
        scans.focus()
        scans.move_cursor(row=0)  # the failed scan: no inventory of its own, the latest is shown
        await pilot.press("enter")
        await showing(pilot, f"scan #{failed} (failed) has no inventory of its own", f"as of scan #{third}")


async def test_results_without_any_snapshot_show_what_scans_found_so_far():
    """A project whose only scan failed has no inventory snapshot: Results shows the live rows, unmarked."""
    project = project_with_targets("acme")
    failed = fake_scan(project.id, World(), status="failed")
    async with AssetMonApp().run_test(size=SIZE) as pilot:
        a = pilot.app
        await started(pilot, 1)
        await pilot.press("r")
        await showing(pilot, "no finished scan with an inventory yet: what scans found so far", "3 hosts (3 names")
        screen = results_of(a)
        assert screen.view.scan_id is None and failed not in screen.view.scans
        assert set(rows(screen, "hosts").values()) == {"open"}  # no marks without a lifecycle
        assert len(rows(screen, "hosts")) == 6
        await pilot.press("left_square_bracket")  # nothing to step through: a notice, no crash
        await until(pilot, lambda: any("No snapshotted scan" in n.message for n in a._notifications), what="notice")


async def test_scans_table_and_trends_show_the_inventory_counts(aging):
    project_id, (first, second, third, failed) = aging
    async with AssetMonApp().run_test(size=(120, 40)) as pilot:
        a = pilot.app
        await started(pilot, 4)
        scans = a.query_one("#scans", DataTable)
        found = {sid: str(scans.get_cell(str(sid), "found")) for sid in (first, second, third)}
        for sid in (first, second, third):
            n = inventory([i for i, _ in as_of(project_id, sid)[1]])
            assert found[sid].startswith(f"{n.hosts} hosts · {n.services} services · {n.endpoints} endpoints")
        # dev.acme.test and 10.0.0.3 (no name points at it now)
        assert found[third] == "4 hosts · 3 services · 2 endpoints · 1 finding"

        await pilot.press("t")
        await until(
            pilot,
            lambda: isinstance(a.screen, TrendsScreen) and a.screen.query_one("#history").row_count == 3,
            what="the trends",
        )
        history = a.screen.query_one("#history", DataTable)
        columns = [str(c.label) for c in history.columns.values()]
        assert columns[-1] == "unconfirmed"
        by_scan = {str(history.get_row_at(i)[0]): [str(c) for c in history.get_row_at(i)] for i in range(3)}
        assert by_scan[f"#{second}"][-1] == "4" and by_scan[f"#{third}"][-1] == "2"
        assert by_scan[f"#{third}"][2] == "4"  # hosts: the Inventory's
        assert [r["hosts"] for r in a.screen.history] == [3, 3, 4]


# -- scans whose sources failed ------------------------------------------------------------------


@pytest.fixture
def quick_dns(monkeypatch):
    """A resolver that gives up fast (a nameserver port nothing answers costs 0.3 s a name)."""
    monkeypatch.setenv("ASSETMON_DNS_TIMEOUT", "0.3")
    monkeypatch.setenv("ASSETMON_DNS_RETRIES", "0")
    get_settings.cache_clear()


async def test_a_done_scan_with_failed_sources_says_so_and_its_details_list_them(quick_dns):
    project_id = make_project("acme", ["www.scan.test", "api.scan.test"])
    dead = f"127.0.0.1:{free_port()}"  # nothing answers there: every lookup times out
    async with AssetMonApp().run_test(size=SIZE) as pilot:
        a = pilot.app
        await until(pilot, lambda: a.dispatcher is not None and a.project_id == project_id, what="start-up")
        started_at = time.monotonic()
        scan = a.dispatcher.submit(project_id, ["dns"], {"nameservers": [dead]})
        scans = a.query_one("#scans", DataTable)
        await until(
            pilot,
            lambda: scans.row_count == 1 and "done 2 warn" in str(scans.get_row_at(0)[1]),
            what="the scan row to say done with 2 warnings",
        )
        assert time.monotonic() - started_at < 15
        row = repo.get_scan(scan.id)
        assert row.status == "done"
        failed = [o for o in json.loads(row.sources) if o["status"] != "ok"]
        assert {o["source"] for o in failed} == {"resolver A,AAAA,CNAME", "resolver MX,NS,TXT"}
        message = f"Scan #{scan.id} done with 2 warnings (i: details)"
        await until(pilot, lambda: message in [n.message for n in a._notifications], what="the notification")

        scans.focus()
        await pilot.press("i")
        await until(pilot, lambda: isinstance(a.screen, ScanDetails), what="the scan details")
        text = await showing(
            pilot, "Sources that failed or were skipped", "resolver A,AAAA,CNAME (dns): failed", "resolver MX,NS,TXT"
        )
        assert "2 of 2 names got no definitive answer (2 timeout)" in text
        assert dead in text  # the nameserver it used
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(a.screen, ScanDetails), what="the details to close")


async def test_the_live_panel_shows_the_warnings_of_a_running_scan(quick_dns, monkeypatch):
    """A domain nobody resolves (dead nameserver) fails the resolver source at once;
    the scan then waits on a page that answers after a minute, its panel showing the warning."""
    monkeypatch.setenv("ASSETMON_HTTP_TIMEOUT", "60")
    get_settings.cache_clear()
    with estate(slow=True) as e:
        slow_url = f"http://{WEB_ADDRESS}:{e.web.port}/"
        project_id = make_project("acme", ["lost.scan.test", slow_url])
        dead = f"127.0.0.1:{free_port()}"
        async with AssetMonApp().run_test(size=SIZE) as pilot:
            a = pilot.app
            await until(pilot, lambda: a.dispatcher is not None and a.project_id == project_id, what="start-up")
            scan = a.dispatcher.submit(project_id, ["dns", "http"], {"nameservers": [dead]})
            await until(pilot, lambda: a.query(ScanPanel), what="the live panel")
            panel = a.query_one(ScanPanel)
            await until(
                pilot,
                lambda: panel.progress is not None and panel.progress.warnings and panel.progress.state == "running",
                what="a warning while the scan runs",
            )
            await showing(pilot, "! resolver A,AAAA,CNAME: failed", "! resolver MX,NS,TXT: failed")
            shown = text_of(panel.content)  # the lines are cut to the panel's width on screen
            assert "(1 of 1 names got no definitive answer (1 timeout)" in shown
            assert "more warning" not in shown  # two warnings: both shown

            # i on the running scan: its warnings so far, from the live progress
            scans = a.query_one("#scans", DataTable)
            scans.focus()
            await pilot.press("i")
            await showing(pilot, "Warnings so far (the scan is still running)", "resolver A,AAAA,CNAME: failed")
            await pilot.press("escape")
            await until(pilot, lambda: not isinstance(a.screen, ScanDetails), what="the details to close")
            await pilot.press("c")
            await until(pilot, lambda: not a.query(ScanPanel), timeout=10, what="the panel to go")
    assert repo.get_scan(scan.id).status == "cancelled"


async def test_many_warnings_are_compact_and_hostile_reasons_inert():
    """The panel shows two warnings and counts the rest; reasons from scanned hosts are shown literally."""
    from assetmon_tui.core.progress import ModuleProgress, Progress

    panel = ScanPanel(1, "Scan #1 · acme")
    warnings = [f"web probes: failed ({HOSTILE})", "scripts: failed (3 could not be fetched)", "ct acme.test: skipped"]
    progress = Progress(
        scan_id=1, state="running", modules={"dns": ModuleProgress("done", 1, 1)}, warnings=warnings, started_at=1.0
    )

    class Holder(App[None]):
        def compose(self) -> ComposeResult:
            yield panel

    async with Holder().run_test(size=SIZE) as pilot:
        panel.show(progress, "thread")
        await pilot.pause(0.1)
        shown = text_of(panel.content)
        assert "! web probes: failed ([bold]boom[/bold]" in shown and "\x1b" not in shown and "pwned" not in shown
        assert "! scripts: failed" in shown and "ct acme.test" not in shown
        assert "… 1 more warning (i: scan details)" in shown

    # the details modal, from a scan row whose sources carry hostile text
    project = project_with_targets("acme")
    scan = repo.create_scan(project.id, ["dns", "http"], {})
    assert leases.claim(scan.id, "thread", "test:1", 60, 3)
    sources = [
        {"source": "web probes", "step": "http", "status": "failed", "reason": f"e.g. {HOSTILE}"},
        {"source": "resolver A,AAAA,CNAME", "step": "dns", "status": "ok", "reason": ""},
    ]
    repo.finish_scan(scan.id, "done", summary={"warnings": 1}, sources=sources)
    details = ScanDetails(repo.get_scan(scan.id), "acme")
    shown = text_of(details.render_details())
    assert "web probes (http): failed" in shown and "[bold]boom[/bold]" in shown and "[link=http://x]y[/link]" in shown
    assert "\x1b" not in shown and "\x07" not in shown and "resolver" not in shown and "(1 of 2)" in shown
