"""The workers view (issue 13): heartbeats in a real Redis (core.fleet), a real
Celery worker's own beat (worker/heartbeat.py), the `W` screen driven with the
real app, the live panel's workers line and `assetmon workers`."""

from __future__ import annotations

import json
import time
from importlib import metadata
from typing import Any

import pytest
import redis
from support.frozen import settle, showing, until, utc_thread_world
from support.scenario import make_project
from textual.pilot import Pilot

from assetmon_tui import cli
from assetmon_tui.core import fleet
from assetmon_tui.core.config import get_settings
from assetmon_tui.core.fleet import Beat, Fleet, WorkerBeat, workers_line
from assetmon_tui.core.owners import this_process
from assetmon_tui.core.progress import ModuleProgress, Progress
from assetmon_tui.store import leases, repo
from assetmon_tui.testing import wait_for
from assetmon_tui.ui.app import AssetMonApp
from assetmon_tui.ui.panels import workers_lines
from assetmon_tui.ui.screens import workers as workers_screen
from assetmon_tui.ui.screens.workers import WorkersScreen

SIZE = (80, 24)
NOW = 1_795_000_000.0  # the frozen "now" of the screen's ages
HOSTILE = "[bold]x[/bold]\x1b]0;pwned\x07"


def put(url: str, key: str, value: Any, ttl: int = 60) -> None:
    """A key written as another process would (any `at`, any content)."""
    client = redis.Redis.from_url(url)
    client.set(key, value if isinstance(value, (bytes, str)) else json.dumps(value), ex=ttl)
    client.close()


def worker_beat(
    name: str = "celery@alpha", pid: int = 4242, at: float = NOW - 2, older: bool = False
) -> dict[str, Any]:
    """A worker's beat as this release writes it (for this test's database), or
    as the release before store ids did (`older`: no store field)."""
    from assetmon_tui.store.identity import store_id

    return ({} if older else {"store": store_id()}) | {
        "name": name,
        "host": name.split("@")[-1],
        "pid": pid,
        "concurrency": 4,
        "version": "0.1.0",
        "started": NOW - 3600,
        "at": at,
    }


def runner_beat(runner: str, worker: str, chunk: int, at: float = NOW - 1, step: str = "ports") -> dict[str, Any]:
    return {
        "runner": runner,
        "scan_id": 12,
        "worker": worker,
        "step": step,
        "chunk": chunk,
        "chunks": 8,
        "done": 40,
        "total": 120,
        "since": NOW - 30,
        "at": at,
    }


# -- core.fleet --------------------------------------------------------------------------


def test_fleet_round_trip_clear_and_expiry(redis_server, monkeypatch):
    beats = Fleet(redis_server.url)
    beats.worker(WorkerBeat("celery@a", "a", 11, 2, "0.1.0", time.time() - 5))
    beats.beat(Beat("a:12", 7, worker="celery@a", step="ports", chunk=3, chunks=8, done=40, total=120))
    beats.beat(Beat("b:13", 8))
    [worker] = beats.workers()
    assert (worker.name, worker.host, worker.pid) == ("celery@a", "a", 11)
    assert (worker.concurrency, worker.version) == (2, "0.1.0")
    assert worker.age < 5 and not beats.down
    assert [b.doing() for b in beats.beats()] == ["#7 ports chunk 3/8 40/120", "#8 scan"]
    assert [b.runner for b in beats.beats(scan_id=8)] == ["b:13"]

    beats.clear_worker("celery@a")
    beats.clear("a:12")
    assert beats.workers() == [] and [b.runner for b in beats.beats()] == ["b:13"]

    monkeypatch.setattr(fleet, "TTL", 1)  # a writer gone silent: its key expires
    beats.worker(WorkerBeat("celery@b", "b", 12, 1, "0.1.0", time.time()))
    assert beats.workers()
    wait_for(lambda: not beats.workers() and not beats.beats(scan_id=99), timeout=5, what="the beat to expire")


