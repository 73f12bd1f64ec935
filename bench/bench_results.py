"""What a big inventory costs the Results screen: opening it and switching
tabs, in the real app, side by side with a bare Textual app holding one
DataTable filled with the same rows the naive way (what a user would
otherwise get).

    .venv/bin/python -m bench.bench_results [--assets 10000] [--runs 3] [--size 120x40]

The estate is written into a fresh SQLite store through the real store API
and snapshotted by `events.compute_events` (two done scans, the second
changing a few titles and losing a few names): per host a name, an address,
an A record, two open ports and a web endpoint (six assets).
Timed with `run_test()` and the Pilot, in this process:
- open: `r` on the dashboard until the first frame showing the hosts table's
  rows (the database read included); then until the whole inventory is read
  (a big one shows its first rows first: sort and filter work on all of it);
- a tab switch: the key (2, 3, 4, 1) until the first frame showing that tab's rows;
- sort (`o`) and one typed filter character, where the screen has them;
- peer: a bare App whose `r` pushes a screen with one DataTable (and Header,
  Footer) that adds all rows of the hosts tab on mount (then of each tab,
  clearing first), until the first frame after the table has measured them
  (its rows built beforehand: no database read).
Keys are sent as a terminal sends them, and frames are timed as the app
hands them to its (headless) driver.
The target: open under 0.2 s, tab switches instant (under 0.1 s, the limit
below which a response feels instantaneous).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import time
from typing import Any

from bench.common import isolated_home, table, verdict

TABS = ("hosts", "dns", "services", "http")
KEYS = {"hosts": "1", "dns": "2", "services": "3", "http": "4"}


def write_scan(project_id: int, hosts: int, scan_no: int) -> int:
    from assetmon_tui.store import leases, repo
    from assetmon_tui.store.db import session
    from assetmon_tui.store.models import DnsRecord, HttpEndpoint, Service

    scan = repo.create_scan(project_id, ["dns", "ports", "http"], {"gone_after": 1})
    assert scan.id is not None
    assert leases.claim(scan.id, "thread", "bench:1", 60, 3)
    servers = ("nginx", "Apache/2.4.62 (Debian)", "cloudflare", "Microsoft-IIS/10.0", "")
    with session() as s:
        for n in range(hosts):
            if scan_no > 1 and n % 97 == 5:
                continue  # a few names are not seen again
            name, address = f"h{n:05d}.svc{n % 37}.acme.test", f"10.{n // 65536}.{n // 256 % 256}.{n % 256}"
            hid = repo.upsert_host(s, project_id, name, scan.id, dns_status="ok")
            repo.upsert(s, DnsRecord, {"host_id": hid, "rtype": "A", "value": address}, {"ttl": 60 + n % 300}, scan.id)
            aid = repo.upsert_host(s, project_id, address, scan.id, is_address=True)
            for port, service in ((80, "http"), (22 if n % 3 else 443, "ssh" if n % 3 else "https")):
                banner = f"SSH-2.0-OpenSSH_9.{n % 9}p1 Debian-{n % 5}" if service == "ssh" else ""
                repo.upsert(s, Service, {"host_id": aid, "port": port}, {"service": service, "banner": banner}, scan.id)
            title = f"Host {n} · {'admin console' if n % 11 == 0 else 'welcome page'}"
            title += f" rev {scan_no}" if scan_no > 1 and n % 50 == 0 else ""
            tls = json.dumps({"sha256": f"{n:064x}", "issuer": "R3", "not_after": "2031-01-01T00:00:00+00:00"})
            repo.upsert(
                s,
                HttpEndpoint,
                {"host_id": hid, "url": f"https://{name}/" if n % 4 else f"http://{name}:8080/login"},
                {
                    "status": (200, 301, 403, 404, 500)[n % 5],
                    "title": title,
                    "server": servers[n % len(servers)],
                    "tech": "nginx",
                    "tls": tls,
                    "content_length": 500 + n,
                },
                scan.id,
            )
        s.commit()
    repo.finish_scan(scan.id, "done")
    return scan.id


def build(assets: int) -> int:
    """A project of about `assets` assets (six per host) with two snapshotted scans; its id."""
    from assetmon_tui.events import compute_events
    from assetmon_tui.store import repo
    from assetmon_tui.store.db import get_engine
    from assetmon_tui.store.models import create_tables

    create_tables(get_engine())
    project = repo.create_project("bench")
    assert project.id is not None
    repo.add_targets(project.id, ["acme.test", "10.0.0.0/20"])
    hosts = math.ceil(assets / 6)
    for n in (1, 2):
        compute_events(write_scan(project.id, hosts, n))
    return project.id


class Frames:
    """The frames the app hands to its (headless) driver: `shown(condition)`
    is the time of the first frame rendered while `condition()` holds."""

    def __init__(self, app: Any):
        self.condition: Any = None
        self.at: float | None = None
        original = app._display

        def display(screen: Any, renderable: Any) -> None:
            original(screen, renderable)
            if renderable is not None and self.condition is not None and self.at is None and self.condition():
                self.at = time.perf_counter()

        app._display = display

    async def shown(self, condition: Any, timeout: float = 60.0) -> float:
        self.condition, self.at = condition, None
        deadline = time.perf_counter() + timeout
        while self.at is None:
            if time.perf_counter() > deadline:
                raise TimeoutError("no frame showed it")
            await asyncio.sleep(0.001)
        self.condition = None
        return self.at


async def until(pilot: Any, condition: Any, timeout: float = 60.0) -> None:
    """Wait until `condition()` holds (checked whenever the app is idle)."""
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            raise TimeoutError("the condition never held")
        await pilot.pause()


def send(app: Any, key: str) -> None:
    """A key press as the terminal sends it. (`Pilot.press` also waits for running
    animations, here the tab bar's 0.3 s underline slide: not what a user waits for.)"""
    from textual import events

    app._driver.send_message(events.Key(key, key if len(key) == 1 else None))


def filled(screen: Any, tab: str) -> bool:
    from textual.widgets import DataTable

    if screen.view is None or not screen.query(f"#table-{tab}"):
        return False
    table: DataTable[Any] = screen.query_one(f"#table-{tab}", DataTable)
    return table.row_count > 0


async def time_ours(size: tuple[int, int], project_id: int) -> dict[str, float]:
    from assetmon_tui.ui.app import AssetMonApp
    from assetmon_tui.ui.screens.results import ResultsScreen

    out: dict[str, float] = {}
    app = AssetMonApp()
    async with app.run_test(size=size) as pilot:
        frames = Frames(app)
        await until(pilot, lambda: app.dispatcher is not None and app.project_id == project_id)
        await pilot.pause()
        started = time.perf_counter()
        send(app, "r")
        shown = await frames.shown(lambda: isinstance(app.screen, ResultsScreen) and filled(app.screen, "hosts"))
        out["open"] = shown - started
        screen: Any = app.screen
        if hasattr(screen.view, "complete"):  # a first look, then the whole inventory read behind it
            shown = await frames.shown(lambda: screen.view.complete)
            out["whole inventory read"] = shown - started
        await pilot.pause()
        for tab in (*TABS[1:], TABS[0]):
            started = time.perf_counter()
            send(app, KEYS[tab])
            shown = await frames.shown(lambda tab=tab: screen._active_tab() == tab and filled(screen, tab))
            out[f"tab {tab}"] = shown - started
            await pilot.pause()
        if hasattr(screen, "sort_state"):  # the screen sorts and filters as you type
            started = time.perf_counter()
            send(app, "o")
            out["sort (o)"] = await frames.shown(lambda: screen.sort_state()[0] is not None) - started
            await pilot.pause()
            send(app, "slash")
            await until(pilot, lambda: screen.focused is not None and screen.focused.id == "filter")
            started = time.perf_counter()
            send(app, "7")
            shown = await frames.shown(lambda: screen.filter_text == "7")
            out["filter key (incl. 0.15 s debounce)"] = shown - started
    return out


async def time_peer(size: tuple[int, int], rows: dict[str, list[list[Any]]]) -> dict[str, float]:
    """A bare App: `r` pushes a screen (Header, one DataTable, Footer) that adds every
    row of the hosts tab on mount; a tab switch clears the table and adds that tab's rows."""
    from textual.app import App, ComposeResult
    from textual.screen import Screen
    from textual.widgets import DataTable, Footer, Header

    def fill(data: DataTable[Any], tab: str) -> None:
        data.clear(columns=True)
        data.add_columns(*[f"c{i}" for i in range(len(rows[tab][0]))])
        data.add_rows(rows[tab])

    class Table(Screen[None]):
        def compose(self) -> ComposeResult:
            yield Header()
            yield DataTable(cursor_type="row", zebra_stripes=True)
            yield Footer()

        def on_mount(self) -> None:
            fill(self.query_one(DataTable), "hosts")

    class Bare(App[None]):
        BINDINGS = [("r", "open", "Open")]

        def action_open(self) -> None:
            self.push_screen(Table())

    def ready() -> bool:
        tables = app.screen.query(DataTable)
        return bool(tables) and tables.first().row_count > 0 and not tables.first()._require_update_dimensions

    out: dict[str, float] = {}
    app = Bare()
    async with app.run_test(size=size) as pilot:
        frames = Frames(app)
        await pilot.pause()
        started = time.perf_counter()
        send(app, "r")
        out["open"] = await frames.shown(ready) - started
        await pilot.pause()
        data = app.screen.query_one(DataTable)
        for tab in (*TABS[1:], TABS[0]):
            started = time.perf_counter()
            fill(data, tab)
            out[f"tab {tab}"] = await frames.shown(ready) - started
            await pilot.pause()
    return out


def tab_rows(project_id: int) -> dict[str, list[list[Any]]]:
    """The cells the Results tables show, per tab, made once for the peer."""
    from rich.text import Text

    from assetmon_tui.events import as_of

    _, items = as_of(project_id)
    out: dict[str, list[list[Any]]] = {tab: [] for tab in TABS}
    for item, status in items:
        st = item.state
        if item.kind in ("host", "ip"):
            cells = [item.host, st.get("dns", "address"), "", ""]
            tab = "hosts"
        elif item.kind == "dns":
            cells, tab = [item.host, st.get("rtype"), st.get("value"), ""], "dns"
        elif item.kind == "service":
            cells, tab = [item.host, st.get("port"), st.get("service"), ""], "services"
        elif item.kind == "http":
            cells, tab = [st.get("url"), st.get("status"), st.get("title"), st.get("server")], "http"
        else:
            continue
        out[tab].append([Text(status[:1]), *(Text(str(c if c is not None else "")) for c in cells)])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assets", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size", default="120x40", help="terminal size, COLSxROWS")
    args = parser.parse_args()
    cols, lines = (int(v) for v in args.size.split("x"))

    with isolated_home(ASSETMON_BACKEND="thread"):
        started = time.perf_counter()
        project_id = build(args.assets)
        rows = tab_rows(project_id)
        print(
            f"estate: {sum(len(r) for r in rows.values())} rows "
            f"({', '.join(f'{t} {len(r)}' for t, r in rows.items())}), built in {time.perf_counter() - started:.0f} s"
        )
        ours: dict[str, list[float]] = {}
        peer: dict[str, list[float]] = {}
        for _ in range(args.runs):  # alternating, so both see the same machine
            for name, value in asyncio.run(time_ours((cols, lines), project_id)).items():
                ours.setdefault(name, []).append(value)
            for name, value in asyncio.run(time_peer((cols, lines), rows)).items():
                peer.setdefault(name, []).append(value)

    def med(values: list[float] | None) -> str:
        return f"{statistics.median(values):.3f}" if values else "-"

    names = list(ours) + [n for n in peer if n not in ours]
    print(
        table(
            ["step (median s)", "AssetMon", "bare DataTable"], [[n, med(ours.get(n)), med(peer.get(n))] for n in names]
        )
    )
    tabs = [statistics.median(v) for n, v in ours.items() if n.startswith("tab ")]
    ok = statistics.median(ours["open"]) < 0.2 and max(tabs) < 0.1
    print(f"{args.assets} assets, {args.size}, {args.runs} runs: open < 0.2 s and tab switches < 0.1 s: {verdict(ok)}")


if __name__ == "__main__":
    main()
