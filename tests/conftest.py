"""Shared fixtures: an isolated AssetMon home per test, the database (SQLite,
or PostgreSQL when DATABASE_URL says so), real redis-server processes and a
real Celery worker subprocess."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from assetmon_tui.testing import RedisServer, Worker, free_port

REQUIRE_REDIS = os.environ.get("ASSETMON_REQUIRE_REDIS") == "1"


# -- database -----------------------------------------------------------------------


def _pg_admin_url() -> str | None:
    url = os.environ.get("DATABASE_URL", "")
    return url if url.startswith("postgres") else None


@pytest.fixture(scope="session")
def _pg_template():
    """On PostgreSQL, one database with the tables made, which every test's
    database is copied from (cheaper than creating the tables per test)."""
    admin = _pg_admin_url()
    if not admin:
        yield None
        return
    import psycopg

    from assetmon_tui.store import migrate
    from assetmon_tui.store.db import make_engine

    name = f"assetmon_template_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    engine = make_engine(f"{admin.rsplit('/', 1)[0]}/{name}")
    migrate.upgrade(engine)  # the tables at the head revision, as a process opening a new database makes them
    engine.dispose()  # a template must have no connections when it is copied
    yield name
    with psycopg.connect(admin.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch, _pg_template):
    """Every test gets its own data dir and database, and fresh settings."""
    from assetmon_tui.core.config import get_settings

    monkeypatch.setenv("ASSETMON_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ASSETMON_HEALTH_TIMEOUT", "0.5")
    monkeypatch.delenv("ASSETMON_BACKEND", raising=False)
    monkeypatch.delenv("ASSETMON_CWD", raising=False)  # ./start.sh test sets it: exports must not land in its folder
    admin = _pg_admin_url()
    dbname = None
    if admin:
        import psycopg

        from assetmon_tui.core.config import normalise_url

        dbname = f"assetmon_test_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(admin.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{dbname}" TEMPLATE "{_pg_template}"')
        base = normalise_url(admin).rsplit("/", 1)[0]
        monkeypatch.setenv("DATABASE_URL", f"{base}/{dbname}")
    get_settings.cache_clear()
    yield tmp_path / "home"
    # A thread scan's runner sends its notifications (with retries) after its
    # progress says done, and a reaper pass sends deliveries due in a thread:
    # neither may write into the next test's home.
    for thread in threading.enumerate():
        if thread.name.startswith(("scan-", "assetmon-deliveries")) and thread is not threading.current_thread():
            thread.join(10)
    get_settings.cache_clear()
    if dbname:
        import psycopg

        from assetmon_tui.store import db

        for key, engine in list(db._engines.items()):
            if dbname in key[1]:
                engine.dispose()
                del db._engines[key]
        with psycopg.connect(admin.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


# -- redis ------------------------------------------------------------------------------


def _need_redis_server() -> None:
    if shutil.which("redis-server") is None:
        if REQUIRE_REDIS:
            pytest.fail("redis-server is required (ASSETMON_REQUIRE_REDIS=1) but not installed")
        pytest.skip("redis-server not installed")


@pytest.fixture
def redis_server(tmp_path, monkeypatch):
    _need_redis_server()
    server = RedisServer(tmp_path).start()
    monkeypatch.setenv("ASSETMON_REDIS_URL", server.url)
    from assetmon_tui.core.config import get_settings

    get_settings.cache_clear()
    yield server
    server.stop()


@pytest.fixture
def no_redis(monkeypatch):
    """A Redis URL where nothing listens."""
    monkeypatch.setenv("ASSETMON_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    from assetmon_tui.core.config import get_settings

    get_settings.cache_clear()


# -- celery worker -----------------------------------------------------------------------


class WorkerFactory:
    """Celery workers of this test's home and Redis, stopped at its end.
    `factory()` starts one; `factory.many(n)` starts n at once (each takes
    seconds to import Celery) and waits for them all."""

    def __init__(self, home: Path, redis_url: str) -> None:
        self.home, self.redis_url = home, redis_url
        self.workers: list[Worker] = []

    def __call__(self) -> Worker:
        return self.many(1)[0]

    def many(self, count: int) -> list[Worker]:
        env = {"ASSETMON_HOME": str(self.home), "ASSETMON_REDIS_URL": self.redis_url}
        started = []
        for _ in range(count):
            started.append(Worker(self.home / f"worker-{len(self.workers) + 1}.log", env).start(wait=False))
            self.workers.append(started[-1])
        return [w.wait_ready() for w in started]

    def stop(self) -> None:
        for w in self.workers:
            w.terminate()  # all at once: each takes ~1.5 s
        for w in self.workers:
            w.stop()


@pytest.fixture
def worker_factory(home, redis_server):
    factory = WorkerFactory(home, redis_server.url)
    yield factory
    factory.stop()


@pytest.fixture
def worker(worker_factory):
    return worker_factory()


# -- a notification receiver ---------------------------------------------------------


@pytest.fixture
def receiver():
    """A tiny HTTP server capturing POST bodies; `fail` makes it answer 500,
    `delay` answer after that many seconds."""
    bodies: list[dict] = []
    state = {"fail": 0, "delay": 0.0}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            time.sleep(state["delay"])  # a slow receiver (its own thread: ThreadingHTTPServer)
            if state["fail"] > 0:
                state["fail"] -= 1
                self.send_response(500)
            else:
                bodies.append(json.loads(data))
                self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    server.bodies, server.state = bodies, state
    server.url = f"json://127.0.0.1:{server.server_address[1]}/hook"
    yield server
    server.shutdown()
    server.server_close()
