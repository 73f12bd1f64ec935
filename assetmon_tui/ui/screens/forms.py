"""Modal forms: new project, add targets, launch scan, confirm. Each returns
its answer through `dismiss`; validation errors stay on the form.

Forms with buttons keep them visible in a small terminal (60x20): the fields
scroll in a `.form-body`; the error line and the `.buttons` row are in a
`.form-foot` docked at the bottom. The scan
form remembers what was last started per project (`remembered`)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, SelectionList, Static

from ...core.modules import describe
from ...core.sanitize import clean_text
from ...core.targets import TargetError, parse_target
from ..actions import Action, bindings
from ..text import safe

log = logging.getLogger(__name__)


class Form(ModalScreen[Any]):
    """Escape closes without an answer; errors show in the #error line."""

    ACTIONS = [Action("dismiss(None)", "escape", "Cancel", palette=False)]
    BINDINGS = bindings(ACTIONS)
    DEFAULT_CSS = """
    Form { align: center middle; }
    Form > Vertical {
        width: 70; max-width: 100%; height: auto; max-height: 100%;
        border: thick $accent; background: $surface; padding: 0 1;
    }
    Form .form-body { height: auto; max-height: 100%; }
    Form .form-title { dock: top; }
    Form .form-foot { dock: bottom; height: auto; }
    Form .buttons { height: auto; }
    Form .error { color: $error; height: auto; }
    Form .hint { color: $text-muted; height: auto; }
    Form Button { margin-top: 1; }
    """

    FOLD_ERROR = False  # an empty error line takes no row (the forms that must fit 60x20)

    def on_mount(self) -> None:
        if self.FOLD_ERROR:
            for line in self.query("#error"):
                line.display = False

    def show_error(self, message: str) -> None:
        line = self.query_one("#error", Static)
        line.update(Text(clean_text(message, 500)))  # never markup: a message may quote a database or a file
        if self.FOLD_ERROR:
            line.display = bool(message)


# -- what a form remembers per project ---------------------------------------------------------


def _remembered_file() -> Path:
    from ...core.config import get_settings

    return get_settings().state_dir / "forms.json"


def remembered(project_id: int, project_name: str, form: str) -> dict[str, Any]:
    """The values `form` last used for this project ({} when none, or when the
    id now belongs to another project)."""
    try:
        data = json.loads(_remembered_file().read_text(encoding="utf-8"))
        entry = data.get(str(project_id)) or {}
        if entry.get("project") != project_name:
            return {}
        values = entry.get(form) or {}
        return values if isinstance(values, dict) else {}
    except (OSError, ValueError, AttributeError):
        return {}


def remember(project_id: int, project_name: str, form: str, values: dict[str, Any]) -> None:
    """Keep `values` as this project's last ones for `form` (a small JSON file in
    the state dir, 0600; a failure to write only forgets)."""
    path = _remembered_file()
    with contextlib.suppress(OSError, ValueError):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                data = {}
        except (OSError, ValueError):
            data = {}
        entry = data.get(str(project_id))
        if not isinstance(entry, dict) or entry.get("project") != project_name:
            entry = {"project": project_name}
        entry[form] = values
        data[str(project_id)] = entry
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        tmp.replace(path)


class NewProjectForm(Form):
    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("New project")
            yield Input(placeholder="name, e.g. acme", id="name")
            yield Static("", id="error", classes="error")

    @on(Input.Submitted)
    def submit(self, event: Input.Submitted) -> None:
        name = event.value.strip()
        if not name:
            self.show_error("A project needs a name.")
        else:
            self._create(name)

    @work(thread=True, exclusive=True, exit_on_error=False)
    def _create(self, name: str) -> None:
        """The project is made here, so a refused name (one taken) stays in the form with its reason."""
        from ...store import repo

        try:
            project = repo.create_project(name)
        except ValueError as exc:
            self.app.call_from_thread(self.show_error, str(exc))
            return
        self.app.call_from_thread(self.dismiss, (project.id, project.name))


class TargetsForm(Form):
    def __init__(self, project: str):
        super().__init__()
        self.project = project

    def compose(self) -> ComposeResult:
        with Vertical(id="targets-form"):
            yield Label(Text.assemble("Add targets to ", safe(self.project or "the project", 40, style="bold")))
            # not "#targets": that is the dashboard's table (app.tcss gives it height 1fr and a border)
            yield Input(placeholder="acme.com 10.0.0.0/24 https://app.acme.com !dev.acme.com", id="targets-input")
            yield Static(
                "Domains, hosts, IPs, CIDRs and URLs, separated by spaces or commas.\n"
                "A leading ! excludes: !*.dev.acme.com",
                classes="hint",
            )
            yield Static("", id="error", classes="error")

    @on(Input.Submitted)
    def submit(self, event: Input.Submitted) -> None:
        lines = event.value.replace(",", " ").split()
        if not lines:
            self.show_error("Type at least one target.")
            return
        try:
            for line in lines:
                parse_target(line)
        except TargetError as exc:
            self.show_error(str(exc))
            return
        self.dismiss(lines)


