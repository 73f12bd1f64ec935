"""One declaration per user action: its key(s), its footer label, its palette
title and help. A screen lists its `Action`s once in `ACTIONS`; `bindings()`
turns them into the screen's `BINDINGS`, and the app's command palette offers
the current screen's actions and the global ones (with their keys)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.dom import DOMNode
from textual.keys import format_key


@dataclass(frozen=True)
class Action:
    """`name` is a Textual action string ("scan", "tab('hosts')"), run on the
    screen (or app) that declares it. `keys` as in `Binding` ("delete,x"); empty:
    palette only. `palette=False`: a key only (Back, cursor keys...)."""

    name: str
    keys: str = ""
    label: str = ""  # short: the 80-column footer holds about 8 keys
    title: str = ""  # the palette's name for it; the label when empty
    help: str = ""
    footer: bool = True
    palette: bool = True
    priority: bool = False  # before the focused widget's own keys (Ctrl+C quits even in an input)

    @property
    def key_display(self) -> str:
        """The keys as shown to the user: "x", "del/x", "/", "^c" (as the footer writes Ctrl)."""
        return "/".join(format_key(k.strip()).replace("ctrl+", "^") for k in self.keys.split(",") if k.strip())

    @property
    def palette_help(self) -> str:
        keys = self.key_display
        return f"{self.help} ({keys})" if keys else self.help

    def binding(self) -> Binding:
        return Binding(self.keys, self.name, self.label, show=self.footer, priority=self.priority)


def bindings(actions: Iterable[Action]) -> list[BindingType]:
    """The `BINDINGS` of a screen (or the app): one per action with keys."""
    return [action.binding() for action in actions if action.keys]


def actions_of(node: DOMNode | App[Any]) -> list[Action]:
    """The `ACTIONS` of the node's class and its bases (as Textual merges `BINDINGS`), base first."""
    found: list[Action] = []
    for cls in reversed(type(node).__mro__):
        declared: Sequence[Action] = cls.__dict__.get("ACTIONS", ())
        found += [a for a in declared if a not in found]
    return found


def palette_commands(
    app: App[Any], actions: Iterable[Action], namespace: DOMNode | App[Any]
) -> Iterator[SystemCommand]:
    """Palette entries running each action in `namespace` (the declaring screen or app)."""
    for action in actions:
        if action.palette:
            callback = partial(app.run_action, action.name, namespace)
            yield SystemCommand(action.title or action.label, action.palette_help, callback)


# -- project settings: the dashboard's key, and the form's own (ui/screens/project_settings.py) --

PROJECT_SETTINGS = Action(
    "project_settings",
    "p",
    "Settings",
    "Project settings",
    "Scan settings of the project: modules, ports, nameservers, CT URL, wordlist, gone after",
    footer=False,
)
PROJECT_SETTINGS_FORM = [
    Action("dismiss(None)", "escape", "Cancel", palette=False),
    Action("save", "ctrl+s", "Save", palette=False),
]


# -- event rules: the events screen's keys, and the rules list's own (ui/screens/rules.py) --
# Off the footer: at 80 columns the events screen's footer is full; the palette has them, and
# the events table's bottom border names R and h once a rule exists.

EVENT_RULE_KEYS = [
    Action(
        "rule",
        "r",
        "Rule",
        "Rule from event",
        "Suppress or acknowledge events like the highlighted one, past and future",
        footer=False,
    ),
    Action("rules", "R", "Rules", "Event rules", "List and delete the event rules", footer=False),
    Action(
        "suppressed", "h", "Suppressed", "Show suppressed", "Show suppressed events too, or hide them", footer=False
    ),
]
RULES_FORM = [Action("close", "escape", "Close", palette=False)]
RULE_TABLE = [Action("screen.delete", "delete,x", "Delete", palette=False)]  # the table's keys only


# -- workers: the dashboard's key (the view itself, ui/screens/workers.py, has Back only) --

WORKERS = Action(
    "workers",
    "W",
    "Workers",
    "Workers",
    "Celery workers and what each runs now (their heartbeats in Redis), and this TUI's own scans",
    footer=False,
)
