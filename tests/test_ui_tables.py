"""Results and Events on big inventories, driven by keys in the real app
(thread backend, the real store): a project over the first-look size opens
with its true totals and every row reachable (moving down adds rows, Ctrl+End
all of them); sort by any column (o, O, a header click); filter as you type;
copy a row's value (c) and open a web endpoint's URL (u, HTTP rows only); the
events feed past its first 500; and 80x24 snapshots of the hosts and HTTP tabs
(columns by priority, values cut with an ellipsis, hostile text literal)."""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rich.console import Console
from support import frozen
from support.world import World, fake_scan, project_with_targets
from textual.pilot import Pilot
from textual.widgets import DataTable

from assetmon_tui.core.config import get_settings
from assetmon_tui.events import compute_events
from assetmon_tui.events.items import Item
from assetmon_tui.store.db import session
from assetmon_tui.store.models import Event
from assetmon_tui.ui.app import AssetMonApp
from assetmon_tui.ui.screens.events import EventsScreen
from assetmon_tui.ui.screens.results import FIRST_LOOK_AT, ResultsScreen, Row, _web_url, load_first, load_view
from assetmon_tui.ui.widgets import Column, PagedTable, fit_columns

SIZE = (80, 24)
HOSTILE = "[bold]boom[/bold] \x1b]0;pwned\x07"


@pytest.fixture(autouse=True)
def thread_backend(monkeypatch):
    monkeypatch.setenv("ASSETMON_BACKEND", "thread")  # no Redis needed: the app starts at once
    get_settings.cache_clear()


def screen_text(app: Any) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def text_of(renderable: Any) -> str:
    console = Console(file=io.StringIO(), width=200, record=True)
    console.print(renderable)
    return console.export_text()


