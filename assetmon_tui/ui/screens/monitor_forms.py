"""Modal forms for monitoring: a project's schedule, its notifiers, and an
export to a file. Database work and network tests run in thread workers; every
error stays on the form."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Checkbox, DataTable, Input, Label, Select, SelectionList, Static

from ...core.modules import describe
from ...core.sanitize import clean_text
from ..actions import Action, bindings
from ..text import SEVERITIES, safe, severity, when
from .forms import Form, confirm, profile_choices

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
EXPORT_FORMATS = ("html", "json", "jsonl", "csv", "md")


def parse_every(text: str) -> tuple[int | None, str | None]:
    """ "6h", "1h30m", "45m", "3600" (seconds) -> (seconds, None); a cron line -> (None, line).
    ValueError for what is neither (cron lines are checked by the schedule itself)."""
    text = " ".join(text.split())
    if not text:
        raise ValueError("Type an interval (6h, 30m, 1d, 3600) or a cron line (0 3 * * *).")
    if len(text.split()) == 5 or any(c in text for c in "*/,?@"):
        return None, text
    compact = text.replace(" ", "").lower()
    if re.fullmatch(r"\d+", compact):
        return int(compact), None
    if re.fullmatch(r"(\d+[smhdw])+", compact):
        return sum(int(n) * UNITS[u] for n, u in re.findall(r"(\d+)([smhdw])", compact)), None
    if " " in text:
        return None, text  # the schedule explains what a cron line needs
    raise ValueError(
        f"Not an interval: {clean_text(text, 40)!r}. Use e.g. 6h, 30m, 1h30m, 1d or "
        "seconds (3600), or a cron line with 5 fields (0 3 * * *)."
    )


def format_every(seconds: int | None) -> str:
    if not seconds:
        return ""
    for unit in ("w", "d", "h", "m"):
        if seconds % UNITS[unit] == 0:
            return f"{seconds // UNITS[unit]}{unit}"
    return str(seconds)


# -- schedule -----------------------------------------------------------------------------


class ScheduleForm(Form):
    """Answers a message for the app to show, or None. The profile (with its
    ports, nameservers, sources and rates) applies to every scheduled run, under
    the project's own settings; choosing one selects its modules."""

    FOLD_ERROR = True
    DEFAULT_CSS = """
    ScheduleForm .field { height: 1; margin-top: 1; }
    ScheduleForm .field Label { width: 9; }
    ScheduleForm .field Input, ScheduleForm #schedule-profile { width: 1fr; }
    ScheduleForm .field Input { background: $boost; }
    ScheduleForm .field Input:focus { background: $surface-lighten-2; }
    ScheduleForm .hint.under { padding-left: 9; }
    ScheduleForm #schedule-enabled { margin: 1 0 0 1; }
    """

    def __init__(self, project_id: int, project_name: str, modules: tuple[str, ...]):
        super().__init__()
        self.project_id = project_id
        self.project_name = project_name
        self.modules = modules
        self.options: dict[str, Any] = {}  # kept from the existing schedule (ports, nameservers)
        self.profiles: dict[str, Any] = {}
        self.shown_profile = ""  # the profile the Select shows (set by the form, not the user)

    def compose(self) -> ComposeResult:
        from ...core.profiles import DEFAULT

        with Vertical(id="schedule-form"):
            yield Label(
                Text.assemble("Scheduled scans of ", safe(self.project_name, 40, style="bold")), classes="form-title"
            )
            with VerticalScroll(classes="form-body"):
                yield Static("No schedule yet.", id="schedule-status", classes="hint")
                with Horizontal(classes="field"):
                    yield Label("Every")
                    yield Input(placeholder="6h, 30m, 1d, 3600 (s) — or cron: 0 3 * * *", id="every", compact=True)
                yield Static("at least 1m apart; cron: 5 fields, local time", classes="hint under")
                with Horizontal(classes="field"):
                    yield Label("Profile")
                    yield Select(
                        [(DEFAULT, DEFAULT)], value=DEFAULT, allow_blank=False, id="schedule-profile", compact=True
                    )
                yield SelectionList[str](*[(describe(m), m, True) for m in self.modules], id="modules")
            with Vertical(classes="form-foot"):
                yield Static("", id="error", classes="error")
                with Horizontal(classes="buttons"):
                    yield Button("Save", variant="primary", id="save")
                    yield Button("Delete schedule", variant="error", id="delete")
                    yield Checkbox("enabled", True, id="schedule-enabled", compact=True)

    def on_mount(self) -> None:
        self.query_one(SelectionList).styles.height = len(self.modules) + 2
        self.query_one("#every").focus()
        self._load()

    @work(thread=True, exit_on_error=False)
    def _load(self) -> None:
        from ...core.config import SettingsError
        from ...core.profiles import all_profiles
        from ...schedule import get_schedule
        from ...store import repo

        error = ""
        try:
            found = all_profiles()
        except SettingsError as exc:
            found, error = [], str(exc)
        settings = repo.project_settings(self.project_id)
        self.app.call_from_thread(self._prefill, get_schedule(self.project_id), found, settings, error)

    def _prefill(self, schedule: Any, found: list[Any], settings: dict[str, Any], error: str) -> None:
        from ...core.profiles import DEFAULT

        self.profiles = {p.name: p for p in found}
        if error:
            self.show_error(error)
        options = json.loads(schedule.options or "{}") if schedule is not None else {}
        select = self.query_one("#schedule-profile", Select)
        name = next((n for n in (options.get("profile"), settings.get("profile"), DEFAULT) if n in self.profiles), "")
        with select.prevent(Select.Changed):  # the form's own choice, not the user's
            if found:
                select.set_options(profile_choices(found))
            if name:
                select.value = name
        self.shown_profile = name
        if schedule is None:
            modules = settings.get("modules") or (self.profiles[name].modules if name else [])
            if modules:
                self._select(modules)
            return
        self.options = options
        every = self.query_one("#every", Input)
        if not every.value:
            every.value = schedule.cron if schedule.kind == "cron" else format_every(schedule.interval_seconds)
        self._select(schedule.modules.split(","))
        self.query_one("#schedule-enabled", Checkbox).value = schedule.enabled
        status = Text.assemble(
            ("on" if schedule.enabled else "off", "green" if schedule.enabled else "dim"),
            f" · next run {when(schedule.next_run_at, empty='—') if schedule.enabled else '—'}"
            f" · last run {when(schedule.last_run_at, empty='—')}",
        )
        if schedule.last_error:
            status.append("\nlast error: ", style="red")
            status.append(clean_text(schedule.last_error, 200))
        self.query_one("#schedule-status", Static).update(status)

    def _select(self, modules: list[str]) -> None:
        chosen = set(modules)
        selection = self.query_one(SelectionList)
        selection.deselect_all()
        for module in self.modules:
            if module in chosen:
                selection.select(module)

    @on(Select.Changed, "#schedule-profile")
    def profile_changed(self, event: Select.Changed) -> None:
        name = str(event.value)
        if name == self.shown_profile or name not in self.profiles:
            return  # the form's own prefill
        self.shown_profile = name
        if self.profiles[name].modules:
            self._select(self.profiles[name].modules)

    @on(Input.Submitted, "#every")
    @on(Button.Pressed, "#save")
    def save(self) -> None:
        try:
            seconds, cron = parse_every(self.query_one("#every", Input).value)
        except ValueError as exc:
            self.show_error(str(exc))
            return
        modules = list(self.query_one(SelectionList).selected)
        if not modules:
            self.show_error("Choose at least one module.")
            return
        self.show_error("")
        profile = self.query_one("#schedule-profile", Select).value
        if self.profiles and isinstance(profile, str):
            self.options = {**self.options, "profile": profile}
        self._save(seconds, cron, modules, self.query_one("#schedule-enabled", Checkbox).value)

    @work(thread=True, exclusive=True, group="save", exit_on_error=False)
    def _save(self, seconds: int | None, cron: str | None, modules: list[str], enabled: bool) -> None:
        from ...schedule import set_schedule

        try:
            schedule = set_schedule(
                self.project_id,
                interval_seconds=seconds,
                cron=cron,
                modules=modules,
                enabled=enabled,
                options=self.options,
            )
        except ValueError as exc:
            self.app.call_from_thread(self.show_error, clean_text(str(exc), 300))
            return
        every = (
            f"cron {schedule.cron}" if schedule.kind == "cron" else f"every {format_every(schedule.interval_seconds)}"
        )
        state = f"next run {when(schedule.next_run_at, empty='—')}" if schedule.enabled else "disabled"
        self.app.call_from_thread(self.dismiss, f"Schedule saved: {every} ({state})")

    @on(Button.Pressed, "#delete")
    def delete(self) -> None:
        question = f"Delete the schedule of {self.project_name}? No scan starts by itself any more."
        confirm(self.app, question, self._delete)

    @work(thread=True, exit_on_error=False)
    def _delete(self) -> None:
        from ...schedule import delete_schedule, get_schedule

        if get_schedule(self.project_id) is None:
            self.app.call_from_thread(self.show_error, "This project has no schedule.")
            return
        delete_schedule(self.project_id)
        self.app.call_from_thread(self.dismiss, "Schedule deleted")


