"""Table columns that fit the pane: each column says the width it wants, how
narrow it may get and how much it matters; `fit` keeps the columns that
matter most at the widths the pane allows, and `cut` shortens a cell to its
column with an ellipsis (a DataTable would crop it without a sign). Whole
values stay in the detail panes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text

PADDING = 2  # a DataTable cell's padding, left and right


@dataclass(frozen=True)
class Column:
    label: str
    width: int  # what it wants
    least: int = 0  # how narrow it may get (0: its width)
    rank: int = 0  # 0 matters most; the highest rank is dropped first when the pane is narrow

    @property
    def narrowest(self) -> int:
        return self.least or self.width


def fit(columns: Sequence[Column], width: int) -> list[tuple[Column, int]]:
    """The columns to show in a table `width` cells wide, in their order, each with its width.
    The first column always shows. Columns shrink before any is dropped; spare room
    widens shrunk columns again, the most important first."""
    kept = list(columns)
    while len(kept) > 1 and sum(c.narrowest + PADDING for c in kept) > width:
        kept.remove(max(kept[1:], key=lambda c: (c.rank, kept.index(c))))
    widths = {c.label: c.narrowest for c in kept}
    spare = width - sum(widths.values()) - PADDING * len(kept)
    for column in sorted(kept, key=lambda c: c.rank):
        grow = min(max(spare, 0), column.width - widths[column.label])
        widths[column.label] += grow
        spare -= grow
    return [(c, widths[c.label]) for c in kept]


def cut(value: object, width: int) -> object:
    """`value` within `width` cells, with "…" where it was cut. Other renderables
    than text (`panels.Counts`) fit themselves to the width they are given."""
    if not isinstance(value, (Text, str)):
        return value
    text = value.copy() if isinstance(value, Text) else Text(value)
    if text.cell_len > width:
        text.truncate(width, overflow="ellipsis")
    text.no_wrap = True
    return text