async def until(pilot: Pilot, condition: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await pilot.pause(0.05)
        if condition():
            return
    raise AssertionError(f"timed out waiting for {what}\n{screen_text(pilot.app)}")


def big_world(hosts: int) -> World:
    """`hosts` names, each with an A record to its own address (ports 80 and 22), and a web page."""
    world = World(names={}, services={}, http={}, findings={}, js={})
    for n in range(hosts):
        name, address = f"h{n:04d}.acme.test", f"10.0.{n // 250}.{n % 250 + 1}"
        world.names[name] = ("ok", [("A", address)])
        world.services[(address, 80)] = "http"
        world.services[(address, 22)] = "ssh"
        world.http[f"https://{name}/"] = dict(status=200 + n % 3, title=f"Page {n:04d}", server="nginx")
    return world


@pytest.fixture
def big() -> dict[str, Any]:
    """400 hosts: 2,400 assets (names, addresses, records, services, endpoints), one done scan."""
    project = project_with_targets("acme")
    world = big_world(400)
    compute_events(fake_scan(project.id, world, modules=("dns", "ports", "http")))
    return {"project": project.id, "world": world}


async def results(pilot: Pilot) -> ResultsScreen:
    app: Any = pilot.app
    await until(pilot, lambda: app.dispatcher is not None and app.project_id is not None, "the dashboard")
    await pilot.press("r")
    await until(pilot, lambda: isinstance(app.screen, ResultsScreen) and app.screen.view is not None, "results")
    screen: ResultsScreen = app.screen
    return screen


def cells(table: DataTable[Any], row: int) -> list[str]:
    return [str(c) for c in table.get_row_at(row)]


def status_line(screen: ResultsScreen, tab: str) -> str:
    return text_of(screen.query_one(f"#status-{tab}").render())


async def test_a_big_project_opens_with_its_true_totals_and_every_row_is_reachable(big):
    async with AssetMonApp().run_test(size=(120, 40)) as pilot:
        screen = await results(pilot)
        table = screen.query_one("#table-hosts", PagedTable)
        assert table.row_count > 0
        # 800 host rows (names and addresses): the total is said at once, even before all are read
        await until(pilot, lambda: "800 rows" in status_line(screen, "hosts"), "the hosts total")
        await until(pilot, lambda: screen.view is not None and screen.view.complete, "the whole inventory")
        assert sum(len(rows) for rows in screen.view.tabs.values()) >= FIRST_LOOK_AT
        assert "400 hosts (400 names, 400 addresses) · 800 services · 400 web" in text_of(
            screen.query_one("#asof").render()
        )
        assert table.loaded == PagedTable.PAGE and table.total == 800
        await until(pilot, lambda: f"1-{PagedTable.PAGE} loaded" in status_line(screen, "hosts"), "the paging hint")
        # moving down adds rows before the end is reached: no row is out of reach
        for _ in range(12):
            await pilot.press("pagedown")
        await until(pilot, lambda: table.row_count > PagedTable.PAGE, "more rows as the cursor went down")
        assert table.cursor_row > PagedTable.PAGE // 2
        # Ctrl+End: every row, the cursor on the last one (the natural order: names after addresses)
        await pilot.press("ctrl+end")
        await until(pilot, lambda: table.row_count == 800, "every row")
        assert table.cursor_row == 799 and cells(table, 799)[1] == "h0399.acme.test"
        await until(pilot, lambda: "h0399.acme.test" in text_of(screen.query_one("#detail").content), "the detail")
        assert status_line(screen, "hosts").startswith("800 rows")
        # the other tabs: their own totals
        for key, tab, total in (("2", "dns", 400), ("3", "services", 800), ("4", "http", 400)):
            await pilot.press(key)
            await until(pilot, lambda tab=tab: screen.query_one(f"#table-{tab}").row_count > 0, f"the {tab} tab")
            assert screen.table(tab).total == total
            assert f"{total} rows" in status_line(screen, tab)


async def test_f5_reads_again_and_the_cursor_stays(big):
    async with AssetMonApp().run_test(size=SIZE) as pilot:
        app: Any = pilot.app
        screen = await results(pilot)
        await until(pilot, lambda: screen.view is not None and screen.view.complete, "the whole inventory")
        table = screen.query_one("#table-hosts", PagedTable)
        table.move_cursor(row=300)
        before = screen.view
        await pilot.press("f5")
        await until(pilot, lambda: screen.view is not before, "read again")
        await app.workers.wait_for_complete()
        assert screen.view is not None and screen.view.complete  # no first look of the scan shown
        assert table.cursor_row == 300 and table.row_count > 300


def test_the_first_look_reads_one_page_per_tab_and_the_true_totals(big):
    first = load_first(big["project"], None)
    assert first is not None and not first.complete
    assert first.totals == {"hosts": 800, "dns": 400, "services": 800, "http": 400}
    assert {tab: len(rows) for tab, rows in first.tabs.items()} == dict.fromkeys(first.tabs, PagedTable.PAGE)
    whole = load_view(big["project"], None)
    assert whole.counts == first.counts  # the snapshot's counts are the inventory's
    for tab, rows in first.tabs.items():  # the same natural order: the whole read does not move the rows
        assert [r.item.key for r in rows] == [r.item.key for r in whole.tabs[tab][: len(rows)]]


async def test_sort_by_any_column_reverse_and_header_click(big):
    async with AssetMonApp().run_test(size=(120, 40)) as pilot:
        screen = await results(pilot)
        await until(pilot, lambda: screen.view is not None and screen.view.complete, "the whole inventory")
        await pilot.press("4")
        table = screen.query_one("#table-http", PagedTable)
        await until(pilot, lambda: table.row_count > 0, "the http tab")
        names = table.names
        assert names[:3] == ["mark", "url", "status"]
        # o: by the URL, then by status (the next column); O reverses
        await pilot.press("o")
        assert screen.sort_state() == ("url", False)
        assert cells(table, 0)[1] == "https://h0000.acme.test/"
        await pilot.press("O")
        assert screen.sort_state() == ("url", True)
        assert cells(table, 0)[1] == "https://h0399.acme.test/"
        assert "url▼" in [str(c.label) for c in table.columns.values()]
        await pilot.press("o")
        assert screen.sort_state() == ("status", False)
        statuses = [int(cells(table, i)[2]) for i in range(table.row_count)]
        assert statuses == sorted(statuses) and statuses[0] == 200 and table.total == 400
        await until(pilot, lambda: "by status ▲" in status_line(screen, "http"), "the order said")
        # a click on the title header sorts by it; a second click reverses
        x = sum(c.get_render_width(table) for c in list(table.columns.values())[:3]) + 2
        await pilot.click("#table-http", offset=(x, 0))
        await until(pilot, lambda: screen.sort_state() == ("title", False), "the header click")
        assert cells(table, 0)[3] == "Page 0000"
        await pilot.click("#table-http", offset=(x, 0))
        await until(pilot, lambda: screen.sort_state() == ("title", True), "the second click")
        assert cells(table, 0)[3] == "Page 0399"
        # a tab keeps its own order; the hosts tab sorts by its columns
        await pilot.press("1")
        hosts = screen.query_one("#table-hosts", PagedTable)
        await pilot.press("o", "O")
        assert screen.sort_state() == ("name", True) and cells(hosts, 0)[1] == "h0399.acme.test"


async def test_the_filter_narrows_as_you_type_and_keeps_the_true_total(big):
    async with AssetMonApp().run_test(size=(120, 40)) as pilot:
        app: Any = pilot.app
        screen = await results(pilot)
        await until(pilot, lambda: screen.view is not None and screen.view.complete, "the whole inventory")
        table = screen.query_one("#table-hosts", PagedTable)
        await pilot.press("slash", *"h001")  # no Enter: it narrows while typing
        await until(pilot, lambda: table.total == 10, "the rows narrowed")  # h0010-h0019
        assert app.focused is not None and app.focused.id == "filter"  # still typing
        assert all(cells(table, i)[1].startswith("h001") for i in range(table.row_count))
        await until(pilot, lambda: "10 of 800 match" in status_line(screen, "hosts"), "the match count")
        await pilot.press("5")
        await until(pilot, lambda: table.total == 1 and cells(table, 0)[1] == "h0015.acme.test", "one row")
        await pilot.press("enter")  # Enter: to the table, the filter kept
        await until(pilot, lambda: app.focused is table, "the table focused")
        await pilot.press("3")  # the other tabs filter too, when shown
        services = screen.query_one("#table-services", PagedTable)
        await until(pilot, lambda: services.total == 0, "no service matches a name")
        await pilot.press("slash", "escape")
        await until(pilot, lambda: services.total == 800, "the filter cleared")


async def test_copy_a_value_and_open_only_web_urls(big, monkeypatch):
    opened: list[str] = []
    async with AssetMonApp().run_test(size=SIZE) as pilot:
        app: Any = pilot.app
        monkeypatch.setattr(app, "open_url", lambda url, **kw: opened.append(url))
        screen = await results(pilot)
        await until(pilot, lambda: screen.view is not None and screen.view.complete, "the whole inventory")
        hosts = screen.query_one("#table-hosts", PagedTable)
        hosts.move_cursor(row=400)  # the first name, after the 400 addresses
        await pilot.press("c")
        assert app.clipboard == "h0000.acme.test"
        await until(pilot, lambda: any("Copied h0000.acme.test" in n.message for n in app._notifications), "toast")
        await pilot.press("u")  # not a web endpoint: nothing opened, a word why
        await until(pilot, lambda: any("Only a web endpoint" in n.message for n in app._notifications), "refusal")
        await pilot.press("3")
        await pilot.press("c")
        assert app.clipboard == "10.0.0.1:22"  # a service: address:port
        await pilot.press("u")
        await pilot.press("4")
        await pilot.press("down", "c")
        assert app.clipboard == "https://h0001.acme.test/"
        await pilot.press("u")
        await until(pilot, lambda: opened == ["https://h0001.acme.test/"], "the browser")
        await pilot.press("2", "u", "1", "u")
        await pilot.pause()
        assert opened == ["https://h0001.acme.test/"]  # only the HTTP row's


@pytest.mark.parametrize(
    "url,ok",
    [
        ("https://a.test/x?y=1", True),
        ("http://10.0.0.1:8080/", True),
        ("javascript:alert(1)", False),
        ("file:///etc/passwd", False),
        ("ftp://a.test/", False),
        ("https://a.test/\x1b]0;x\x07", False),
        ("https:///nohost", False),
        ("http://a.test/ b", False),
    ],
)
def test_only_http_and_https_urls_with_a_host_open(url, ok):
    row = Row(Item("http", 1, "a.test", f"http:{url}", {"url": url}), "open")
    assert (_web_url(row) == url) is ok
    assert _web_url(Row(Item("host", 1, "a.test", "host:a.test"), "open")) is None


def test_columns_fit_by_priority_and_never_overflow():
    columns = [
        Column("mark", "", 1),
        Column("url", "url", 40, least=20, grow=True),
        Column("status", "status", 6),
        Column("title", "title", 40, least=12, rank=1),
        Column("server", "server", 24, least=8, rank=2),
    ]
    for width in range(10, 200):
        fitted = fit_columns(columns, width)
        assert [c.name for c, _ in fitted][:2] == ["mark", "url"]
        if width >= 40:
            assert sum(w + 2 for _, w in fitted) <= width - 2  # the scrollbar's room kept
    assert [c.name for c, _ in fit_columns(columns, 50)] == ["mark", "url", "status", "title"]  # 80x24
    assert [c.name for c, _ in fit_columns(columns, 120)] == ["mark", "url", "status", "title", "server"]


async def test_events_beyond_the_first_500_are_reachable_and_counted():
    project = project_with_targets("acme")
    scan = fake_scan(project.id, World(), modules=("dns",))
    base = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    with session() as s:
        for n in range(621):
            s.add(
                Event(
                    project_id=project.id,
                    scan_id=scan,
                    type="host_new",
                    severity="medium",
                    summary=f"new host: e{n:03d}.acme.test",
                    entity=f"host:e{n:03d}.acme.test",
                    created_at=base + timedelta(minutes=n),
                )
            )
        s.commit()
    async with AssetMonApp().run_test(size=(120, 40)) as pilot:
        app: Any = pilot.app
        await until(pilot, lambda: app.dispatcher is not None, "the dashboard")
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, EventsScreen) and app.screen.events, "the events")
        screen: EventsScreen = app.screen
        table = screen.query_one("#events", DataTable)
        assert table.row_count == 500 and screen.total == 621
        assert "Events (500 of 621 shown, 500 new · ↓ reads more)" in str(table.border_title)
        table.move_cursor(row=499)  # the last one read: the next page is read
        await until(pilot, lambda: table.row_count == 621, "the next page")
        assert table.cursor_row == 499 and "Events (621 shown" in str(table.border_title)
        assert "e000.acme.test" in cells(table, 620)[5]  # the oldest, last
        # a text filter looks at every event, and narrows as you type
        await pilot.press("slash", *"e00")
        await until(pilot, lambda: table.row_count == 10, "the filter")
        assert app.focused is not None and app.focused.id == "filter"


