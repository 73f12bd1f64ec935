"""Browse a project's inventory as of one scan: hosts, DNS records, services
and HTTP endpoints in tables, with a detail pane for the highlighted row.

The tables show a snapshot (`events.as_of`): the latest snapshotted scan by
default, or the scan chosen on the dashboard; `[` and `]` step to older and
newer ones. Each row says where the asset is in its lifecycle (new, open,
unconfirmed, gone, reopened); `h` toggles between the inventory as of the
scan (gone assets left out) and the whole history (gone ones included,
dimmed). The counts are the scan's `events.Inventory`, the same the scans
table and Trends show. What a snapshot does not hold (banners, TTLs, TLS
details, times) comes from the live rows, by asset id, when the latest scan
is shown. A project with no snapshot yet shows what its scans found so far.

Big inventories stay quick: the tables are `PagedTable`s holding only the
rows looked at so far (more are added as the cursor or the scroll nears the
end; Ctrl+End adds them all), and a project over `FIRST_LOOK_AT` items first
shows each tab's first rows with the true totals (`load_first`, a few bounded
queries) while the whole inventory is read in a thread, one query per table.
Columns fit the width by priority, long values end in "…" (the detail pane
shows them whole). `o` sorts by the next column (or click a header), `O`
reverses; `/` filters as you type; `c` copies the row's name, address or URL;
`u` opens a web endpoint's URL in the browser; `w` hides the detail pane.
Below `NARROW` columns the detail pane goes under the table."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from rich.console import Group, RenderableType
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.events import Resize
from textual.widgets import DataTable, Header, Static, TabbedContent, TabPane
from textual.worker import get_current_worker

from ...core.sanitize import clean_text
from ..actions import Action, bindings
from ..panels import inventory_text
from ..text import grid, safe, when
from ..widgets import Column, FilterInput, PagedTable, ellipsis, footer
from .base import ProjectScreen

if TYPE_CHECKING:
    from ...events import Inventory, Item

log = logging.getLogger(__name__)

TABS = ("hosts", "dns", "services", "http")
TAB_OF = {"host": "hosts", "ip": "hosts", "dns": "dns", "service": "services", "http": "http"}
# lifecycle status -> its mark in the tables' first column and its style ("": a
# project without snapshots yet, no lifecycle). The as-of line is the legend.
STATUS_STYLES = {"new": "green", "open": "dim", "unconfirmed": "bold yellow", "gone": "dim", "reopened": "bold cyan"}
MARKS = {"new": "+", "unconfirmed": "?", "gone": "×", "reopened": "*"}
STATUS_ORDER = {"new": 0, "reopened": 1, "unconfirmed": 2, "open": 3, "": 3, "gone": 4}  # sorting by the mark
# Columns fit the table's width by rank (widgets.fit_columns): at 80 columns the
# tables get about 48 cells, so the first columns say what the row is and the
# rest show as room allows; long values end in "…" (the detail pane shows them whole).
COLUMNS = {
    "hosts": (
        Column("mark", "", 1),
        Column("name", "name", 40, least=18, grow=True),
        Column("dns", "dns", 8, least=7, rank=1),
        Column("last_seen", "last seen", 16, rank=2),
        Column("first_seen", "first seen", 16, rank=3),
    ),
    "dns": (
        Column("mark", "", 1),
        Column("name", "name", 32, least=16, rank=0),
        Column("type", "type", 5, rank=0),
        Column("value", "value", 40, least=14, rank=1, grow=True),
        Column("ttl", "ttl", 6, rank=2),
    ),
    "services": (
        Column("mark", "", 1),
        Column("address", "address", 16, least=15),
        Column("port", "port", 5),
        Column("service", "service", 10, least=7, rank=1),
        Column("banner", "banner", 50, least=10, rank=2, grow=True),
    ),
    "http": (
        Column("mark", "", 1),
        Column("url", "url", 40, least=20, grow=True),
        Column("status", "status", 6),
        Column("title", "title", 40, least=12, rank=1),
        Column("server", "server", 24, least=8, rank=2),
    ),
}
NAMES = {tab: [c.name for c in cols] for tab, cols in COLUMNS.items()}
NO_ROW = "Highlight a row to see its details."
WEB = ("http", "https")


@dataclass(eq=False)
class Row:
    """One asset as the tables show it: its cells and sort keys are made once, when first needed."""

    item: Item
    status: str  # as of the scan shown ("" without snapshots)
    live: Any = None  # its live row (host, dns_record, service, http_endpoint columns), when it has one
    cells: dict[str, Text] | None = None  # column name -> its cell, for the view it is in
    haystack: str = ""  # what the text filter looks in, lower case

    @property
    def gone(self) -> bool:
        return self.status == "gone"


@dataclass
class View:
    """What the screen shows: one scan's inventory, and where it sits among the project's snapshots."""

    scan_id: int | None  # None: no snapshot yet, the live tables
    finished_at: datetime | None
    scans: list[int]  # the project's snapshotted scans, oldest first
    rows: list[Row]
    counts: Inventory
    note: str = ""  # why another scan than the one asked for is shown
    details: dict[str, list[Row]] = field(default_factory=dict)  # host name -> its records, services, endpoints
    tabs: dict[str, list[Row]] = field(default_factory=dict)  # tab -> its rows, in the natural order
    # a first look (`load_first`): only each tab's first rows (gone ones left out), and how many there are
    totals: dict[str, int] | None = None

    @property
    def complete(self) -> bool:
        return self.totals is None

    @property
    def latest(self) -> bool:
        return self.scan_id is None or (bool(self.scans) and self.scan_id == self.scans[-1])


def load_view(project_id: int, wanted: int | None) -> View:
    """The inventory as of `wanted` (None: the latest snapshotted scan), with the
    live rows: one query per table (store.browse), no query per row."""
    from ...events import as_of, history
    from ...events.items import inventory, item_of
    from ...store import repo
    from ...store.browse import live_rows
    from ...store.repo import NotFound

    done = history(project_id)
    scans = [int(r["id"]) for r in done]
    note = ""
    if wanted is not None and wanted not in scans:
        try:
            status = repo.get_scan(wanted).status
        except NotFound:
            status = "deleted"
        note = f"scan #{wanted} ({status}) has no inventory of its own"
        wanted = None
    found = live_rows(project_id)
    live: dict[tuple[str, int], Any] = {}
    for h in found["host"]:
        live["ip" if h.is_address else "host", h.id] = h
    for kind in ("dns", "service", "http"):
        for child in found[kind]:
            live[kind, child.id] = child
    if not scans:  # without snapshots: items made from the live rows
        made = [item_of("host", h, h.name) for h in found["host"]]
        made += [item_of(kind, c, c.host_name) for kind in ("dns", "service", "http") for c in found[kind]]
        items = [(i, "") for i in made]
        scan_id, finished = None, None
    else:
        scan_id = wanted if wanted is not None else scans[-1]
        _, items = as_of(project_id, scan_id)
        finished = next(r["finished_at"] for r in done if r["id"] == scan_id)
    shown = [Row(i, status, live.get(i.key)) for i, status in items if i.kind in TAB_OF]
    view = View(scan_id, finished, scans, sorted(shown, key=_order), inventory([i for i, _ in items]), note)
    view.tabs = {tab: [] for tab in TABS}
    for row in view.rows:
        _haystack(row, view.latest)  # here, off the UI thread: the first key typed in the filter is quick
        view.tabs[TAB_OF[row.item.kind]].append(row)
        if row.item.kind in ("dns", "service", "http"):
            view.details.setdefault(row.item.host, []).append(row)
    return view


FIRST_LOOK_AT = 2000  # items: a bigger inventory shows its first rows before it is read whole


def load_first(project_id: int, wanted: int | None) -> View | None:
    """A big inventory's first look: each tab's first page in the natural order,
    the true totals and counts, in a few small queries; None when the inventory
    is small (or has no snapshot): then `load_view` is as quick."""
    from ...events import Inventory, history
    from ...events.items import Item
    from ...store import snapshots
    from ...store.browse import first_items, live_rows_of

    done = history(project_id)
    scans = [int(r["id"]) for r in done]
    if not scans or (wanted is not None and wanted not in scans):
        return None
    scan_id = wanted if wanted is not None else scans[-1]
    snap = snapshots.get_snapshot(scan_id)
    if snap is None:
        return None
    rows, totals = first_items(project_id, snap.seq, PagedTable.PAGE)
    if sum(totals.values()) < FIRST_LOOK_AT:
        return None
    items = {tab: [Item.from_row(r) for r in found] for tab, found in rows.items()}
    ids: dict[str, list[int]] = {}
    for found in items.values():
        for i in found:
            ids.setdefault("host" if i.kind == "ip" else i.kind, []).append(i.asset_id)
    live: dict[tuple[str, int], Any] = {}
    for kind, found_live in live_rows_of(ids).items():
        for one in found_live:
            live["ip" if kind == "host" and one.is_address else kind, one.id] = one
    finished = next(r["finished_at"] for r in done if r["id"] == scan_id)
    counts = Inventory.of(json.loads(snap.counts or "{}"))
    view = View(scan_id, finished, scans, [], counts, totals=totals)
    view.tabs = {
        tab: [Row(i, i.shown_status(snap.seq), live.get(i.key)) for i in found] for tab, found in items.items()
    }
    view.rows = [r for tab in TABS for r in view.tabs[tab]]
    return view


def _order(row: Row) -> tuple[Any, ...]:
    """The natural order, as `store.browse.first_items` sorts: hosts and endpoints
    by entity, records by host then entity, services by host then port."""
    item = row.item
    if item.kind == "dns":
        return item.host, item.entity
    if item.kind == "service":
        return item.host, len(item.entity), item.entity
    return (item.entity,)


_RUNS = re.compile(r"(\d+)")


def natural(text: str) -> tuple[tuple[int, int | str], ...]:
    """Case-blind, with digit runs as numbers: 127.0.1.3 before 127.0.1.250, app2 before app10."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in _RUNS.split(text.lower()) if part)


