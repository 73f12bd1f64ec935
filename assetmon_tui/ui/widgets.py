"""Widgets the screens share: the hidden filter box (applied on Enter, or
narrowing as you type), a table filler that never needs a horizontal
scrollbar, and `PagedTable`, a DataTable over a long list of rows that holds
only the rows looked at so far (more are added as the cursor or the scroll
nears the end), with columns that fit its width by priority.
(The live scan panel is in `panels.py`.)"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import DataTable, Footer, Input

R = TypeVar("R")


class FilterInput(Input):
    """A hidden filter box: `open()` shows it, Enter applies (an empty filter
    hides it again), Escape clears and hides it instead of leaving the screen.
    Either way the screen gets one `Applied` message with the text. With
    `live=True` the screen also gets a `Typed` message while the user types,
    `delay` seconds after the last key (debounced), to narrow the rows at once."""

    BINDINGS = [Binding("escape", "clear", "Clear filter")]

    class Applied(Message):
        def __init__(self, text: str):
            super().__init__()
            self.text = text

    class Typed(Message):
        """The text so far (live filters only): narrow the rows, keep the focus in the box."""

        def __init__(self, text: str):
            super().__init__()
            self.text = text

    def __init__(self, *args: Any, live: bool = False, delay: float = 0.15, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.live = live
        self.delay = delay
        self._timer: Timer | None = None

    @property
    def pending(self) -> bool:
        """A typed text not yet sent (its debounce delay runs)."""
        return self._timer is not None

    def open(self) -> None:
        self.remove_class("hidden")
        self.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if not self.live or self.has_class("hidden"):
            return
        self._cancel()
        self._timer = self.set_timer(self.delay, self._typed)

    def _typed(self) -> None:
        self._timer = None
        self.post_message(self.Typed(self.value.strip()))

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._cancel()
        text = event.value.strip()
        if not text:
            self.add_class("hidden")
        self.post_message(self.Applied(text))

    def action_clear(self) -> None:
        self._cancel()
        self.value = ""
        self._cancel()  # the change just made is no typing
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


# -- columns that fit the table's width ----------------------------------------------------

CELL_PADDING = 2  # a DataTable cell's padding, left and right
SCROLLBAR = 2  # the vertical scrollbar's width, kept free so a long list never needs a horizontal one


@dataclass(frozen=True)
class Column:
    """A table column: `name` (its key), the `label` of its header, the `width`
    it wants, the narrowest it may get (`least`, 0: its width), and `rank`
    (0 matters most; at a narrow width the highest ranks are dropped first).
    `grow`: takes the room left over (one per table, e.g. a name or a title)."""

    name: str
    label: str
    width: int
    least: int = 0
    rank: int = 0
    grow: bool = False

    @property
    def narrowest(self) -> int:
        return self.least or self.width


def fit_columns(columns: Sequence[Column], width: int) -> list[tuple[Column, int]]:
    """The columns to show in a table `width` cells wide (the scrollbar left
    out), in their order, each with its width: columns shrink to their
    narrowest before any is dropped (highest rank first; the first two always
    show); the room left widens the shrunk ones, most important first, and the
    rest goes to the `grow` column. Never wider than `width`."""
    room = max(width - SCROLLBAR, 0)
    kept = list(columns)
    while len(kept) > 2 and sum(c.narrowest + CELL_PADDING for c in kept) > room:
        kept.remove(max(kept[2:], key=lambda c: (c.rank, kept.index(c))))
    widths = {c.name: c.narrowest for c in kept}
    spare = room - sum(widths.values()) - CELL_PADDING * len(kept)
    for column in sorted(kept, key=lambda c: c.rank):
        grow = min(max(spare, 0), column.width - widths[column.name])
        widths[column.name] += grow
        spare -= grow
    growing = [c for c in kept if c.grow]
    if spare > 0 and growing:
        widths[growing[0].name] += spare
    elif spare < 0:  # even the narrowest do not fit: the growing (else the widest) column gives way
        give = growing[0] if growing else max(kept, key=lambda c: widths[c.name])
        widths[give.name] = max(1, widths[give.name] + spare)
    return [(c, widths[c.name]) for c in kept]


def ellipsis(text: Text) -> Text:
    """A cell that shows "…" where its column cuts it (a DataTable crops without a sign)."""
    text.no_wrap = True
    text.overflow = "ellipsis"
    text.end = ""
    return text


# -- a long list, added to the table as it is looked at ---------------------------------------


class PagedTable(DataTable[Any], Generic[R]):
    """A DataTable over `rows` (any objects), of which only the first ones are
    added to the table: `page` at a time, more as the cursor or the scroll
    comes near the last one added (so any row is reached by moving down, and
    Ctrl+End adds them all). `cells(row, names)` makes a row's cells for the
    named columns; its columns are `columns` fitted to the table's width
    (`fit_columns`), made again when the width changes. Row keys are the rows'
    indexes in `rows`. Posts `Paged` whenever the rows added change."""

    PAGE = 80
    AHEAD = 30  # add the next page when the cursor is this close to the last row added

    class Paged(Message):
        """Rows were added, or the rows or columns replaced."""

        def __init__(self, table: PagedTable[Any]):
            super().__init__()
            self.table = table

        @property
        def control(self) -> PagedTable[Any]:
            return self.table

    def __init__(self, columns: Sequence[Column], cells: Callable[[R, list[str]], list[Any]], **kwargs: Any):
        super().__init__(**kwargs)
        self.specs = list(columns)
        self.make_cells = cells
        self.items: list[R] = []
        self.labels: dict[str, str] = {}  # column name -> its label as shown (a sort arrow...)
        self.shown: list[tuple[Column, int]] = []
        self._fitted_width = -1
        self._adding = False

    # -- what the table holds -----------------------------------------------------------

    @property
    def loaded(self) -> int:
        return self.row_count

    @property
    def total(self) -> int:
        return len(self.items)

    @property
    def names(self) -> list[str]:
        """The columns shown, by name."""
        return [c.name for c, _ in self.shown]

    def show(self, items: list[R], cursor: int = 0, labels: dict[str, str] | None = None) -> None:
        """Replace the rows: the first page, or up to the row `cursor`, which gets the cursor.
        `labels`: the header labels by column name (e.g. with a sort arrow); the columns' own by default."""
        self.items = items
        self._quietly(self.clear)
        relabel = labels is not None and labels != self.labels
        if labels is not None:
            self.labels = labels
        self._fit(force=not self.columns or relabel)
        self._add(max(self.PAGE, cursor + self.AHEAD))
        if items:
            self.move_cursor(row=min(cursor, self.row_count - 1), animate=False)
        self.post_message(self.Paged(self))

    def row_at(self, index: int) -> R | None:
        return self.items[index] if 0 <= index < len(self.items) else None

    def highlighted(self) -> R | None:
        """The row under the cursor."""
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        return self.row_at(int(key)) if key is not None else None

    def load_all(self) -> None:
        self._add(len(self.items))

    def _add(self, upto: int) -> None:
        upto = min(upto, len(self.items))
        start = self.row_count
        if upto <= start or self._adding:
            return
        self._adding = True
        try:
            names = self.names
            for index in range(start, upto):
                self.add_row(*self.make_cells(self.items[index], names), key=str(index))
        finally:
            self._adding = False
        if start:  # (show() posts its own)
            self.post_message(self.Paged(self))

    def _quietly(self, do: Callable[..., Any], **kwargs: Any) -> None:
        """Without adding rows as the cursor moves (clearing moves it)."""
        adding, self._adding = self._adding, True
        try:
            do(**kwargs)
        finally:
            self._adding = adding

    def _more(self, near: int) -> None:
        if near >= self.row_count - self.AHEAD and self.row_count < len(self.items):
            self._add(self.row_count + self.PAGE)

    # -- columns ------------------------------------------------------------------------

    def _fit(self, force: bool = False) -> None:
        width = self.size.width or self._pane_width()
        if not force and width == self._fitted_width:
            return
        fitted = fit_columns(self.specs, width or 80)
        if not force and fitted == self.shown:
            self._fitted_width = width
            return
        self._fitted_width = width
        self.shown = fitted
        loaded, cursor = self.row_count, self.cursor_row
        self._quietly(self.clear, columns=True)
        for column, w in fitted:
            self.add_column(self.labels.get(column.name, column.label), width=w, key=column.name)
        self._add(loaded)
        if loaded:
            self.move_cursor(row=min(cursor, self.row_count - 1), animate=False)
        self.post_message(self.Paged(self))

    def _pane_width(self) -> int:
        """A hidden table (in a hidden tab) has no width: the width of the first ancestor shown,
        so it is filled as it will show (not filled again when its tab is)."""
        node = self.parent
        while isinstance(node, Widget):
            if node.size.width:
                return int(node.size.width - node.styles.gutter.width)
            node = node.parent
        return 0

    def on_resize(self, event: events.Resize) -> None:
        self._fit()

    # -- more rows as the cursor or the scroll nears the end ----------------------------

    def watch_cursor_coordinate(self, old: Any, new: Any) -> None:
        super().watch_cursor_coordinate(old, new)
        if not self._adding:
            self._more(new.row)

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if not self._adding and new >= self.max_scroll_y - self.size.height:
            self.call_after_refresh(self._more, self.row_count)

    def move_cursor(
        self, *, row: int | None = None, column: int | None = None, animate: bool = False, scroll: bool = True
    ) -> None:
        """As DataTable's; a row not added yet is added first (with the rows before it)."""
        if row is not None and row >= self.row_count:
            self._add(row + self.AHEAD)
        super().move_cursor(row=row, column=column, animate=animate, scroll=scroll)

    def action_scroll_bottom(self) -> None:
        """Ctrl+End: the last row (every row added first)."""
        self.load_all()
        super().action_scroll_bottom()


class KeyFooter(Footer):
    """Textual's Footer rebuilds its keys on every bindings signal: three times
    while the dashboard starts (focus, screen stack, focus again), with the same
    keys each time, ~10 ms a time for nine keys. This one rebuilds only when
    the keys it shows changed."""

    _shown: tuple[tuple[Binding, bool, str], ...] | None = None

    async def recompose(self) -> None:
        if not self.is_attached:  # its screen was closed after the rebuild was asked for
            return
        shown = tuple((b, on, tip) for _, b, on, tip in self.screen.active_bindings.values() if b.show)
        if shown == self._shown:
            return
        self._shown = shown
        await super().recompose()


def footer() -> Footer:
    """Every screen's footer: its keys in a compact line; the palette key is left out
    (80 columns hold about nine keys; `?` lists every key, `^p` included)."""
    return KeyFooter(compact=True, show_command_palette=False)
