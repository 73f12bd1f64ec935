"""One scan at a glance: the live panel of an active scan (state, elapsed
time, a bar per module, counters, the last message and its warnings), the
scans table's status and counts cells, and the scan details modal (`i` on
the dashboard), which lists the sources that failed or were skipped.

Warnings and reasons may carry names and URLs from scanned hosts: they are
shown as plain `Text` (never markup), cleaned by `text.safe`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.measure import Measurement
from rich.padding import Padding
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ..core.fleet import workers_line
from ..core.progress import ModuleProgress, Progress
from .actions import Action, bindings
from .text import duration, grid, safe, state, when

MODULE_STYLES = {"done": "green", "failed": "red", "cancelled": "dim", "running": "cyan", "pending": "dim"}
WARNING_STYLE = "yellow"
SHOWN_WARNINGS = 2  # the panel's warning lines; the rest are counted ("… 3 more")


def warnings_of(scan: Any) -> list[dict[str, str]]:
    """A scan row's source outcomes that are not ok ({"source", "step", "status", "reason"})."""
    try:
        sources = json.loads(scan.sources or "[]")
    except ValueError:
        return []
    if not isinstance(sources, list):
        return []
    return [o for o in sources if isinstance(o, dict) and o.get("status", "ok") != "ok"]


def warning_count(scan: Any) -> int:
    """How many sources of a scan failed or were skipped (its summary's count for rows without sources)."""
    found = warnings_of(scan)
    if found:
        return len(found)
    try:
        summary = json.loads(scan.summary or "{}")
    except ValueError:
        return 0
    value = summary.get("warnings") if isinstance(summary, dict) else 0
    return value if isinstance(value, int) else 0


def scan_state(scan: Any) -> Text:
    """The scans table's status cell: "done 2 warn" for a done scan with warnings."""
    text = state(scan.status)
    warned = warning_count(scan) if scan.status == "done" else 0
    if warned:
        text.append(f" {warned} warn", style=f"bold {WARNING_STYLE}")
    return text


# The counts of a scan in words, in full and shortened for a narrow column
# (key: (singular, plural, short singular, short plural)).
COUNT_NOUNS = {
    "hosts": ("host", "hosts", "host", "hosts"),
    "services": ("service", "services", "svc", "svc"),
    "endpoints": ("endpoint", "endpoints", "url", "urls"),
    "findings": ("finding", "findings", "finding", "findings"),
}


class Counts:
    """ "264 hosts · 20 services · 292 endpoints", or "264 hosts · 20 svc · 292 urls"
    when the space it is drawn in is narrower (a table column): one renderable,
    the longest form that fits; narrower still, the short counts that fit and
    "…" for the rest. `str()` is the full form."""

    def __init__(self, counts: Mapping[str, int]):
        self.counts = {k: int(v) for k, v in counts.items() if k in COUNT_NOUNS and v}

    def parts(self, short: bool = False) -> list[str]:
        parts = []
        for key, (one, many, short_one, short_many) in COUNT_NOUNS.items():
            n = self.counts.get(key, 0)
            if n:
                noun = (short_one if n == 1 else short_many) if short else (one if n == 1 else many)
                parts.append(f"{n:,} {noun}")
        return parts

    def form(self, short: bool = False) -> str:
        return " · ".join(self.parts(short))

    def fitting(self, width: int) -> Text:
        for short in (False, True):
            if cell_len(self.form(short)) <= width:
                return Text(self.form(short), end="")
        parts = self.parts(short=True)
        while len(parts) > 1 and cell_len(" · ".join(parts[:-1]) + " …") > width:
            parts.pop()
        text = Text(" · ".join(parts[:-1]) + " …" if len(parts) > 1 else parts[0], end="")
        text.truncate(width, overflow="ellipsis")
        return text

    def __str__(self) -> str:
        return self.form()

    def key(self) -> tuple[int, ...]:
        return tuple(self.counts.get(k, 0) for k in COUNT_NOUNS)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Counts) and self.key() == other.key()

    def __lt__(self, other: Counts) -> bool:  # a table sorted by this column: by hosts, then services, …
        return self.key() < other.key()

    __hash__ = None  # type: ignore[assignment]

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.fitting(options.max_width)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(cell_len(self.form(short=True)), cell_len(self.form()))


