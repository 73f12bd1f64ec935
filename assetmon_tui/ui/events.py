"""Monitoring screens: the change-events feed across projects (filter,
acknowledge), the diff between two done scans, and trends of a project's
inventory over its scans (Sparklines)."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Group
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label, Sparkline, Static

from ..core.sanitize import clean_text
from .common import FilterInput
from .findings import fill_table, next_filter, severity
from .text import safe


def local_time(value: datetime | None, fmt: str = "%m-%d %H:%M") -> str:
    """Database times are UTC, sometimes without tzinfo: shown in local time."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone().strftime(fmt)


def _cycle(options: list, current):
    return options[(options.index(current) + 1) % len(options)] if current in options else options[0]


# -- events feed ----------------------------------------------------------------------

EVENT_COLUMNS = (" ", "time", "project", "severity", "type", "summary")


class EventsScreen(Screen):
    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("a", "ack", "Ack"),
        Binding("A", "ack_all", "Ack shown"),
        Binding("s", "severity", "Severity"),
        Binding("t", "type", "Type"),
        Binding("p", "project", "Project"),
        Binding("u", "unacked", "New only"),
        Binding("slash", "filter", "Filter", show=False),
        Binding("f5", "reload", "Reload", show=False),
    ]

    def __init__(self, project_id: int | None = None):
        super().__init__()
        self.min_severity: str | None = None
        self.type: str | None = None
        self.project_id: int | None = project_id  # None: every project
        self.unacked_only = False
        self.filter_text = ""
        self.projects: dict[int, str] = {}
        self.types: list[str] = []
        self.events: list = []
        self._times: dict = {}
        self.shown: list = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="events-filters")
        yield FilterInput(placeholder="filter summaries (Enter applies, Escape clears)", id="filter", classes="hidden")
        yield DataTable(id="events", cursor_type="row", zebra_stripes=True)
        yield Static("", id="event-detail")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.title = "Events"  # the sub-title stays the app's: N new events · backend
        self.query_one("#events", DataTable).focus()
        self.action_reload()

    @work(thread=True, exclusive=True, group="events", exit_on_error=False)
    def action_reload(self) -> None:
        from ..store import monitor, repo

        projects = {p.id: p.name for p in repo.list_projects()}
        events = monitor.list_events(
            project_id=self.project_id,
            severity=self.min_severity,
            type=self.type,
            unacknowledged_only=self.unacked_only,
            limit=500,
        )
        times = {e.id: local_time(e.created_at) for e in events}
        self.app.call_from_thread(self._fill, projects, events, times)

    def _fill(self, projects: dict, events: list, times: dict) -> None:
        self.projects = projects
        self.events = events
        self._times = times
        self.types = sorted(set(self.types) | {e.type for e in events})
        table = self.query_one("#events", DataTable)
        cursor = table.cursor_row
        needle = self.filter_text.lower()
        self.shown = []
        rows = []
        for e in events:
            project = projects.get(e.project_id, str(e.project_id))
            if needle and not any(needle in str(v).lower() for v in (e.summary, e.type, e.entity, project)):
                continue
            self.shown.append(e)
            dim = "dim" if e.acknowledged else ""
            mark = Text("·", style="dim") if e.acknowledged else Text("●", style="bold cyan")
            rows.append(
                (
                    [
                        mark,
                        Text(times.get(e.id, ""), style=dim),
                        safe(project, 16, style=dim),
                        severity(e.severity),
                        safe(e.type, 22, style=dim),
                        safe(e.summary, 300, style=dim),
                    ],
                    str(e.id),
                )
            )
        fill_table(table, EVENT_COLUMNS, rows, (1, 11, 12, 8, 20, 0))
        if self.shown:
            table.move_cursor(row=min(cursor, len(self.shown) - 1))
        else:
            self.query_one("#event-detail", Static).update(Text("No events match.", style="dim"))
        new = sum(1 for e in self.shown if not e.acknowledged)
        table.border_title = f"Events ({len(self.shown)} shown, {new} new)"
        self._show_filters()

    def _show_filters(self) -> None:
        project = "all" if self.project_id is None else self.projects.get(self.project_id, str(self.project_id))
        parts = [
            ("s", f"severity {'≥ ' + self.min_severity if self.min_severity else 'all'}"),
            ("t", f"type {self.type or 'all'}"),
            ("p", f"project {clean_text(project, 20)}"),
            ("u", "new only" if self.unacked_only else "new + acknowledged"),
        ]
        if self.filter_text:
            parts.append(("/", f"text {clean_text(self.filter_text, 20)!r}"))
        text = Text()
        for key, label in parts:
            text.append(f" {key} ", style="reverse")
            text.append(f" {label}  ")
        self.query_one("#events-filters", Static).update(text)

    def on_resize(self) -> None:
        if self.events:
            self.call_after_refresh(self._fill, self.projects, self.events, self._times)

    # -- filters ----------------------------------------------------------------------

    def action_severity(self) -> None:
        self.min_severity = next_filter(self.min_severity)
        self.action_reload()

    def action_type(self) -> None:
        self.type = _cycle([None, *self.types], self.type)
        self.action_reload()

    def action_project(self) -> None:
        self.project_id = _cycle([None, *sorted(self.projects)], self.project_id)
        self.action_reload()

    def action_unacked(self) -> None:
        self.unacked_only = not self.unacked_only
        self.action_reload()

    def action_filter(self) -> None:
        self.query_one(FilterInput).open()

    @on(FilterInput.Applied)
    def apply_filter(self, event: FilterInput.Applied) -> None:
        self.filter_text = event.text
        self.action_reload()
        self.query_one("#events", DataTable).focus()

    # -- rows ---------------------------------------------------------------------------

    def _highlighted(self):
        table = self.query_one("#events", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return next((e for e in self.shown if str(e.id) == key), None)

    @on(DataTable.RowHighlighted, "#events")
    def show_detail(self) -> None:
        event = self._highlighted()
        if event is None:
            return
        project = self.projects.get(event.project_id, str(event.project_id))
        since = f" (since #{event.prev_scan_id})" if event.prev_scan_id else ""
        text = Text.assemble(
            severity(event.severity),
            " ",
            safe(event.type, 40, style="bold"),
            "  ",
            safe(project, 40),
            f"  scan #{event.scan_id}{since}",
            ("  acknowledged" if event.acknowledged else "  new", "dim"),
            "\n",
            safe(event.summary, 400),
            "\n",
            safe(event.entity, 300, style="dim"),
        )
        text.no_wrap = False
        self.query_one("#event-detail", Static).update(text)

    @on(DataTable.RowSelected, "#events")
    def open_diff(self) -> None:
        event = self._highlighted()
        if event is None or not event.prev_scan_id:
            self.notify("This event has no earlier scan to compare with.", markup=False)
            return
        self.app.push_screen(DiffScreen(event.prev_scan_id, event.scan_id, self.projects.get(event.project_id, "")))

    def action_ack(self) -> None:
        event = self._highlighted()
        if event is None:
            return
        if event.acknowledged:
            self.notify("Already acknowledged.", markup=False)
            return
        self._acknowledge([event.id])

    def action_ack_all(self) -> None:
        ids = [e.id for e in self.shown if not e.acknowledged]
        if not ids:
            self.notify("Nothing new in this list.", markup=False)
            return
        self._acknowledge(ids)

    @work(thread=True, group="ack", exit_on_error=False)
    def _acknowledge(self, ids: list[int]) -> None:
        from ..store import monitor

        n = monitor.acknowledge(ids)
        self.app.call_from_thread(self.notify, f"{n} event{'s' if n != 1 else ''} acknowledged", markup=False)
        self.app.call_from_thread(self.action_reload)
        refresh = getattr(self.app, "refresh_event_count", None)
        if refresh is not None:
            self.app.call_from_thread(refresh)


# -- diff ------------------------------------------------------------------------------

DIFF_GROUPS = (
    ("hosts", "Hosts"),
    ("dns", "DNS records"),
    ("services", "Services"),
    ("endpoints", "Web endpoints"),
    ("js", "JavaScript files"),
    ("findings", "Findings"),
)


class DiffScreen(Screen):
    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back"), Binding("w", "swap", "Swap")]

    def __init__(self, scan_a: int, scan_b: int, project_name: str = ""):
        super().__init__()
        self.scan_a, self.scan_b = scan_a, scan_b
        self.project_name = project_name

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="diff-pane"):
            yield Static("Comparing…", id="diff")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = f"diff · {self.project_name}".rstrip(" ·")
        self.query_one("#diff-pane").focus()
        self._load()

    def action_swap(self) -> None:
        self.scan_a, self.scan_b = self.scan_b, self.scan_a
        self._load()

    @work(thread=True, exclusive=True, exit_on_error=False)
    def _load(self) -> None:
        from ..events import scan_diff

        try:
            diff = scan_diff(self.scan_a, self.scan_b)
        except Exception as exc:
            self.app.call_from_thread(self._show, None, str(exc) or type(exc).__name__)
            return
        self.app.call_from_thread(self._show, diff, "")

    def _show(self, diff: dict | None, error: str) -> None:
        pane = self.query_one("#diff-pane")
        pane.border_title = f"Scan #{self.scan_a} → scan #{self.scan_b}"
        if diff is None:
            self.query_one("#diff", Static).update(Text(clean_text(error, 500), style="red"))
            return
        parts: list = []
        total_added = total_removed = 0
        for key, title in DIFF_GROUPS:
            group = diff.get(key) or {"added": [], "removed": []}
            added, removed = group["added"], group["removed"]
            total_added += len(added)
            total_removed += len(removed)
            if not added and not removed:
                continue
            parts.append(
                Text.assemble(
                    (title, "bold underline"), "  ", (f"+{len(added)}", "green"), " ", (f"-{len(removed)}", "red")
                )
            )
            parts += [Text.assemble(("+ ", "bold green"), safe(item, 300, style="green")) for item in added]
            parts += [Text.assemble(("- ", "bold red"), safe(item, 300, style="red")) for item in removed]
            parts.append(Text(""))
        if not parts:
            parts = [Text("No differences in the inventory.", style="dim")]
        pane.border_subtitle = f"+{total_added} -{total_removed} · w swaps"
        self.query_one("#diff", Static).update(Group(*parts))