def test_fleet_skips_keys_it_cannot_read(redis_server):
    """Another version or a hostile writer: wrong types, not JSON, not an object."""
    put(redis_server.url, fleet.WORKER + "bad-pid", {**worker_beat(), "pid": "x"})
    put(redis_server.url, fleet.WORKER + "bool", {**worker_beat(), "concurrency": True})
    put(redis_server.url, fleet.WORKER + "junk", b"\xff not json")
    put(redis_server.url, fleet.WORKER + "list", [1, 2])
    put(redis_server.url, fleet.WORKER + "missing", {"name": "x"})
    put(redis_server.url, fleet.WORKER + "ok", {**worker_beat(), "extra": "from a later version"})
    put(redis_server.url, fleet.RUNNER + "bad", {**runner_beat("r", "w", 1), "at": "soon"})
    beats = Fleet(redis_server.url)
    assert [w.name for w in beats.workers()] == ["celery@alpha"]
    assert beats.beats() == []


def test_fleet_says_when_redis_is_down(no_redis):
    beats = Fleet(get_settings().redis_url)
    assert beats.workers() == [] and beats.down
    assert beats.beats() == [] and beats.down  # while it waits to retry, still down


def test_workers_line():
    assert workers_line([]) == ""
    assert workers_line(["h:1 #12 ports chunk 3/8 40/120"]) == "on 1 worker: h:1"
    many = ["h:1 #12 ports chunk 1/8", "h2:7 #12 ports chunk 2/8", "h:1 #12 ports chunk 3/8"]
    assert workers_line(many) == "on 2 workers: h:1, h2:7"


# -- a real worker's heartbeat ------------------------------------------------------------


def test_a_worker_beats_while_it_runs_and_its_key_goes_when_it_stops(worker):
    beats = Fleet(get_settings().redis_url)
    prefix = worker.hostname.split("@")[0] + "@"
    assert worker.proc is not None

    def mine() -> list[WorkerBeat]:
        return [w for w in beats.workers() if w.name.startswith(prefix)]

    [first] = wait_for(mine, timeout=10, what="the worker's heartbeat")
    assert first.pid == worker.proc.pid  # the main process beats, not a pool child
    assert first.concurrency == 1 and first.version == metadata.version("assetmon-tui")
    assert first.age < fleet.TTL and first.started <= first.at
    wait_for(lambda: [w for w in mine() if w.at > first.at], timeout=6, what="the next beat (every 2 s)")

    worker.stop()
    # deleted at shutdown, well before the key's TTL would expire it
    wait_for(lambda: not mine(), timeout=fleet.TTL / 3, what="the worker's key to go")


# -- the live panel's workers line --------------------------------------------------------


def test_panel_line_names_the_workers_and_is_cut_to_the_width():
    assert workers_lines([]) == []
    names = [f"host{i}:{1000 + i} #12 ports chunk {i}/40 1/2" for i in range(40)]
    [line] = workers_lines([*names, HOSTILE])
    assert line.plain.startswith("on 41 workers: host0:1000, host1:1001")
    assert line.no_wrap and line.overflow == "ellipsis" and "\x1b" not in line.plain


async def test_the_live_panel_shows_the_workers_line(monkeypatch):
    from assetmon_tui.dispatch import Dispatcher

    monkeypatch.setenv("ASSETMON_BACKEND", "thread")
    get_settings.cache_clear()
    project_id = make_project("acme", ["acme.test"])
    scan = repo.create_scan(project_id, ["ports"], {})
    assert leases.claim(scan.id, "thread", "test:1", 60, 3)
    row = repo.get_scan(scan.id)
    progress = Progress(
        scan_id=scan.id,
        state="running",
        modules={"ports": ModuleProgress("running", 40, 120)},
        workers=["alpha:11 #1 ports chunk 1/2 20/60", "beta:22 #1 ports chunk 2/2 20/60"],
        started_at=time.time(),
    )
    monkeypatch.setattr(Dispatcher, "reap", lambda self: [])
    monkeypatch.setattr(Dispatcher, "active", lambda self: [(row, progress)])
    app = AssetMonApp()
    async with app.run_test(size=SIZE) as pilot:
        await showing(pilot, f"Scan #{scan.id}", "on 2 workers: alpha:11, beta:22")