def _sort_key(tab: str, name: str, latest: bool) -> Any:
    """A key function sorting a tab's rows by one column (numbers as numbers, text case-blind)."""
    if name == "mark":
        return lambda row: STATUS_ORDER.get(row.status, 3)
    if name in ("port", "status", "ttl"):

        def number(row: Row) -> tuple[int, float]:
            value = row.live.ttl if name == "ttl" and latest and row.live is not None else row.item.state.get(name)
            try:
                return 0, float(value)  # type: ignore[arg-type]  # None and text: the except
            except (TypeError, ValueError):
                return 1, 0.0  # rows without a number last

        return number
    if name in ("first_seen", "last_seen"):

        def seen(row: Row) -> tuple[int, str]:
            live = row.live if name == "first_seen" or latest else None
            value = getattr(live, name, None) if live is not None else None
            return (0, value.isoformat()) if value is not None else (1, "")

        return seen
    return lambda row: natural(str(_cell_values(row, latest).get(name) or ""))


class ResultsScreen(ProjectScreen):
    ACTIONS = [
        # the tab bar shows these keys ("1 Hosts"...): the footer has room for the others
        Action("tab('hosts')", "1", "Hosts", "Hosts tab", "Names and addresses found", footer=False),
        Action("tab('dns')", "2", "DNS", "DNS tab", "DNS records of the hosts", footer=False),
        Action("tab('services')", "3", "Services", "Services tab", "Open ports and their banners", footer=False),
        Action("tab('http')", "4", "HTTP", "HTTP tab", "Web endpoints: status, title, server", footer=False),
        Action(
            "history",
            "h",
            "History",
            "Whole history",
            "Toggle: gone assets too (the whole history), or the inventory as of the scan",
        ),
        Action(
            "older",
            "left_square_bracket",
            "Older",
            "Older scan",
            "The inventory as of the previous snapshotted scan",
        ),
        Action(
            "newer",
            "right_square_bracket",
            "Newer",
            "Newer scan",
            "The inventory as of the next snapshotted scan",
        ),
        # off the footer (it is full at 80 columns): the line under the table names them
        Action(
            "sort",
            "o",
            "Sort",
            "Sort by next column",
            "Sort the table by its next column (clicking a header too)",
            footer=False,
        ),
        Action("reverse", "O", "Reverse", "Reverse sort", "Reverse the table's order", footer=False),
        Action(
            "copy",
            "c",
            "Copy",
            "Copy value",
            "Copy the highlighted row's name, address or URL to the clipboard",
            footer=False,
        ),
        Action(
            "open_url",
            "u",
            "Open URL",
            "Open in browser",
            "Open the highlighted web endpoint's URL (HTTP tab)",
            footer=False,
        ),
        Action(
            "wide",
            "w",
            "Wide",
            "Wide table",
            "Toggle: the table at full width (detail pane hidden) or beside it",
            footer=False,
        ),
        Action("more", "ctrl+end", "Last row", "Last row", "Go to the table's last row (every row)", footer=False),
    ]
    BINDINGS = bindings(ACTIONS)
    NARROW = 72  # below this many columns the detail pane goes under the table, so the tab bar fits
    # (No screen CSS: a screen's own CSS re-styles the whole app when first shown, 0.17 s.
    # app.tcss's #tabs and #detail-pane widths are overridden inline by `_layout`.)
    DEFAULT_CSS = """
    ResultsScreen #asof { height: auto; padding: 0 1; }
    ResultsScreen #tabs { height: 1fr; }
    ResultsScreen #tabs > ContentSwitcher { height: 1fr; }
    ResultsScreen #tabs TabPane { height: 1fr; padding: 0; }
    ResultsScreen .results-table { height: 1fr; overflow-x: hidden; }
    ResultsScreen .table-status { height: 1; padding: 0 1; color: $text-muted; }
    """

    def __init__(self, project_id: int, project_name: str, scan_id: int | None = None):
        super().__init__(project_id, project_name)
        self.scan_id = scan_id  # None: the latest snapshotted scan
        self.view: View | None = None
        self.rows: dict[str, list[Row]] = {tab: [] for tab in TABS}  # per tab: the rows the table goes over
        self.sorting: dict[str, tuple[str | None, bool]] = dict.fromkeys(TABS, (None, False))  # column, reversed
        self.stale: set[str] = set()  # tabs to fill again when shown (the filter or the history changed)
        self.filter_text = ""
        self.show_gone = False
        self._laid_out = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("reading the inventory…", id="asof")
        yield FilterInput(
            placeholder="filter rows as you type (Enter: to the table, Escape clears)",
            id="filter",
            classes="hidden",
            live=True,
        )
        with Horizontal(id="results-body"):
            with TabbedContent(*[_label(t) for t in TABS], id="tabs"):
                for tab in TABS:
                    with TabPane(_label(tab), id=f"tab-{tab}"):
                        yield PagedTable(
                            COLUMNS[tab],
                            self._row_cells,
                            id=f"table-{tab}",
                            classes="results-table",
                            cursor_type="row",
                            zebra_stripes=True,
                        )
                        yield Static("", id=f"status-{tab}", classes="table-status")
            with VerticalScroll(id="detail-pane"):
                yield Static(NO_ROW, id="detail")
        yield footer()

    def on_mount(self) -> None:
        self.sub_title = f"results · {self.project_name}"
        self.action_reload()

    def on_resize(self, event: Resize) -> None:
        self._layout(event.size.width < self.NARROW)

    def _layout(self, narrow: bool) -> None:
        """Side by side (the table 2/3, the detail pane 1/3, at least 30), or narrow:
        the detail pane under the table, so the tab bar and the columns keep their room."""
        if narrow == self.has_class("narrow") and self.is_mounted and self._laid_out:
            return
        self._laid_out = True
        self.set_class(narrow, "narrow")
        body, tabs, pane = self.query_one("#results-body"), self.query_one("#tabs"), self.query_one("#detail-pane")
        if narrow:
            body.styles.layout = "vertical"
            tabs.styles.width = "1fr"
            pane.styles.width = "1fr"
            pane.styles.min_width = 0
            pane.styles.height = 8
        else:
            for widget, rules in ((body, ("layout",)), (tabs, ("width",)), (pane, ("width", "min_width", "height"))):
                for rule in rules:
                    widget.styles.clear_rule(rule)

    def action_reload(self) -> None:
        """A big inventory's first rows at once (`load_first`: a few small bounded
        queries, read here so they are in the first frame: a thread would wait for
        the GIL behind the screen's layout), then all of it in a thread (`load_view`)."""
        first = None
        shown = self.view
        again = shown is not None and shown.scan_id == (self.scan_id or (shown.scans[-1] if shown.scans else None))
        try:  # (reading the scan shown again, F5: its rows stay until the new ones are read)
            first = None if again else load_first(self.project_id, self.scan_id)
        except Exception:  # the whole read says what is wrong
            log.exception("results: the first look failed")
        if first is not None:
            self._show(first)
            self.call_after_refresh(self._load_all)  # once the first rows are painted
        else:
            self._load_all()

    @work(thread=True, exclusive=True, exit_on_error=False)
    def _load_all(self) -> None:
        view = load_view(self.project_id, self.scan_id)
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._show, view)

    def _show(self, view: View) -> None:
        previous, self.view = self.view, view
        self.query_one("#asof", Static).update(self._asof(view))
        after_first = previous is not None and previous.scan_id == view.scan_id  # the same scan read again
        active = self._active_tab()
        self.stale = set(TABS)
        for tab in TABS:  # a first look fills the visible tab only (the others when shown)
            if view.complete or tab == active:  # the same scan read again: the cursors stay where they are
                self._refill(tab, at=self.table(tab).cursor_row if after_first else 0)
        self._focus_table()
        self._show_highlighted()
        self._show_status()

    # -- the rows of a tab ----------------------------------------------------------------

    def table(self, tab: str | None = None) -> PagedTable[Row]:
        table: PagedTable[Row] = self.query_one(f"#table-{tab or self._active_tab()}", PagedTable)
        return table

    def _row_cells(self, row: Row, names: list[str]) -> list[Text]:
        if row.cells is None:
            row.cells = _cells(row, self.view.latest if self.view else True)
        return [row.cells[name] for name in names]

    def _refill(self, tab: str, keep: Row | None = None, at: int = 0) -> None:
        """The tab's rows as the history toggle, the filter and the sort say; the
        cursor on `keep` if still there, else on row `at`."""
        view = self.view
        if view is None:
            return
        rows = view.tabs.get(tab, [])
        if not self.show_gone:
            rows = [r for r in rows if not r.gone]
        needle = self.filter_text.lower()
        if needle:
            rows = [r for r in rows if needle in _haystack(r, view.latest)]  # the status too: "gone" works
        column, reverse = self.sorting[tab]
        if column is not None:
            rows = sorted(rows, key=_sort_key(tab, column, view.latest), reverse=reverse)
        elif reverse:
            rows = rows[::-1]
        self.rows[tab] = rows
        table = self.table(tab)
        if keep is not None:
            at = next((i for i, r in enumerate(rows) if r is keep), 0)
        table.show(rows, cursor=at, labels=self._labels(tab))
        self.stale.discard(tab)

    def _labels(self, tab: str) -> dict[str, str]:
        column, reverse = self.sorting[tab]
        labels = {c.name: c.label for c in COLUMNS[tab]}
        if column is not None:
            labels[column] = f"{labels[column]}{'▼' if reverse else '▲'}"
        return labels

    def _all_stale(self) -> None:
        """Fill the visible tab now, the others when shown."""
        self.stale = set(TABS)
        tab = self._active_tab()
        self._refill(tab, keep=self.table(tab).highlighted())
        self._show_highlighted()

    @on(PagedTable.Paged)
    def _paged(self, event: PagedTable.Paged) -> None:
        if event.table.id == f"table-{self._active_tab()}":
            self._show_status()

    def _show_status(self) -> None:
        """Under the table: how many rows it holds of how many, the order, and the table's keys."""
        view = self.view
        if view is None:
            return
        tab = self._active_tab()
        table = self.table(tab)
        every = view.tabs.get(tab, [])
        total = len(every) if self.show_gone else sum(1 for r in every if not r.gone)
        shown = table.total
        text = Text(no_wrap=True, overflow="ellipsis", end="")
        if view.totals is not None:  # a first look: the first rows, the rest being read
            total = view.totals.get(tab, 0)
            text.append(f"{total:,} row{'s' if total != 1 else ''} · 1-{table.loaded:,} shown, reading the rest…")
        elif self.filter_text:
            text.append(f"{shown:,} of {total:,} match", style="bold" if shown else "yellow")
        else:
            text.append(f"{total:,} row{'s' if total != 1 else ''}")
        if table.loaded < shown and view.complete:
            text.append(f" · 1-{table.loaded:,} loaded, ↓ PgDn for more", style="bold")
        column, reverse = self.sorting[tab]
        if column is not None:
            label = next(c.label or "status" for c in COLUMNS[tab] if c.name == column)
            text.append(f" · by {label} {'▼' if reverse else '▲'}")
        keys = "o sort · c copy" + (" · u open" if tab == "http" else "") + " · w wide"
        text.append(f" · {keys}", style="dim")
        self.query_one(f"#status-{tab}", Static).update(text)

    def _asof(self, view: View) -> Text:
        """Which scan is shown, its lifecycle counts and whether gone assets are; then its inventory's counts.
        Two lines at 80 columns (a large estate's counts may wrap to a third)."""
        n = view.counts
        text = Text(no_wrap=False, end="")
        if view.note:
            text.append(f"{view.note}; ", style="yellow")
        if view.scan_id is None:
            text.append("no finished scan with an inventory yet:", style="bold")
            text.append(" what scans found so far")
        else:
            text.append(f"as of scan #{view.scan_id}, {when(view.finished_at)}", style="bold")
            newer = len(view.scans) - 1 - view.scans.index(view.scan_id)
            text.append(" (latest)" if not newer else f" ({newer} newer)", style="dim")
            text.append(" · ")
            # the legend of the marks, with the counts
            unconfirmed = STATUS_STYLES["unconfirmed"] if n.unconfirmed else ""
            text.append(f"{MARKS['unconfirmed']} {n.unconfirmed} unconfirmed", style=unconfirmed)
            text.append(" · ")
            text.append(f"{MARKS['gone']} {n.gone} gone", style="bold" if n.gone else "")
            text.append(" (shown)" if self.show_gone else " (hidden)", style="dim")
        if self.filter_text:
            text.append(" · filter ")
            text.append(safe(self.filter_text, 40, style="bold"))
        text.append("\n")
        text.append(inventory_text(n.as_dict(), lifecycle=False))
        return text

    def _active_tab(self) -> str:
        return (self.query_one("#tabs", TabbedContent).active or "tab-hosts").removeprefix("tab-")

    def _focus_table(self) -> None:
        self.table().focus()

    # -- actions ---------------------------------------------------------------------------

    def action_tab(self, tab: str) -> None:
        self.query_one("#tabs", TabbedContent).active = f"tab-{tab}"
        if tab in self.stale:
            self._refill(tab)
        self._focus_table()
        self._show_status()

    def action_history(self) -> None:
        self.show_gone = not self.show_gone
        if self.view is not None:
            self.query_one("#asof", Static).update(self._asof(self.view))
        self._all_stale()

    def action_older(self) -> None:
        self._step(-1)

    def action_newer(self) -> None:
        self._step(1)

    def _step(self, by: int) -> None:
        view = self.view
        if view is None or view.scan_id is None:
            self.notify("No snapshotted scan to step through yet.", markup=False)
            return
        at = view.scans.index(view.scan_id) + by
        if not 0 <= at < len(view.scans):
            self.notify("No older snapshotted scan." if by < 0 else "This is the latest scan.", markup=False)
            return
        self.scan_id = None if at == len(view.scans) - 1 else view.scans[at]  # None: follow new scans
        self.action_reload()

    def sort_state(self) -> tuple[str | None, bool]:
        """The visible tab's order: (column name or None for the natural order, reversed)."""
        return self.sorting[self._active_tab()]

    def action_sort(self) -> None:
        """The next column shown (after the last one: the natural order again)."""
        tab = self._active_tab()
        shown = self.table(tab).names or NAMES[tab]
        names = [*shown[1:], shown[0]]  # the row's main column first, the status mark last
        column, _ = self.sorting[tab]
        at = names.index(column) + 1 if column in names else 0
        self._sort(tab, names[at] if at < len(names) else None, False)

    def action_reverse(self) -> None:
        tab = self._active_tab()
        column, reverse = self.sorting[tab]
        self._sort(tab, column, not reverse)

    @on(DataTable.HeaderSelected)
    def header_clicked(self, event: DataTable.HeaderSelected) -> None:
        """A click on a header sorts by its column; on the sorted one, reverses."""
        event.stop()
        tab = self._active_tab()
        name = str(event.column_key.value)
        column, reverse = self.sorting[tab]
        self._sort(tab, name, not reverse if name == column else False)

    def _sort(self, tab: str, column: str | None, reverse: bool) -> None:
        self.sorting[tab] = (column, reverse)
        self._refill(tab, keep=self.table(tab).highlighted())
        self._focus_table()
        self._show_highlighted()

    def action_copy(self) -> None:
        row = self.highlighted()
        if row is None:
            self.notify("No row highlighted.", markup=False)
            return
        value = _main_value(row)
        self.app.copy_to_clipboard(value)
        self.notify(f"Copied {value}", title="Clipboard", markup=False)

    def action_open_url(self) -> None:
        row = self.highlighted()
        url = _web_url(row) if row is not None and self._active_tab() == "http" else None
        if url is None:
            self.notify("Only a web endpoint (the HTTP tab) has a URL to open.", markup=False)
            return
        self.app.open_url(url)
        self.notify(f"Opening {url}", markup=False)

    def action_wide(self) -> None:
        pane = self.query_one("#detail-pane")
        pane.display = not pane.display

    def action_more(self) -> None:
        table = self.table()
        table.load_all()
        if table.row_count:
            table.move_cursor(row=table.row_count - 1, animate=False)

    def action_filter(self) -> None:
        self.query_one(FilterInput).open()

    def filter_pending(self) -> bool:
        """A filter typed but not yet applied (its debounce delay runs)."""
        return self.query_one(FilterInput).pending

    @on(FilterInput.Typed)
    def filter_typed(self, event: FilterInput.Typed) -> None:
        """Narrow as the user types (debounced by the box); the focus stays in it."""
        if event.text != self.filter_text:
            self._set_filter(event.text)

    @on(FilterInput.Applied)
    def apply_filter(self, event: FilterInput.Applied) -> None:
        if event.text != self.filter_text:
            self._set_filter(event.text)
        self._focus_table()

    def _set_filter(self, text: str) -> None:
        self.filter_text = text
        if self.view is not None:
            self.query_one("#asof", Static).update(self._asof(self.view))
        self._all_stale()

    @on(TabbedContent.TabActivated)
    def tab_changed(self) -> None:
        tab = self._active_tab()
        if tab in self.stale:
            self._refill(tab)
        self._focus_table()
        self._show_highlighted()
        self._show_status()

    @on(DataTable.RowHighlighted)
    def show_detail(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == f"table-{self._active_tab()}":  # hidden tabs' tables highlight too
            self._show_highlighted()

    def highlighted(self) -> Row | None:
        """The row under the cursor of the visible tab."""
        return self.table().highlighted()

    def _show_highlighted(self) -> None:
        """The detail pane follows the highlighted row of the visible tab."""
        row, view = self.highlighted(), self.view
        detail = self.query_one("#detail", Static)
        if row is None or view is None:
            detail.update(NO_ROW)
        elif row.item.kind in ("host", "ip"):
            children = [r for r in view.details.get(row.item.host, []) if self.show_gone or not r.gone]
            detail.update(_host_detail(row, children, view))
        else:
            detail.update(_detail(row, view))


def _main_value(row: Row) -> str:
    """What `c` copies: a host's name or address, a record's name, a service's address:port, an endpoint's URL."""
    item, st = row.item, row.item.state
    if item.kind == "service":
        value: object = f"{item.host}:{st.get('port')}"
    elif item.kind == "http":
        value = st.get("url") or item.label
    else:
        value = item.host
    return clean_text(value, 2000)


def _web_url(row: Row) -> str | None:
    """The row's URL when it is a web endpoint's, http or https, with a host, and nothing hidden in it."""
    if row.item.kind != "http":
        return None
    url = str(row.item.state.get("url") or row.item.label)
    if clean_text(url, 4000) != url or any(c.isspace() for c in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme.lower() in WEB and parts.hostname else None


def _haystack(row: Row, latest: bool) -> str:
    """What the filter looks in: every column's value and the status, lower case (made once)."""
    if not row.haystack:
        values = _cell_values(row, latest)
        row.haystack = "\x00".join(str(v) for v in (*values.values(), row.status) if v not in ("", None)).lower()
    return row.haystack


def _label(tab: str) -> str:
    """The tab's title, with its key."""
    return f"{TABS.index(tab) + 1} " + (tab.upper() if tab in ("dns", "http") else tab.title())


def _status(status: str) -> Text:
    return Text(status, style=STATUS_STYLES.get(status, ""), no_wrap=True, end="")


def _mark(status: str) -> Text:
    """A row's lifecycle mark: + new, ? unconfirmed, × gone, * reopened (open: none)."""
    return Text(MARKS.get(status, " "), style=STATUS_STYLES.get(status, ""), no_wrap=True, end="")


def _cell_values(row: Row, latest: bool) -> dict[str, object]:
    """A row's values by column name. Values a snapshot does not hold come from
    the live row on the latest scan only (older scans: the snapshot's)."""
    item, live, st = row.item, row.live, row.item.state
    extra = live if latest else None  # live values that may be newer than an older scan
    if item.kind in ("host", "ip"):
        return {
            "name": item.host,
            "dns": "address" if item.kind == "ip" else st.get("dns") or "",
            "first_seen": when(live.first_seen) if live is not None else "",  # first seen never changes
            "last_seen": when(extra.last_seen) if extra is not None else "",
        }
    if item.kind == "dns":
        ttl = extra.ttl if extra is not None else ""
        return {"name": item.host, "type": st.get("rtype"), "value": st.get("value"), "ttl": ttl}
    if item.kind == "service":
        banner = extra.banner if extra is not None else ""
        return {"address": item.host, "port": st.get("port"), "service": st.get("service"), "banner": banner}
    return {
        "url": st.get("url") or item.label,
        "status": st.get("status"),
        "title": st.get("title"),
        "server": st.get("server"),
    }


LIMITS = {"name": 200, "value": 200, "url": 300, "title": 200, "banner": 200, "server": 100}


def _cells(row: Row, latest: bool) -> dict[str, Text]:
    """A row's cells by column name (made once per row); a gone asset's dimmed.
    Host-derived values go through `safe` (no markup, no escapes); a cell cut by
    its column ends in "…"."""
    style = "dim" if row.gone else ""
    cells = {
        name: ellipsis(safe("" if value is None else value, LIMITS.get(name, 30), style=style))
        for name, value in _cell_values(row, latest).items()
    }
    cells["mark"] = _mark(row.status)
    return cells


def _lifecycle(row: Row) -> Text:
    """The status of a row, said in words (the detail pane)."""
    text = _status(row.status or "found")
    misses = row.item.misses
    if row.status == "unconfirmed":
        text.append(f" (missed by {misses} scan{'s' if misses != 1 else ''} that looked; not gone yet)", style="")
    elif row.status == "gone":
        text.append(f" (missed by {misses} scans in a row)" if misses else "", style="")
    return text


def _scan_line(view: View) -> Text | None:
    if view.scan_id is None:
        return None
    if view.latest:
        return Text(f"as of scan #{view.scan_id} (latest)", style="dim")
    return Text(
        f"as of scan #{view.scan_id} (an older one): banners, TTLs, TLS details and last-seen times "
        "are shown for the latest scan only",
        style="dim",
    )


def _detail(row: Row, view: View) -> RenderableType:
    """A record, service or endpoint: its values as of the scan, and the live row's extras on the latest scan."""
    item, st = row.item, row.item.state
    live = row.live if view.latest else None
    pairs: list[tuple[str, object]]
    if item.kind == "dns":
        pairs = [("name", item.host), ("type", st.get("rtype")), ("value", st.get("value"))]
        pairs += [("ttl", live.ttl)] if live else []
    elif item.kind == "service":
        pairs = [("address", item.host), ("port", st.get("port")), ("service", st.get("service"))]
        pairs += [("banner", live.banner)] if live else []
    else:
        pairs = _http_pairs(item, live)
    pairs.insert(0, ("state", _lifecycle(row)))
    if live is not None:
        pairs += [("first seen", when(live.first_seen)), ("last seen", when(live.last_seen))]
    elif row.live is not None:
        pairs.append(("first seen", when(row.live.first_seen)))
    parts: list[RenderableType] = [grid([(k, v) for k, v in pairs if v not in ("", None)])]
    note = _scan_line(view)
    if note is not None:
        parts.append(note)
    return Group(*parts)


def _http_pairs(item: Item, live: Any) -> list[tuple[str, object]]:
    st = item.state
    tech = st.get("tech") or []
    pairs: list[tuple[str, object]] = [
        ("url", st.get("url") or item.label),
        ("host", item.host),
        ("status", st.get("status")),
        ("title", st.get("title")),
        ("server", st.get("server")),
        ("length", st.get("length")),
        ("tech", ", ".join(tech) if isinstance(tech, list) else tech),
    ]
    if live is None:  # an older scan: what its snapshot holds of the certificate
        return pairs + [("tls issuer", st.get("issuer")), ("tls expires", st.get("not_after"))]
    redirects = json.loads(live.redirects or "[]")
    pairs += [
        ("type", live.content_type),
        ("time", f"{live.response_ms:.0f} ms" if live.response_ms is not None else ""),
        ("final url", live.final_url),
    ]
    pairs += [("redirect", r) for r in redirects]
    pairs += [("cdn", live.cdn), ("favicon", "" if live.favicon_hash is None else f"mmh3 {live.favicon_hash}")]
    tls = json.loads(live.tls or "{}")
    if tls:
        pairs += [
            ("tls subject", tls.get("subject_cn") or tls.get("subject", "")),
            ("tls issuer", tls.get("issuer_cn") or tls.get("issuer", "")),
            ("tls expires", tls.get("not_after", "")),
            ("self-signed", "yes" if tls.get("self_signed") else "no"),
            ("tls names", ", ".join(tls.get("sans", [])[:20])),
        ]
    if live.error:
        pairs.append(("error", live.error))
    return pairs


def _host_detail(row: Row, children: list[Row], view: View) -> Group:
    """A host: its values, then its records, services and endpoints as of the scan."""
    item, live = row.item, row.live
    latest = live if view.latest else None
    pairs: list[tuple[str, object]] = [
        ("host", item.host),
        ("state", _lifecycle(row)),
        ("dns", "address" if item.kind == "ip" else item.state.get("dns") or ""),
        ("first seen", when(live.first_seen) if live else ""),
        ("last seen", when(latest.last_seen) if latest else ""),
    ]
    parts: list[RenderableType] = [grid([(k, v) for k, v in pairs if v not in ("", None)])]
    for child in children:
        parts.append(_child_line(child, view.latest))
    note = _scan_line(view)
    if note is not None:
        parts.append(note)
    return Group(*parts)


def _child_line(row: Row, latest: bool) -> Text:
    item, st = row.item, row.item.state
    dim = "dim" if row.gone else ""
    if item.kind == "dns":
        line = Text.assemble((f"{st.get('rtype', ''):6}", dim or "cyan"), safe(st.get("value"), 200, style=dim))
    elif item.kind == "service":
        banner = row.live.banner if latest and row.live is not None else ""
        what = " ".join(filter(None, (str(st.get("service") or ""), banner)))
        line = Text.assemble((f"{st.get('port', ''):<6}", dim or "green"), safe(what, 200, style=dim))
    else:
        line = Text.assemble(
            (f"{st.get('status') or '-':<4} ", dim or "yellow"),
            safe(st.get("url") or item.label, 120, style=dim),
            " ",
            safe(st.get("title"), 80, style=dim),
        )
    if row.status in ("unconfirmed", "gone", "new", "reopened"):
        line.append(f" {row.status}", style=STATUS_STYLES[row.status])
    return line
