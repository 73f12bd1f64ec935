"""Trends of a project's inventory over its done scans, and the scans
themselves: Enter diffs one with the previous. Every count is the scan's
`events.Inventory` (`events.history`), as Results and the scans table show
it; the table adds the assets each scan left unconfirmed.

The chart is honest: its y axis starts at 0 (20 -> 21 services is a small
step, not empty -> full), its x axis is the scans, oldest first, and one
metric is drawn at a time (`m` shows the next) beside every metric's last
value in words. Plotext is imported when the screen is built, never by the
first frame."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static

from ..actions import Action, bindings
from ..text import when
from ..widgets import footer
from .base import BACK
from .diff import DiffScreen

if TYPE_CHECKING:
    from textual_plotext import PlotextPlot

# (history key, label, line colour)
METRICS = (
    ("hosts", "hosts", "cyan"),
    ("services", "services", "green"),
    ("endpoints", "web", "magenta"),
    ("findings", "findings", "red"),
    ("events", "events", "yellow"),
)
X_LABEL_GAP = 3  # columns at least between two x tick labels


def y_top(top: float) -> float:
    """The y axis' upper limit: a little above the highest value (1 for none)."""
    return max(1.0, top * 1.1, top + 1.0)


def y_ticks(upper: float, rows: int) -> list[int]:
    """Whole-number ticks from 0 up to `upper` (a step of 1, 2 or 5 times a
    power of ten), about two rows apart or more (`rows`: the chart's
    height, its x axis included)."""
    most = max(2, min((rows - 2) // 2, 7))
    magnitude = 1
    while True:
        for m in (1, 2, 5):
            step = m * magnitude
            if int(upper // step) + 1 <= most:
                return [i * step for i in range(int(upper // step) + 1)]
        magnitude *= 10


def x_ticks(n: int, width: int, label: int = 4) -> list[int]:
    """Positions (1..n) of the scans labelled on the x axis: the first, the
    last and evenly spaced ones between, as many labels `label` wide as the
    width holds."""
    room = max(2, width // (label + X_LABEL_GAP))
    if n <= room:
        return list(range(1, n + 1))
    step = (n - 1) / (room - 1)
    return sorted({1 + round(i * step) for i in range(room)})


class TrendsScreen(Screen[None]):
    ACTIONS = [
        BACK,
        Action("metric", "m", "Metric", "Next metric", "Chart the next metric (hosts, services, web, …)"),
        Action("reload", "f5", "Reload", help="Read the project's scans again"),
    ]
    BINDINGS = bindings(ACTIONS)
    DEFAULT_CSS = """
    TrendsScreen #trend-chart { height: 2fr; min-height: 9; border: round $primary; padding: 0 1; }
    TrendsScreen #trend-plot { width: 1fr; height: 1fr; }
    TrendsScreen #trend-values { width: 27; height: auto; padding-left: 1; }
    TrendsScreen #history { height: 1fr; min-height: 6; }
    """

    def __init__(self, project_id: int, project_name: str):
        super().__init__()
        self.project_id = project_id
        self.project_name = project_name
        self.history: list[dict[str, Any]] = []
        self.times: list[str] = []
        self.metric = 0  # index into METRICS of the metric charted
        self.limits: tuple[float, float] | None = None  # the chart's y limits as last drawn

    def compose(self) -> ComposeResult:
        from textual_plotext import PlotextPlot  # plotext is loaded with this screen only

        yield Header()
        with Horizontal(id="trend-chart"):
            yield PlotextPlot(id="trend-plot")
            yield Static("", id="trend-values")
        yield DataTable(id="history", cursor_type="row", zebra_stripes=True)
        yield footer()

    def on_mount(self) -> None:
        self.sub_title = f"trends · {self.project_name}"
        table = self.query_one("#history", DataTable)
        table.add_columns("scan", "finished", "hosts", "services", "web", "findings", "events", "unconfirmed")
        table.border_title = "Scans (Enter: diff with the previous one)"
        table.focus()
        self._titles()
        self.action_reload()

    @property
    def plot(self) -> PlotextPlot:
        from textual_plotext import PlotextPlot

        return self.query_one("#trend-plot", PlotextPlot)

    @work(thread=True, exclusive=True, exit_on_error=False)
    def action_reload(self) -> None:
        from ...events import history

        rows = history(self.project_id)
        times = [when(r["finished_at"]) for r in rows]
        short = [when(r["finished_at"], short=True) for r in rows]
        self.app.call_from_thread(self._fill, rows, times, short)

    def action_metric(self) -> None:
        self.metric = (self.metric + 1) % len(METRICS)
        self._titles()
        self._last()
        self._draw()

    def _titles(self) -> None:
        box = self.query_one("#trend-chart")
        label = METRICS[self.metric][1]
        box.border_title = f"Inventory over done scans: {label}, from 0 · m: next metric"
        if not self.history:
            box.border_subtitle = "no done scans with a snapshot yet"
        else:
            first, last = self.times[0], self.times[-1]
            span = first if len(self.history) == 1 else f"{first} → {last}"
            box.border_subtitle = f"{len(self.history)} scans · {span}"

    def _fill(self, rows: list[dict[str, Any]], times: list[str], short: list[str]) -> None:
        self.history, self.times = rows, times
        self._titles()
        self._last()
        self._draw()
        table = self.query_one("#history", DataTable)
        table.clear()
        for r, finished in zip(reversed(rows), reversed(short), strict=False):
            unconfirmed = Text(str(r["unconfirmed"]), style="yellow" if r["unconfirmed"] else "dim")
            table.add_row(f"#{r['id']}", finished, *(str(r[k]) for k, _, _ in METRICS), unconfirmed, key=str(r["id"]))

    def _last(self) -> None:
        """Every metric's last value, its change since the scan before and its range."""
        lines = Text(no_wrap=True, overflow="ellipsis")
        lines.append(f"{'last scan':<17}{'change':>7}\n", style="bold")
        for index, (key, label, colour) in enumerate(METRICS):
            values = [int(r[key]) for r in self.history]
            charted = index == self.metric
            lines.append("▸ " if charted else "  ", style=f"bold {colour}")
            lines.append(f"{label:<9}", style=f"bold {colour}" if charted else colour)
            if not values:
                lines.append("no data\n", style="dim")
                continue
            lines.append(f"{values[-1]:>6,}", style="bold")
            delta = values[-1] - values[-2] if len(values) > 1 else 0
            shown = f"{delta:+,}" if len(values) > 1 else ""
            lines.append(f"{shown:>7}\n", style="green" if delta > 0 else "red" if delta < 0 else "dim")
        if self.history:
            key = METRICS[self.metric][0]
            values = [int(r[key]) for r in self.history]
            lines.append(f"\n  range {min(values):,}–{max(values):,}", style="dim")
        self.query_one("#trend-values", Static).update(lines)

    def on_resize(self) -> None:
        self.call_after_refresh(self._draw)  # the ticks depend on the chart's size

    def _draw(self) -> None:
        """The charted metric, one point per scan, on a y axis from 0."""
        plot = self.plot
        plt = plot.plt
        plt.clear_figure()
        plt.xaxes(True, False)  # the axes, no frame above and right of the chart
        plt.yaxes(True, False)
        key, label, colour = METRICS[self.metric]
        values = [int(r[key]) for r in self.history]
        self.limits = (0.0, y_top(max(values, default=0)))
        ticks = y_ticks(self.limits[1], plot.size.height or 12)
        plt.ylim(*self.limits)
        plt.yticks([float(t) for t in ticks], [f"{t:,}" for t in ticks])
        n = len(values)
        xs = list(range(1, n + 1))
        if n:
            # Half-cell blocks: finer than a marker per cell (whose rounding would
            # put a point off its own line) and drawn alike by every font (braille
            # dots drift in some fonts and in SVG). One scan: one point.
            if n > 1:
                plt.plot(xs, values, marker="hd", color=colour)
            else:
                plt.scatter(xs, values, marker="●", color=colour)
            labels = [f"#{r['id']}" for r in self.history]
            shown = x_ticks(n, max(1, (plot.size.width or 60) - 6), max(map(len, labels)))
            plt.xticks([float(i) for i in shown], [labels[i - 1] for i in shown])
            plt.xlim(0.5, n + 0.5)
        else:
            plt.xticks([], [])
            plt.xlim(0, 1)
        plot.refresh()

    @on(DataTable.RowSelected, "#history")
    def diff_previous(self, event: DataTable.RowSelected) -> None:
        ids = [r["id"] for r in self.history]
        scan_id = int(event.row_key.value or 0)
        at = ids.index(scan_id)
        if at == 0:
            self.notify("The first scan has nothing earlier to compare with.", markup=False)
            return
        self.app.push_screen(DiffScreen(ids[at - 1], scan_id, self.project_name))
