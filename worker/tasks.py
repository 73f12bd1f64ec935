"""Thin Celery tasks: all the work is in assetmon_tui.pipeline."""

from __future__ import annotations

import logging
import platform
import socket
import threading
import time
from functools import partial
from typing import TYPE_CHECKING

from celery.signals import worker_ready, worker_shutting_down

from assetmon_tui.core.progress import FINAL_STATES, Progress

from .celery_app import app, enqueue_chunks, enqueue_scan, held_tasks

if TYPE_CHECKING:
    from celery import Task

log = logging.getLogger(__name__)


class Publisher:
    """Progress to Redis, best effort: while Redis is away the scan goes on
    (results go to the database), one line is logged when it goes and one
    when it is back, and publishing is retried every few seconds rather than
    at every report (each try may block for the socket timeout)."""

    RETRY = 3.0

    def __init__(self, task: Task, scan_id: int) -> None:
        from assetmon_tui.store import repo

        # One scan, one task id to poll: chunks and the runners that carry a
        # fanned-out scan on publish under the id its row records.
        self.task, self.scan_id = task, scan_id
        self.task_id = repo.get_scan(scan_id).task_id or task.request.id
        self.down_since: float | None = None
        self._next_try = 0.0

    def __call__(self, progress: Progress) -> None:
        now = time.time()
        final = progress.state in FINAL_STATES
        if self.down_since is not None and now < self._next_try and not final:
            return
        try:
            self.task.update_state(task_id=self.task_id, state="PROGRESS", meta=progress.to_dict())
        except Exception as exc:  # kombu/redis raise many kinds when Redis vanishes
            if self.down_since is None:
                self.down_since = now
                log.warning(
                    "scan %s: Redis unreachable (%s); scanning on, progress resumes when it returns",
                    self.scan_id,
                    type(exc).__name__,
                )
            self._next_try = now + self.RETRY
            return
        if self.down_since is not None:
            log.warning(
                "scan %s: Redis is back after %.0f s; progress published again", self.scan_id, now - self.down_since
            )
            self.down_since = None


# The return value is not stored: the scan row is the truth once a scan ends,
# and the last progress report already says "done". Storing it could only fail
# (with a traceback) when the scan ends during a Redis outage.
@app.task(name="assetmon.run_scan", bind=True, ignore_result=True)  # type: ignore[untyped-decorator]
def run_scan(self: Task, scan_id: int) -> dict[str, object]:
    from assetmon_tui.pipeline import run_scan as run

    # Exceptions propagate on purpose: Celery records FAILURE, the row says why.
    return run(
        scan_id, Publisher(self, scan_id), "celery", partial(enqueue_chunks, app), self.request.hostname
    ).to_dict()


@app.task(name="assetmon.run_chunk", bind=True, ignore_result=True)  # type: ignore[untyped-decorator]
def run_chunk(self: Task, chunk_id: int) -> None:
    from assetmon_tui.pipeline import run_chunk as run
    from assetmon_tui.store import chunks

    chunk = chunks.get(chunk_id)
    if chunk is None:
        return
    run(chunk_id, Publisher(self, chunk.scan_id), partial(enqueue_chunks, app), self.request.hostname or "")


def reap_once() -> list[int]:
    """One reaper pass from this worker: lost scans are requeued here."""
    from assetmon_tui.core.config import get_settings
    from assetmon_tui.reaper import Reaper

    reaper = Reaper(
        get_settings(),
        enqueue=partial(enqueue_scan, app),
        held_tasks=partial(held_tasks, app),
        send_chunks=partial(enqueue_chunks, app),
    )
    return reaper.reap()


def _reaper_loop(stop: threading.Event) -> None:
    """In the worker's main process: at start, then every third of a lease."""
    from assetmon_tui.core.config import get_settings
    from assetmon_tui.notify import deliver_due_in_background

    interval = max(1.0, get_settings().lease_timeout / 3)
    failing = False
    while True:
        try:
            reap_once()
            deliver_due_in_background()  # a notification whose sender was lost, or whose receiver was down
            if failing:
                log.warning("reaper: working again")
            failing = False
        except Exception as exc:  # the database or Redis may be briefly away
            if not failing:
                log.warning("reaper: %s: %s (retrying every %.0f s)", type(exc).__name__, exc, interval)
            failing = True
        if stop.wait(interval):
            return


_stop_reaper = threading.Event()


@worker_ready.connect  # type: ignore[untyped-decorator]
def _start_reaper(**_: object) -> None:
    threading.Thread(target=_reaper_loop, args=(_stop_reaper,), name="assetmon-reaper", daemon=True).start()


@worker_shutting_down.connect  # type: ignore[untyped-decorator]
def _stop(**_: object) -> None:
    _stop_reaper.set()


@app.task(name="assetmon.health_check")  # type: ignore[untyped-decorator]
def health_check() -> dict[str, str]:
    from importlib.metadata import version

    import celery

    return {
        "hostname": socket.gethostname(),
        "python": platform.python_version(),
        "celery": celery.__version__,
        "assetmon": version("assetmon-tui"),
    }