def found_text(scan: Any, counts: Mapping[str, Any] | None) -> Counts:
    """The scans table's counts cell: a done scan's inventory (hosts, services,
    web endpoints, findings), else the counters its run reported."""
    if counts is None:
        summary = _json(scan.summary)
        counts = {k: summary[k] for k in ("hosts", "services", "endpoints") if isinstance(summary.get(k), int)}
    return Counts({k: v for k, v in counts.items() if isinstance(v, int)})


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
        self.shown: dict[str, float] = {}  # module -> the fraction its bar drew last: bars never go back

    def show(self, progress: Progress, backend: str) -> None:
        self.progress = progress
        self.border_subtitle = f"{backend} · {duration(progress.elapsed)}"
        shown = progress.state
        if progress.state == "done" and progress.warnings:
            shown = "done with warnings"
        header = Text(f"{shown} · {duration(progress.elapsed)} elapsed")
        header.stylize(state(progress.state).style, 0, len(progress.state))
        if shown != progress.state:
            header.stylize(WARNING_STYLE, len(progress.state), len(shown))
        bars = Table.grid(padding=(0, 1), expand=True)
        bars.add_column(width=10)
        bars.add_column(ratio=1)
        bars.add_column(width=18, justify="right", no_wrap=True)  # "123,456 of ≥234,567"
        for name, mod in progress.modules.items():
            bars.add_row(
                Text(name, style=MODULE_STYLES.get(mod.status, "")),
                self.bar(name, mod, progress.updated_at),
                Text(mod.count_text(), style="dim"),
            )
        counters = "  ".join(f"{k} {v}" for k, v in sorted(progress.counters.items())) or "no results yet"
        message = safe(progress.message, 120, style="italic")
        message.end = "\n"  # a Group's last Text without a newline is not shown at all
        lines: list[RenderableType] = [header, bars, Text(counters), message, *workers_lines(progress.workers)]
        self.update(Group(*lines, *warning_lines(progress.warnings)))

    def bar(self, name: str, mod: ModuleProgress, now: float) -> ProgressBar:
        """A module's bar: its share of a known total, never less than it drew
        before; a pulse while it runs on a total that may still grow (or none
        reported yet). The pulse moves with the progress' own clock, so a
        stalled scan's bar stands still."""
        style = MODULE_STYLES.get(mod.status, "cyan")
        if mod.status in ("running", "cancelling") and not mod.determinate:
            return ProgressBar(total=None, pulse=True, animation_time=now, pulse_style=style)
        fraction = mod.fraction if mod.status == "pending" else max(mod.fraction, self.shown.get(name, 0.0))
        self.shown[name] = fraction
        return ProgressBar(total=1.0, completed=fraction, complete_style=style)


def workers_lines(workers: list[str]) -> list[Text]:
    """One line naming the workers a fanned-out scan runs on (none when it is not), cut to the width."""
    shown = workers_line(workers)
    if not shown:
        return []
    line = safe(shown, 1000, style="cyan")  # names come from Redis: cleaned, never markup
    line.no_wrap, line.overflow, line.end = True, "ellipsis", "\n"
    return [line]


def warning_lines(warnings: list[str], shown: int = SHOWN_WARNINGS) -> list[Text]:
    """The first warnings, one line each (cut with an ellipsis), and how many more there are."""
    lines = []
    for warning in warnings[:shown]:
        line = Text.assemble(("! ", f"bold {WARNING_STYLE}"), safe(warning, 300, style=WARNING_STYLE))
        line.no_wrap, line.overflow, line.end = True, "ellipsis", "\n"
        lines.append(line)
    if len(warnings) > shown:
        more = len(warnings) - shown
        lines.append(Text(f"  … {more} more warning{'s' if more != 1 else ''} (i: scan details)", style="dim"))
    return lines


