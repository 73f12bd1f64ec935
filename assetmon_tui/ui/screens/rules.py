"""Event rules in the TUI: a form that makes a rule from an event ("suppress
or acknowledge events like this"), prefilled with its type, host and
fingerprint, and the list of rules (view, delete). Both are modal, fit 80x24,
and do their database work in thread workers. Values that came from scanned
hosts (summaries, hosts, fingerprints) are shown as plain `Text`, never markup."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Checkbox, DataTable, Input, Label, RadioButton, RadioSet, Static

from ...core.sanitize import clean_text
from ..actions import RULE_TABLE, RULES_FORM, bindings
from ..text import safe, when
from .forms import Form, confirm

ACTION_HELP = {
    "suppress": "suppress: hidden from the feed, notifications and exports",
    "acknowledge": "acknowledge: shown as seen, never notified",
}
FIELDS = (("type", "type"), ("host", "host"), ("fingerprint", "fingerprint"))  # (input id, label)


class RuleForm(Form):
    """A rule from one event: which of its fields must match (type and host
    may be edited into globs), suppress or acknowledge, this project or all, a
    note. Saves the rule itself; answers a message for the caller, or None."""

    DEFAULT_CSS = """
    RuleForm > Vertical { width: 74; }
    RuleForm #rule-summary { color: $text-muted; height: 1; }
    RuleForm RadioSet { margin-top: 1; }
    RuleForm .rule-field { height: 1; }
    RuleForm .rule-field Checkbox { width: 16; }
    RuleForm .rule-field Input { width: 1fr; background: $boost; }
    RuleForm .rule-field Input.unused { color: $text-disabled; }
    RuleForm .rule-field Label { width: 16; padding-left: 2; }
    RuleForm #rule-project { margin-top: 1; }
    RuleForm #rule-preview { margin-top: 1; height: 1; }
    """

    def __init__(
        self,
        *,
        project_id: int,
        project_name: str,
        event_type: str,
        host: str,
        fingerprint: str,
        summary: str = "",
        action: str = "suppress",
    ):
        super().__init__()
        self.project_id = project_id
        self.project_name = project_name
        self.values = {"type": event_type, "host": host, "fingerprint": fingerprint}
        self.summary = summary
        self.action = action if action in ACTION_HELP else "suppress"

    def compose(self) -> ComposeResult:
        # hostile values go into Inputs (which render plain text) cleaned of control characters
        with Vertical(id="rule-form"):
            yield Label(Text("Rule for events like this one", style="bold"))
            yield Static(safe(self.summary, 200), id="rule-summary")
            with RadioSet(id="rule-action", compact=True):
                for action, label in ACTION_HELP.items():
                    yield RadioButton(label, action == self.action, id=f"action-{action}", compact=True)
            for key, label in FIELDS:
                value = clean_text(self.values[key], 255)
                with Horizontal(classes="rule-field"):
                    yield Checkbox(label, key != "fingerprint" and bool(value), id=f"use-{key}", compact=True)
                    yield Input(
                        value,
                        placeholder="(none on this event)" if not value else "",
                        id=key,
                        compact=True,
                        select_on_focus=False,
                    )
            yield Checkbox(
                Text.assemble("only in project ", safe(self.project_name, 30, style="bold"), " (else every project)"),
                True,
                id="use-project",
                compact=True,
            )
            with Horizontal(classes="rule-field"):
                yield Label("note")
                yield Input(placeholder="why (optional)", id="note", compact=True)
            yield Static("", id="rule-preview")
            yield Static("* and ? are wildcards in type and host; the fingerprint is exact.", classes="hint")
            yield Static("", id="error", classes="error")
            yield Button("Save rule", variant="primary", id="save")

    def on_mount(self) -> None:
        self.query_one(RadioSet).focus()
        self._show_unused()
        self._preview(self.chosen())

    def _show_unused(self) -> None:
        """A field that does not take part is greyed (its value stays, to tick it again)."""
        for key, _ in FIELDS:
            used = self.query_one(f"#use-{key}", Checkbox).value
            self.query_one(f"#{key}", Input).set_class(not used, "unused")

    def chosen(self) -> dict[str, Any]:
        """The rule as the form shows it now: add_rule's arguments."""
        fields = {}
        for key, _ in FIELDS:
            used = self.query_one(f"#use-{key}", Checkbox).value
            fields[key] = self.query_one(f"#{key}", Input).value.strip() if used else ""
        pressed = self.query_one(RadioSet).pressed_button
        return {
            "action": (pressed.id or "").removeprefix("action-") if pressed else self.action,
            "project_id": self.project_id if self.query_one("#use-project", Checkbox).value else None,
            "event_type": fields["type"],
            "host": fields["host"],
            "fingerprint": fields["fingerprint"],
            "note": self.query_one("#note", Input).value,
        }

    @on(Input.Changed)
    @on(Checkbox.Changed)
    @on(RadioSet.Changed)
    def changed(self, event: Any) -> None:
        typed = isinstance(event, Input.Changed) and event.input.has_focus and event.input.id in dict(FIELDS)
        if typed and event.value.strip():  # typing in a field uses it (the prefilled values do not)
            self.query_one(f"#use-{event.input.id}", Checkbox).value = True
        self._show_unused()
        self._preview(self.chosen())

    @work(thread=True, exclusive=True, group="preview", exit_on_error=False)
    def _preview(self, fields: dict[str, Any]) -> None:
        from ...store.event_log import check_rule, rule_preview

        try:
            rule = check_rule(**fields)
        except ValueError as exc:
            text = Text(clean_text(str(exc), 200), style="yellow")
        else:
            total, new = rule_preview(rule)
            verb = "suppresses" if fields["action"] == "suppress" else "acknowledges"
            text = Text.assemble(
                (f"{verb.capitalize()} {total} stored event{'s' if total != 1 else ''}", "bold"),
                f" ({new} new) and future ones.",
            )
        self.app.call_from_thread(self.query_one("#rule-preview", Static).update, text)

    @on(Input.Submitted)
    @on(Button.Pressed, "#save")
    def save(self) -> None:
        self.show_error("")
        self._save(self.chosen())

    @work(thread=True, exclusive=True, group="save", exit_on_error=False)
    def _save(self, fields: dict[str, Any]) -> None:
        from ...store.event_log import add_rule, rule_preview

        try:
            rule = add_rule(**fields)
        except ValueError as exc:
            self.app.call_from_thread(self.show_error, clean_text(str(exc), 300))
            return
        total, _ = rule_preview(rule)
        verb = "suppresses" if rule.action == "suppress" else "acknowledges"
        message = f"Rule #{rule.id} saved: it {verb} {total} event{'s' if total != 1 else ''}"
        self.app.call_from_thread(self.dismiss, message)


