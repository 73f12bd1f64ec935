"""The change-events feed across projects: filter, acknowledge, and Enter for
the diff of an event's scan with the one before. Event rules apply here as in
notifications and exports: `r` makes one from the highlighted event (suppress
or acknowledge events like it, past and future), `R` lists them, `h` shows the
suppressed events too, marked ×. The feed is read `PAGE` events at a time:
moving down past the last one reads the next page (Ctrl+End: all of them),
and the title says how many there are in all. A text filter reads them all
(it filters what was read), and narrows as you type."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static

from ...core.sanitize import clean_text
from ..actions import EVENT_RULE_KEYS, Action, bindings
from ..text import next_filter, safe, severity, when
from ..widgets import FilterInput, fill_table, footer
from .base import BACK
from .diff import DiffScreen


def _cycle(options: list[Any], current: Any) -> Any:
    return options[(options.index(current) + 1) % len(options)] if current in options else options[0]


EVENT_COLUMNS = (" ", "time", "project", "severity", "type", "summary")
PAGE = 500  # events read at a time


class EventTable(DataTable[Any]):
    """The feed's table: Ctrl+End (its own key) reads every event before going to the last one."""

    def action_scroll_bottom(self) -> None:
        last = getattr(self.screen, "action_last", None)
        if last is not None:
            last()
        else:
            super().action_scroll_bottom()


