"""Findings of a project (secrets, takeovers, exposures, API endpoints): a table
filtered by severity, a detail pane with the redacted context, the secret value
shown only while the user asks for it, and a read-only view of the beautified
JavaScript file a finding was found in.

Secrets are redacted everywhere unless revealed: a context or a file shows
every other secret found in the same file redacted too (a stored context
redacts only its own finding's value), and a revealed value is only ever the
highlighted finding's."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Header, LoadingIndicator, Static, TextArea

from ...core.sanitize import clean_text
from ...secrets.redact import hidden, mask_secrets
from ..actions import Action, bindings
from ..text import grid, multiline, next_filter, rank, safe, severity, when
from ..widgets import FilterInput, fill_table, footer
from .base import BACK, ProjectScreen

COLUMNS = ("severity", "kind", "rule", "host", "line:col", "file")
CHECKED = ("severity", "check", "kind", "rule", "host", "line:col", "file")  # when a secret was checked live
# a secret's live check (secrets/verify.py): verified, invalid, unknown; "" never checked
CHECKS = {"verified": ("live", "bold red"), "invalid": ("invalid", "dim"), "unknown": ("?", "dim")}


def check_cell(state: str) -> Text:
    shown, style = CHECKS.get(state or "", ("", ""))
    return Text(shown, style=style)


BEAUTIFY_TIMEOUT = 30.0
MAX_VIEW_BYTES = 20_000_000  # bigger bodies are shown truncated


class FindingsScreen(ProjectScreen):
    ACTIONS = [
        Action("severity", "s", "Severity", "Minimum severity", "Cycle the minimum severity shown"),
        Action("reveal", "v", "Reveal", "Reveal secret", "Show or hide the highlighted finding's secret value"),
        Action("beautify", "b", "JS file", "JS file view", "The beautified JavaScript file of the finding"),
    ]
    BINDINGS = bindings(ACTIONS)

    def __init__(self, project_id: int, project_name: str):
        super().__init__(project_id, project_name)
        self.rows: list[tuple[Any, ...]] = []  # (Finding, host name)
        self.min_severity: str | None = None
        self.filter_text = ""
        self.current: int | None = None  # index into self.rows of the highlighted finding
        self.revealed = False  # only ever for self.current

    def compose(self) -> ComposeResult:
        yield Header()
        yield FilterInput(placeholder="filter rows (Enter applies, Escape clears)", id="filter", classes="hidden")
        with Vertical(id="findings-body"):
            yield DataTable(id="findings", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="finding-pane"):
                yield Static("Highlight a finding to see its details.", id="finding-detail")
        yield footer()

    def on_mount(self) -> None:
        self.sub_title = f"findings · {self.project_name}"
        table = self.query_one("#findings", DataTable)
        table.border_title = "Findings"
        self.query_one("#finding-pane").border_title = "Detail"
        table.focus()
        self.action_reload()

    # -- data ---------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="findings", exit_on_error=False)
    def action_reload(self) -> None:
        from ...store import repo

        rows = repo.findings(self.project_id)
        # worst first, then by kind and rule
        rows.sort(key=lambda r: (-rank(r[0].severity), r[0].kind, r[0].rule, r[0].id))
        self.app.call_from_thread(self._fill, rows)

    def _fill(self, rows: list[Any]) -> None:
        self.rows = rows
        table = self.query_one("#findings", DataTable)
        old = self.current
        needle = self.filter_text.lower()
        floor = rank(self.min_severity) if self.min_severity else 0
        shown_rows = []
        by_file: dict[str, list[Any]] = {}
        for f, _ in rows:
            by_file.setdefault(f.location, []).append(f)
        checked = any(getattr(f, "verified", "") for f, _ in rows)  # the column only once verification ran
        for index, (f, host) in enumerate(rows):
            if rank(f.severity) < floor:
                continue
            position = f"{f.line}:{f.column or 0}" if f.line else ""
            cells = [
                severity(f.severity),
                *([check_cell(f.verified)] if checked else []),
                safe(f.kind, 10),
                safe(f.rule, 40),
                safe(host, 50),
                position,
                safe(mask_secrets(f.location, by_file[f.location]), 200),  # a token in a URL's query
            ]
            if needle and not any(needle in str(c).lower() for c in cells):
                continue
            shown_rows.append((cells, str(index)))  # keys index self.rows
        if checked:
            fill_table(table, CHECKED, shown_rows, (8, 7, 8, 28, 20, 9, 0))
        else:
            fill_table(table, COLUMNS, shown_rows, (8, 8, 28, 24, 9, 0))
        shown = "all" if not self.min_severity else f"≥ {self.min_severity}"
        table.border_title = f"Findings ({table.row_count}/{len(rows)}) · severity {shown}"
        if self.filter_text:
            table.border_title += f" · filter {clean_text(self.filter_text, 30)!r}"
        if table.row_count == 0:
            self.current = None
            self._hide()
            self.query_one("#finding-detail", Static).update(
                "No findings." if not rows else "No finding matches the filter."
            )
        elif old is not None and str(old) in {k.value for k in table.rows}:
            table.move_cursor(row=table.get_row_index(str(old)))

    def on_resize(self) -> None:
        if self.rows:
            self.call_after_refresh(self._fill, self.rows)

    # -- keys ---------------------------------------------------------------------

    def action_severity(self) -> None:
        self.min_severity = next_filter(self.min_severity)
        self._fill(self.rows)

    def action_filter(self) -> None:
        self.query_one(FilterInput).open()

    @on(FilterInput.Applied)
    def apply_filter(self, event: FilterInput.Applied) -> None:
        self.filter_text = event.text
        self._fill(self.rows)
        self.query_one("#findings", DataTable).focus()

    def action_reveal(self) -> None:
        if self.current is None:
            self.notify("Highlight a finding first.", markup=False)
            return
        finding, _ = self.rows[self.current]
        if not finding.value:
            self.notify("This finding has no stored value.", markup=False)
            return
        self.revealed = not self.revealed
        self._show(self.current)

    def _hide(self) -> None:
        self.revealed = False
        pane = self.query_one("#finding-pane")
        pane.border_subtitle = ""
        pane.remove_class("revealed")

    @on(DataTable.RowHighlighted, "#findings")
    def highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key is None or event.row_key.value is None:
            return
        index = int(event.row_key.value)
        if index != self.current:
            self._hide()  # a revealed value never carries over to another finding
        self.current = index
        self._show(index)

    @on(DataTable.RowSelected, "#findings")
    def selected(self) -> None:
        self.query_one("#finding-pane").focus()

    def _show(self, index: int) -> None:
        finding, host = self.rows[index]
        pane = self.query_one("#finding-pane")
        if self.revealed:
            value = Text.assemble(("REVEALED ", "bold white on red"), safe(finding.value, 2000, style="bold red"))
            pane.border_subtitle = "secret revealed · v hides"
            pane.add_class("revealed")
        else:
            shown = finding.redacted or ("(hidden)" if finding.value else "")
            if finding.kind == "endpoint" and not finding.redacted:
                shown = finding.value  # an API path, not a secret
            value = Text.assemble(
                safe(shown, 500), (" · v reveals" if finding.value and shown != finding.value else "", "dim")
            )
            pane.border_subtitle = ""
            pane.remove_class("revealed")
        what = Text.assemble(
            severity(finding.severity), " ", safe(finding.kind, 20), " ", safe(finding.rule, 80, style="bold")
        )
        if finding.confidence:
            what.append(f"  confidence {clean_text(finding.confidence, 20)}", style="dim")
        where = safe(host, 100)
        if finding.line:
            where.append(f"  line {finding.line}:{finding.column or 0}", style="dim")
        seen = Text.assemble(
            when(finding.first_seen),
            " → ",
            when(finding.last_seen),
            ("  fp ", "dim"),
            safe(finding.fingerprint, 24, style="dim"),
        )
        same_file = [f for f, _ in self.rows if f.location == finding.location] if finding.location else [finding]
        file = mask_secrets(finding.location, [*same_file, finding])
        pairs = [("what", what), ("host", where), ("file", file), ("value", value), ("seen", seen)]
        if getattr(finding, "verified", ""):
            checked = Text.assemble(check_cell(finding.verified), "  ", safe(finding.verify_reason, 200))
            if finding.verified_at:
                checked.append(f"  {when(finding.verified_at)}", style="dim")
            pairs.append(("check", checked))
        parts: list[Any] = [grid([(k, v) for k, v in pairs if v not in ("", None)])]
        if finding.context:
            context = multiline(mask_secrets(finding.context, [*same_file, finding]))
            if finding.redacted:
                context.highlight_words([finding.redacted], style="bold yellow")
            parts += [Text(""), Text("context (b: whole file)", style="bold underline"), context]
        self.query_one("#finding-detail", Static).update(Group(*parts))

    def action_beautify(self) -> None:
        if self.current is None:
            self.notify("Highlight a finding first.", markup=False)
            return
        finding, _ = self.rows[self.current]
        if not finding.location:
            self.notify("This finding has no file.", markup=False)
            return
        self.app.push_screen(JsViewScreen(self.project_id, finding, self.revealed))


def find_js_file(project_id: int, url: str) -> Any:
    """The project's stored JS file at `url` (None when it was not stored)."""
    from sqlmodel import col, select

    from ...store.db import session
    from ...store.models import Host, JsFile

    with session() as s:
        return s.exec(
            select(JsFile)
            .join(Host, col(Host.id) == col(JsFile.host_id))
            .where(Host.project_id == project_id, JsFile.url == url)
            .order_by(col(JsFile.id).desc())
        ).first()