# -- notifiers ------------------------------------------------------------------------------


class NotifierTable(DataTable[Any]):
    ACTIONS = [  # the table's keys only: typing in the URL box must not trigger them
        Action("screen.test", "t", "Test", palette=False),
        Action("screen.switch", "space", "On/off", palette=False),
        Action("screen.delete", "delete,x", "Delete", palette=False),
    ]
    BINDINGS = bindings(ACTIONS)


class NotifiersForm(Form):
    """Notifiers of one project: add (apprise URL + minimum severity), test,
    switch on/off, delete. URLs are shown redacted."""

    ACTIONS = [Action("dismiss(None)", "escape", "Close", palette=False)]
    BINDINGS = bindings(ACTIONS)

    def __init__(self, project_id: int, project_name: str):
        super().__init__()
        self.project_id = project_id
        self.project_name = project_name
        self.notifiers: list[Any] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="notifiers-form"):
            yield Label(Text.assemble("Notifications of ", safe(self.project_name, 40, style="bold")))
            yield NotifierTable(id="notifiers", cursor_type="row")
            yield Static("table: t test · space on/off · x delete      Esc closes", classes="hint")
            with Horizontal(id="notifier-new"):
                yield Input(placeholder="apprise URL, e.g. json://host:port/path, tgram://…", id="url")
                yield Select([(s, s) for s in SEVERITIES], value="medium", allow_blank=False, id="min-severity")
            yield Static("", id="result")
            yield Static("", id="error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Add", variant="primary", id="add")
                yield Button("Test", id="test")
                yield Button("Delete", variant="error", id="delete")

    def on_mount(self) -> None:
        table = self.query_one("#notifiers", DataTable)
        for label, width in (("#", 3), ("min", 4), ("on", 3), ("last", 6), ("url", 60)):
            table.add_column(label, width=width)
        self.query_one("#url").focus()
        self._load()

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def _load(self, select: int | None = None) -> None:
        from ...notify import list_deliveries, list_notifiers, redacted_url

        notifiers = list_notifiers(self.project_id)
        last: dict[int, str] = {}
        for delivery in list_deliveries(self.project_id):  # newest first
            last.setdefault(delivery.notifier_id, delivery.status)
        rows = [(n, redacted_url(n.url), last.get(n.id or 0, "")) for n in notifiers]
        self.app.call_from_thread(self._fill, rows, select)

    def _fill(self, rows: list[Any], select: int | None) -> None:
        self.notifiers = [n for n, _, _ in rows]
        table = self.query_one("#notifiers", DataTable)
        cursor = table.cursor_row
        table.clear()
        for n, url, last in rows:
            on_ = Text("on", style="green") if n.enabled else Text("off", style="dim")
            last_text = Text(last, style="green" if last == "sent" else "red" if last == "failed" else "")
            table.add_row(str(n.id), severity(n.min_severity), on_, last_text, safe(url, 120), key=str(n.id))
        table.border_title = f"{len(rows)} notifier{'s' if len(rows) != 1 else ''}"
        if select is not None and str(select) in {k.value for k in table.rows}:
            table.move_cursor(row=table.get_row_index(str(select)))
        elif rows:
            table.move_cursor(row=min(cursor, len(rows) - 1))

    def _chosen(self) -> int | None:
        table = self.query_one("#notifiers", DataTable)
        if not table.row_count:
            self.show_error("No notifier yet: add a URL first.")
            return None
        return int(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value or 0)

    @on(Input.Submitted, "#url")
    @on(Button.Pressed, "#add")
    def add(self) -> None:
        url = self.query_one("#url", Input).value.strip()
        if not url:
            self.show_error("Type an apprise URL, e.g. json://127.0.0.1:8080/hook")
            return
        if "://" not in url:
            self.show_error("A notification URL looks like scheme://…, e.g. json://host:port/path")
            return
        self.show_error("")
        self._add(url, str(self.query_one("#min-severity", Select).value))

    @work(thread=True, group="add", exit_on_error=False)
    def _add(self, url: str, min_severity: str) -> None:
        from ...notify import add_notifier

        try:
            notifier = add_notifier(self.project_id, url, min_severity)
        except ValueError as exc:
            self.app.call_from_thread(self.show_error, clean_text(str(exc), 300))
            return
        self.app.call_from_thread(self._added, notifier.id)

    def _added(self, notifier_id: int) -> None:
        self.query_one("#url", Input).value = ""
        self.query_one("#result", Static).update(Text(f"Notifier #{notifier_id} added.", style="green"))
        self._load(notifier_id)
        self.query_one("#notifiers").focus()

    @on(Button.Pressed, "#test")
    def action_test(self) -> None:
        chosen = self._chosen()
        if chosen is not None:
            self.show_error("")
            self.query_one("#result", Static).update(Text(f"Sending a test to #{chosen}…", style="dim"))
            self._test(chosen)

    @work(thread=True, group="test", exit_on_error=False)
    def _test(self, notifier_id: int) -> None:
        from ...notify import send_test

        ok, error = send_test(notifier_id)
        result = (
            Text(f"✓ test message to #{notifier_id} delivered", style="green")
            if ok
            else Text.assemble((f"✗ test to #{notifier_id} failed: ", "bold red"), clean_text(error, 300))
        )
        self.app.call_from_thread(self.query_one("#result", Static).update, result)

    def action_switch(self) -> None:
        chosen = self._chosen()
        if chosen is not None:
            notifier = next((n for n in self.notifiers if n.id == chosen), None)
            if notifier is not None:
                self._set(chosen, not notifier.enabled)

    @work(thread=True, exit_on_error=False)
    def _set(self, notifier_id: int, enabled: bool) -> None:
        from ...notify import set_notifier

        set_notifier(notifier_id, enabled=enabled)
        self.app.call_from_thread(self._load, notifier_id)

    @on(Button.Pressed, "#delete")
    def action_delete(self) -> None:
        chosen = self._chosen()
        if chosen is not None:
            question = f"Delete notifier #{chosen}? Its URL (and any token in it) must be typed again to restore it."
            confirm(self.app, question, lambda: self._delete(chosen))

    @work(thread=True, exit_on_error=False)
    def _delete(self, notifier_id: int) -> None:
        from ...notify import delete_notifier

        delete_notifier(notifier_id)
        self.app.call_from_thread(
            self.query_one("#result", Static).update, Text(f"Notifier #{notifier_id} deleted.", style="dim")
        )
        self.app.call_from_thread(self._load)


