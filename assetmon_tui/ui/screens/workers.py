"""`W`: the Celery workers and what runs now, from their heartbeats in Redis
(`core.fleet`), and the scans this TUI runs in its own threads. Read once a
second in a thread worker; a key nobody renews expires, so what shows is at
most `fleet.TTL` seconds old. Everything read from Redis is shown through
`text.safe` (another writer may put anything there)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Header, Static

from ...core import fleet
from ...core.config import get_settings
from ..actions import bindings
from ..text import duration, safe, state, when
from ..widgets import Column, PagedTable, ellipsis, footer
from .base import BACK

if TYPE_CHECKING:
    from ..app import AssetMonApp

INTERVAL = 1.0  # seconds between reads of Redis
clock = time.time  # the ages' "now" (tests freeze it)

WORKER_COLUMNS = (
    Column("name", "worker", 30, least=14, grow=True),
    Column("beat", "beat", 9, least=8),
    Column("pid", "pid", 8, rank=1),
    Column("concurrency", "conc", 4, rank=2),
    Column("version", "version", 10, least=7, rank=3),
    Column("up", "up", 7, rank=4),
)
RUNNER_COLUMNS = (
    Column("doing", "doing", 34, least=16, grow=True),
    Column("age", "beat", 9, least=8),
    Column("worker", "worker", 24, least=10, rank=1),
    Column("runner", "runner", 20, least=10, rank=2),
)


def ago(seconds: float) -> str:
    """ "2 s ago"; "1m05s ago" past a minute."""
    seconds = max(0.0, seconds)
    return f"{int(seconds)} s ago" if seconds < 60 else f"{duration(seconds)} ago"


@dataclass
class Reading:
    """One read of Redis and of this TUI's own scans, made off the UI thread."""

    now: float
    place: str  # host:port of Redis, never a password
    down: bool
    workers: list[fleet.WorkerBeat] = field(default_factory=list)
    beats: list[fleet.Beat] = field(default_factory=list)
    local: list[tuple[Any, str]] | None = None  # (scan row, project name); None: no dispatcher yet