class JsViewScreen(Screen[None]):
    """The beautified file, read-only. Every secret found in the file is
    redacted in it; the finding's own is shown only when it was revealed when
    the view was opened."""

    ACTIONS = [BACK]
    BINDINGS = bindings(ACTIONS)

    def __init__(self, project_id: int, finding: Any, reveal: bool = False):
        super().__init__()
        self.project_id = project_id
        self.finding = finding
        self.reveal = reveal
        self.location = mask_secrets(finding.location, [finding])  # and the file's other secrets, once loaded

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(Text.assemble(("file ", "bold"), safe(self.location, 200)), id="js-note")
        yield LoadingIndicator(id="js-loading")
        yield TextArea.code_editor(
            "", language="javascript", read_only=True, id="js-text", soft_wrap=False, classes="hidden"
        )
        yield footer()

    def on_mount(self) -> None:
        self.sub_title = "JavaScript file (read-only)"
        self._load()

    @work(thread=True, exclusive=True, exit_on_error=False)
    def _load(self) -> None:
        from ...store import repo
        from ...store.blobs import load_blob

        location = self.finding.location
        in_file = [f for f, _ in repo.findings(self.project_id) if f.location == location]
        self.location = mask_secrets(location, [*in_file, self.finding])
        row = find_js_file(self.project_id, location)
        body = load_blob(row.sha256) if row is not None and row.sha256 else None
        if body is None:
            self.app.call_from_thread(self._show, None, "The body of this file was not stored here.")
            return
        truncated = len(body) > MAX_VIEW_BYTES
        text = body[:MAX_VIEW_BYTES].decode("utf-8", "replace")
        note = f"{len(body):,} bytes · beautified"
        try:
            from ...core.config import get_settings
            from ...secrets.beautify import beautify_file

            text = beautify_file(text, timeout=BEAUTIFY_TIMEOUT, cache_dir=get_settings().data_dir / "beautified")
        except TimeoutError:
            note = f"{len(body):,} bytes · beautifying took over {BEAUTIFY_TIMEOUT:.0f}s: showing the raw text"
        except Exception as exc:
            note = f"{len(body):,} bytes · could not beautify ({type(exc).__name__}): showing the raw text"
        if truncated:
            note += f" · first {MAX_VIEW_BYTES:,} bytes only"
        # hostile content: no escape sequences or control characters reach the terminal
        text = clean_text(text, len(text) + 1, single_line=False)
        value, redacted = self.finding.value, self.finding.redacted or "[redacted]"
        shown = value if value and self.reveal and hidden(self.finding) else ""
        masked = {f.value for f in [*in_file, self.finding] if hidden(f) and f.value != shown}
        text = mask_secrets(text, [*in_file, self.finding], keep=shown)
        if masked:
            note += f" · {len(masked)} secret{'s' if len(masked) != 1 else ''} redacted"
        if shown:
            note += " · this finding's secret shown"
        needle = value if value and self.reveal else redacted
        line = next((n for n, ln in enumerate(text.split("\n")) if needle and needle in ln), None)
        self.app.call_from_thread(self._show, text, note, line)

    def _show(self, text: str | None, note: str, line: int | None = None) -> None:
        self.query_one("#js-loading").display = False
        self.query_one("#js-note", Static).update(
            Text.assemble(("file ", "bold"), safe(self.location, 120), "\n", (note, "dim"))
        )
        if text is None:
            return
        area = self.query_one("#js-text", TextArea)
        area.load_text(text)
        area.remove_class("hidden")
        area.focus()
        if line is not None:
            area.move_cursor((line, 0), center=True)
