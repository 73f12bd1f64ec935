"""Browse what a project's scans found: hosts, DNS records, services and HTTP
endpoints in tables, with a detail pane for the highlighted row."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DataTable, Footer, Header, Static, TabbedContent, TabPane

from ..actions import Action, bindings
from ..text import grid, safe, when
from ..widgets import FilterInput
from .base import ProjectScreen

TABS = ("hosts", "dns", "services", "http")


class ResultsScreen(ProjectScreen):
    ACTIONS = [
        Action("tab('hosts')", "1", "Hosts", "Hosts tab", "Names and addresses found"),
        Action("tab('dns')", "2", "DNS", "DNS tab", "DNS records of the hosts"),
        Action("tab('services')", "3", "Services", "Services tab", "Open ports and their banners"),
        Action("tab('http')", "4", "HTTP", "HTTP tab", "Web endpoints: status, title, server"),
    ]
    BINDINGS = bindings(ACTIONS)

    def __init__(self, project_id: int, project_name: str):
        super().__init__(project_id, project_name)
        self.rows: dict[str, list[tuple[list[Any], dict[str, Any]]]] = {tab: [] for tab in TABS}
        self.filter_text = ""

    def compose(self) -> ComposeResult:
        yield Header()
        yield FilterInput(placeholder="filter rows (Enter applies, Escape clears)", id="filter", classes="hidden")
        with Horizontal(id="results-body"):
            with TabbedContent(*[t.upper() if t in ("dns", "http") else t.title() for t in TABS], id="tabs"):
                for tab in TABS:
                    with TabPane(tab.upper() if tab in ("dns", "http") else tab.title(), id=f"tab-{tab}"):
                        yield DataTable(id=f"table-{tab}", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="detail-pane"):
                yield Static("Highlight a row to see its details.", id="detail")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"results · {self.project_name}"
        # Fixed widths (the detail pane shows whole values): a long hostile value
        # cannot push the other columns off screen.
        columns = {
            "hosts": (("name", 40), ("dns", 8), ("first seen", 16), ("last seen", 16)),
            "dns": (("name", 32), ("type", 5), ("value", 40), ("ttl", 6)),
            "services": (("address", 16), ("port", 5), ("service", 10), ("banner", 50)),
            "http": (("url", 44), ("status", 6), ("title", 40), ("server", 24)),
        }
        for tab, cols in columns.items():
            table = self.query_one(f"#table-{tab}", DataTable)
            for label, width in cols:
                table.add_column(label, width=width)
        self.action_reload()

    @work(thread=True, exclusive=True, exit_on_error=False)
    def action_reload(self) -> None:
        from ...store import repo

        pid = self.project_id
        rows = {
            "hosts": [
                (
                    [
                        safe(h.name, 80),
                        h.dns_status or ("address" if h.is_address else ""),
                        when(h.first_seen),
                        when(h.last_seen),
                    ],
                    {"kind": "host", "id": h.id},
                )
                for h in repo.hosts(pid)
            ],
            "dns": [
                (
                    [safe(name, 60), r.rtype, safe(r.value, 80), str(r.ttl or "")],
                    {"kind": "dns", "host": name, "row": r},
                )
                for r, name in repo.dns_records(pid)
            ],
            "services": [
                (
                    [name, str(s.port), safe(s.service, 20), safe(s.banner, 60)],
                    {"kind": "service", "host": name, "row": s},
                )
                for s, name in repo.services(pid)
            ],
            "http": [
                (
                    [safe(e.url, 70), str(e.status or ""), safe(e.title, 60), safe(e.server, 30)],
                    {"kind": "http", "host": name, "row": e},
                )
                for e, name in repo.endpoints(pid)
            ],
        }
        self.app.call_from_thread(self._fill, rows)

    def _fill(self, rows: dict[str, Any]) -> None:
        self.rows = rows
        for tab in TABS:
            table = self.query_one(f"#table-{tab}", DataTable)
            table.clear()
            needle = self.filter_text.lower()
            for index, (cells, _) in enumerate(rows[tab]):
                if needle and not any(needle in str(c).lower() for c in cells):
                    continue
                # row keys are indexes into self.rows, so the detail pane finds its data
                table.add_row(*cells, key=str(index))
            label = tab.upper() if tab in ("dns", "http") else tab.title()
            self.query_one("#tabs", TabbedContent).get_tab(f"tab-{tab}").label = f"{label} ({table.row_count})"
        self._focus_table()

    def _active_tab(self) -> str:
        return (self.query_one("#tabs", TabbedContent).active or "tab-hosts").removeprefix("tab-")

    def _focus_table(self) -> None:
        self.query_one(f"#table-{self._active_tab()}", DataTable).focus()

    def action_tab(self, tab: str) -> None:
        self.query_one("#tabs", TabbedContent).active = f"tab-{tab}"
        self._focus_table()

    def action_filter(self) -> None:
        self.query_one(FilterInput).open()

    @on(FilterInput.Applied)
    def apply_filter(self, event: FilterInput.Applied) -> None:
        self.filter_text = event.text
        self._fill(self.rows)  # (and focuses the table)

    @on(TabbedContent.TabActivated)
    def tab_changed(self) -> None:
        self._focus_table()
        self._show_highlighted()

    @on(DataTable.RowHighlighted)
    def show_detail(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == f"table-{self._active_tab()}":  # hidden tabs' tables highlight too
            self._show_highlighted()

    def _show_highlighted(self) -> None:
        """The detail pane follows the highlighted row of the visible tab."""
        tab = self._active_tab()
        table = self.query_one(f"#table-{tab}", DataTable)
        if not table.row_count:
            self.query_one("#detail", Static).update("Highlight a row to see its details.")
            return
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        if key is None:
            return
        _, data = self.rows[tab][int(key)]
        if data["kind"] == "host":
            self._host_detail(data["id"])
        else:
            self.query_one("#detail", Static).update(_detail(data))

    @work(thread=True, exclusive=True, group="detail", exit_on_error=False)
    def _host_detail(self, host_id: int) -> None:
        from ...store import repo

        detail = repo.host_detail(host_id)
        self.app.call_from_thread(self._show_host, host_id, _host_renderable(detail))

    def _show_host(self, host_id: int, renderable: Group) -> None:
        """Unless another row (or tab) was highlighted meanwhile."""
        if self._active_tab() != "hosts":
            return
        table = self.query_one("#table-hosts", DataTable)
        if table.row_count:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
            if key is not None and self.rows["hosts"][int(key)][1]["id"] == host_id:
                self.query_one("#detail", Static).update(renderable)


def _detail(data: dict[str, Any]) -> Table:
    row = data["row"]
    if data["kind"] == "dns":
        pairs = [("name", data["host"]), ("type", row.rtype), ("value", row.value), ("ttl", row.ttl)]
    elif data["kind"] == "service":
        pairs = [("address", data["host"]), ("port", row.port), ("service", row.service), ("banner", row.banner)]
    else:
        redirects = json.loads(row.redirects or "[]")
        pairs = [
            ("url", row.url),
            ("host", data["host"]),
            ("status", row.status),
            ("title", row.title),
            ("server", row.server),
            ("type", row.content_type),
            ("length", row.content_length),
            ("time", f"{row.response_ms:.0f} ms" if row.response_ms is not None else ""),
            ("final url", row.final_url),
        ]
        pairs += [("redirect", r) for r in redirects]
        tls = json.loads(row.tls or "{}")
        pairs += [
            ("tech", row.tech.replace(",", ", ")),
            ("cdn", row.cdn),
            ("favicon", "" if row.favicon_hash is None else f"mmh3 {row.favicon_hash}"),
        ]
        if tls:
            pairs += [
                ("tls subject", tls.get("subject_cn") or tls.get("subject", "")),
                ("tls issuer", tls.get("issuer_cn") or tls.get("issuer", "")),
                ("tls expires", tls.get("not_after", "")),
                ("self-signed", "yes" if tls.get("self_signed") else "no"),
                ("tls names", ", ".join(tls.get("sans", [])[:20])),
            ]
        if row.error:
            pairs.append(("error", row.error))
        pairs = [(k, v) for k, v in pairs if v not in ("", None)]
    pairs += [("first seen", when(row.first_seen)), ("last seen", when(row.last_seen))]
    return grid(pairs)


def _host_renderable(detail: dict[str, Any]) -> Group:
    host = detail["host"]
    parts: list[RenderableType] = [
        grid(
            [
                ("host", host.name),
                ("dns", host.dns_status),
                ("first seen", when(host.first_seen)),
                ("last seen", when(host.last_seen)),
            ]
        )
    ]
    for rec in detail["records"]:
        parts.append(Text.assemble((f"{rec.rtype:6}", "cyan"), safe(rec.value, 200)))
    for svc in detail["services"]:
        parts.append(Text.assemble((f"{svc.port:<6}", "green"), safe(f"{svc.service} {svc.banner}", 200)))
    for ep in detail["endpoints"]:
        parts.append(Text.assemble((f"{ep.status or '-':<4} ", "yellow"), safe(ep.url, 120), " ", safe(ep.title, 80)))
    return Group(*parts)
