"""Thin Celery tasks: all the work is in assetmon_tui.pipeline."""

from __future__ import annotations

import logging
import platform
import socket
from typing import TYPE_CHECKING

from assetmon_tui.core.progress import Progress

from .celery_app import app

if TYPE_CHECKING:
    from celery import Task

log = logging.getLogger(__name__)


@app.task(name="assetmon.run_scan", bind=True)  # type: ignore[untyped-decorator]  # celery has no types
def run_scan(self: Task, scan_id: int) -> dict[str, object]:
    from assetmon_tui.pipeline import run_scan as run

    def report(progress: Progress) -> None:
        try:
            self.update_state(state="PROGRESS", meta=progress.to_dict())
        except Exception as exc:  # Redis away: the scan goes on, the row has the truth
            log.warning("progress of scan %s not published: %s", scan_id, exc)

    # Exceptions propagate on purpose: Celery records FAILURE, the row says why.
    return run(scan_id, report, backend="celery").to_dict()


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
