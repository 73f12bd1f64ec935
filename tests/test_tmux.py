"""./start.sh as a person runs it, in a real terminal (tmux at 80x24): the
header waits for the worker, `?` shows the help and Escape closes it, Ctrl+C
quits and stops what start.sh started, and so does a hang-up (the terminal
closing, as when an SSH session drops): no worker, beat, TUI or private Redis
survives it."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from support.loopback import free_port

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.one_store,  # start.sh makes its own SQLite store
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (./start.sh test installs it)"),
]


class Terminal:
    """./start.sh in a private tmux server; `mark` is in the environment of all it starts."""

    def __init__(self, home: Path):
        self.socket = f"assetmon-test-{uuid.uuid4().hex[:8]}"
        self.mark = f"ASSETMON_TEST_MARK={uuid.uuid4().hex}"
        self.home = home
        env = [
            f"ASSETMON_HOME={home}",
            f"ASSETMON_REDIS_URL=redis://127.0.0.1:{free_port()}/0",  # nothing there: start.sh starts a private one
            f"ASSETMON_VENV={sys.prefix}",
            self.mark,
        ]
        command = f"env {' '.join(env)} {ROOT / 'start.sh'}"
        self.tmux("new-session", "-d", "-s", "t", "-x", "80", "-y", "24", command)

    def tmux(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=30)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "t").stdout

    def until(self, condition, what: str, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; the screen:\n{self.screen()}")

    def shows(self, text: str) -> bool:
        return text in self.screen()

    def started(self) -> list[int]:
        """Processes still alive that start.sh started (the private Redis rewrites its environment: by pidfile)."""
        found = []
        for environ in Path("/proc").glob("[0-9]*/environ"):
            try:
                if self.mark.encode() in environ.read_bytes().split(b"\0"):
                    found.append(int(environ.parent.name))
            except OSError:
                continue
        for pidfile in self.home.rglob("redis.pid"):
            pid = int(pidfile.read_text().strip() or 0)
            if pid and Path(f"/proc/{pid}").exists() and b"redis" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
        return found

    def close(self) -> None:
        self.tmux("kill-server")
        for pid in self.started():  # only after a failure: leave nothing behind
            with contextlib.suppress(OSError):
                os.kill(pid, 9)


@pytest.fixture
def terminal(tmp_path):
    opened: list[Terminal] = []

    def open_one() -> Terminal:
        opened.append(Terminal(tmp_path / f"home{len(opened)}"))
        return opened[-1]

    yield open_one
    for t in opened:
        t.close()


def header(t: Terminal) -> str:
    return t.screen().splitlines()[0] if t.screen() else ""


def test_help_opens_and_closes_and_ctrl_c_stops_everything(terminal):
    t = terminal()
    seen: set[str] = set()

    def celery() -> bool:
        seen.add(header(t).strip())
        return "Celery · 1 worker" in header(t)

    t.until(celery, "the worker in the header")
    assert not [h for h in seen if "Local thread" in h], seen  # never a false first impression
    assert t.started(), "start.sh, the TUI, the worker, beat and Redis run"
    t.tmux("send-keys", "-t", "t", "?")
    t.until(lambda: t.shows("Esc or ? closes") and t.shows("Launch scan"), "the help screen")
    t.tmux("send-keys", "-t", "t", "Escape")
    t.until(lambda: not t.shows("Esc or ? closes") and t.shows("Projects"), "the dashboard again")
    t.tmux("send-keys", "-t", "t", "C-c")
    t.until(lambda: not t.started(), "everything start.sh started to stop", timeout=60)


def test_a_hang_up_stops_everything_start_sh_started(terminal):
    t = terminal()
    t.until(lambda: "Celery · 1 worker" in header(t), "the worker in the header")
    before = t.started()
    assert len(before) >= 5  # start.sh, the TUI, the worker (and its pool), beat, Redis
    t.tmux("kill-server")  # the terminal goes away: every process on it gets a hang-up
    t.until(lambda: not t.started(), "everything start.sh started to stop", timeout=60)
    log = next(t.home.rglob("start.log")).read_text()
    assert "hang-up" in log
