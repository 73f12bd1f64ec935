"""Modal forms: new project, add targets, launch scan, confirm. Each returns
its answer through `dismiss`; validation errors stay on the form."""

from __future__ import annotations

from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, SelectionList, Static

from ...core.modules import describe
from ...core.targets import TargetError, parse_target
from ..actions import Action, bindings


class Form(ModalScreen[Any]):
    """Escape closes without an answer; errors show in the #error line."""

    ACTIONS = [Action("dismiss(None)", "escape", "Cancel", palette=False)]
    BINDINGS = bindings(ACTIONS)
    DEFAULT_CSS = """
    Form { align: center middle; }
    Form > Vertical {
        width: 70; max-width: 100%; height: auto; border: thick $accent; background: $surface; padding: 0 1;
    }
    Form .error { color: $error; height: auto; }
    Form .hint { color: $text-muted; height: auto; }
    Form Button { margin-top: 1; }
    """

    def show_error(self, message: str) -> None:
        self.query_one("#error", Static).update(message)


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
            self.dismiss(name)


class TargetsForm(Form):
    def __init__(self, project: str):
        super().__init__()
        self.project = project

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Add targets to {self.project}")
            yield Input(placeholder="acme.com 10.0.0.0/24 https://app.acme.com !dev.acme.com", id="targets")
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


class ScanForm(Form):
    """With a project id, its settings (modules, ports, nameservers) prefill the
    form; what the user changed first stays."""

    def __init__(self, project: str, modules: tuple[str, ...], project_id: int | None = None):
        super().__init__()
        self.project = project
        self.modules = modules
        self.project_id = project_id
        self.toggled = False  # the user changed the module selection

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Scan {self.project}  (space toggles a module, tab moves)")
            yield SelectionList[str](*[(describe(m), m, True) for m in self.modules], id="modules")
            yield Input(placeholder="ports: top100 (default), top1000, all, 22,80,8000-8100", id="ports")
            yield Input(placeholder="nameserver HOST:PORT (default: system resolver)", id="nameserver")
            yield Static("", id="error", classes="error")
            yield Button("Start scan", variant="primary", id="start")

    def on_mount(self) -> None:
        self.query_one(SelectionList).styles.height = len(self.modules) + 2
        if self.project_id is not None:
            self._load_settings(self.project_id)

    @work(thread=True, exit_on_error=False)
    def _load_settings(self, project_id: int) -> None:
        from ...store import repo

        self.app.call_from_thread(self._prefill, repo.project_settings(project_id))

    def _prefill(self, settings: dict[str, Any]) -> None:
        modules = [m for m in settings.get("modules") or [] if m in self.modules]
        if modules and not self.toggled:
            selection = self.query_one(SelectionList)
            selection.deselect_all()
            for module in modules:
                selection.select(module)
        ports = self.query_one("#ports", Input)
        if settings.get("ports") and not ports.value:
            ports.value = str(settings["ports"])
        if settings.get("nameservers"):
            shown = ", ".join(map(str, settings["nameservers"]))
            self.query_one("#nameserver", Input).placeholder = f"nameserver HOST:PORT (default: {shown})"

    @on(SelectionList.SelectionToggled)
    def toggled_by_user(self) -> None:
        self.toggled = True

    @on(Input.Submitted)
    @on(Button.Pressed, "#start")
    def submit(self) -> None:
        modules = list(self.query_one(SelectionList).selected)
        if not modules:
            self.show_error("Choose at least one module.")
            return
        options: dict[str, Any] = {}
        ports = self.query_one("#ports", Input).value.strip()
        if ports:
            from ...core.portspec import parse_ports

            try:
                parse_ports(ports)
            except ValueError as exc:
                self.show_error(str(exc))
                return
            options["ports"] = ports
        nameserver = self.query_one("#nameserver", Input).value.strip()
        if nameserver:
            options["nameservers"] = [nameserver]
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
            yield Label(self.question)
            yield Static("y: yes   n: no", classes="hint")