# -- the rules list ---------------------------------------------------------------------------


class RuleTable(DataTable[Any]):
    ACTIONS = RULE_TABLE
    BINDINGS = bindings(ACTIONS)


RULE_COLUMNS = (("#", 3), ("project", 10), ("action", 6), ("type", 13), ("host", 15), ("fingerprint", 11))


class RulesForm(Form):
    """Every event rule: x deletes the highlighted one (after a y/n question).
    Answers True when a rule was deleted (the feed should be read again)."""

    ACTIONS = RULES_FORM
    BINDINGS = bindings(ACTIONS)
    DEFAULT_CSS = """
    RulesForm > Vertical { width: 78; }
    RulesForm #rules { height: 8; border: round $primary; }
    RulesForm #rule-detail { height: 4; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.rules: list[Any] = []
        self.projects: dict[int, str] = {}
        self.covered: dict[int, tuple[int, int]] = {}  # rule id: (stored events it matches, new ones)
        self.changed = False

    def compose(self) -> ComposeResult:
        with Vertical(id="rules-form"):
            yield Label(Text("Event rules", style="bold"))
            yield RuleTable(id="rules", cursor_type="row")
            yield Static("", id="rule-detail")
            yield Static("x deletes the highlighted rule · Esc closes · r on an event makes one", classes="hint")
            yield Static("", id="error", classes="error")

    def on_mount(self) -> None:
        table = self.query_one("#rules", DataTable)
        for label, width in RULE_COLUMNS:
            table.add_column(label, width=width)
        table.focus()
        self._load()

    def action_close(self) -> None:
        self.dismiss(self.changed)

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def _load(self) -> None:
        from ...store import event_log, repo

        projects = {p.id: p.name for p in repo.list_projects() if p.id is not None}
        rules = event_log.list_rules()
        covered = {r.id: event_log.rule_preview(r) for r in rules}
        self.app.call_from_thread(self._fill, projects, rules, covered)

    def _fill(self, projects: dict[int, str], rules: list[Any], covered: dict[int, tuple[int, int]]) -> None:
        self.projects = projects
        self.rules = rules
        self.covered = covered
        table = self.query_one("#rules", DataTable)
        cursor = table.cursor_row
        table.clear()
        for r in rules:
            table.add_row(
                str(r.id),
                safe(self._project(r), 10),
                Text("supp." if r.action == "suppress" else "ack", style="red" if r.action == "suppress" else "cyan"),
                safe(r.event_type or "*", 13),
                safe(r.host or "*", 15),
                safe(r.fingerprint or "*", 11),
                key=str(r.id),
            )
        table.border_title = f"{len(rules)} rule{'s' if len(rules) != 1 else ''}"
        if rules:
            table.move_cursor(row=min(cursor, len(rules) - 1))
        else:
            self.query_one("#rule-detail", Static).update(
                Text("No rules yet: on the events screen, r makes one from the highlighted event.", style="dim")
            )

    def _project(self, rule: Any) -> str:
        return "all" if rule.project_id is None else self.projects.get(rule.project_id, str(rule.project_id))

    def _highlighted(self) -> Any:
        table = self.query_one("#rules", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return next((r for r in self.rules if str(r.id) == key), None)

    @on(DataTable.RowHighlighted, "#rules")
    def show_detail(self) -> None:
        rule = self._highlighted()
        if rule is None:
            return
        total, new = self.covered.get(rule.id, (0, 0))
        lines = [
            Text.assemble(
                (f"#{rule.id} {rule.action}", "bold"),
                " in ",
                "every project" if rule.project_id is None else safe(self._project(rule), 30),
                f" · covers {total} stored event{'s' if total != 1 else ''} ({new} new)",
            ),
            Text.assemble(
                "type ", safe(rule.event_type or "any", 30, style="bold"), "  host ", safe(rule.host or "any", 40)
            ),
            Text.assemble("fingerprint ", safe(rule.fingerprint or "any", 60)),
            Text.assemble(f"made {when(rule.created_at)}", "  note " if rule.note else "", safe(rule.note, 50)),
        ]
        for line in lines:
            line.no_wrap, line.overflow = True, "ellipsis"
        self.query_one("#rule-detail", Static).update(Text("\n").join(lines))

    def action_delete(self) -> None:
        rule = self._highlighted()
        if rule is None:
            self.show_error("No rule to delete.")
            return
        question = f"Delete rule #{rule.id} ({rule.action})? Its events show again."
        confirm(self.app, question, lambda: self._delete(rule.id))

    @work(thread=True, exclusive=True, group="delete", exit_on_error=False)
    def _delete(self, rule_id: int) -> None:
        from ...store.event_log import delete_rule

        deleted = delete_rule(rule_id)
        self.changed = self.changed or deleted
        message = f"Rule #{rule_id} deleted: its events show again." if deleted else f"No rule #{rule_id}."
        self.app.call_from_thread(self.show_error, "")
        self.app.call_from_thread(self.notify, message, markup=False)
        self.app.call_from_thread(self._load)