class WorkersScreen(Screen[None]):
    ACTIONS = [BACK]
    BINDINGS = bindings(ACTIONS)
    DEFAULT_CSS = """
    WorkersScreen #workers-status { height: 1; padding: 0 1; }
    WorkersScreen #workers-table { height: auto; max-height: 9; border: round $primary; overflow-x: hidden; }
    WorkersScreen #runners-table { height: 1fr; min-height: 5; border: round $primary; overflow-x: hidden; }
    WorkersScreen #workers-table:focus, WorkersScreen #runners-table:focus {
        border: heavy $accent; border-title-style: bold;
    }
    WorkersScreen #local-scans { height: auto; max-height: 6; border: round $primary; padding: 0 1; }
    """

    def __init__(self) -> None:
        super().__init__()
        self._fleet: fleet.Fleet | None = None
        self._reading = False
        self.last: Reading | None = None

    @property
    def assetmon(self) -> AssetMonApp:
        return cast("AssetMonApp", self.app)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(Text("reading Redis…", style="dim"), id="workers-status")
        yield PagedTable(WORKER_COLUMNS, self._worker_cells, id="workers-table", cursor_type="row")
        yield PagedTable(RUNNER_COLUMNS, self._runner_cells, id="runners-table", cursor_type="row")
        yield Static("", id="local-scans")
        yield footer()

    def on_mount(self) -> None:
        self.sub_title = "workers"
        self.query_one("#workers-table").border_title = "Celery workers"
        self.query_one("#runners-table").border_title = "Running now"
        self.query_one("#local-scans").border_title = "In this TUI's threads"
        self.query_one("#runners-table").focus()
        self._tick()
        self.set_interval(INTERVAL, self._tick)

    def _tick(self) -> None:
        if not self._reading:  # a slow Redis: never more than one read at a time
            self._reading = True
            self._read()

    @work(thread=True, group="workers-read", exit_on_error=False)
    def _read(self) -> None:
        try:
            reading = self._take_reading()
            self.app.call_from_thread(self._show, reading)
        finally:
            self._reading = False

    def _take_reading(self) -> Reading:
        from ...dispatch import redis_place

        dispatcher = self.assetmon.dispatcher
        url = dispatcher.settings.redis_url if dispatcher is not None else get_settings().redis_url
        if self._fleet is None or self._fleet.redis_url != url or not self._fleet.store:
            from ...store.identity import known_store_id

            self._fleet = fleet.Fleet(url, store=known_store_id())  # this database's workers only
        try:
            workers, beats = self._fleet.workers(live=True), self._fleet.beats()
            down = self._fleet.down
        except ValueError:  # a URL redis-py cannot parse
            workers, beats, down = [], [], True
        local = None
        if dispatcher is not None:
            names = self.assetmon.project_names
            local = [(s, names.get(s.project_id, f"project {s.project_id}")) for s in dispatcher.local_scans()]
        return Reading(clock(), redis_place(url), down, workers, beats, local)

    # -- showing a reading (UI thread) --------------------------------------------------

    def _show(self, reading: Reading) -> None:
        self.last = reading
        self.query_one("#workers-status", Static).update(self._status(reading))
        workers = self.query_one("#workers-table", PagedTable)
        workers.show(reading.workers, cursor=workers.cursor_row)
        workers.border_subtitle = f"{len(reading.workers)}"
        runners = self.query_one("#runners-table", PagedTable)
        runners.show(reading.beats, cursor=runners.cursor_row)
        runners.border_subtitle = f"{len(reading.beats)}"
        self.query_one("#local-scans", Static).update(self._local(reading))

    @staticmethod
    def _status(reading: Reading) -> Text:
        if reading.down:
            return Text(f"Redis unreachable at {reading.place}", style="bold red")
        if not reading.workers:
            return Text(f"no worker has beaten in the last {fleet.TTL} s", style="yellow")
        if older := sum(w.older for w in reading.workers):  # a rolling upgrade left them running
            what, verb, them = ("1 worker", "takes", "it") if older == 1 else (f"{older} workers", "take", "them")
            said = f"{what} of an older release {verb} no scan of this install: restart {them}"
            return Text(said, style="bold yellow")
        n, m = len(reading.workers), len(reading.beats)
        return Text(
            f"{n} worker{'s' if n != 1 else ''} · {m} runner{'s' if m != 1 else ''} · read every {INTERVAL:.0f} s",
            style="dim",
        )

    @staticmethod
    def _local(reading: Reading) -> Text:
        if reading.local is None:
            return Text("starting…", style="dim")
        if not reading.local:
            return Text("no scan runs here", style="dim")
        lines = Text(no_wrap=True, overflow="ellipsis")
        for i, (scan, name) in enumerate(reading.local):
            lines.append("\n" if i else "")
            lines.append(f"#{scan.id} ", style="bold")
            lines.append_text(safe(name, 40))
            lines.append(" · ")
            lines.append_text(state(scan.status))
            lines.append(f" · since {when(scan.started_at, short=True) or 'now'} · {scan.modules}", style="dim")
        return lines

    def _age(self, at: float) -> Text:
        now = self.last.now if self.last is not None else clock()
        return Text(ago(now - at), style="dim")

    def _worker_cells(self, worker: fleet.WorkerBeat, names: list[str]) -> list[Any]:
        now = self.last.now if self.last is not None else clock()
        cells = {
            "name": ellipsis(safe(worker.name, 100, style="bold")),
            "beat": self._age(worker.at),
            "pid": str(worker.pid),
            "concurrency": str(worker.concurrency),
            "version": Text("older", style="bold yellow") if worker.older else ellipsis(safe(worker.version, 30)),
            "up": duration(now - worker.started),
        }
        return [cells[n] for n in names]

    def _runner_cells(self, beat: fleet.Beat, names: list[str]) -> list[Any]:
        cells = {
            "doing": ellipsis(safe(beat.doing(), 120)),
            "age": self._age(beat.at),
            "worker": ellipsis(safe(beat.worker, 100) if beat.worker else Text("(thread)", style="dim")),
            "runner": ellipsis(safe(beat.runner, 100)),
        }
        return [cells[n] for n in names]
