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
is shown. A project with no snapshot yet shows what its scans found so far."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.console import Group, RenderableType
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DataTable, Footer, Header, Static, TabbedContent, TabPane

from ..actions import Action, bindings
from ..panels import inventory_text
from ..text import grid, safe, when
from ..widgets import FilterInput
from .base import ProjectScreen

if TYPE_CHECKING:
    from ...events import Inventory, Item

TABS = ("hosts", "dns", "services", "http")
TAB_OF = {"host": "hosts", "ip": "hosts", "dns": "dns", "service": "services", "http": "http"}
# lifecycle status -> its mark in the tables' first column and its style ("": a
# project without snapshots yet, no lifecycle). The as-of line is the legend.
STATUS_STYLES = {"new": "green", "open": "dim", "unconfirmed": "bold yellow", "gone": "dim", "reopened": "bold cyan"}
MARKS = {"new": "+", "unconfirmed": "?", "gone": "×", "reopened": "*"}
# Fixed widths (the detail pane shows whole values): a long hostile value cannot
# push the other columns off screen. The mark column costs 3 of the ~48 the
# tables get at 80 columns.
COLUMNS = {
    "hosts": (("", 1), ("name", 32), ("dns", 8), ("first seen", 16), ("last seen", 16)),
    "dns": (("", 1), ("name", 28), ("type", 5), ("value", 40), ("ttl", 6)),
    "services": (("", 1), ("address", 16), ("port", 5), ("service", 10), ("banner", 50)),
    "http": (("", 1), ("url", 40), ("status", 6), ("title", 40), ("server", 24)),
}
NO_ROW = "Highlight a row to see its details."


@dataclass
class Row:
    """One asset as the tables show it."""

    item: Item
    status: str  # as of the scan shown ("" without snapshots)
    live: Any = None  # its live row (Host, DnsRecord, Service, HttpEndpoint), when it has one

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

    @property
    def latest(self) -> bool:
        return self.scan_id is None or (bool(self.scans) and self.scan_id == self.scans[-1])


def load_view(project_id: int, wanted: int | None) -> View:
    """The inventory as of `wanted` (None: the latest snapshotted scan), with the live rows."""
    from ...events import as_of, history
    from ...events.items import inventory, item_of
    from ...store import repo
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
    live: dict[tuple[str, int], Any] = {}
    made: list[Item] = []  # without snapshots: items made from the live rows
    for h in repo.hosts(project_id):
        assert h.id is not None  # stored rows
        live["ip" if h.is_address else "host", h.id] = h
        made.append(item_of("host", h, h.name))
    children: list[tuple[str, list[Any]]] = [
        ("dns", repo.dns_records(project_id)),
        ("service", repo.services(project_id)),
        ("http", repo.endpoints(project_id)),
    ]
    for kind, found in children:
        for child, name in found:
            live[kind, child.id] = child
            made.append(item_of(kind, child, name))
    if not scans:
        items = [(i, "") for i in made]
        scan_id, finished = None, None
    else:
        scan_id = wanted if wanted is not None else scans[-1]
        _, items = as_of(project_id, scan_id)
        finished = next(r["finished_at"] for r in done if r["id"] == scan_id)
    shown = [Row(i, status, live.get(i.key)) for i, status in items if i.kind in TAB_OF]
    view = View(scan_id, finished, scans, sorted(shown, key=_order), inventory([i for i, _ in items]), note)
    for row in view.rows:
        if row.item.kind in ("dns", "service", "http"):
            view.details.setdefault(row.item.host, []).append(row)
    return view


