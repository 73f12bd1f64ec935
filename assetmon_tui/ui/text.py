"""Turn values into Rich `Text` for widgets. Host-derived strings never go
through markup parsing: `Text(...)` shows `[bold]` literally, and
`clean_text` has already dropped escape sequences and control characters.
Every time shown goes through `when` (database times are UTC: shown local)."""

from __future__ import annotations

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


SEVERITIES = ("info", "low", "medium", "high", "critical")  # ascending, as store.event_log.SEVERITIES
SEVERITY_STYLES = {
    "critical": "bold white on red",
    "high": "bold red",
    "medium": "yellow",
    "low": "cyan",
    "info": "dim",
}
FILTER_CYCLE = (None, "low", "medium", "high", "critical")  # a minimum; None shows everything


def safe(value: object, limit: int = 200, style: str = "") -> Text:
    if value is None:
        return Text("")
    return Text(clean_text(value, limit), style=style, no_wrap=True, end="")


def multiline(value: object, limit: int = 20_000) -> Text:
    """Host-derived text over several lines: escapes and controls dropped, no markup."""
    return Text(clean_text(value, limit, single_line=False))  # end="" would lose the last line in a Group


def state(value: str) -> Text:
    return Text(value, style=STATE_STYLES.get(value, ""))


def severity(value: str | None, pad: int = 0) -> Text:
    value = value or ""
    return Text(value.ljust(pad), style=SEVERITY_STYLES.get(value, ""), no_wrap=True, end="")


def rank(value: str | None) -> int:
    return SEVERITIES.index(value) if value in SEVERITIES else 0


def next_filter(current: str | None) -> str | None:
    return FILTER_CYCLE[(FILTER_CYCLE.index(current) + 1) % len(FILTER_CYCLE)] if current in FILTER_CYCLE else None


def when(value: datetime | None, short: bool = False, empty: str = "") -> str:
    """ "11-28 14:05" (short) or "2026-11-28 14:05", in local time."""
    if value is None:
        return empty
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


def plural(n: int, noun: str) -> str:
    """ "1 rule", "2 rules", "1,204 hosts" (nouns whose plural adds an s)."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"
