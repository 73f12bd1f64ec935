"""The live panel of one active scan: state, elapsed time, a bar per module,
counters and the last message."""

from __future__ import annotations

from rich.console import Group
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from ..core.progress import Progress
from .text import duration, safe, state

MODULE_STYLES = {"done": "green", "failed": "red", "cancelled": "dim", "running": "cyan", "pending": "dim"}


class ScanPanel(Static):
    """Re-rendered in one piece on each poll: cheap, and never half-updated."""

    DEFAULT_CSS = """
    ScanPanel { border: round $accent; padding: 0 1; height: auto; margin-bottom: 0; }
    """

    def __init__(self, scan_id: int, title: str):
        super().__init__(id=f"scan-panel-{scan_id}", classes="scan-panel")
        self.scan_id = scan_id
        self.border_title = title
        self.progress: Progress | None = None

    def show(self, progress: Progress, backend: str) -> None:
        self.progress = progress
        self.border_subtitle = f"{backend} · {duration(progress.elapsed)}"
        header = Text(f"{progress.state} · {duration(progress.elapsed)} elapsed")
        header.stylize(state(progress.state).style, 0, len(progress.state))
        bars = Table.grid(padding=(0, 1), expand=True)
        bars.add_column(width=10)
        bars.add_column(ratio=1)
        bars.add_column(width=12, justify="right")
        for name, mod in progress.modules.items():
            count = f"{mod.done}/{mod.total}" if mod.total else mod.status
            bar = ProgressBar(total=1.0, completed=mod.fraction, complete_style=MODULE_STYLES.get(mod.status, "cyan"))
            bars.add_row(Text(name, style=MODULE_STYLES.get(mod.status, "")), bar, Text(count, style="dim"))
        counters = "  ".join(f"{k} {v}" for k, v in sorted(progress.counters.items())) or "no results yet"
        message = safe(progress.message, 120, style="italic")
        message.end = "\n"  # a Group's last Text without a newline is not shown at all
        self.update(Group(header, bars, Text(counters), message))
