"""Two installs on one server share its Redis (the system one on 6379, say),
each with its own database and worker. A worker takes only the scans of its
own database, and a TUI counts only the workers of its own database: before,
both consumed one queue, so a scan could be taken by the other install's
worker (which found no such scan, or ran its own scan of that number), and a
TUI whose worker had stopped still counted the other install's."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy.engine import make_url
from support.loopback import TcpServer
from support.scenario import make_project

from assetmon_tui.core.config import get_settings
from assetmon_tui.dispatch import Dispatcher
from assetmon_tui.store import repo
from assetmon_tui.testing import Worker, free_port, wait_for


@pytest.mark.one_store  # two SQLite files: the second install's database is its own
def test_two_installs_on_one_redis_run_their_own_scans_and_count_their_own_workers(home, redis_server, tmp_path):
    other_home = tmp_path / "other"
    mine = Worker(home / "mine.log", {"ASSETMON_HOME": str(home), "ASSETMON_REDIS_URL": redis_server.url}).start()
    other = Worker(
        other_home / "other.log",
        {"ASSETMON_HOME": str(other_home), "ASSETMON_REDIS_URL": redis_server.url},
        name="other",
    ).start()
    try:
        with TcpServer() as listener:
            dispatcher = Dispatcher()
            health = dispatcher.check_health()
            assert (health.backend, health.workers) == ("celery", 1), health.detail  # not the other install's
            projects = [make_project(f"p{i}", targets=["127.0.0.1"]) for i in range(4)]  # one active scan each
            scans = [dispatcher.submit(p, ["ports"], {"ports": str(listener.port)}) for p in projects]
            for scan in scans:
                wait_for(lambda s=scan: repo.get_scan(s.id).status == "done", 60, 0.05, f"scan {scan.id}")
            assert "Task assetmon.run_scan[" not in other.log_text()  # it never took a message of this database
            assert all(f"scan-{s.id}-" in mine.log_text() for s in scans)

            mine.stop()  # this install's worker goes: the other's, alive, is no worker of ours
            health = wait_for(lambda: (h := dispatcher.check_health()).workers == 0 and h, 30, 0.1, "0 workers")
            assert health.backend == "thread", health.detail
            late = dispatcher.submit(projects[0], ["ports"], {"ports": str(listener.port)})
            assert repo.get_scan(late.id).backend == "thread"
            wait_for(lambda: repo.get_scan(late.id).status == "done", 60, 0.05, "the scan run here")
    finally:
        mine.stop()
        other.stop()
    get_settings.cache_clear()


def older_release_worker_beat(url: str) -> str:
    """The beat a worker of the release before store ids (2026-12-04) writes:
    no `store` field. Such a worker consumes the old shared queue, none of this
    install's. Its process is this one (alive on this host); its interval long
    enough for the test."""
    import redis

    now = time.time()
    beat = dict(name="celery@old-release", host=socket.gethostname(), pid=os.getpid(), concurrency=2)
    beat |= dict(version="0.1.0", started=now - 3600, at=now, interval=60.0)
    redis.Redis.from_url(url).set("assetmon:worker:celery@old-release", json.dumps(beat), ex=120)
    return beat["name"]


def test_a_worker_of_an_older_release_is_no_worker_to_send_scans_to(home, redis_server):
    """A rolling upgrade: the old worker still beats, but takes no message of
    this install's queue. Before, it counted as a worker: the TUI said
    "Celery · 1 worker" and every scan waited in a queue nobody reads."""
    older_release_worker_beat(redis_server.url)
    dispatcher = Dispatcher()
    health = dispatcher.check_health()
    assert health.backend == "thread", health.detail
    assert health.detail == "Local thread · 1 old-release worker on this Redis: restart it", health.detail
    with TcpServer() as listener:
        scan = dispatcher.submit(make_project(targets=["127.0.0.1"]), ["ports"], {"ports": str(listener.port)})
        assert scan.backend == "thread"
        wait_for(lambda: repo.get_scan(scan.id).status == "done", 60, 0.05, "the scan, run here")
    listed = subprocess.run(
        [sys.executable, "-m", "assetmon_tui.cli", "workers"], capture_output=True, text=True, timeout=60
    )
    assert listed.returncode == 0, listed.stderr
    assert "celery@old-release" in listed.stdout and "older release: restart it" in listed.stdout, listed.stdout


class Forwarder:
    """TCP on a free loopback port, passed to `target` once `open` is called
    (before that nothing listens: a database that is away)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target, self.port = target, free_port()
        self._stop = threading.Event()

    def open(self) -> None:
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._server.settimeout(0.1)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := a.recv(65536):
                b.sendall(data)
        with contextlib.suppress(OSError):
            b.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._stop.set()
        if hasattr(self, "_server"):
            self._server.close()


@pytest.mark.postgres
def test_a_worker_started_while_its_database_is_away_waits_for_it_then_takes_its_scans(home, redis_server):
    """Its queue is named by its database's id: before, it could not start
    without it (a traceback at import); now it says why it waits, once."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        pytest.skip("the PostgreSQL pass runs it (a server to stop and start is a TCP forwarder to it)")
    real = make_url(url)
    forwarder = Forwarder((real.host or "127.0.0.1", real.port or 5432))
    away = real.set(host="127.0.0.1", port=forwarder.port).render_as_string(hide_password=False)
    worker = Worker(home / "waiting.log", {"ASSETMON_HOME": str(home), "DATABASE_URL": away})
    worker.extra_env["ASSETMON_REDIS_URL"] = redis_server.url
    try:
        start = threading.Thread(target=worker.start, kwargs={"timeout": 90}, daemon=True)
        start.start()
        wait_for(lambda: worker.proc is not None and worker.log.exists(), 30, 0.05, "the worker process")
        wait_for(lambda: "waiting for it" in worker.log_text(), 60, 0.1, "the worker to say it waits")
        assert worker.proc is not None and worker.proc.poll() is None  # waiting, not dead
        said = [line for line in worker.log_text().splitlines() if "waiting for it" in line]
        assert len(said) == 1 and "cannot be used" in said[0] and "password" not in said[0], said
        forwarder.open()  # the database is back
        start.join(90)
        assert worker.ready()
        dispatcher = Dispatcher()
        assert dispatcher.check_health().workers == 1
        with TcpServer() as listener:
            scan = dispatcher.submit(make_project(targets=["127.0.0.1"]), ["ports"], {"ports": str(listener.port)})
            assert scan.backend == "celery"
            wait_for(lambda: repo.get_scan(scan.id).status == "done", 60, 0.05, "the scan, on that worker")
        assert "the database answers" in worker.log_text()
    finally:
        worker.stop()
        forwarder.close()