# -- the W screen ----------------------------------------------------------------------


async def open_workers(pilot: Pilot) -> WorkersScreen:
    app: Any = pilot.app
    await until(pilot, lambda: app.dispatcher is not None and app.project_id is not None, "the dashboard")
    await pilot.press("W")
    await until(pilot, lambda: isinstance(app.screen, WorkersScreen), "the workers screen")
    return app.screen


async def test_workers_screen_lists_workers_runners_and_local_scans(redis_server, monkeypatch):
    monkeypatch.setenv("ASSETMON_BACKEND", "thread")
    get_settings.cache_clear()
    monkeypatch.setattr(workers_screen, "clock", lambda: NOW)
    url = redis_server.url
    put(url, fleet.WORKER + "celery@alpha", worker_beat("celery@alpha", 4242, NOW - 2))
    put(url, fleet.WORKER + "evil", worker_beat(f"celery@{HOSTILE}", 666, NOW - 7))
    put(url, fleet.RUNNER + "alpha:4243", runner_beat("alpha:4243", "celery@alpha", 3))
    put(url, fleet.RUNNER + "evil:1", runner_beat("evil:1", "", 4, step=HOSTILE))
    project_id = make_project("acme", ["acme.test"])
    local = repo.create_scan(project_id, ["dns"], {})
    assert leases.claim(local.id, "thread", this_process(), 60, 3)  # as this TUI's thread backend claims it

    app = AssetMonApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_workers(pilot)
        text = await showing(pilot, "celery@alpha", "4242", "2 s ago", "#12 ports chunk 3/8 40/120", "1 s ago")
        await showing(pilot, "2 workers · 2 runners", f"#{local.id} acme · running", "(thread)")
        # shown literally, never as markup; the terminal title sequence dropped whole
        assert "celery@[bold]x[/bold]" in text and "#12 [bold]x[/bold] chunk 4/8" in text
        assert "pwned" not in text and "\x1b" not in text and "\x07" not in text
        assert screen.last is not None and len(screen.last.beats) == 2

        put(url, fleet.RUNNER + "beta:1", runner_beat("beta:1", "celery@beta", 5))  # read again every second
        await showing(pilot, "chunk 5/8", "3 runners")
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.dashboard, "Escape closes it")
        await pilot.press("W")
        await until(pilot, lambda: isinstance(app.screen, WorkersScreen), "the workers screen again")
        await pilot.press("q")
        await until(pilot, lambda: app.screen is app.dashboard and app.is_running, "q closes it (not the app)")


async def test_workers_screen_marks_a_worker_of_an_older_release(redis_server, monkeypatch):
    """A rolling upgrade left it running: it takes no scan of this install (another queue)."""
    monkeypatch.setattr(workers_screen, "clock", lambda: NOW)
    put(redis_server.url, fleet.WORKER + "celery@old", worker_beat("celery@old", 4242, NOW - 1, older=True))
    put(redis_server.url, fleet.WORKER + "celery@new", worker_beat("celery@new", 4343, NOW - 1))
    make_project("acme", ["acme.test"])
    async with AssetMonApp().run_test(size=(120, 40)) as pilot:
        await open_workers(pilot)
        text = await showing(pilot, "1 worker of an older release takes no scan of this install: restart it")
        [old] = [line for line in text.splitlines() if "celery@old" in line]
        [new] = [line for line in text.splitlines() if "celery@new" in line]
        assert "older" in old and "0.1.0" not in old and "0.1.0" in new


async def test_workers_screen_says_when_no_worker_beats(redis_server, monkeypatch):
    monkeypatch.setenv("ASSETMON_BACKEND", "thread")
    get_settings.cache_clear()
    make_project("acme", ["acme.test"])
    app = AssetMonApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_workers(pilot)
        await showing(pilot, "no worker has beaten in the last 15 s", "no scan runs here")