def profile_choices(profiles: list[Any]) -> list[tuple[str, str]]:
    return [(p.name if p.source == "built-in" else f"{p.name} (yours)", p.name) for p in profiles]


class ScanForm(Form):
    """Profile, modules, ports, nameserver. Prefilled with what this project's
    last scan from this form used, else its settings and its profile (else
    `standard`); what the user changed first stays. Answers (modules, options)
    with the profile applied (core/profiles.resolve), or None."""

    FOLD_ERROR = True
    AUTO_FOCUS = ""  # the modules get it in on_mount, without scrolling the profile away
    DEFAULT_CSS = """
    ScanForm .field { height: 1; margin-top: 1; }
    ScanForm .field Label { width: 11; }
    ScanForm .field Input, ScanForm #profile { width: 1fr; }
    ScanForm .field Input { background: $boost; }
    ScanForm .field Input:focus { background: $surface-lighten-2; }
    ScanForm #profile-help { padding-left: 11; }
    ScanForm #modules { margin-top: 1; }
    """

    def __init__(self, project: str, modules: tuple[str, ...], project_id: int | None = None):
        super().__init__()
        self.project = project
        self.modules = modules
        self.project_id = project_id
        self.toggled = False  # the user changed the module selection
        self.settings: dict[str, Any] = {}  # the project's settings
        self.profiles: dict[str, Any] = {}  # name -> Profile
        self.loaded = False  # prefilled: a profile change from now on is the user's
        self.submit_when_loaded = False  # Enter came before the prefill: the scan starts once it lands
        self.load_failed = False  # the settings could not be read: Enter reads them again
        self.shown_profile = ""  # the profile whose description and defaults the form shows

    def compose(self) -> ComposeResult:
        from ...core.profiles import DEFAULT

        with Vertical(id="scan-form"):
            yield Label(
                Text.assemble(
                    "Scan ", safe(self.project, 40, style="bold"), ("  space toggles a module, tab moves", "dim")
                ),
                classes="form-title",
            )
            with VerticalScroll(classes="form-body"):
                with Horizontal(classes="field"):
                    yield Label("Profile")
                    yield Select([(DEFAULT, DEFAULT)], value=DEFAULT, allow_blank=False, id="profile", compact=True)
                yield Static("", id="profile-help", classes="hint")
                yield SelectionList[str](*[(describe(m), m, True) for m in self.modules], id="modules")
                with Horizontal(classes="field"):
                    yield Label("Ports")
                    yield Input(placeholder="top100, top1000, all, 22,80,8000-8100", id="ports", compact=True)
                with Horizontal(classes="field"):
                    yield Label("Nameserver")
                    yield Input(placeholder="IP or IP:PORT (default: system resolver)", id="nameserver", compact=True)
            with Vertical(classes="form-foot"):
                yield Static("", id="error", classes="error")
                with Horizontal(classes="buttons"):
                    yield Button("Start scan", variant="primary", id="start")

    def on_mount(self) -> None:
        self.query_one(SelectionList).styles.height = len(self.modules) + 2
        # as before profiles: tab, tab reaches the nameserver (shift+tab the profile)
        self.query_one(SelectionList).focus(scroll_visible=False)
        self._load(self.project_id)

    @work(thread=True, exit_on_error=False)
    def _load(self, project_id: int | None) -> None:
        from ...core.config import SettingsError
        from ...core.profiles import all_profiles

        settings: dict[str, Any] = {}
        last: dict[str, Any] = {}
        error = ""
        if project_id is not None:
            from ...store import repo
            from ...store.errors import explain

            try:
                settings = repo.project_settings(project_id)
            except Exception as exc:  # the database is away or damaged: say so, start nothing
                log.warning("scan form: reading project %s's settings failed", project_id, exc_info=True)
                self.app.call_from_thread(self._not_loaded, explain(exc) or f"{type(exc).__name__}: {exc}")
                return
            last = remembered(project_id, self.project, "scan")
        try:
            found = all_profiles()
        except SettingsError as exc:
            found, error = [], str(exc)
        self.app.call_from_thread(self._prefill, settings, found, last, error)

    def _not_loaded(self, reason: str) -> None:
        self.load_failed, self.submit_when_loaded = True, False
        self.show_error(f"Could not read the project's settings: {reason}. Enter tries again.")

    def _prefill(self, settings: dict[str, Any], found: list[Any], last: dict[str, Any], error: str) -> None:
        from ...core.profiles import DEFAULT

        self.settings = settings
        self.profiles = {p.name: p for p in found}
        self.show_error(error)  # or none: a failed read's line goes once the settings are in
        select = self.query_one("#profile", Select)
        name = next(
            (n for n in (last.get("profile"), settings.get("profile"), DEFAULT) if n in self.profiles),
            next(iter(self.profiles), DEFAULT),
        )
        with select.prevent(Select.Changed):  # the form's own choice, not the user's
            if found:
                select.set_options(profile_choices(found))
            if name in self.profiles:
                select.value = name
        profile = self.profiles.get(name)
        modules = [
            m
            for m in last.get("modules") or settings.get("modules") or (profile.modules if profile else [])
            if m in self.modules
        ]
        if modules and not self.toggled:
            self._select(modules)
        ports = self.query_one("#ports", Input)
        if not ports.value:
            ports.value = str(last.get("ports") or settings.get("ports") or "")
        nameserver = self.query_one("#nameserver", Input)
        if not nameserver.value:
            nameserver.value = str(last.get("nameserver") or "")
        self._show_profile(name)
        self.loaded = True
        if self.submit_when_loaded:
            self.submit()

    def _select(self, modules: list[str]) -> None:
        selection = self.query_one(SelectionList)
        selection.deselect_all()
        for module in modules:
            selection.select(module)

    def _show_profile(self, name: str) -> None:
        """The profile's description; the placeholders say what an empty field gives."""
        from ...core.config import get_settings

        self.shown_profile = name
        profile = self.profiles.get(name)
        values = profile.values if profile else {}
        self.query_one("#profile-help", Static).update(Text(profile.description if profile else ""))
        ports = self.settings.get("ports") or values.get("ports") or get_settings().ports
        self.query_one("#ports", Input).placeholder = f"default {ports} · or top1000, all, 22,80,8000-8100"
        nameservers = self.settings.get("nameservers") or values.get("nameservers")
        shown = ", ".join(map(str, nameservers)) if nameservers else get_settings().nameservers or "system resolver"
        self.query_one("#nameserver", Input).placeholder = f"IP or IP:PORT (default: {shown})"

    @on(Select.Changed, "#profile")
    def profile_changed(self, event: Select.Changed) -> None:
        name = str(event.value)
        if not self.loaded or name not in self.profiles or name == self.shown_profile:
            return  # the prefill's own change, or no change
        profile = self.profiles[name]
        modules = [m for m in profile.modules if m in self.modules]
        if modules:
            self._select(modules)
        self._show_profile(name)

    @on(SelectionList.SelectionToggled)
    def toggled_by_user(self) -> None:
        self.toggled = True

    @on(Input.Submitted)
    @on(Button.Pressed, "#start")
    def submit(self) -> None:
        from ...core import profiles
        from ...core import project_settings as registry
        from ...core.config import SettingsError

        if self.load_failed:  # the user saw why; the form fills in, and the next Enter starts the scan
            self.load_failed = False
            self.show_error("Reading the project's settings again…")
            self._load(self.project_id)
            return
        if not self.loaded:  # the form would start what the project's settings and last scan have not set yet
            self.submit_when_loaded = True
            self.show_error("Reading the project's settings; the scan starts once they are in…")
            return
        modules = list(self.query_one(SelectionList).selected)
        if not modules:
            self.show_error("Choose at least one module.")
            return
        explicit: dict[str, Any] = {}
        ports = self.query_one("#ports", Input).value.strip()
        nameserver = self.query_one("#nameserver", Input).value.strip()
        try:
            if ports:
                explicit["ports"] = registry.check("ports", ports)
            if nameserver:
                explicit["nameservers"] = registry.check("nameservers", nameserver)
            select = self.query_one("#profile", Select)
            name = select.value if self.profiles and isinstance(select.value, str) else None
            modules, options = profiles.resolve(modules, explicit, self.settings, name)
        except (ValueError, SettingsError) as exc:
            self.show_error(str(exc))
            return
        if self.project_id is not None:
            last = {"profile": name, "modules": modules, "ports": ports, "nameserver": nameserver}
            remember(self.project_id, self.project, "scan", {k: v for k, v in last.items() if v})
        self.dismiss((modules, options))


class ConfirmForm(Form):
    ACTIONS = [
        Action("dismiss(True)", "y", "Yes", palette=False),
        Action("dismiss(False)", "n,escape", "No", palette=False),
    ]
    BINDINGS = bindings(ACTIONS)

    def __init__(self, question: str):
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(self.question))  # plain text: it quotes names the user typed ("[/bold]")
            yield Static("y: yes   n: no", classes="hint")


def confirm(app: App[Any], question: str, on_yes: Callable[[], object]) -> None:
    """Ask `question` (y / n); `on_yes` runs only on a yes. Every deletion goes through here."""

    def answered(yes: bool | None) -> None:
        if yes:
            on_yes()

    app.push_screen(ConfirmForm(question), answered)