async def test_events_ctrl_end_reads_them_all():
    project = project_with_targets("acme")
    scan = fake_scan(project.id, World(), modules=("dns",))
    with session() as s:
        s.add_all(
            Event(project_id=project.id, scan_id=scan, type="host_new", summary=f"n{n}", entity=f"host:n{n}")
            for n in range(520)
        )
        s.commit()
    async with AssetMonApp().run_test(size=SIZE) as pilot:
        app: Any = pilot.app
        await until(pilot, lambda: app.dispatcher is not None, "the dashboard")
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, EventsScreen) and app.screen.events, "the events")
        table = app.screen.query_one("#events", DataTable)
        assert table.row_count == 500
        await pilot.press("ctrl+end")
        await until(pilot, lambda: table.row_count == 520 and table.cursor_row == 519, "every event, the last")


async def test_at_60_columns_the_tab_bar_fits_and_w_widens_the_table(long_names):
    """Narrow: the detail pane goes under the table, so every tab shows; `w` hides the pane, and back."""
    async with AssetMonApp().run_test(size=(60, 20)) as pilot:
        app: Any = pilot.app
        screen = await results(pilot)
        await until(pilot, lambda: screen.query_one("#table-hosts").row_count > 0, "the hosts")
        await pilot.press("4")
        table = screen.query_one("#table-http", PagedTable)
        await until(pilot, lambda: table.row_count == 6 and table.size.width > 0, "the http tab")
        http_tab = screen.query_one("#tabs-list > Tab.-active")
        assert str(http_tab.label).endswith("HTTP") and http_tab.region.right <= 60 and http_tab.region.width > 0
        assert "4 HTTP" in screen_text(app).splitlines()[http_tab.region.y]
        assert screen.has_class("narrow") and screen.query_one("#detail-pane").region.y > table.region.y
        assert [c for c, _ in table.shown][:3] == table.specs[:3]  # mark, url, status shown
        assert sum(c.get_render_width(table) for c in table.columns.values()) <= table.size.width
        assert table.scrollbars_enabled[1] is False  # no horizontal scrollbar
        # hostile text from a scanned host: literal, escapes gone
        first = cells(table, 0)
        assert first[3].startswith("[bold]boom") and all("\x1b" not in c and "\x07" not in c for c in first)
        before = table.size.height
        await pilot.press("w")
        await until(pilot, lambda: not screen.query_one("#detail-pane").display, "the pane hidden")
        await until(pilot, lambda: table.size.height > before, "the table taller")
        await pilot.press("w")
        await until(pilot, lambda: screen.query_one("#detail-pane").display, "the pane back")


