"""`?` (or F1): every key of the current screen, its focused widget and the
global ones, generated from the action registry (`ui/actions.py`), so the
help can never disagree with the bindings."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.dom import DOMNode
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from ..actions import Action, actions_of, bindings

CLOSE = [Action("dismiss", "escape,question_mark,f1,q", "Close", palette=False)]
PALETTE = Action("command_palette", "ctrl+p", "Palette", help="Search every action above by name; the theme")


def sections(screen: Screen[Any]) -> list[tuple[str, list[Action]]]:
    """(heading, actions) for the focused widget and its containers, the screen, and the app.
    An action declared twice (a screen re-declaring a global key) is listed where it wins."""
    nodes: list[tuple[str, DOMNode]] = []
    focused = screen.focused
    while focused is not None and focused is not screen:
        if actions_of(focused):
            nodes.append((_name(focused), focused))
        focused = focused.parent  # type: ignore[assignment]
    nodes.append((_title(screen), screen))
    nodes.append(("Everywhere", screen.app))
    seen: set[str] = set()
    found = []
    for heading, node in nodes:
        shown = []
        for action in actions_of(node):
            keys = {k.strip() for k in action.keys.split(",") if k.strip()}
            if keys and keys <= seen:
                continue  # shadowed by a closer declaration of the same keys
            seen |= keys
            shown.append(action)
        if shown:
            found.append((heading, shown))
    return found


def _name(node: DOMNode) -> str:
    return f"The {node.id.replace('-', ' ')} table" if node.id else type(node).__name__


def _title(screen: Screen[Any]) -> str:
    name = type(screen).__name__.removesuffix("Screen").removesuffix("Form")
    return f"This screen ({name.lower()})"


def key_table(groups: Iterable[tuple[str, list[Action]]]) -> Group:
    parts: list[RenderableType] = []
    for heading, actions in [*groups, ("Command palette", [PALETTE])]:
        table = Table.grid(padding=(0, 2))
        table.add_column(width=8, no_wrap=True, style="bold")
        table.add_column(ratio=1)
        for action in actions:
            line = Text(action.title or action.label or action.name)
            if action.help:
                line.append(f" · {action.help}", style="dim")
            table.add_row(action.key_display or "palette", line)
        parts += [Text(heading, style="bold underline"), table, Text("")]
    return Group(*parts)


class HelpScreen(ModalScreen[None]):
    ACTIONS = CLOSE
    BINDINGS = bindings(CLOSE)
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 90; max-width: 100%; height: auto; max-height: 100%;
        border: thick $accent; background: $surface; padding: 0 1;
    }
    """

    def __init__(self, screen: Screen[Any]):
        super().__init__()
        self.groups = sections(screen)

    def compose(self) -> ComposeResult:
        with VerticalScroll() as scroll:
            scroll.border_title = "Keys"
            scroll.border_subtitle = "Esc or ? closes · ↑↓ scroll"
            yield Static(key_table(self.groups), id="help-keys")