# -- trends ----------------------------------------------------------------------------

METRICS = (
    ("hosts", "hosts"),
    ("services", "services"),
    ("endpoints", "web"),
    ("findings", "findings"),
    ("events", "events"),
)


class TrendsScreen(Screen):
    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back"), Binding("f5", "reload", "Reload")]

    def __init__(self, project_id: int, project_name: str):
        super().__init__()
        self.project_id = project_id
        self.project_name = project_name
        self.history: list[dict] = []

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="trends"):
            for key, label in METRICS:
                with Horizontal(classes="trend"):
                    yield Label(label, classes="trend-label")
                    yield Sparkline([], id=f"spark-{key}", classes="trend-spark")
                    yield Static("", id=f"last-{key}", classes="trend-last")
        yield DataTable(id="history", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = f"trends · {self.project_name}"
        self.query_one("#trends").border_title = "Inventory over done scans (oldest → newest)"
        table = self.query_one("#history", DataTable)
        table.add_columns("scan", "finished", "hosts", "services", "web", "findings", "events")
        table.border_title = "Scans (Enter: diff with the previous one)"
        table.focus()
        self.action_reload()

    @work(thread=True, exclusive=True, exit_on_error=False)
    def action_reload(self) -> None:
        from ..events import history

        rows = history(self.project_id)
        times = [local_time(r["finished_at"], "%Y-%m-%d %H:%M") for r in rows]
        self.app.call_from_thread(self._fill, rows, times)

    def _fill(self, rows: list[dict], times: list[str]) -> None:
        self.history = rows
        for key, _ in METRICS:
            values = [float(r[key]) for r in rows]
            self.query_one(f"#spark-{key}", Sparkline).data = values
            if values:
                last = int(values[-1])
                delta = int(values[-1] - values[-2]) if len(values) > 1 else 0
                style = "green" if delta > 0 else "red" if delta < 0 else "dim"
                self.query_one(f"#last-{key}", Static).update(
                    Text.assemble(
                        (f"{last:>6}", "bold"),
                        (f" {delta:+d}" if len(values) > 1 else "", style),
                        (f"  {int(min(values))}–{int(max(values))}", "dim"),
                    )
                )
            else:
                self.query_one(f"#last-{key}", Static).update(Text("no data", style="dim"))
        table = self.query_one("#history", DataTable)
        table.clear()
        for r, finished in zip(reversed(rows), reversed(times), strict=False):
            table.add_row(f"#{r['id']}", finished, *(str(r[k]) for k, _ in METRICS), key=str(r["id"]))
        if not rows:
            self.query_one("#trends").border_subtitle = "no done scans with a snapshot yet"
        else:
            self.query_one("#trends").border_subtitle = f"{len(rows)} scans"

    @on(DataTable.RowSelected, "#history")
    def diff_previous(self, event: DataTable.RowSelected) -> None:
        ids = [r["id"] for r in self.history]
        scan_id = int(event.row_key.value)
        at = ids.index(scan_id)
        if at == 0:
            self.notify("The first scan has nothing earlier to compare with.", markup=False)
            return
        self.app.push_screen(DiffScreen(ids[at - 1], scan_id, self.project_name))