# -- snapshots at 80x24 ---------------------------------------------------------------------------


@pytest.fixture
def utc(monkeypatch):
    with frozen.utc(monkeypatch):
        yield


def freeze_times() -> None:
    """Every stored time: a fixed instant (the snapshots do not change with the clock)."""
    from sqlalchemy import DateTime, update
    from sqlmodel import SQLModel

    at = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    with session() as s:
        conn = s.connection()
        for table in SQLModel.metadata.sorted_tables:
            for column in table.columns:
                if isinstance(getattr(column.type, "impl", column.type), DateTime):
                    conn.execute(update(table).where(column.is_not(None)).values({column.name: at}))
        s.commit()


@pytest.fixture
def long_names(utc) -> int:
    """Names, titles and servers longer than their columns at 80 columns; one title with markup and escapes."""
    project = project_with_targets("acme")
    world = World(names={}, services={}, http={}, findings={}, js={})
    for n in range(6):
        name = f"a-rather-long-service-name-{n}.eu-west-1.internal.acme.test"
        address = f"10.0.0.{n + 1}"
        world.names[name] = ("ok", [("A", address)])
        world.services[(address, 443)] = "https"
        title = HOSTILE if n == 0 else f"Welcome to the customer portal of region {n}"
        world.http[f"https://{name}/login?next=/dashboard"] = dict(
            status=200, title=title, server="Apache/2.4.62 (Debian) OpenSSL/3.0.15"
        )
    world.names["api.acme.test"] = ("ok", [("A", "10.0.0.9")])
    compute_events(fake_scan(project.id, world, modules=("dns", "ports", "http")))
    freeze_times()
    return project.id