class EventsScreen(Screen[None]):
    ACTIONS = [
        BACK,
        Action("ack", "a", "Ack", "Acknowledge event", "Acknowledge the highlighted event"),
        Action("ack_all", "A", "Ack shown", "Acknowledge shown", "Acknowledge every event in the list"),
        Action("severity", "s", "Severity", "Minimum severity", "Cycle the minimum severity shown"),
        Action("type", "t", "Type", "Event type", "Cycle the event type shown"),
        Action("project", "p", "Project", "Project filter", "Cycle the project shown (or all)"),
        Action("unacked", "u", "New only", "New events only", "Show new events only, or acknowledged too"),
        *EVENT_RULE_KEYS,
        Action("filter", "slash", "Filter", "Filter", "Filter the summaries by text, as you type", footer=False),
        Action("reload", "f5", "Reload", "Reload", "Read the events again", footer=False),
        Action("last", "ctrl+end", "Last", "Last event", "Read every event and go to the oldest", footer=False),
    ]
    BINDINGS = bindings(ACTIONS)

    def __init__(self, project_id: int | None = None):
        super().__init__()
        self.min_severity: str | None = None
        self.type: str | None = None
        self.project_id: int | None = project_id  # None: every project
        self.unacked_only = False
        self.show_suppressed = False
        self.filter_text = ""
        self.projects: dict[int, str] = {}
        self.types: list[str] = []
        self.events: list[Any] = []
        self.feed: dict[int, Any] = {}  # event id: its event_log.FeedEvent (the rule deciding it)
        self.rule_count = 0
        self.suppressed = 0  # events hidden by suppress rules (in the project filter)
        self._times: dict[int, str] = {}
        self.shown: list[Any] = []
        self.limit = PAGE  # how many events to read (more as the cursor goes down)
        self.total = 0  # how many the feed has with these filters
        self._reading = False
        self._to_last = False  # after reading them all: the cursor to the last one

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="events-filters")
        yield FilterInput(
            placeholder="filter summaries as you type (Enter: to the list, Escape clears)",
            id="filter",
            classes="hidden",
            live=True,
        )
        yield EventTable(id="events", cursor_type="row", zebra_stripes=True)
        yield Static("", id="event-detail")
        yield footer()

    def on_mount(self) -> None:
        self.title = "Events"  # the sub-title stays the app's: N new events · backend
        self.query_one("#events", DataTable).focus()
        self.action_reload()

    @work(thread=True, exclusive=True, group="events", exit_on_error=False)
    def action_reload(self) -> None:
        from ...store import event_log, repo

        self._reading = True
        try:
            self._read(event_log, repo)
        finally:
            self._reading = False

    def _read(self, event_log: Any, repo: Any) -> None:
        projects = {p.id: p.name for p in repo.list_projects()}
        filters: dict[str, Any] = dict(
            project_id=self.project_id,
            severity=self.min_severity,
            type=self.type,
            unacknowledged_only=self.unacked_only,
            include_suppressed=self.show_suppressed,
        )
        # a text filter looks at every event: it filters what was read
        feed = event_log.list_feed(**filters, limit=None if self.filter_text else self.limit)
        total = event_log.feed_count(**filters)
        rules = len(event_log.list_rules(self.project_id))
        suppressed = event_log.suppressed_count(self.project_id) if rules else 0
        times = {item.event.id: when(item.event.created_at, short=True) for item in feed}
        self.app.call_from_thread(self._loaded, projects, feed, rules, suppressed, times, total)

    def _loaded(
        self,
        projects: dict[int, str],
        feed: list[Any],
        rules: int,
        suppressed: int,
        times: dict[int, str],
        total: int = 0,
    ) -> None:
        self.total = max(total, len(feed))
        self.feed = {item.event.id: item for item in feed}
        self.rule_count = rules
        self.suppressed = suppressed
        self._fill(projects, [item.event for item in feed], times)

    def _mark(self, event: Any) -> tuple[str, str]:
        """The event's state as the feed shows it: (word, rule note), e.g. ("acknowledged", " (rule #3)")."""
        item = self.feed.get(event.id)
        rule = f" (rule #{item.rule.id})" if item is not None and item.rule is not None else ""
        if item is not None and item.suppressed:
            return "suppressed", rule
        if event.acknowledged or (item is not None and item.acknowledged):
            return "acknowledged", rule
        return "new", ""

    def _fill(self, projects: dict[int, str], events: list[Any], times: dict[int, str]) -> None:
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
            state, _ = self._mark(e)
            dim = "" if state == "new" else "dim"
            mark = {
                "new": Text("●", style="bold cyan"),
                "acknowledged": Text("·", style="dim"),
                "suppressed": Text("×", style="red"),
            }[state]
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
            last = len(self.shown) - 1
            table.move_cursor(row=last if self._to_last else min(cursor, last))
            self._to_last = False
        else:
            self.query_one("#event-detail", Static).update(Text("No events match.", style="dim"))
        new = sum(1 for e in self.shown if self._mark(e)[0] == "new")
        more = self.total - len(events)
        if more > 0:  # a page of the feed: how many in all, and how to see the others
            table.border_title = f"Events ({len(self.shown)} of {self.total} shown, {new} new · ↓ reads more)"
        else:
            table.border_title = f"Events ({len(self.shown)} shown, {new} new)"
        table.border_subtitle = self._rules_line()
        self._show_filters()

    def _rules_line(self) -> str:
        """Only once rules exist (the footer has no room for their keys): R rules, h suppressed."""
        if not self.rule_count:
            return ""
        rules = f"R {self.rule_count} rule{'s' if self.rule_count != 1 else ''}"
        if self.show_suppressed:
            return f"{rules} · h hide suppressed (×)"
        return f"{rules} · h show {self.suppressed} suppressed"

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

    def action_suppressed(self) -> None:
        self.show_suppressed = not self.show_suppressed
        self.notify(
            "Suppressed events are shown, marked ×." if self.show_suppressed else "Suppressed events are hidden.",
            markup=False,
        )
        self.action_reload()

    def action_filter(self) -> None:
        self.query_one(FilterInput).open()

    @on(FilterInput.Typed)
    def filter_typed(self, event: FilterInput.Typed) -> None:
        """Narrow as the user types: in memory once every event is read."""
        if event.text != self.filter_text:
            self._set_filter(event.text)

    @on(FilterInput.Applied)
    def apply_filter(self, event: FilterInput.Applied) -> None:
        if event.text != self.filter_text:
            self._set_filter(event.text)
        self.query_one("#events", DataTable).focus()

    def _set_filter(self, text: str) -> None:
        self.filter_text = text
        if text and len(self.events) < self.total:
            self.action_reload()  # read them all first
        else:
            self._fill(self.projects, self.events, self._times)

    def filter_pending(self) -> bool:
        return self.query_one(FilterInput).pending

    # -- paging -------------------------------------------------------------------------

    def _read_more(self) -> None:
        if not self._reading and len(self.events) < self.total and not self.filter_text:
            self.limit = len(self.events) + PAGE
            self.action_reload()

    def action_last(self) -> None:
        if len(self.events) < self.total and not self.filter_text:
            self.limit = self.total
            self._to_last = True
            self.action_reload()
        elif self.shown:
            self.query_one("#events", DataTable).move_cursor(row=len(self.shown) - 1)

    # -- rows ---------------------------------------------------------------------------

    def _highlighted(self) -> Any:
        table = self.query_one("#events", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return next((e for e in self.shown if str(e.id) == key), None)

    @on(DataTable.RowHighlighted, "#events")
    def show_detail(self, highlighted: DataTable.RowHighlighted) -> None:
        if highlighted.cursor_row >= len(self.shown) - 1:  # the last one read: read the next page
            self._read_more()
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
            ("  " + "".join(self._mark(event)), "dim"),
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
        state, rule = self._mark(event)
        if state == "suppressed":
            self.notify(f"Suppressed{rule}: R lists the rules.", markup=False)
            return
        if state == "acknowledged":
            self.notify(f"Already acknowledged{rule}.", markup=False)
            return
        self._acknowledge([event.id])

    def action_ack_all(self) -> None:
        ids = [e.id for e in self.shown if self._mark(e)[0] == "new"]
        if not ids:
            self.notify("Nothing new in this list.", markup=False)
            return
        self._acknowledge(ids)

    # -- rules ----------------------------------------------------------------------------

    def action_rule(self) -> None:
        from .rules import RuleForm

        event = self._highlighted()
        if event is None:
            self.notify("No event highlighted.", markup=False)
            return
        form = RuleForm(
            project_id=event.project_id,
            project_name=self.projects.get(event.project_id, str(event.project_id)),
            event_type=event.type,
            host=event.host or "",
            fingerprint=event.fingerprint or "",
            summary=event.summary,
        )
        self.app.push_screen(form, self._rules_changed)

    def action_rules(self) -> None:
        from .rules import RulesForm

        self.app.push_screen(RulesForm(), self._rules_changed)

    def _rules_changed(self, answer: Any) -> None:
        """A rule was saved (answer: the message) or deleted (True): read the feed and the count again."""
        if not answer:
            return
        if isinstance(answer, str):
            self.notify(answer, markup=False)
        self.action_reload()
        refresh = getattr(self.app, "refresh_event_count", None)
        if refresh is not None:
            refresh()

    @work(thread=True, group="ack", exit_on_error=False)
    def _acknowledge(self, ids: list[int]) -> None:
        from ...store import event_log

        n = event_log.acknowledge(ids)
        self.app.call_from_thread(self.notify, f"{n} event{'s' if n != 1 else ''} acknowledged", markup=False)
        self.app.call_from_thread(self.action_reload)
        refresh = getattr(self.app, "refresh_event_count", None)
        if refresh is not None:
            self.app.call_from_thread(refresh)
