"""Trends of a project's inventory over its done scans (Sparklines), and the
scans themselves: Enter diffs one with the previous. Every count is the
scan's `events.Inventory` (`events.history`), as Results and the scans table
show it; the table adds the assets each scan left unconfirmed."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label, Sparkline, Static

from ..actions import Action, bindings
from ..text import when
from .base import BACK
from .diff import DiffScreen

METRICS = (
    ("hosts", "hosts"),
    ("services", "services"),
    ("endpoints", "web"),
    ("findings", "findings"),
    ("events", "events"),
)


class TrendsScreen(Screen[None]):
    ACTIONS = [BACK, Action("reload", "f5", "Reload", help="Read the project's scans again")]
    BINDINGS = bindings(ACTIONS)

    def __init__(self, project_id: int, project_name: str):
        super().__init__()
        self.project_id = project_id
        self.project_name = project_name
        self.history: list[dict[str, Any]] = []

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="trends"):
            for key, label in METRICS:
                with Horizontal(classes="trend"):
                    yield Label(label, classes="trend-label")
                    yield Sparkline([], id=f"spark-{key}", classes="trend-spark")
                    yield Static("", id=f"last-{key}", classes="trend-last")
        yield DataTable(id="history", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = f"trends · {self.project_name}"
        self.query_one("#trends").border_title = "Inventory over done scans (oldest → newest)"
        table = self.query_one("#history", DataTable)
        table.add_columns("scan", "finished", "hosts", "services", "web", "findings", "events", "unconfirmed")
        table.border_title = "Scans (Enter: diff with the previous one)"
        table.focus()
        self.action_reload()

    @work(thread=True, exclusive=True, exit_on_error=False)
    def action_reload(self) -> None:
        from ...events import history

        rows = history(self.project_id)
        times = [when(r["finished_at"]) for r in rows]
        self.app.call_from_thread(self._fill, rows, times)

    def _fill(self, rows: list[dict[str, Any]], times: list[str]) -> None:
        self.history = rows
        for key, _ in METRICS:
            values = [float(r[key]) for r in rows]
            self.query_one(f"#spark-{key}", Sparkline).data = values
            if values:
                last = int(values[-1])
                delta = int(values[-1] - values[-2]) if len(values) > 1 else 0
                style = "green" if delta > 0 else "red" if delta < 0 else "dim"
                self.query_one(f"#last-{key}", Static).update(
                    Text.assemble(
                        (f"{last:>6}", "bold"),
                        (f" {delta:+d}" if len(values) > 1 else "", style),
                        (f"  {int(min(values))}–{int(max(values))}", "dim"),
                    )
                )
            else:
                self.query_one(f"#last-{key}", Static).update(Text("no data", style="dim"))
        table = self.query_one("#history", DataTable)
        table.clear()
        for r, finished in zip(reversed(rows), reversed(times), strict=False):
            unconfirmed = Text(str(r["unconfirmed"]), style="yellow" if r["unconfirmed"] else "dim")
            table.add_row(f"#{r['id']}", finished, *(str(r[k]) for k, _ in METRICS), unconfirmed, key=str(r["id"]))
        if not rows:
            self.query_one("#trends").border_subtitle = "no done scans with a snapshot yet"
        else:
            self.query_one("#trends").border_subtitle = f"{len(rows)} scans"

    @on(DataTable.RowSelected, "#history")
    def diff_previous(self, event: DataTable.RowSelected) -> None:
        ids = [r["id"] for r in self.history]
        scan_id = int(event.row_key.value or 0)
        at = ids.index(scan_id)
        if at == 0:
            self.notify("The first scan has nothing earlier to compare with.", markup=False)
            return
        self.app.push_screen(DiffScreen(ids[at - 1], scan_id, self.project_name))