def snapshot_of(tab: str) -> Any:
    key = {"hosts": "1", "http": "4"}[tab]

    async def run_before(pilot: Pilot) -> None:
        app: Any = pilot.app
        # Without animation the nudge below places the underline at once; animated, each nudge
        # restarted its 0.3 s slide, and on a loaded machine it never arrived (CI, 2026-12-05).
        app.animation_level = "none"
        screen = await results(pilot)
        await until(pilot, lambda: screen.view is not None and screen.view.complete, "the inventory")
        await pilot.press(key)
        table = screen.query_one(f"#table-{tab}", PagedTable)
        await until(pilot, lambda: table.row_count > 0 and table.size.width > 0, "the table")
        await until(pilot, lambda: "host" in text_of(screen.query_one("#detail").content), "the detail pane")

        def underline_settled() -> bool:  # Textual places it after a relabel, sometimes before the new layout
            active = app.screen.query_one("#tabs-list > Tab.-active")
            underline = app.screen.query_one("Underline")
            span = active.virtual_region.shrink(active.styles.gutter).column_span
            if (underline.highlight_start, underline.highlight_end) == span:
                return True
            active.label = active.label
            return False

        await until(pilot, underline_settled, "the tab underline")

    return run_before


@pytest.mark.one_store  # the layout is what this tests: the SQLite pass is enough
@pytest.mark.parametrize("tab", ["hosts", "http"])
def test_results_at_80_columns(snap_compare, long_names, tab):
    """The important columns show, long values end in "…", no stray scrollbar, hostile text literal."""
    assert snap_compare(AssetMonApp(), terminal_size=SIZE, run_before=snapshot_of(tab))


def test_text_columns_sort_digit_runs_as_numbers():
    from assetmon_tui.ui.screens.results import natural

    names = ["127.0.1.250", "App10.acme.test", "127.0.1.3", "app2.acme.test", "10.0.0.1", "api.acme.test"]
    assert sorted(names, key=natural) == [
        "10.0.0.1",
        "127.0.1.3",
        "127.0.1.250",
        "api.acme.test",
        "app2.acme.test",
        "App10.acme.test",
    ]