def _order(row: Row) -> tuple[Any, ...]:
    item = row.item
    if item.kind == "dns":
        return item.host, item.state.get("rtype", ""), item.state.get("value", "")
    if item.kind == "service":
        return item.host, item.state.get("port") or 0
    return (item.label,)


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
    ]
    BINDINGS = bindings(ACTIONS)
    DEFAULT_CSS = """
    ResultsScreen #asof { height: auto; padding: 0 1; }
    """

    def __init__(self, project_id: int, project_name: str, scan_id: int | None = None):
        super().__init__(project_id, project_name)
        self.scan_id = scan_id  # None: the latest snapshotted scan
        self.view: View | None = None
        self.rows: dict[str, list[Row]] = {tab: [] for tab in TABS}
        self.filter_text = ""
        self.show_gone = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("reading the inventory…", id="asof")
        yield FilterInput(placeholder="filter rows (Enter applies, Escape clears)", id="filter", classes="hidden")
        with Horizontal(id="results-body"):
            with TabbedContent(*[_label(t) for t in TABS], id="tabs"):
                for tab in TABS:
                    with TabPane(_label(tab), id=f"tab-{tab}"):
                        yield DataTable(id=f"table-{tab}", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="detail-pane"):
                yield Static(NO_ROW, id="detail")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = f"results · {self.project_name}"
        for tab, cols in COLUMNS.items():
            table = self.query_one(f"#table-{tab}", DataTable)
            for label, width in cols:
                table.add_column(label, width=width)
        self.action_reload()

    @work(thread=True, exclusive=True, exit_on_error=False)
    def action_reload(self) -> None:
        view = load_view(self.project_id, self.scan_id)
        self.app.call_from_thread(self._show, view)

    def _show(self, view: View) -> None:
        self.view = view
        self._fill()

    def _fill(self) -> None:
        view = self.view
        if view is None:
            return
        self.query_one("#asof", Static).update(self._asof(view))
        needle = self.filter_text.lower()
        for tab in TABS:
            rows = [r for r in view.rows if TAB_OF[r.item.kind] == tab and (self.show_gone or not r.gone)]
            table = self.query_one(f"#table-{tab}", DataTable)
            table.clear()
            self.rows[tab] = []
            for row in rows:
                cells = _cells(row, view.latest)
                if needle and not any(needle in str(c).lower() for c in (*cells, row.status)):  # "/gone" works
                    continue
                # row keys are indexes into self.rows, so the detail pane finds its data
                table.add_row(*cells, key=str(len(self.rows[tab])))
                self.rows[tab].append(row)
        self._focus_table()
        self._show_highlighted()

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
        self.query_one(f"#table-{self._active_tab()}", DataTable).focus()

    def action_tab(self, tab: str) -> None:
        self.query_one("#tabs", TabbedContent).active = f"tab-{tab}"
        self._focus_table()

    def action_history(self) -> None:
        self.show_gone = not self.show_gone
        self._fill()

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

    def action_filter(self) -> None:
        self.query_one(FilterInput).open()

    @on(FilterInput.Applied)
    def apply_filter(self, event: FilterInput.Applied) -> None:
        self.filter_text = event.text
        self._fill()  # (and focuses the table)

    @on(TabbedContent.TabActivated)
    def tab_changed(self) -> None:
        self._focus_table()
        self._show_highlighted()

    @on(DataTable.RowHighlighted)
    def show_detail(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == f"table-{self._active_tab()}":  # hidden tabs' tables highlight too
            self._show_highlighted()

    def highlighted(self) -> Row | None:
        """The row under the cursor of the visible tab."""
        tab = self._active_tab()
        table = self.query_one(f"#table-{tab}", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.rows[tab][int(key)] if key is not None else None

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


def _label(tab: str) -> str:
    """The tab's title, with its key."""
    return f"{TABS.index(tab) + 1} " + (tab.upper() if tab in ("dns", "http") else tab.title())


def _status(status: str) -> Text:
    return Text(status, style=STATUS_STYLES.get(status, ""), no_wrap=True, end="")


def _mark(status: str) -> Text:
    """A row's lifecycle mark: + new, ? unconfirmed, × gone, * reopened (open: none)."""
    return Text(MARKS.get(status, " "), style=STATUS_STYLES.get(status, ""), no_wrap=True, end="")


def _cells(row: Row, latest: bool) -> list[Text]:
    """A row's cells; a gone asset's dimmed. Values a snapshot does not hold come
    from the live row on the latest scan only (older scans: the snapshot's)."""
    item, live, st = row.item, row.live, row.item.state
    extra = live if latest else None  # live values that may be newer than an older scan
    style = "dim" if row.gone else ""

    def cell(value: object, limit: int) -> Text:
        return safe("" if value is None else value, limit, style=style)

    if item.kind in ("host", "ip"):
        dns = "address" if item.kind == "ip" else st.get("dns") or ""
        first = when(live.first_seen) if live else ""  # first seen never changes
        cells = [cell(item.host, 80), cell(dns, 20), cell(first, 20), cell(when(extra.last_seen) if extra else "", 20)]
    elif item.kind == "dns":
        ttl = extra.ttl if extra else ""
        cells = [cell(item.host, 60), cell(st.get("rtype"), 10), cell(st.get("value"), 80), cell(ttl, 10)]
    elif item.kind == "service":
        banner = extra.banner if extra else ""
        cells = [cell(item.host, 60), cell(st.get("port"), 6), cell(st.get("service"), 20), cell(banner, 60)]
    else:
        cells = [cell(st.get("url") or item.label, 70), cell(st.get("status"), 6)]
        cells += [cell(st.get("title"), 60), cell(st.get("server"), 30)]
    return [_mark(row.status), *cells]


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
