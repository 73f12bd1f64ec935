"""Turn values into Rich `Text` for widgets. Host-derived strings never go
through markup parsing: `Text(...)` shows `[bold]` literally, and
`clean_text` has already dropped escape sequences and control characters."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from rich.table import Table
from rich.text import Text

from ..core.sanitize import clean_text

STATE_STYLES = {
    "queued": "yellow",
    "running": "cyan",
    "cancelling": "magenta",
    "done": "green",
    "failed": "bold red",
    "cancelled": "dim",
}


def safe(value: object, limit: int = 200, style: str = "") -> Text:
    if value is None:
        return Text("")
    return Text(clean_text(value, limit), style=style, no_wrap=True, end="")


def state(value: str) -> Text:
    return Text(value, style=STATE_STYLES.get(value, ""))


def when(value: datetime | None, short: bool = False) -> str:
    if value is None:
        return ""
    if value.tzinfo is None:  # SQLite hands back naive UTC
        value = value.replace(tzinfo=UTC)
    return value.astimezone().strftime("%m-%d %H:%M" if short else "%Y-%m-%d %H:%M")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def ago(timestamp: float) -> str:
    return duration(time.time() - timestamp) + " ago"


def grid(pairs: list[tuple[str, object]], limit: int = 500) -> Table:
    """Two columns, bold keys: the detail panes' layout."""
    table = Table.grid(padding=(0, 1))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")  # URLs have no spaces to wrap at
    for key, value in pairs:
        if not isinstance(value, Text):
            value = safe(value, limit)
            value.no_wrap = False  # detail panes wrap long values rather than cut them
        table.add_row(key, value)
    return table
