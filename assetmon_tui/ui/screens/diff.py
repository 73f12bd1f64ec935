"""The diff between two done scans of a project: what was added and removed."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Header, Static

from ...core.sanitize import clean_text
from ..actions import Action, bindings
from ..text import safe
from ..widgets import footer
from .base import BACK

DIFF_GROUPS = (
    ("hosts", "Hosts"),
    ("dns", "DNS records"),
    ("services", "Services"),
    ("endpoints", "Web endpoints"),
    ("js", "JavaScript files"),
    ("findings", "Findings"),
)


class DiffScreen(Screen[None]):
    ACTIONS = [BACK, Action("swap", "w", "Swap", "Swap scans", "Show the diff the other way round")]
    BINDINGS = bindings(ACTIONS)

    def __init__(self, scan_a: int, scan_b: int, project_name: str = ""):
        super().__init__()
        self.scan_a, self.scan_b = scan_a, scan_b
        self.project_name = project_name

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="diff-pane"):
            yield Static("Comparing…", id="diff")
        yield footer()

    def on_mount(self) -> None:
        self.sub_title = f"diff · {self.project_name}".rstrip(" ·")
        self.query_one("#diff-pane").focus()
        self._load()

    def action_swap(self) -> None:
        self.scan_a, self.scan_b = self.scan_b, self.scan_a
        self._load()

    @work(thread=True, exclusive=True, exit_on_error=False)
    def _load(self) -> None:
        from ...events import scan_diff

        try:
            diff = scan_diff(self.scan_a, self.scan_b)
        except Exception as exc:
            self.app.call_from_thread(self._show, None, str(exc) or type(exc).__name__)
            return
        self.app.call_from_thread(self._show, diff, "")

    def _show(self, diff: dict[str, Any] | None, error: str) -> None:
        pane = self.query_one("#diff-pane")
        pane.border_title = f"Scan #{self.scan_a} → scan #{self.scan_b}"
        if diff is None:
            self.query_one("#diff", Static).update(Text(clean_text(error, 500), style="red"))
            return
        parts: list[Any] = []
        total_added = total_removed = 0
        for key, title in DIFF_GROUPS:
            group = diff.get(key) or {"added": [], "removed": []}
            added, removed = group["added"], group["removed"]
            total_added += len(added)
            total_removed += len(removed)
            if not added and not removed:
                continue
            parts.append(
                Text.assemble(
                    (title, "bold underline"), "  ", (f"+{len(added)}", "green"), " ", (f"-{len(removed)}", "red")
                )
            )
            parts += [Text.assemble(("+ ", "bold green"), safe(item, 300, style="green")) for item in added]
            parts += [Text.assemble(("- ", "bold red"), safe(item, 300, style="red")) for item in removed]
            parts.append(Text(""))
        if not parts:
            parts = [Text("No differences in the inventory.", style="dim")]
        pane.border_subtitle = f"+{total_added} -{total_removed} · w swaps"
        self.query_one("#diff", Static).update(Group(*parts))
