"""Real parts for tests and benchmarks: a free loopback port, a wait for a
condition, a private redis-server and a Celery worker subprocess.

`tests/conftest.py` wraps these in fixtures and `bench/` uses them directly,
so both exercise the same processes the same way. Loopback only.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
T = TypeVar("T")


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (also usable as a "closed" port)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.05, what: str = "condition") -> T:
    """Poll `predicate` until it returns something true; return that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class RedisServer:
    """A private redis-server on a free loopback port that may be stopped and
    restarted on the same port (a broker outage)."""

    def __init__(self, workdir: Path, port: int | None = None):
        self.port = port or free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(
            ["redis-server", *args, "--dir", str(self.workdir)],
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

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Worker:
    """`celery worker` in its own session (so a kill takes its children too),
    with this process's environment plus `env`. Its log is appended to `log`."""

    def __init__(self, log: Path, env: dict[str, str] | None = None, concurrency: int = 1, name: str = "test"):
        self.log = log
        self.extra_env = env or {}
        self.concurrency = concurrency
        self.hostname = f"{name}-{uuid.uuid4().hex[:6]}@%h"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_start = 0

    def start(self, timeout: float = 60.0, wait: bool = True) -> Worker:
        """Start it and, with `wait`, wait until it is ready (`wait_ready`)."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._log_start = self.log.stat().st_size if self.log.exists() else 0
        cmd = [str(VENV_BIN / "celery"), "-A", "worker.celery_app", "worker", "--loglevel", "INFO"]
        cmd += ["--concurrency", str(self.concurrency), "--hostname", self.hostname, "--without-mingle"]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [*cmd, "--without-gossip"],
                cwd=ROOT,
                env=self.environment(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self.wait_ready(timeout) if wait else self

    def wait_ready(self, timeout: float = 60.0) -> Worker:
        wait_for(self.ready, timeout, interval=0.1, what=f"the Celery worker (log {self.log})")
        return self

    def environment(self) -> dict[str, str]:
        """The worker's environment: this process's, plus the extra settings."""
        return {**os.environ, **self.extra_env, "PYTHONUNBUFFERED": "1"}

    def log_text(self) -> str:
        """What this worker wrote since it started."""
        with self.log.open("rb") as fh:
            fh.seek(self._log_start)
            return fh.read().decode("utf-8", "replace")

    def ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"worker exited: {self.log_text()[-3000:]}")
        return "ready." in self.log_text() and len(self.pool_pids()) >= self.concurrency

    def pool_pids(self) -> list[int]:
        """The prefork pool processes: they run the tasks."""
        assert self.proc is not None
        try:
            text = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        except OSError:
            return []
        return [int(p) for p in text.split()]

    def kill(self) -> None:
        """SIGKILL the whole process group, children included: a crash, not a shutdown."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def terminate(self) -> None:
        """Begin a warm shutdown (TERM) without waiting: Celery's pool takes
        about 1.5 s to stop, so stopping several workers begins with all of them."""
        if self.proc and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)

    def stop(self, timeout: float = 15.0) -> None:
        """Warm shutdown (TERM), then a kill if it does not exit in time."""
        if self.proc and self.proc.poll() is None:
            self.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> Worker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Beat:
    """`celery beat` with the database scheduler, in its own session, with the
    given environment (a worker's), logging to `log`."""

    def __init__(self, home: Path, env: dict[str, str]):
        self.home, self.env = home, env
        self.log = home / "beat.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Beat:
        cmd = [str(VENV_BIN / "celery"), "-A", "worker.celery_app", "beat", "--loglevel", "INFO"]
        cmd += ["--scheduler", "worker.beat:DatabaseScheduler", "--schedule", str(self.home / "beat-schedule")]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                cmd, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def __enter__(self) -> Beat:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def machine_listeners() -> set[int]:
    """TCP ports listening on every interface (0.0.0.0, ::): this machine's own
    services, reachable on any loopback address, which wide test scans and
    benches leave alone (LISTEN is state 0A in /proc/net/tcp*)."""
    ports = set()
    for name, wildcard in (("tcp", "00000000"), ("tcp6", "0" * 32)):
        try:
            lines = Path(f"/proc/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, port = fields[1].split(":")
            if fields[3] == "0A" and address == wildcard:
                ports.add(int(port, 16))
    return ports
