"""Shared fixtures: an isolated AssetMon home per test, the database (SQLite,
or PostgreSQL when DATABASE_URL says so), real redis-server processes and a
real Celery worker subprocess."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
REQUIRE_REDIS = os.environ.get("ASSETMON_REQUIRE_REDIS") == "1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


# -- database -----------------------------------------------------------------------


def _pg_admin_url() -> str | None:
    url = os.environ.get("DATABASE_URL", "")
    return url if url.startswith("postgres") else None


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    """Every test gets its own data dir and database, and fresh settings."""
    from assetmon_tui.core.config import get_settings

    monkeypatch.setenv("ASSETMON_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ASSETMON_HEALTH_TIMEOUT", "0.5")
    monkeypatch.delenv("ASSETMON_BACKEND", raising=False)
    admin = _pg_admin_url()
    dbname = None
    if admin:
        import psycopg

        from assetmon_tui.store.db import normalise_url

        dbname = f"assetmon_test_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(admin.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{dbname}"')
        base = normalise_url(admin).rsplit("/", 1)[0]
        monkeypatch.setenv("DATABASE_URL", f"{base}/{dbname}")
    get_settings.cache_clear()
    yield tmp_path / "home"
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


class RedisServer:
    """A private redis-server on a free loopback port that a test may stop and restart."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self.answers, 10, what="redis-server to answer")
        return self

    def answers(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.2).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


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


class Worker:
    def __init__(self, home: Path, redis_url: str):
        self.home = home
        self.redis_url = redis_url
        self.proc: subprocess.Popen | None = None
        self.log = home / "worker-test.log"

    def env(self) -> dict:
        env = dict(os.environ)
        env.update(ASSETMON_HOME=str(self.home), ASSETMON_REDIS_URL=self.redis_url, PYTHONUNBUFFERED="1")
        return env

    def start(self) -> Worker:
        self.home.mkdir(parents=True, exist_ok=True)
        self._log_start = self.log.stat().st_size if self.log.exists() else 0
        self.proc = subprocess.Popen(
            [
                str(VENV_BIN / "celery"),
                "-A",
                "worker.celery_app",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                "1",
                "--hostname",
                f"test-{uuid.uuid4().hex[:6]}@%h",
                "--without-mingle",
                "--without-gossip",
            ],
            cwd=ROOT,
            env=self.env(),
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(self.ready, 30, interval=0.2, what=f"the Celery worker (log {self.log})")
        return self

    def ready(self) -> bool:
        assert self.proc.poll() is None, f"worker exited: {self.log.read_text()[-3000:]}"
        with self.log.open("rb") as fh:
            fh.seek(self._log_start)
            return b"ready." in fh.read()

    def kill(self) -> None:
        """SIGKILL the whole worker, children included: a crash, not a shutdown."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def worker_factory(home, redis_server):
    workers: list[Worker] = []

    def make() -> Worker:
        w = Worker(home, redis_server.url).start()
        workers.append(w)
        return w

    yield make
    for w in workers:
        w.stop()


@pytest.fixture
def worker(worker_factory):
    return worker_factory()
