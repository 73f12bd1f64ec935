"""Celery beat reading schedules from the database.

    celery -A worker.celery_app beat -S worker.beat:DatabaseScheduler

The scheduler polls `schedule.run_due` every few seconds inside the beat
process and queues `assetmon.run_scan` for each due project. Polling here
rather than in a periodic task means scheduling never waits behind a busy
worker (prefetch is 1 and a scan can take an hour), and Redis holds no
stream of housekeeping messages and results. The database is the schedule,
so an edit in the TUI takes effect at the next poll, without a restart.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery.beat import Scheduler

from assetmon_tui.schedule import run_due
from assetmon_tui.store import repo

from .tasks import reap_once

log = logging.getLogger(__name__)

POLL = 5.0  # seconds between looks at the schedule table


def submit(project_id: int, modules: list[str], options: dict[str, object]) -> int:
    """Create the scan row and queue it on Celery; the task id is recorded first."""
    from .celery_app import app, enqueue_scan

    scan = repo.new_scan(project_id, modules, options)
    assert scan.id is not None
    try:
        enqueue_scan(app, scan.id)
    except Exception as exc:
        repo.finish_scan(scan.id, "failed", f"could not queue the scheduled scan: {exc}")
        raise
    return scan.id


class DatabaseScheduler(Scheduler):  # type: ignore[misc]  # celery has no types
    """Static `beat_schedule` entries still work; the database adds scans."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._next_poll = 0.0
        super().__init__(*args, **kwargs)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        delay = float(super().tick(*args, **kwargs))
        now = time.monotonic()
        if now >= self._next_poll:
            self._next_poll = now + POLL
            try:
                reap_once()  # a lost scan must not hold its project's schedule
                started = run_due(submit)
                if started:
                    log.info("scheduled scans started for projects %s", started)
            except Exception as exc:  # the database may be briefly away: try again next poll
                log.warning("schedules not read: %s: %s", type(exc).__name__, exc)
        return max(0.0, min(delay, self._next_poll - time.monotonic()))
