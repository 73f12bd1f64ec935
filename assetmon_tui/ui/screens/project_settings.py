"""The scan settings of one project (core/project_settings.py: modules, ports,
nameservers, CT URL, wordlist, gone after, profile; the rates are set through
a profile): one line per setting, prefilled
with the project's value, the global default as the placeholder, and the
setting's help under it, replaced by a one-line error while the value is bad.
Save stores them (an emptied field: the global default again); every scan and
schedule of the project uses them."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Input, Label, Static

from ...core import project_settings as registry
from ...core.sanitize import clean_text
from ..actions import PROJECT_SETTINGS_FORM, bindings
from ..text import safe
from .forms import Form


class ProjectSettingsForm(Form):
    """Answers a message for the app to show, or None."""

    ACTIONS = PROJECT_SETTINGS_FORM
    BINDINGS = bindings(ACTIONS)
    FOLD_ERROR = True
    DEFAULT_CSS = """
    ProjectSettingsForm > Vertical { width: 78; }
    ProjectSettingsForm .setting { height: 1; }
    ProjectSettingsForm .setting Label { width: 13; }
    ProjectSettingsForm .setting Input { width: 1fr; background: $boost; }
    ProjectSettingsForm .setting Input:focus { background: $surface-lighten-2; }
    ProjectSettingsForm .help { height: 1; padding-left: 13; color: $text-muted; }
    ProjectSettingsForm .help.-invalid { height: auto; color: $error; }
    ProjectSettingsForm #settings-title { margin-bottom: 1; }
    """

    def __init__(self, project_id: int, project_name: str):
        super().__init__()
        self.project_id = project_id
        self.project_name = project_name
        self.loaded = False  # the project's values and the global defaults are in the fields

    def compose(self) -> ComposeResult:
        with Vertical(id="project-settings"):
            yield Label(
                Text.assemble(
                    "Scan settings of ",
                    safe(self.project_name, 40, style="bold"),
                    ("  (empty: the global default)", "dim"),
                ),
                id="settings-title",
                classes="form-title",
            )
            with VerticalScroll(classes="form-body"):
                for setting in registry.FORM:
                    with Horizontal(classes="setting"):
                        yield Label(setting.label)
                        yield Input(id=f"setting-{setting.name}", compact=True, disabled=True)
                    yield Static(self._help(setting.name), id=f"help-{setting.name}", classes="help")
            with Vertical(classes="form-foot"):
                yield Static("", id="error", classes="error")
                with Horizontal(classes="buttons"):
                    yield Button("Save", variant="primary", id="save")
                    yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self._load()

    @work(thread=True, exit_on_error=False)
    def _load(self) -> None:
        from ...core.config import get_settings
        from ...store import repo

        try:
            values = repo.project_settings(self.project_id)
        except LookupError as exc:
            self.app.call_from_thread(self.show_error, clean_text(str(exc), 200))
            return
        self.app.call_from_thread(self._prefill, values, get_settings())

    def _help(self, name: str) -> str:
        return registry.BY_NAME[name].help

    def _prefill(self, values: dict[str, Any], defaults: Any) -> None:
        for setting in registry.FORM:
            field = self._input(setting.name)
            field.placeholder = clean_text(setting.default(defaults), 200)
            field.value = registry.show(setting.name, values.get(setting.name))
            field.disabled = False
        self._input(registry.NAMES[0]).focus()
        self.loaded = True

    def _input(self, name: str) -> Input:
        return self.query_one(f"#setting-{name}", Input)

    def _name_of(self, field: Input) -> str:
        return (field.id or "").removeprefix("setting-")

    def check_field(self, name: str) -> tuple[bool, Any]:
        """Check one field and show its help or its error; (ok, stored value or None)."""
        help_line = self.query_one(f"#help-{name}", Static)
        try:
            value = registry.check(name, self._input(name).value)
        except ValueError as exc:
            help_line.update(Text(clean_text(str(exc), 300)))
            help_line.add_class("-invalid")
            return False, None
        help_line.update(self._help(name))
        help_line.remove_class("-invalid")
        return True, value

    @on(Input.Changed)
    def changed(self, event: Input.Changed) -> None:
        name = self._name_of(event.input)
        if self.query_one(f"#help-{name}", Static).has_class("-invalid"):
            self.check_field(name)  # the error goes as soon as the value is right

    @on(Input.Blurred)
    def left(self, event: Input.Blurred) -> None:
        if self.loaded and event.input.is_attached:
            self.check_field(self._name_of(event.input))

    @on(Input.Submitted)
    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        if not self.loaded:
            return
        values: dict[str, Any] = {}
        bad = []
        for name in (s.name for s in registry.FORM):
            ok, value = self.check_field(name)
            if ok:
                values[name] = value
            else:
                bad.append(name)
        if bad:
            self.show_error("")
            self._input(bad[0]).focus()
            return
        self.show_error("Saving…")
        self._save(values)

    @work(thread=True, exclusive=True, group="save", exit_on_error=False)
    def _save(self, values: dict[str, Any]) -> None:
        from ...store import repo

        try:
            saved = repo.set_project_settings(self.project_id, values)
        except (ValueError, LookupError) as exc:
            self.app.call_from_thread(self.show_error, clean_text(str(exc), 300))
            return
        what = ", ".join(registry.BY_NAME[n].label.lower() for n in saved if n in registry.BY_NAME)
        self.app.call_from_thread(
            self.dismiss,
            f"Settings of {self.project_name} saved: " + (what or "all global defaults"),
        )

    @on(Button.Pressed, "#cancel")
    def cancel(self) -> None:
        self.dismiss(None)