# -- export ------------------------------------------------------------------------------------


def default_export_name(project_name: str, fmt: str, today: datetime | None = None) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", project_name).strip("._") or "project"
    return f"{stem[:60]}-{(today or datetime.now()).strftime('%Y%m%d')}.{fmt}"


class ExportForm(Form):
    """Writes the export itself (in a thread); answers the written path, or None.
    A relative path is in the user's folder (`export.user_folder`: where they
    started AssetMon, even through start.sh); a folder that does not exist or
    cannot be written is one line naming it."""

    FOLD_ERROR = True
    DEFAULT_CSS = """
    ExportForm #since { margin: 1 0 0 1; width: 1fr; }
    """

    def __init__(self, project_id: int, project_name: str, directory: Path | None = None):
        super().__init__()
        from ...export import user_folder

        self.project_id = project_id
        self.project_name = project_name
        self.directory = directory or user_folder()
        self.default_path = ""
        self.confirmed: Path | None = None  # an existing file the user agreed to replace

    def compose(self) -> ComposeResult:
        self.default_path = default_export_name(self.project_name, EXPORT_FORMATS[0])
        with Vertical(id="export-form"):
            yield Label(Text.assemble("Export ", safe(self.project_name, 40, style="bold")), classes="form-title")
            with VerticalScroll(classes="form-body"):
                yield Select([(f, f) for f in EXPORT_FORMATS], value=EXPORT_FORMATS[0], allow_blank=False, id="format")
                yield Input(self.default_path, placeholder="output file", id="path")
                yield Input(
                    placeholder="only events after scan # (optional)", id="since", restrict=r"\d*", compact=True
                )
                yield Static(
                    Text.assemble(
                        "relative paths are in ",
                        safe(str(self.directory), 50),
                        "\nsecret values are never exported (redacted forms only)",
                    ),
                    classes="hint",
                )
            with Vertical(classes="form-foot"):
                yield Static("", id="error", classes="error")
                with Horizontal(classes="buttons"):
                    yield Button("Export", variant="primary", id="export")

    def on_mount(self) -> None:
        self.query_one("#format").focus()

    @on(Select.Changed, "#format")
    def format_changed(self, event: Select.Changed) -> None:
        path = self.query_one("#path", Input)
        if path.value == self.default_path:  # not edited: follow the format
            self.default_path = default_export_name(self.project_name, str(event.value))
            path.value = self.default_path

    @on(Input.Submitted, "#path")
    @on(Input.Submitted, "#since")
    @on(Button.Pressed, "#export")
    def submit(self) -> None:
        from ...export import ExportPathError, output_path

        text = self.query_one("#path", Input).value.strip()
        if not text:
            self.show_error("Type a file name.")
            return
        try:
            path = output_path(text, self.directory)
        except ExportPathError as exc:
            self.show_error(clean_text(str(exc), 300))
            return
        if path.exists() and self.confirmed != path:
            self.confirmed = path
            self.show_error("The file exists: press Enter (or Export) again to replace it.")
            return
        since = self.query_one("#since", Input).value.strip()
        self.show_error("Exporting…")
        self._write(str(self.query_one("#format", Select).value), path, int(since) if since else None)

    @work(thread=True, exclusive=True, exit_on_error=False)
    def _write(self, fmt: str, path: Path, since: int | None) -> None:
        from ...export import export, write_file

        try:
            write_file(path, export(self.project_id, fmt, since_scan=since))
        except (OSError, ValueError, LookupError) as exc:  # ExportPathError: one line naming the path
            self.app.call_from_thread(self.show_error, clean_text(f"Export failed: {exc}", 300))
            return
        self.app.call_from_thread(self.dismiss, str(path))
