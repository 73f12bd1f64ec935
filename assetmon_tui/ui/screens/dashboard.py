"""The dashboard: projects and their targets on the left, live scan panels and
scan history on the right, and the keys that act on them. The app hands it
the dispatcher (`backend_ready`); database work runs in thread workers."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widgets import DataTable, Header, OptionList
from textual.widgets.option_list import Option

from ...core.progress import Progress
from ...core.sanitize import clean_text
from ...core.targets import display
from ..actions import PROJECT_SETTINGS, WORKERS, Action, bindings
from ..panels import ScanDetails, ScanPanel, found_text, scan_state
from ..text import duration, plural, safe, when
from ..widgets import Column, ellipsis, fit_columns, footer

if TYPE_CHECKING:
    from ..app import AssetMonApp

POLL_INTERVAL = 0.25  # active scans only: the cost grows with active scans, not history
REAP_INTERVAL = 5.0
# Most useful first (rank 0): at 80x24 the scans pane is ~50 cells wide and shows
# #, status and found ("264 hosts · 20 svc · 292 urls"); `w` (wide) hides the
# projects pane to show when each scan started and how long it took too.
SCAN_COLUMNS = (
    Column("#", "#", 5, least=4),
    Column("status", "status", 12, least=11, rank=1),  # "done 2 warn"
    Column("started", "started", 11, rank=2),
    Column("took", "took", 6, rank=3),
    Column("found", "found", 44, least=22, rank=1, grow=True),
    Column("modules", "modules", 30, least=16, rank=4),  # given up before found is cut short
    Column("backend", "backend", 7, rank=5),
)
# One column: an exclusion reads "!value" in red, as it is typed.
TARGET_COLUMNS = (Column("target", "target", 60, least=8, grow=True),)
BORDER = 2  # a table's border: not cells
MARK = "◆"  # the scan marked as diff base (m)


def then(worker: Callable[[Any], object]) -> Callable[[Any], None]:
    """A form's answer handed to a (thread worker) method."""

    def callback(answer: Any) -> None:
        worker(answer)

    return callback


def _inventory(scan: Any) -> dict[str, Any] | None:
    """A done scan's inventory counts, as its row recorded them (None: not recorded)."""
    if scan.status != "done":
        return None
    counts = json.loads(scan.summary or "{}").get("inventory")
    return counts if isinstance(counts, dict) else None


