"""Backend choice from the workers' heartbeats (no Celery ping), `assetmon
health` without the database layer or Celery, and the CLI following a scan
without sleep-polling: it returns as soon as the scan's last report is made."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from assetmon_tui import cli
from assetmon_tui.core.config import get_settings
from assetmon_tui.core.fleet import Fleet, WorkerBeat
from assetmon_tui.dispatch import Dispatcher
from assetmon_tui.store import repo
from assetmon_tui.testing import ROOT, VENV_BIN, wait_for


def mine(worker) -> list[WorkerBeat]:
    prefix = worker.hostname.split("@")[0] + "@"
    return [w for w in Fleet(get_settings().redis_url).workers() if w.name.startswith(prefix)]


def test_a_live_worker_is_alive_and_a_killed_one_is_not(worker):
    dispatcher = Dispatcher()
    health = dispatcher.check_health()
    assert (health.backend, health.workers, health.detail) == ("celery", 1, "Celery · 1 worker")
    [beat] = mine(worker)
    assert beat.alive() and beat.interval == 2.0

    worker.kill()  # kill -9 of its process group: no shutdown, its key stays until the TTL
    assert mine(worker), "the killed worker's beat is still in Redis"
    # On this host its pid is gone: not alive at once.
    assert dispatcher.check_health().backend == "thread"
    # Elsewhere only the age tells: alive until the beat ages out, then not.
    fleet = Fleet(get_settings().redis_url)
    assert [w.pid for w in fleet.alive_workers(max_age=60, check_pid=False) or []] == [beat.pid]
    wait_for(
        lambda: fleet.alive_workers(max_age=1.0, check_pid=False) == [],
        timeout=10,
        what="the killed worker's beat to age out",
    )
    assert mine(worker), "decided by the beat's age, not by its key expiring"
    health = dispatcher.check_health(max_age=1.0)
    assert (health.backend, health.redis_ok, health.workers) == ("thread", True, 0)
    assert "no worker on" in health.detail


def test_an_unreaped_child_is_dead_and_a_running_one_alive():
    """A worker killed with its process group leaves zombies where PID 1 does
    not reap orphans (CI's container): they run nothing and count as dead."""
    from assetmon_tui.core.owners import is_dead, pid_alive

    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    exited = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        stat = Path(f"/proc/{exited.pid}/stat")
        wait_for(lambda: stat.read_text().rsplit(")", 1)[1].split()[0] == "Z", 10, 0.01, "a zombie")
        assert pid_alive(running.pid) and not is_dead(f"{socket.gethostname()}:{running.pid}")
        assert not pid_alive(exited.pid) and is_dead(f"{socket.gethostname()}:{exited.pid}")
    finally:
        running.kill()
        running.wait()
        exited.wait()
    assert not pid_alive(exited.pid)  # reaped: gone


def test_a_beat_is_judged_by_its_own_interval(redis_server):
    fleet = Fleet(redis_server.url)
    now = time.time()
    fleet.worker(WorkerBeat("celery@far", "elsewhere", 1, 1, "x", now, interval=10.0))
    fleet.worker(WorkerBeat("celery@near", "elsewhere", 2, 1, "x", now, interval=2.0))
    client = __import__("redis").Redis.from_url(redis_server.url)
    for name in ("far", "near"):  # both last beat 6 s ago
        key = f"assetmon:worker:celery@{name}"
        data = json.loads(client.get(key))
        client.set(key, json.dumps({**data, "at": now - 6}), ex=15)
    assert [w.name for w in fleet.alive_workers() or []] == ["celery@far"]  # 6 s < 2.5 x 10 s, but > 2.5 x 2 s


def test_no_redis_is_said_at_once_and_seen_back_at_once(redis_server):
    dispatcher = Dispatcher()
    redis_server.stop()
    health = dispatcher.check_health()
    assert (health.backend, health.redis_ok) == ("thread", False) and "no Redis at" in health.detail
    redis_server.start()
    health = dispatcher.check_health()  # no back-off: the next check sees it
    assert health.redis_ok and "no worker on" in health.detail


CHILD = textwrap.dedent(
    """
    import json, sys
    from assetmon_tui.dispatch import Dispatcher
    health = Dispatcher().check_health()
    print(json.dumps({"detail": health.detail, "modules": sorted(sys.modules)}))
    """
)


def test_health_imports_neither_the_database_layer_nor_celery(worker):
    out = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    assert seen["detail"] == "Celery · 1 worker"
    heavy = [m for m in seen["modules"] if m.split(".")[0] in ("celery", "kombu", "sqlalchemy", "sqlmodel", "alembic")]
    assert heavy == []
    command = subprocess.run(
        [str(VENV_BIN / "assetmon"), "health"], cwd=ROOT, env=dict(os.environ), capture_output=True, text=True
    )
    assert (command.returncode, command.stdout) == (0, "Celery · 1 worker\n")


# -- following a scan ----------------------------------------------------------------------


@pytest.fixture
def listener():
    """An open port on loopback for a 1-port scan."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


def follow_and_time(dispatcher: Dispatcher, scan_id: int, monkeypatch) -> float:
    """Run cli._follow with time.sleep forbidden; how long after the scan's
    end (its row's finished_at) it returned."""

    def no_sleep(seconds: float) -> None:
        raise AssertionError(f"_follow slept {seconds} s")

    monkeypatch.setattr(cli.time, "sleep", no_sleep)
    progress = cli._follow(dispatcher, scan_id)
    returned = time.time()
    monkeypatch.undo()
    assert progress.state == "done", progress
    finished = repo.get_scan(scan_id).finished_at
    assert finished is not None
    from assetmon_tui.store.models import as_utc

    return returned - as_utc(finished).timestamp()


def counted(wait, woken: list[bool]):
    """`wait` (a backend's), noting in `woken` whether each call was woken by a report."""

    def counting(key, timeout: float) -> bool:
        changed = wait(key, timeout)
        woken.append(changed)
        return changed

    return counting


def test_follow_a_thread_scan_wakes_on_reports_and_returns_at_its_end(no_redis, listener, monkeypatch):
    from support.scenario import make_project

    dispatcher = Dispatcher()
    woken: list[bool] = []
    dispatcher.thread.wait = counted(dispatcher.thread.wait, woken)  # type: ignore[method-assign]
    scan = dispatcher.submit(make_project(targets=["127.0.0.1"]), ["ports"], {"ports": str(listener)})
    assert scan.backend == "thread"
    late = follow_and_time(dispatcher, scan.id, monkeypatch)
    assert late < 0.25, f"returned {late:.3f} s after the scan ended"
    assert any(woken), "woken by a report, not by the tick"


def test_follow_a_celery_scan_wakes_on_the_workers_publish(worker, listener, monkeypatch):
    from support.scenario import make_project

    dispatcher = Dispatcher()
    assert dispatcher.check_health().backend == "celery"
    woken: list[bool] = []
    dispatcher.celery.wait = counted(dispatcher.celery.wait, woken)  # type: ignore[method-assign]
    scan = dispatcher.submit(make_project(targets=["127.0.0.1"]), ["ports"], {"ports": str(listener)})
    assert scan.backend == "celery"
    late = follow_and_time(dispatcher, scan.id, monkeypatch)
    # The last wait ended on the worker's publish, not at the tick; the bound in
    # seconds is loose because a loaded machine delays the worker's commit too.
    assert woken and woken[-1], f"the end was read at the tick ({woken})"
    assert late < 2 * cli.TICK, f"returned {late:.3f} s after the scan ended"
    assert dispatcher.celery._sub is None  # the subscription is closed when following ends


def test_thread_wait_returns_on_a_report_not_at_its_timeout():
    from assetmon_tui.dispatch import ThreadBackend

    backend = ThreadBackend()
    started = time.monotonic()
    threading.Timer(0.05, lambda: (backend._changed.acquire(), backend._bump(7), backend._changed.release())).start()
    assert backend.wait(7, 30.0) is True
    assert time.monotonic() - started < 5
    assert backend.wait(7, 0.01) is False  # nothing new since


def test_the_plain_socket_read_agrees_with_redis_py_and_handles_a_password_and_a_db(redis_server):
    import redis

    from assetmon_tui.core import fleet as fleet_module

    writer = Fleet(redis_server.url.replace("/0", "/3"))
    writer.worker(WorkerBeat("celery@one", "elsewhere", 1, 2, "x", time.time()))
    writer.worker(WorkerBeat("celery@two", "elsewhere", 2, 2, "x", time.time()))
    redis.Redis.from_url(redis_server.url).config_set("requirepass", "s3cret:/")
    url = f"redis://:s3cret%3A%2F@127.0.0.1:{redis_server.port}/3"
    quick = Fleet(url).alive_workers()
    assert quick is not None and [w.name for w in quick] == ["celery@one", "celery@two"]
    py = Fleet(url)
    py._redis()  # a Fleet that already has a redis-py client uses it
    assert [w.name for w in py.alive_workers() or []] == ["celery@one", "celery@two"]
    assert Fleet(f"redis://:wrong@127.0.0.1:{redis_server.port}/3").alive_workers() is None  # refused: not usable
    assert fleet_module._Resp.read(url + "?health_check_interval=2", 0.5, "x") is NotImplemented
    redis_server.stop()
    assert Fleet(url).alive_workers() is None


POOL_CHILD = textwrap.dedent(
    """
    import sys, threading
    from assetmon_tui import cli
    from assetmon_tui.core.procpool import spawn_pool

    if __name__ == "__main__":
        box = {}
        def work():  # as the js step does in a thread runner: a pool made in a daemon thread, left idle
            box["pool"] = spawn_pool(1)
            assert box["pool"].submit(pow, 2, 10).result() == 1024
        runner = threading.Thread(target=work, daemon=True)
        runner.start()
        runner.join()
        print(" ".join(str(p.pid) for p in __import__("multiprocessing").active_children()), flush=True)
        cli._exit_now(3)
    """
)


def test_the_quick_exit_stops_an_idle_process_pool_instead_of_hanging_on_it(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(POOL_CHILD)
    out = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 3, out.stderr
    assert "leaked" not in out.stderr and "Traceback" not in out.stderr, out.stderr
    pids = [int(p) for p in out.stdout.split()]
    assert pids

    def gone() -> bool:
        return not any(os.path.exists(f"/proc/{pid}") for pid in pids)

    wait_for(gone, timeout=10, what="the pool's process to be gone")