async def test_workers_screen_says_when_redis_is_unreachable(no_redis, monkeypatch):
    monkeypatch.setenv("ASSETMON_REDIS_URL", get_settings().redis_url.replace("redis://", "redis://:s3cret@"))
    get_settings.cache_clear()
    place = get_settings().redis_url.rsplit("@", 1)[-1].rsplit("/", 1)[0]
    make_project("acme", ["acme.test"])
    app = AssetMonApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_workers(pilot)
        text = await showing(pilot, f"Redis unreachable at {place}")
        assert "s3cret" not in text


def test_workers_screen_snapshot(snap_compare, redis_server, monkeypatch):
    with utc_thread_world(monkeypatch):
        monkeypatch.setattr(workers_screen, "clock", lambda: NOW)
        url = redis_server.url
        put(url, fleet.WORKER + "celery@alpha", worker_beat("celery@alpha", 4242, NOW - 2))
        put(url, fleet.WORKER + "celery@beta", worker_beat("celery@beta", 5151, NOW - 1))
        for chunk, (runner, name) in enumerate((("alpha:4243", "alpha"), ("beta:5152", "beta")), 3):
            put(url, fleet.RUNNER + runner, runner_beat(runner, f"celery@{name}", chunk))
        put(url, fleet.RUNNER + "tui:77", {**runner_beat("tui:77", "", 0, step="dns"), "scan_id": 13, "total": 0})
        make_project("acme", ["acme.test"])

        async def ready(pilot: Pilot) -> None:
            pilot.app.animation_level = "none"
            await open_workers(pilot)
            await showing(pilot, "2 workers · 3 runners", "chunk 4/8", "#13 dns", "no scan runs here")
            await settle(pilot)

        assert snap_compare(AssetMonApp(), terminal_size=SIZE, run_before=ready)


# -- the CLI -------------------------------------------------------------------------------