class ScanDetails(ModalScreen[None]):
    """One scan: what it ran with, what it found (its inventory) and the
    sources that failed or were skipped, with their reasons. Escape closes."""

    ACTIONS = [Action("dismiss", "escape,q,i", "Close", palette=False)]
    BINDINGS = bindings(ACTIONS)
    DEFAULT_CSS = """
    ScanDetails { align: center middle; }
    ScanDetails > VerticalScroll {
        width: 76; max-width: 100%; height: auto; max-height: 100%;
        border: round $accent; background: $surface; padding: 0 1;
    }
    """

    def __init__(self, scan: Any, project_name: str = "", progress: Progress | None = None):
        super().__init__()
        self.scan = scan
        self.project_name = project_name
        self.progress = progress  # an active scan's live progress: its warnings so far

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="scan-details") as box:
            box.border_title = f"Scan #{self.scan.id}" + (f" · {self.project_name}" if self.project_name else "")
            box.border_subtitle = "Esc closes"
            yield Static(self.render_details(), id="scan-details-body")

    def on_mount(self) -> None:
        self.query_one("#scan-details").focus()

    def render_details(self) -> Group:
        scan = self.scan
        options = _json(scan.options)
        summary = _json(scan.summary)
        took = (scan.finished_at - scan.started_at).total_seconds() if scan.finished_at and scan.started_at else None
        status = scan_state(scan)
        pairs: list[tuple[str, object]] = [
            ("status", status),
            ("modules", scan.modules.replace(",", ", ")),
            ("backend", scan.backend),
            ("started", when(scan.started_at)),
            ("finished", when(scan.finished_at)),
            ("took", duration(took)),
            ("attempts", scan.attempts if scan.attempts > 1 else ""),
            ("profile", options.get("profile") or ""),
            ("ports", options.get("ports") or ""),
            ("nameservers", ", ".join(map(str, options.get("nameservers") or []))),
            ("error", scan.error),
        ]
        inventory = summary.get("inventory")
        if isinstance(inventory, dict):
            pairs.append(("inventory", inventory_text(inventory)))
        parts: list[RenderableType] = [grid([(k, v) for k, v in pairs if v not in ("", None, 0)])]
        parts.append(Text(""))
        parts += self._sources()
        return Group(*parts)

    def _sources(self) -> list[RenderableType]:
        scan = self.scan
        if self.progress is not None and self.progress.active:
            head = Text("Warnings so far (the scan is still running)", style="bold")
            if not self.progress.warnings:
                return [head, Text("none yet", style="dim")]
            return [head, *(_multiline(w) for w in self.progress.warnings)]
        failed = warnings_of(scan)
        try:
            total = len(json.loads(scan.sources or "[]"))
        except ValueError:
            total = 0
        if not failed:
            what = f"all {total} sources answered" if total else "no source outcomes recorded"
            return [Text("Sources", style="bold"), Text(what, style="dim")]
        head = Text("Sources that failed or were skipped", style="bold")
        head.append(f"  ({len(failed)} of {total})", style="dim")
        lines: list[RenderableType] = [head]
        for o in failed:
            line = Text.assemble(
                ("! ", f"bold {WARNING_STYLE}"),
                safe(o.get("source", "?"), 200, style="bold"),
                (f" ({o['step']})" if o.get("step") else "", "dim"),
                ": ",
                (str(o.get("status", "")), WARNING_STYLE),
            )
            line.no_wrap, line.end = False, "\n"
            lines.append(line)
            if o.get("reason"):
                reason = safe(o["reason"], 1000)
                reason.no_wrap, reason.end = False, "\n"
                lines.append(Padding(reason, (0, 0, 0, 2)))  # every wrapped line indented
        return lines


def _multiline(value: str) -> Text:
    line = Text.assemble(("! ", f"bold {WARNING_STYLE}"), safe(value, 1000))
    line.no_wrap, line.end = False, "\n"
    return line


def plural(count: int, noun: str, nouns: str = "") -> str:
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


def inventory_text(counts: Mapping[str, Any], lifecycle: bool = True) -> str:
    """An inventory's counts (`events.Inventory`, as a dict) in words, as Results and the details say them."""

    def n(key: str) -> int:
        value = counts.get(key)
        return int(value) if isinstance(value, int) else 0

    hosts = (
        f"{plural(n('hosts'), 'host')} ({plural(n('names'), 'name')}, {plural(n('addresses'), 'address', 'addresses')})"
    )
    parts = [
        hosts,
        plural(n("services"), "service"),
        f"{n('endpoints')} web",
        plural(n("scripts"), "script"),
        plural(n("findings"), "finding"),
    ]
    if lifecycle:
        parts += [f"{n('unconfirmed')} unconfirmed", f"{n('gone')} gone"]
    return " · ".join(parts)


def _json(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
