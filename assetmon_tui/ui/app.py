"""The dashboard: projects and their targets on the left, live scan panels
and scan history on the right. Blocking work (database, Redis, Celery) runs
in thread workers; only textual and our light core are imported before the
first frame."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, OptionList
from textual.widgets.option_list import Option

from .panels import ScanPanel
from .text import duration, safe, state, when

POLL_INTERVAL = 0.25  # active scans only: the cost grows with active scans, not history
REAP_INTERVAL = 5.0
SCHEDULE_INTERVAL = 5.0  # thread backend only: due schedules are started from here (Celery has beat)

log = logging.getLogger(__name__)

ACTIONS = [  # (action, palette title, help): one list feeds the palette
    ("new_project", "New project", "Create a project"),
    ("add_targets", "Add targets", "Add domains, IPs, CIDRs, URLs or !exclusions to the project"),
    ("delete_target", "Delete target", "Remove the highlighted target"),
    ("scan", "Launch scan", "Choose modules and scan the project"),
    ("cancel_scan", "Cancel scan", "Stop the highlighted (or latest) active scan"),
    ("results", "Browse results", "Hosts, DNS, services and HTTP endpoints of the project"),
    ("delete_project", "Delete project", "Delete the project and everything it found"),
    ("check_health", "Check backend", "Ask Redis and the workers again now"),
    ("findings", "Findings", "Secrets, takeovers and exposures of the project, with the JS file view"),
    ("events", "Change events", "What changed between scans, across projects: filter and acknowledge"),
    ("diff", "Diff scans", "Compare the highlighted scan with the marked one (m) or the previous done scan"),
    ("mark_scan", "Mark scan for diff", "Mark the highlighted scan as the base of the next diff"),
    ("trends", "Trends", "Hosts, services and findings of the project over its scans"),
    ("schedule", "Schedule", "Scan the project every few hours or on a cron line"),
    ("notifiers", "Notifications", "Apprise URLs told about the project's changes; send a test"),
    ("export", "Export", "Write the project's inventory and events to json, jsonl, csv, md or html"),
]


class AssetMonApp(App):
    TITLE = "AssetMon"
    CSS_PATH = "app.tcss"
    BINDINGS = [
        Binding("n", "new_project", "New"),  # short: the 80-column footer holds 8 keys
        Binding("a", "add_targets", "Targets"),
        Binding("s", "scan", "Scan"),
        Binding("c", "cancel_scan", "Cancel"),
        Binding("r", "results", "Results"),
        Binding("delete,x", "delete_target", "Del target", show=False),
        Binding("D", "delete_project", "Del project", show=False),
        Binding("f", "findings", "Findings"),
        Binding("e", "events", "Events"),
        Binding("d", "diff", "Diff", show=False),
        Binding("m", "mark_scan", "Mark for diff", show=False),
        Binding("t", "trends", "Trends", show=False),
        Binding("S", "schedule", "Schedule", show=False),
        Binding("N", "notifiers", "Notifications", show=False),
        Binding("E", "export", "Export", show=False),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.dispatcher = None  # created off the UI thread (it imports the store)
        self.project_id: int | None = None
        self.project_names: dict[int, str] = {}
        self.active_ids: set[int] = set()
        self._states: dict[int, str] = {}  # active scan id -> status last shown
        self._polling = False
        self._last_reap = 0.0
        self._scheduling = False
        self._health_detail = "checking backend…"
        self._new_events = 0
        self.diff_base: int | None = None  # a scan marked with m

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="body"):
            with Vertical(id="left"):
                yield OptionList(id="projects")
                yield DataTable(id="targets", cursor_type="row")
            with Vertical(id="right"):
                yield VerticalScroll(id="active")
                yield DataTable(id="scans", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)  # 8 shown keys fit in 80 columns

    def on_unmount(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.shutdown()  # local scans die with this process: say so in their rows

    def on_mount(self) -> None:
        self.sub_title = "checking backend…"
        self.query_one("#projects").border_title = "Projects"
        targets = self.query_one("#targets", DataTable)
        targets.border_title = "Targets"
        targets.add_column("rule", width=7)
        targets.add_column("target", width=48)
        scans = self.query_one("#scans", DataTable)
        scans.border_title = "Scans"
        # Fixed widths, most useful first: the pane is ~50 columns at 80x24.
        for label, width in (
            ("#", 4),
            ("status", 10),
            ("started", 11),
            ("took", 6),
            ("found", 16),
            ("modules", 24),
            ("backend", 7),
        ):
            scans.add_column(label, width=width)
        self.query_one("#active").border_title = "Active scans"
        self.query_one("#projects").focus()
        self._start()

    # -- start-up and background loops --------------------------------------------

    @work(thread=True, exit_on_error=False)
    def _start(self) -> None:
        from ..dispatch import Dispatcher

        dispatcher = Dispatcher()
        dispatcher.reap()
        self.dispatcher = dispatcher
        self.call_from_thread(self._after_start)
        self.action_check_health()

    def _after_start(self) -> None:
        self.load_projects()
        self.set_interval(POLL_INTERVAL, self._poll)
        self.set_interval(self.dispatcher.settings.health_interval, self.action_check_health)
        self.set_interval(SCHEDULE_INTERVAL, self._schedule_tick)

    @work(thread=True, exclusive=True, group="health", exit_on_error=False)
    def action_check_health(self) -> None:
        if self.dispatcher is None:
            return
        health = self.dispatcher.check_health()
        self._health_detail = health.detail
        self._count_events()

    @work(thread=True, exclusive=True, group="event-count", exit_on_error=False)
    def refresh_event_count(self) -> None:
        """Re-read the unacknowledged events count for the header (after acknowledging, or a scan ended)."""
        self._count_events()

    def _count_events(self) -> None:
        try:
            from ..store import monitor

            self._new_events = monitor.unacknowledged_count()
        except Exception:
            log.exception("counting new events failed")
        self.call_from_thread(self._show_header)

    def _show_header(self) -> None:
        n = self._new_events
        # the count first: a narrow header cuts the end of the line
        self.sub_title = (f"{n} new event{'s' if n != 1 else ''} · " if n else "") + self._health_detail

    def _schedule_tick(self) -> None:
        if not self._scheduling and self.dispatcher is not None:
            self._scheduling = True
            self._run_schedules()

    @work(thread=True, group="schedules", exit_on_error=False)
    def _run_schedules(self) -> None:
        """With the thread backend nobody else starts due schedules (beat does with Celery)."""
        try:
            if self.dispatcher.health().backend != "thread":
                return
            from ..schedule import run_due

            started = run_due(self.dispatcher.submit)
            if started:
                names = ", ".join(self.project_names.get(p, str(p)) for p in started)
                self.call_from_thread(self.notify, f"Scheduled scan started: {names}", markup=False)
                self.call_from_thread(self.load_scans)
        except Exception:
            log.exception("running due schedules failed")
        finally:
            self._scheduling = False

    def _poll(self) -> None:
        if not self._polling:
            self._polling = True
            self._poll_active()

    @work(thread=True, group="poll", exit_on_error=False)
    def _poll_active(self) -> None:
        try:
            if time.time() - self._last_reap > REAP_INTERVAL:
                self._last_reap = time.time()
                self.dispatcher.reap()
            active = self.dispatcher.active()
            finished = [self.dispatcher.poll(i) for i in self.active_ids - {s.id for s, _ in active}]
            self.call_from_thread(self._show_active, active, finished)
        finally:
            self._polling = False

    def _show_active(self, active: list, finished: list) -> None:
        container = self.query_one("#active", VerticalScroll)
        seen = set()
        for scan, progress in active:
            seen.add(scan.id)
            panels = container.query(f"#scan-panel-{scan.id}")
            if panels:
                panel = panels.first(ScanPanel)
            else:
                name = self.project_names.get(scan.project_id, f"project {scan.project_id}")
                panel = ScanPanel(scan.id, f"Scan #{scan.id} · {name}")
                container.mount(panel)
            panel.show(progress, scan.backend or "waiting")
        for panel in container.query(ScanPanel):
            if panel.scan_id not in seen:
                panel.remove()
        container.display = bool(seen)
        for scan, progress in finished:
            severity = "information" if progress.state == "done" else "warning"
            message = f"Scan #{scan.id} {progress.state}"
            if scan.error:
                message += f": {scan.error}"
            self.notify(message, severity=severity, markup=False)
        states = {scan.id: scan.status for scan, _ in active}
        if finished or states != self._states:  # the scans table shows status: keep it current
            self.load_scans()
        self._states = states
        if finished:
            self.refresh_event_count()  # a done scan has just computed its change events
        self.active_ids = seen

    # -- projects, targets, scans tables ---------------------------------------

    @work(thread=True, exclusive=True, group="projects", exit_on_error=False)
    def load_projects(self, select: int | None = None) -> None:
        from ..store import repo

        projects = repo.list_projects()
        self.call_from_thread(self._fill_projects, projects, select)

    def _fill_projects(self, projects: list, select: int | None) -> None:
        self.project_names = {p.id: p.name for p in projects}
        options = self.query_one("#projects", OptionList)
        options.clear_options()
        options.add_options([Option(safe(p.name, 40), id=str(p.id)) for p in projects])
        if not projects:
            self.project_id = None
            self.query_one("#targets", DataTable).clear()
            self.query_one("#scans", DataTable).clear()
            self.notify("No projects yet: press n to create one.", markup=False)
            return
        ids = [p.id for p in projects]
        wanted = select if select in ids else (self.project_id if self.project_id in ids else ids[0])
        options.highlighted = ids.index(wanted)

    @on(OptionList.OptionHighlighted, "#projects")
    def project_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if self.project_id != int(event.option.id):
            self.diff_base = None
            self.query_one("#scans", DataTable).border_subtitle = ""
        self.project_id = int(event.option.id)
        self.load_targets()
        self.load_scans()

    @work(thread=True, exclusive=True, group="targets", exit_on_error=False)
    def load_targets(self) -> None:
        from ..store import repo

        if self.project_id is None:
            return
        targets = repo.list_targets(self.project_id)
        self.call_from_thread(self._fill_targets, targets)

    def _fill_targets(self, targets: list) -> None:
        table = self.query_one("#targets", DataTable)
        table.clear()
        for t in targets:
            rule = Text("exclude", style="red") if t.exclude else Text("include", style="green")
            table.add_row(rule, safe(t.value, 60), key=str(t.id))
        table.border_subtitle = f"{len(targets)} rules"

    @work(thread=True, exclusive=True, group="scans", exit_on_error=False)
    def load_scans(self) -> None:
        from ..store import repo

        if self.project_id is None:
            return
        scans = repo.list_scans(self.project_id, limit=100)
        self.call_from_thread(self._fill_scans, scans)

    def _fill_scans(self, scans: list) -> None:
        import json

        table = self.query_one("#scans", DataTable)
        cursor = table.cursor_row
        table.clear()
        for scan in scans:
            took = (
                (scan.finished_at - scan.started_at).total_seconds() if scan.finished_at and scan.started_at else None
            )
            summary = json.loads(scan.summary or "{}")
            found = " ".join(f"{summary[k]}{k[0]}" for k in ("hosts", "services", "endpoints") if summary.get(k))
            table.add_row(
                str(scan.id),
                state(scan.status),
                when(scan.started_at, short=True),
                duration(took),
                found,
                scan.modules,
                scan.backend,
                key=str(scan.id),
            )
        if scans:
            table.move_cursor(row=min(cursor, len(scans) - 1))

    # -- actions -------------------------------------------------------------------

    def _need_project(self) -> bool:
        if self.project_id is None:
            self.notify("Create a project first (n).", severity="warning", markup=False)
            return False
        return True

    def _backend_ready(self) -> bool:
        if self.dispatcher is None:
            self.notify("Still starting, one moment…", markup=False)
            return False
        return True

    def action_new_project(self) -> None:
        from .forms import NewProjectForm

        self.push_screen(NewProjectForm(), self._create_project)

    @work(thread=True, exit_on_error=False)
    def _create_project(self, name: str | None) -> None:
        from ..store import repo

        if not name:
            return
        try:
            project = repo.create_project(name)
        except ValueError as exc:
            self.call_from_thread(self.notify, str(exc), severity="error", markup=False)
            return
        self.project_id = project.id
        self.call_from_thread(self.load_projects, project.id)
        self.call_from_thread(self.action_add_targets)

    def action_add_targets(self) -> None:
        from .forms import TargetsForm

        if self._need_project():
            self.push_screen(TargetsForm(self.project_names.get(self.project_id, "")), self._add_targets)

    @work(thread=True, exit_on_error=False)
    def _add_targets(self, lines: list[str] | None) -> None:
        from ..store import repo

        if not lines:
            return
        added = repo.add_targets(self.project_id, lines)
        self.call_from_thread(self.notify, f"{len(added)} target(s) added", markup=False)
        self.call_from_thread(self.load_targets)

    def action_delete_target(self) -> None:
        table = self.query_one("#targets", DataTable)
        if not table.has_focus or table.row_count == 0:
            return
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        self._delete_target(int(key))

    @work(thread=True, exit_on_error=False)
    def _delete_target(self, target_id: int) -> None:
        from ..store import repo

        repo.delete_target(target_id)
        self.call_from_thread(self.load_targets)

    def action_delete_project(self) -> None:
        from .forms import ConfirmForm

        if not self._need_project():
            return
        name = self.project_names.get(self.project_id, "")
        self.push_screen(ConfirmForm(f"Delete project {name} and all it found?"), self._delete_project)

    @work(thread=True, exit_on_error=False)
    def _delete_project(self, yes: bool | None) -> None:
        from ..store import repo

        if yes:
            repo.delete_project(self.project_id)
            self.project_id = None
            self.call_from_thread(self.load_projects)

    def action_scan(self) -> None:
        from ..core.modules import NAMES as MODULES
        from .forms import ScanForm

        if self._need_project() and self._backend_ready():
            self.push_screen(ScanForm(self.project_names.get(self.project_id, ""), MODULES), self._submit)

    @work(thread=True, exit_on_error=False)
    def _submit(self, answer: tuple[list[str], dict] | None) -> None:
        if not answer:
            return
        modules, options = answer
        try:
            scan = self.dispatcher.submit(self.project_id, modules, options)
        except ValueError as exc:
            self.call_from_thread(self.notify, str(exc), severity="error", markup=False)
            return
        where = "a Celery worker" if scan.backend == "celery" else "a local thread"
        self.call_from_thread(self.notify, f"Scan #{scan.id} started on {where}", markup=False)
        self.call_from_thread(self.load_scans)

    def action_cancel_scan(self) -> None:
        if not self._backend_ready():
            return
        table = self.query_one("#scans", DataTable)
        chosen = None
        if table.row_count:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
            chosen = int(key) if int(key) in self.active_ids else None
        if chosen is None and self.active_ids:
            chosen = max(self.active_ids)
        if chosen is None:
            self.notify("No active scan to cancel.", markup=False)
            return
        self._cancel(chosen)

    @work(thread=True, exit_on_error=False)
    def _cancel(self, scan_id: int) -> None:
        status = self.dispatcher.cancel(scan_id)
        self.call_from_thread(self.notify, f"Scan #{scan_id}: {status}", markup=False)

    def action_results(self) -> None:
        from .results import ResultsScreen

        if self._need_project():
            self.push_screen(ResultsScreen(self.project_id, self.project_names.get(self.project_id, "")))

    @on(DataTable.RowSelected, "#scans")
    def scan_selected(self) -> None:
        self.action_results()

    # -- monitoring: findings, events, diff, trends, schedule, notifications, export -------

    def _project_name(self) -> str:
        return self.project_names.get(self.project_id, "")

    def action_findings(self) -> None:
        from .findings import FindingsScreen

        if self._need_project() and not isinstance(self.screen, FindingsScreen):
            self.push_screen(FindingsScreen(self.project_id, self._project_name()))

    def action_events(self) -> None:
        from .events import EventsScreen

        if not isinstance(self.screen, EventsScreen):
            self.push_screen(EventsScreen())

    def action_trends(self) -> None:
        from .events import TrendsScreen

        if self._need_project() and not isinstance(self.screen, TrendsScreen):
            self.push_screen(TrendsScreen(self.project_id, self._project_name()))

    def _scans_table(self) -> DataTable:
        """The dashboard's scans table, whichever screen is on top (palette commands)."""
        return self.screen_stack[0].query_one("#scans", DataTable)

    def _highlighted_scan(self) -> int | None:
        table = self._scans_table()
        if not table.row_count:
            return None
        return int(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def action_mark_scan(self) -> None:
        scan_id = self._highlighted_scan()
        table = self._scans_table()
        if scan_id is None:
            self.notify("No scan to mark.", markup=False)
        elif self.diff_base == scan_id:
            self.diff_base = None
            table.border_subtitle = ""
            self.notify(f"Scan #{scan_id} unmarked.", markup=False)
        else:
            self.diff_base = scan_id
            table.border_subtitle = f"diff base #{scan_id} · d compares"
            self.notify(f"Scan #{scan_id} marked: highlight another scan and press d.", markup=False)

    def action_diff(self) -> None:
        if not self._need_project():
            return
        scan_id = self._highlighted_scan()
        if scan_id is None:
            self.notify("No scans yet.", markup=False)
            return
        self._open_diff(self.project_id, scan_id, self.diff_base)

    @work(thread=True, exclusive=True, group="diff", exit_on_error=False)
    def _open_diff(self, project_id: int, scan_id: int, base: int | None) -> None:
        from ..events import history
        from .events import DiffScreen

        if base is not None and base != scan_id:
            older, newer = sorted((base, scan_id))
        else:
            done = [row["id"] for row in history(project_id)]
            earlier = [i for i in done if i < scan_id]
            if scan_id not in done:
                self.call_from_thread(
                    self.notify,
                    f"Scan #{scan_id} cannot be compared: only done scans are.",
                    severity="warning",
                    markup=False,
                )
                return
            if not earlier:
                self.call_from_thread(
                    self.notify,
                    f"Scan #{scan_id} is the first done scan: nothing to compare with (mark another scan with m).",
                    markup=False,
                )
                return
            older, newer = earlier[-1], scan_id
        self.call_from_thread(self.push_screen, DiffScreen(older, newer, self.project_names.get(project_id, "")))

    def action_schedule(self) -> None:
        from ..core.modules import NAMES as MODULES
        from .monitor_forms import ScheduleForm

        if self._need_project():
            self.push_screen(ScheduleForm(self.project_id, self._project_name(), MODULES), self._form_done)

    def action_notifiers(self) -> None:
        from .monitor_forms import NotifiersForm

        if self._need_project():
            self.push_screen(NotifiersForm(self.project_id, self._project_name()))

    def action_export(self) -> None:
        from .monitor_forms import ExportForm

        if self._need_project():
            self.push_screen(ExportForm(self.project_id, self._project_name()), self._exported)

    def _form_done(self, message: str | None) -> None:
        if message:
            self.notify(message, markup=False)

    def _exported(self, path: str | None) -> None:
        if path:
            self.notify(f"Exported to {path}", markup=False)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for action, title, help_text in ACTIONS:
            yield SystemCommand(title, help_text, getattr(self, f"action_{action}"))
