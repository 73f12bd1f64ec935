"""Widgets the screens share: the hidden filter box and a table filler that
never needs a horizontal scrollbar. (The live scan panel is in `panels.py`.)"""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable, Input


class FilterInput(Input):
    """A hidden filter box: `open()` shows it, Enter applies (an empty filter
    hides it again), Escape clears and hides it instead of leaving the screen.
    Either way the screen gets one `Applied` message with the text."""

    BINDINGS = [Binding("escape", "clear", "Clear filter")]

    class Applied(Message):
        def __init__(self, text: str):
            super().__init__()
            self.text = text

    def open(self) -> None:
        self.remove_class("hidden")
        self.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        if not text:
            self.add_class("hidden")
        self.post_message(self.Applied(text))

    def action_clear(self) -> None:
        self.value = ""
        self.add_class("hidden")
        self.post_message(self.Applied(""))


def fill_table(
    table: DataTable[Any], labels: tuple[str, ...], rows: list[tuple[list[Any], str]], caps: tuple[int, ...]
) -> None:
    """Replace columns and rows. Every column is as wide as its content (at most
    its cap); the last one takes the rest of the table's width, so the table
    never needs a horizontal scrollbar (long values are cut: a detail pane shows them)."""
    widths = [len(label) for label in labels]
    for cells, _ in rows:
        for i, cell in enumerate(cells[:-1]):
            widths[i] = max(widths[i], cell.cell_len if isinstance(cell, Text) else cell_len(str(cell)))
    widths = [min(w, cap) for w, cap in zip(widths, caps, strict=False)]
    room = table.size.width - 2 - 2 * table.cell_padding * len(labels)  # 2: the vertical scrollbar
    last = room - sum(widths[:-1])
    table.clear(columns=True)
    for label, width in zip(labels[:-1], widths[:-1], strict=False):
        table.add_column(label, width=width)
    table.add_column(labels[-1], width=max(last, 10) if table.size.width else None)
    for cells, key in rows:
        table.add_row(*cells, key=key)