def test_cli_workers_table_and_json(redis_server, capsys):
    now = time.time()
    put(redis_server.url, fleet.WORKER + "celery@alpha", {**worker_beat("celery@alpha", 4242), "at": now - 2})
    put(redis_server.url, fleet.RUNNER + "alpha:1", {**runner_beat("alpha:1", "celery@alpha", 3), "at": now})
    put(redis_server.url, fleet.RUNNER + "x:2", {**runner_beat("x:2", "", 1, step=HOSTILE), "at": now})
    assert cli.main(["workers"]) == 0
    out = capsys.readouterr().out
    assert "celery@alpha" in out and "pid 4242" in out and "x4" in out and "2s ago" in out
    assert "#12 ports chunk 3/8 40/120" in out and "(thread)" in out and "\x1b" not in out

    assert cli.main(["workers", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    [w] = [r for r in rows if r["type"] == "worker"]
    assert (w["name"], w["pid"], w["concurrency"], w["version"]) == ("celery@alpha", 4242, 4, "0.1.0")
    assert 1 <= w["beat_age"] < 15
    runners = {r["runner"]: r for r in rows if r["type"] == "runner"}
    assert runners["alpha:1"]["doing"] == "#12 ports chunk 3/8 40/120" and runners["alpha:1"]["chunk"] == 3
    assert "\x1b" not in runners["x:2"]["step"]


def test_cli_workers_says_when_none_beats_or_redis_is_away(redis_server, capsys, monkeypatch):
    assert cli.main(["workers"]) == 0
    assert "no worker has beaten in the last 15 s" in capsys.readouterr().err
    redis_server.stop()
    assert cli.main(["workers", "--json"]) == 1
    captured = capsys.readouterr()
    assert f"Redis unreachable at 127.0.0.1:{redis_server.port}" in captured.err and captured.out == ""


def test_cli_scans_and_follow_show_the_workers_line(capsys):
    progress = Progress(1, state="running", workers=["alpha:11 #1 ports chunk 1/2", f"{HOSTILE} #1 ports chunk 2/2"])
    line = cli._progress_line(progress)
    assert "on 2 workers: alpha:11, [bold]x[/bold]" in line and "\x1b" not in line

    project_id = make_project("acme", ["acme.test"])
    scan = repo.create_scan(project_id, ["ports"], {})
    row = cli._scan_row(scan, progress, "acme")
    assert row["workers"][0] == "alpha:11 #1 ports chunk 1/2" and "\x1b" not in row["workers"][1]


@pytest.mark.parametrize("as_json", [False, True])
def test_cli_scans_lists_the_workers_of_a_running_scan(capsys, monkeypatch, as_json):
    """`assetmon scans`: a fanned-out scan's progress (as Dispatcher.poll merges it) names its workers."""
    from assetmon_tui.dispatch import Dispatcher

    project_id = make_project("acme", ["acme.test"])
    scan = repo.create_scan(project_id, ["ports"], {})
    assert leases.claim(scan.id, "celery", "alpha:11", 60, 3)
    workers = ["alpha:11 #1 ports chunk 1/2 20/60", "beta:22 #1 ports chunk 2/2 20/60"]

    def poll(self: Dispatcher, scan_id: int) -> tuple[Any, Progress]:
        return repo.get_scan(scan_id), Progress(scan_id, state="running", workers=workers)

    monkeypatch.setattr(Dispatcher, "poll", poll)
    assert cli.main(["scans", "--active", *(["--json"] if as_json else [])]) == 0
    out = capsys.readouterr().out
    if as_json:
        assert json.loads(out)["workers"] == workers
    else:
        assert "on 2 workers: alpha:11, beta:22" in out.splitlines()[1]


def test_a_runners_rates_travel_in_its_beat_and_only_known_integers_are_read(redis_server):
    """A chunk's DNS pace and slowed hosts reach whoever follows the scan
    (dispatch adds up the running chunks'); another writer's junk is dropped."""
    beats = Fleet(redis_server.url)
    beats.beat(Beat("a:1", 7, step="dns", chunk=1, chunks=2, gauges={"dns_qps": 350, "dns_limit": 40}))
    put(
        redis_server.url,
        fleet.RUNNER + "b:2",
        {
            **runner_beat("b:2", "", 2),
            "at": time.time(),
            "gauges": {"dns_qps": 100, "http_slowed": True, "evil": 1, "dns_limit": "x"},
        },
    )
    put(redis_server.url, fleet.RUNNER + "c:3", {**runner_beat("c:3", "", 3), "at": time.time(), "gauges": [1]})
    read = {b.runner: b.gauges for b in beats.beats()}
    assert read == {"a:1": {"dns_qps": 350, "dns_limit": 40}, "b:2": {"dns_qps": 100}, "c:3": {}}  # still beats
    progress = Progress(7)
    progress.counters.update(hosts=3, dns_limit=9)
    progress.set_gauges({"dns_qps": 450})
    assert progress.counters == {"hosts": 3, "dns_qps": 450}  # a back-off that ended is no longer shown


def test_the_rates_of_a_steps_running_chunks_add_up_in_its_progress(redis_server):
    """Two workers each run a chunk of the dns step: whoever follows the scan sees
    their DNS pace added up (and a back-off while one is slowed)."""
    from assetmon_tui.dispatch import Dispatcher
    from assetmon_tui.store import chunks
    from assetmon_tui.store.identity import store_id

    scan = repo.create_scan(make_project("fanned", ["acme.test"]), ["dns"], {})
    assert leases.claim(scan.id, "celery", "w:1", 60, 3)
    chunks.plan(scan.id, "dns", [(["a.acme.test"], 1), (["b.acme.test"], 1)])
    assert leases.hand_over(scan.id, "w:1", chunks.fanout_owner("dns"), 600)
    beats = Fleet(redis_server.url, store=store_id())
    beats.beat(Beat("x:2", scan.id, "celery@x", "dns", 1, 2, gauges={"dns_qps": 300, "dns_limit": 50}))
    beats.beat(Beat("y:3", scan.id, "celery@y", "dns", 2, 2, gauges={"dns_qps": 200}))
    progress = Progress(scan.id, state="running")
    Dispatcher()._merge_chunks(repo.get_scan(scan.id), progress)
    assert progress.counters == {"dns_qps": 500, "dns_limit": 50}
    assert len(progress.workers) == 2