class DashboardScreen(Screen[None]):
    ACTIONS = [
        Action("new_project", "n", "New", "New project", "Create a project"),
        Action(
            "add_targets", "a", "Targets", "Add targets", "Add domains, IPs, CIDRs, URLs or !exclusions to the project"
        ),
        Action("scan", "s", "Scan", "Launch scan", "Choose modules and scan the project"),
        Action("cancel_scan", "c", "Cancel", "Cancel scan", "Stop the highlighted (or latest) active scan"),
        Action("results", "r", "Results", "Browse results", "Hosts, DNS, services and HTTP endpoints of the project"),
        Action(
            "delete_target", "delete,x", "Del target", "Delete target", "Remove the highlighted target", footer=False
        ),
        Action(
            "delete_project", "D", "Del project", "Delete project", "Delete the project and all it found", footer=False
        ),
        Action(
            "findings",
            "f",
            "Findings",
            "Findings",
            "Secrets, takeovers and exposures of the project, with the JS file view",
        ),
        Action(
            "diff",
            "d",
            "Diff",
            "Diff scans",
            "Compare the highlighted scan with the marked one (m) or the previous done scan",
            footer=False,
        ),
        Action(
            "mark_scan",
            "m",
            "Mark for diff",
            "Mark scan for diff",
            "Mark the highlighted scan as the base of the next diff",
            footer=False,
        ),
        Action(
            "trends",
            "t",
            "Trends",
            "Trends",
            "Hosts, services and findings of the project over its scans",
            footer=False,
        ),
        Action(
            "schedule", "S", "Schedule", "Schedule", "Scan the project every few hours or on a cron line", footer=False
        ),
        Action(
            "notifiers",
            "N",
            "Notifications",
            "Notifications",
            "Apprise URLs told about the project's changes; send a test",
            footer=False,
        ),
        Action(
            "export",
            "E",
            "Export",
            "Export",
            "Write the project's inventory and events to json, jsonl, csv, md or html",
            footer=False,
        ),
        Action("wide", "w", "Wide", "Wide/narrow", "Hide or show the projects pane: more scan columns", footer=False),
        Action(
            "scan_details",
            "i",
            "Scan details",
            "Scan details",
            "The highlighted scan's settings, counts and the sources that failed or were skipped",
            footer=False,
        ),
        PROJECT_SETTINGS,
        WORKERS,
    ]
    BINDINGS = bindings(ACTIONS)

    def __init__(self) -> None:
        super().__init__(id="dashboard")
        self.active_ids: set[int] = set()
        self._states: dict[int, str] = {}  # active scan id -> status last shown
        self._polling = False
        self._last_reap = 0.0
        self.diff_base: int | None = None  # a scan marked with m
        self._targets: list[Any] = []  # as last loaded: refilled to fit on resize
        self._scans: tuple[list[Any], dict[int, dict[str, Any] | None]] = ([], {})

    @property
    def assetmon(self) -> AssetMonApp:
        """The app, typed: it holds the dispatcher and the current project."""
        return cast("AssetMonApp", self.app)

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="body"):
            with Vertical(id="left"):
                yield OptionList(id="projects")
                yield DataTable(id="targets", cursor_type="row")
            with Vertical(id="right"):
                yield VerticalScroll(id="active")
                yield DataTable(id="scans", cursor_type="row", zebra_stripes=True)
        yield footer()

    def on_mount(self) -> None:
        self.query_one("#projects").border_title = "Projects"
        self.query_one("#targets", DataTable).border_title = "Targets"
        self.query_one("#scans", DataTable).border_title = "Scans"
        self.query_one("#active").border_title = "Active scans"
        self.query_one("#projects").focus()

    def store_ready(self) -> None:
        """The database is open: fill the tables (a worker may still be starting)."""
        self.load_projects()

    def backend_ready(self) -> None:
        """The app has its dispatcher: watch active scans."""
        self.set_interval(POLL_INTERVAL, self._poll)

    # -- active scans ------------------------------------------------------------------

    def _poll(self) -> None:
        if not self._polling:
            self._polling = True
            self._poll_active()

    @work(thread=True, group="poll", exit_on_error=False)
    def _poll_active(self) -> None:
        dispatcher = self.assetmon.dispatcher
        try:
            if dispatcher is None:
                return
            if time.time() - self._last_reap > REAP_INTERVAL:
                self._last_reap = time.time()
                dispatcher.reap(deliveries=True)
            known = self.active_ids
            active = dispatcher.active()
            finished = [dispatcher.poll(i) for i in known - {s.id for s, _ in active}]
            self.app.call_from_thread(self._show_active, active, finished, known)
        finally:
            self._polling = False

    def _show_active(self, active: list[Any], finished: list[Any], known: set[int]) -> None:
        container = self.query_one("#active", VerticalScroll)
        seen = set()
        for scan, progress in active:
            seen.add(scan.id)
            panels = container.query(f"#scan-panel-{scan.id}")
            if panels:
                panel = panels.first(ScanPanel)
            else:
                name = self.assetmon.project_names.get(scan.project_id, f"project {scan.project_id}")
                panel = ScanPanel(scan.id, f"Scan #{scan.id} · {name}")
                container.mount(panel)
            panel.show(progress, scan.backend or "waiting")
        for panel in container.query(ScanPanel):
            if panel.scan_id not in seen:
                panel.remove()
        container.display = bool(seen)
        for scan, progress in finished:
            warned = len(progress.warnings)
            ok = progress.state == "done" and not warned
            severity: SeverityLevel = "information" if ok else "warning"
            message = f"Scan #{scan.id} {progress.state}"
            if progress.state == "done" and warned:
                message += f" with {warned} warning{'s' if warned != 1 else ''} (i: details)"
            if scan.error:
                message += f": {scan.error}"
            self.notify(message, severity=severity, markup=False)
        states = {scan.id: scan.status for scan, _ in active}
        if finished or states != self._states:  # the scans table shows status: keep it current
            self.load_scans()
        self._states = states
        if finished:
            self.assetmon.refresh_event_count()  # a done scan has just computed its change events
        self.active_ids = seen | (self.active_ids - known)  # and those started since the poll began

    def _watch(self, scan_id: int) -> None:
        """A scan we started: its end is told even if it ends before the next poll sees it
        active. A new set, not a change: the poll thread reads the old one."""
        self.active_ids = self.active_ids | {scan_id}

    # -- projects, targets, scans tables ---------------------------------------------

    @property
    def project_id(self) -> int | None:
        return self.assetmon.project_id

    def _project_name(self) -> str:
        return self.assetmon.project_names.get(self.project_id, "") if self.project_id is not None else ""

    @work(thread=True, exclusive=True, group="projects", exit_on_error=False)
    def load_projects(self, select: int | None = None) -> None:
        from ...store import repo

        projects = repo.list_projects()
        self.app.call_from_thread(self._fill_projects, projects, select)

    def _fill_projects(self, projects: list[Any], select: int | None) -> None:
        app = self.assetmon
        app.project_names = {p.id: p.name for p in projects}
        options = self.query_one("#projects", OptionList)
        options.clear_options()
        options.add_options([Option(safe(p.name, 40), id=str(p.id)) for p in projects])
        if not projects:
            app.project_id = None
            self.query_one("#targets", DataTable).clear()
            self.query_one("#scans", DataTable).clear()
            self.notify("No projects yet: press n to create one.", markup=False)
            return
        ids = [p.id for p in projects]
        wanted = select if select in ids else (app.project_id if app.project_id in ids else ids[0])
        options.highlighted = ids.index(wanted)

    @on(OptionList.OptionHighlighted, "#projects")
    def project_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        chosen = int(event.option.id or 0)
        if self.project_id != chosen:
            self.diff_base = None
            self.query_one("#scans", DataTable).border_subtitle = ""
        self.assetmon.project_id = chosen
        self.load_targets()
        self.load_scans()

    @work(thread=True, exclusive=True, group="targets", exit_on_error=False)
    def load_targets(self) -> None:
        from ...store import repo

        if self.project_id is None:
            return
        targets = repo.list_targets(self.project_id)
        self.app.call_from_thread(self._fill_targets, targets)

    def _fill_targets(self, targets: list[Any]) -> None:
        self._targets = targets
        table = self.query_one("#targets", DataTable)
        cursor = table.cursor_row
        columns = _columns(table, TARGET_COLUMNS)
        for t in targets:
            target = safe(("!" if t.exclude else "") + display(t.value), 300, style="red" if t.exclude else "")
            cells = {"target": target}  # display(): a URL's password hidden
            table.add_row(*(_cell(cells[c.name]) for c, _ in columns), key=str(t.id))
        table.border_subtitle = plural(len(targets), "rule")
        if targets:
            table.move_cursor(row=min(cursor, len(targets) - 1))

    @work(thread=True, exclusive=True, group="scans", exit_on_error=False)
    def load_scans(self) -> None:
        from ...store import repo

        if self.project_id is None:
            return
        project_id = self.project_id
        scans = repo.list_scans(project_id, limit=100)
        counts = {scan.id: _inventory(scan) for scan in scans}
        if any(scan.status == "done" and counts[scan.id] is None for scan in scans):
            # done rows older than summary["inventory"] (or snapshotted by hand): their snapshot's counts
            from ...events import history

            snapshotted = {row["id"]: row for row in history(project_id)}
            counts = {i: c if c is not None else snapshotted.get(i) for i, c in counts.items()}
        self.app.call_from_thread(self._fill_scans, scans, counts)

    def _fill_scans(self, scans: list[Any], counts: dict[int, dict[str, Any] | None]) -> None:
        self._scans = (scans, counts)
        table = self.query_one("#scans", DataTable)
        cursor = table.cursor_row
        columns = _columns(table, SCAN_COLUMNS)
        for scan in scans:
            took = (
                (scan.finished_at - scan.started_at).total_seconds() if scan.finished_at and scan.started_at else None
            )
            cells = {
                "#": Text(f"{MARK if scan.id == self.diff_base else ''}{scan.id}", style="bold"),
                "status": scan_state(scan),
                "started": when(scan.started_at, short=True),
                "took": duration(took),
                "found": found_text(scan, counts.get(scan.id)),
                "modules": scan.modules,
                "backend": scan.backend or "",
            }
            table.add_row(*(_cell(cells[c.name]) for c, _ in columns), key=str(scan.id))
        if scans:
            table.move_cursor(row=min(cursor, len(scans) - 1))

    def on_resize(self) -> None:
        self.call_after_refresh(self._refit)  # the panes have their new sizes after this refresh

    def _refit(self) -> None:
        self._fill_targets(self._targets)
        self._fill_scans(*self._scans)

    def action_wide(self) -> None:
        left = self.query_one("#left")
        left.display = not left.display
        if not left.display and not self.query_one("#scans").has_focus:
            self.query_one("#scans").focus()
        self.call_after_refresh(self._refit)

    # -- actions -------------------------------------------------------------------------

    def _need_project(self) -> bool:
        if self.project_id is None:
            self.notify("Create a project first (n).", severity="warning", markup=False)
            return False
        return True

    def _backend_ready(self) -> bool:
        if self.assetmon.dispatcher is None:
            self.notify(f"Still starting ({self.app.sub_title}), one moment…", markup=False)
            return False
        return True

    def action_new_project(self) -> None:
        from .forms import NewProjectForm

        self.app.push_screen(NewProjectForm(), self._create_project)

    def _create_project(self, made: tuple[int, str] | None) -> None:
        """The form made the project: select it and ask for its targets."""
        if made:
            project_id, name = made
            self.assetmon.project_id = project_id
            self.assetmon.project_names[project_id] = name  # the targets form's title, before the reload lands
            self.load_projects(project_id)
            self.action_add_targets()

    def action_add_targets(self) -> None:
        from .forms import TargetsForm

        if self._need_project():
            self.app.push_screen(TargetsForm(self._project_name()), then(self._add_targets))

    @work(thread=True, exit_on_error=False)
    def _add_targets(self, lines: list[str] | None) -> None:
        from ...store import repo

        if not lines or self.project_id is None:
            return
        added = repo.add_targets(self.project_id, lines)
        self.app.call_from_thread(self.notify, f"{plural(len(added), 'target')} added", markup=False)
        self.app.call_from_thread(self.load_targets)

    def action_delete_target(self) -> None:
        table = self.query_one("#targets", DataTable)
        if not table.has_focus:
            self.notify("x deletes the highlighted target: Tab to the Targets pane (D: the project).", markup=False)
            return
        if table.row_count == 0:
            return
        from .forms import confirm

        key = int(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value or 0)
        target = next((t for t in self._targets if t.id == key), None)
        if target is None:
            return
        shown = display(target.value)
        question = f"Delete the target {'!' if target.exclude else ''}{shown} from {self._project_name()}?"
        confirm(self.app, question, lambda: self._delete_target(key, shown))

    @work(thread=True, exit_on_error=False)
    def _delete_target(self, target_id: int, shown: str) -> None:
        from ...store import repo

        repo.delete_target(target_id)
        self.app.call_from_thread(self.notify, f"Target {shown} deleted", markup=False)
        self.app.call_from_thread(self.load_targets)

    def action_delete_project(self) -> None:
        from .forms import ConfirmForm

        if self._need_project():
            question = f"Delete project {self._project_name()} and all it found?"
            self.app.push_screen(ConfirmForm(question), then(self._delete_project))

    @work(thread=True, exit_on_error=False)
    def _delete_project(self, yes: bool | None) -> None:
        from ...store import repo

        if yes and self.project_id is not None:
            repo.delete_project(self.project_id)
            self.assetmon.project_id = None
            self.app.call_from_thread(self.load_projects)

    def action_scan(self) -> None:
        from ...core.modules import NAMES as MODULES
        from .forms import ScanForm

        if self._need_project() and self._backend_ready():
            self.app.push_screen(ScanForm(self._project_name(), MODULES, self.project_id), then(self._submit))

    @work(thread=True, exit_on_error=False)
    def _submit(self, answer: tuple[list[str], dict[str, Any]] | None) -> None:
        dispatcher = self.assetmon.dispatcher
        if not answer or dispatcher is None or self.project_id is None:
            return
        modules, options = answer
        try:
            scan = dispatcher.submit(self.project_id, modules, options)
        except ValueError as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="error", markup=False)
            return
        where = "a Celery worker" if scan.backend == "celery" else "a local thread"
        self.app.call_from_thread(self._watch, scan.id)
        self.app.call_from_thread(self.notify, f"Scan #{scan.id} started on {where}", markup=False)
        self.app.call_from_thread(self.load_scans)

    def action_cancel_scan(self) -> None:
        if not self._backend_ready():
            return
        chosen = self._highlighted_scan()
        if chosen not in self.active_ids:
            chosen = max(self.active_ids) if self.active_ids else None
        if chosen is None:
            self.notify("No active scan to cancel.", markup=False)
            return
        self._cancel(chosen)

    @work(thread=True, exit_on_error=False)
    def _cancel(self, scan_id: int) -> None:
        dispatcher = self.assetmon.dispatcher
        if dispatcher is not None:
            status = dispatcher.cancel(scan_id)
            self.app.call_from_thread(self.notify, f"Scan #{scan_id}: {status}", markup=False)

    def action_results(self, scan_id: int | None = None) -> None:
        """Results as of `scan_id` (None: the latest snapshotted scan)."""
        from .results import ResultsScreen

        if self._need_project() and self.project_id is not None:
            self.app.push_screen(ResultsScreen(self.project_id, self._project_name(), scan_id))

    @on(DataTable.RowSelected, "#targets")
    def target_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a target: its whole value (the narrow pane cuts long ones with …)."""
        target = next((t for t in self._targets if str(t.id) == event.row_key.value), None)
        if target is not None:
            kind = "exclusion" if target.exclude else "target"
            self.notify(f"{kind}: {clean_text(display(target.value), 2000)}", markup=False)

    @on(DataTable.RowSelected, "#scans")
    def scan_selected(self, event: DataTable.RowSelected) -> None:
        self.action_results(int(event.row_key.value or 0) or None)

    def action_scan_details(self) -> None:
        """The highlighted scan's details (or the latest's): how each source fared."""
        scan_id = self._highlighted_scan()
        if scan_id is None:
            self.notify("No scans yet.", markup=False)
            return
        panels = self.query(f"#scan-panel-{scan_id}")
        self._open_details(scan_id, panels.first(ScanPanel).progress if panels else None)

    @work(thread=True, exclusive=True, group="details", exit_on_error=False)
    def _open_details(self, scan_id: int, progress: Progress | None) -> None:
        """An active scan's warnings come from its live progress (its row gets its sources when it ends)."""
        from ...store import repo

        scan = repo.get_scan(scan_id)
        name = self.assetmon.project_names.get(scan.project_id, "")
        self.app.call_from_thread(self.app.push_screen, ScanDetails(scan, name, progress))

    # -- monitoring: findings, diff, trends, schedule, notifications, export --------------

    def action_findings(self) -> None:
        from .findings import FindingsScreen

        if self._need_project() and self.project_id is not None:
            self.app.push_screen(FindingsScreen(self.project_id, self._project_name()))

    def action_trends(self) -> None:
        from .trends import TrendsScreen

        if self._need_project() and self.project_id is not None:
            self.app.push_screen(TrendsScreen(self.project_id, self._project_name()))

    def _highlighted_scan(self) -> int | None:
        table = self.query_one("#scans", DataTable)
        if not table.row_count:
            return None
        return int(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value or 0)

    def action_mark_scan(self) -> None:
        scan_id = self._highlighted_scan()
        table = self.query_one("#scans", DataTable)
        if scan_id is None:
            self.notify("No scan to mark.", markup=False)
        elif self.diff_base != scan_id and not self._done(scan_id):
            self.notify(f"Scan #{scan_id} cannot be a diff base: only done scans are compared.", markup=False)
        elif self.diff_base == scan_id:
            self.diff_base = None
            table.border_subtitle = ""
            self.notify(f"Scan #{scan_id} unmarked.", markup=False)
        else:
            self.diff_base = scan_id
            table.border_subtitle = f"{MARK} diff base #{scan_id} · d compares"
            self.notify(f"Scan #{scan_id} marked: highlight another scan and press d.", markup=False)
        self._fill_scans(*self._scans)  # the mark shows in its row

    def _done(self, scan_id: int) -> bool:
        return any(scan.id == scan_id and scan.status == "done" for scan in self._scans[0])

    def action_diff(self) -> None:
        if not self._need_project() or self.project_id is None:
            return
        scan_id = self._highlighted_scan()
        if scan_id is None:
            self.notify("No scans yet.", markup=False)
            return
        self._open_diff(self.project_id, scan_id, self.diff_base)

    @work(thread=True, exclusive=True, group="diff", exit_on_error=False)
    def _open_diff(self, project_id: int, scan_id: int, base: int | None) -> None:
        from ...events import history
        from .diff import DiffScreen

        if base is not None and base != scan_id:
            older, newer = sorted((base, scan_id))
        else:
            done = [row["id"] for row in history(project_id)]
            earlier = [i for i in done if i < scan_id]
            if scan_id not in done:
                self.app.call_from_thread(
                    self.notify,
                    f"Scan #{scan_id} cannot be compared: only done scans are.",
                    severity="warning",
                    markup=False,
                )
                return
            if not earlier:
                self.app.call_from_thread(
                    self.notify,
                    f"Scan #{scan_id} is the first done scan: nothing to compare with (mark another scan with m).",
                    markup=False,
                )
                return
            older, newer = earlier[-1], scan_id
        name = self.assetmon.project_names.get(project_id, "")
        self.app.call_from_thread(self.app.push_screen, DiffScreen(older, newer, name))

    def action_schedule(self) -> None:
        from ...core.modules import NAMES as MODULES
        from .monitor_forms import ScheduleForm

        if self._need_project() and self.project_id is not None:
            self.app.push_screen(ScheduleForm(self.project_id, self._project_name(), MODULES), self._form_done)

    def action_notifiers(self) -> None:
        from .monitor_forms import NotifiersForm

        if self._need_project() and self.project_id is not None:
            self.app.push_screen(NotifiersForm(self.project_id, self._project_name()))

    def action_export(self) -> None:
        from .monitor_forms import ExportForm

        if self._need_project() and self.project_id is not None:
            self.app.push_screen(ExportForm(self.project_id, self._project_name()), self._exported)

    def action_project_settings(self) -> None:
        from .project_settings import ProjectSettingsForm

        if self._need_project() and self.project_id is not None:
            self.app.push_screen(ProjectSettingsForm(self.project_id, self._project_name()), self._form_done)

    def action_workers(self) -> None:
        from .workers import WorkersScreen

        self.app.push_screen(WorkersScreen())

    def _form_done(self, message: Any) -> None:
        if message:
            self.notify(str(message), markup=False)

    def _exported(self, path: Any) -> None:
        if path:
            self.notify(f"Exported to {path}", markup=False)


def _columns(table: DataTable[Any], columns: tuple[Column, ...]) -> list[tuple[Column, int]]:
    """Empty `table` and give it the columns that fit its current width."""
    fitted = fit_columns(columns, max(table.size.width - BORDER, 10))
    table.clear(columns=True)
    for column, width in fitted:
        table.add_column(column.label, width=width, key=column.name)
    return fitted


def _cell(value: object) -> object:
    """Text cut with "…" at its column's edge; other renderables (panels.Counts) fit themselves."""
    if isinstance(value, str):
        value = Text(value)
    return ellipsis(value) if isinstance(value, Text) else value
