"""Submit, poll and cancel scans on Celery, or in a local thread when no
worker can take them. The UI and the CLI talk to scans only through here."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .core.config import Settings, get_settings
from .core.progress import FINAL_STATES, Progress
from .store import repo
from .store.models import Scan

if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Health:
    backend: str  # "celery" | "thread"
    redis_ok: bool
    workers: int
    detail: str  # what the header says
    checked_at: float = field(default_factory=time.time)


def redis_place(url: str) -> str:
    """redis://:secret@host:6379/0 -> host:6379: short, and no password on screen."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 6379}" if parts.hostname else url.rsplit("@", 1)[-1]


class ThreadBackend:
    """Runs the pipeline in a daemon thread of this process; progress in memory."""

    name = "thread"

    def __init__(self) -> None:
        self._progress: dict[int, Progress] = {}
        self._threads: dict[int, threading.Thread] = {}
        self._lock = threading.Lock()

    def start(self, scan_id: int) -> None:
        thread = threading.Thread(target=self._run, args=(scan_id,), name=f"scan-{scan_id}", daemon=True)
        with self._lock:
            self._threads[scan_id] = thread
        thread.start()

    def _run(self, scan_id: int) -> None:
        from .pipeline import run_scan  # heavy: imported when a scan runs, not at start-up

        def report(progress: Progress) -> None:
            snapshot = Progress.from_dict(progress.to_dict())  # readers never see a half-written object
            with self._lock:
                self._progress[scan_id] = snapshot

        try:
            run_scan(scan_id, report, backend=self.name)
        except Exception:  # the pipeline recorded the failure in the scan row
            log.exception("scan %s failed", scan_id)

    def poll(self, scan_id: int) -> Progress | None:
        with self._lock:
            return self._progress.get(scan_id)

    def running(self, scan_id: int) -> bool:
        thread = self._threads.get(scan_id)
        return bool(thread and thread.is_alive())

    def join(self, timeout: float | None = None) -> None:
        for thread in list(self._threads.values()):
            thread.join(timeout)


class CeleryBackend:
    """Celery over Redis. Celery is imported on first use: it costs ~0.4 s."""

    name = "celery"

    def __init__(self, settings: Settings):
        self.settings = settings
        self._app: Celery | None = None

    @property
    def app(self) -> Celery:
        if self._app is None:
            from worker.celery_app import make_app

            self._app = make_app(self.settings)  # this dispatcher's settings, not the import-time ones
        return self._app

    def redis_ok(self) -> bool:
        import redis

        try:
            client = redis.Redis.from_url(
                self.settings.redis_url,
                socket_connect_timeout=self.settings.health_timeout,
                socket_timeout=self.settings.health_timeout,
            )
            try:
                return bool(client.ping())
            finally:
                client.close()
        except (redis.RedisError, OSError, ValueError):
            return False

    def workers(self, limit: int | None = None) -> int:
        try:
            replies = self.app.control.ping(timeout=self.settings.health_timeout, limit=limit) or []
        except Exception as exc:  # kombu raises many kinds when Redis vanishes
            log.info("worker ping failed: %s", exc)
            return 0
        return len(replies)

    def start(self, scan_id: int) -> str:
        from worker.celery_app import enqueue_scan

        return enqueue_scan(self.app, scan_id)

    def poll(self, scan: Scan) -> Progress | None:
        from celery.result import AsyncResult

        try:
            result = AsyncResult(scan.task_id, app=self.app)
            state, info = result.state, result.info
        except Exception as exc:
            log.info("poll of scan %s failed: %s", _id(scan), exc)
            return None
        if state in ("PROGRESS", "SUCCESS") and isinstance(info, dict) and "scan_id" in info:
            return Progress.from_dict(info)
        if state == "FAILURE":
            return Progress(_id(scan), state="failed", message=str(info)[:300])
        if state == "STARTED":
            return Progress(_id(scan), state="running", message="started on a worker")
        return None  # PENDING: queued or unknown; the row says which

    def revoke(self, task_id: str) -> None:
        try:
            self.app.control.revoke(task_id)
        except Exception as exc:
            log.info("revoke %s failed: %s", task_id, exc)


class Dispatcher:
    def __init__(self, settings: Settings | None = None):
        self.settings = settings or get_settings()
        self.thread = ThreadBackend()
        self.celery = CeleryBackend(self.settings)
        self._health: Health | None = None
        self._health_lock = threading.Lock()
        self.owner = f"{socket.gethostname()}:{os.getpid()}"

    # -- backend choice --------------------------------------------------------------

    def check_health(self, quick: bool = False) -> Health:
        """PING Redis, then ask workers to answer. `quick` stops at the first
        reply (for submitting); otherwise it waits the full timeout to count them."""
        url = redis_place(self.settings.redis_url)
        if os.environ.get("ASSETMON_BACKEND") == "thread":
            health = Health("thread", False, 0, "Local thread · chosen by ASSETMON_BACKEND")
        elif not self.celery.redis_ok():
            health = Health("thread", False, 0, f"Local thread · Redis unreachable at {url}")
        else:
            workers = self.celery.workers(limit=1 if quick else None)
            if workers:
                label = "worker" if workers == 1 else "workers"
                health = Health("celery", True, workers, f"Celery · {workers}{'+' if quick else ''} {label}")
            else:
                health = Health("thread", True, 0, f"Local thread · no Celery worker answers ({url})")
        with self._health_lock:
            self._health = health
        return health

    def health(self) -> Health:
        """The last answer, re-checked when older than the health interval."""
        with self._health_lock:
            health = self._health
        if health is None or time.time() - health.checked_at > self.settings.health_interval:
            health = self.check_health(quick=True)
        return health

    # -- scans ---------------------------------------------------------------------------

    def submit(self, project_id: int, modules: list[str], options: dict[str, object] | None = None) -> Scan:
        self.reap()  # a dead scan must not hold the project's lock
        scan = repo.new_scan(project_id, modules, options or {})  # ProjectBusy if one is active
        if self.health().backend == "celery":
            try:
                self.celery.start(_id(scan))
                return repo.get_scan(_id(scan))
            except Exception as exc:  # Redis vanished between the check and now
                log.warning("could not queue scan %s on Celery (%s); running it here", _id(scan), exc)
                self.check_health()
        repo.set_backend(_id(scan), "thread", owner=self.owner)
        self.thread.start(_id(scan))
        return repo.get_scan(_id(scan))

    def poll(self, scan_id: int) -> tuple[Scan, Progress]:
        """The scan row and the freshest progress we can see for it."""
        scan = repo.get_scan(scan_id)
        live = None
        if scan.backend == "thread":
            live = self.thread.poll(scan_id)
        elif scan.backend == "celery" and scan.task_id and scan.status not in FINAL_STATES:
            live = self.celery.poll(scan)
        progress = live or Progress(scan_id, state=scan.status, message=scan.error)
        if scan.status in FINAL_STATES and progress.state != scan.status:
            progress.state = scan.status  # the row is the truth once a scan ended
            progress.message = scan.error or progress.message
        elif scan.status == "cancelling" and progress.state == "running":
            progress.state = "cancelling"
        if progress.started_at is None and scan.started_at is not None:
            progress.started_at = scan.started_at.timestamp()
        return scan, progress

    def active(self) -> list[tuple[Scan, Progress]]:
        return [self.poll(_id(scan)) for scan in repo.active_scans()]

    def cancel(self, scan_id: int) -> str:
        scan = repo.get_scan(scan_id)
        status = repo.request_cancel(scan_id)
        if scan.backend == "celery" and scan.task_id and scan.status == "queued":
            self.celery.revoke(scan.task_id)
        return status

    def reap(self) -> list[int]:
        """Fail scans nobody runs any more; run locally what no worker took."""
        reaped = []
        for scan in repo.stale_scans(self.settings.stale_after):
            if scan.backend == "thread" and scan.owner == self.owner and self.thread.running(_id(scan)):
                continue
            silent = (
                "no heartbeat" if scan.heartbeat is None else f"no heartbeat for over {self.settings.stale_after:.0f} s"
            )
            if repo.finish_scan(
                _id(scan), "failed", f"runner lost: {silent} ({scan.backend} {scan.owner or scan.task_id})"
            ):
                reaped.append(_id(scan))
        host = socket.gethostname()
        for scan in repo.active_scans():
            if scan.backend == "thread" and scan.status != "queued" and scan.owner.startswith(host + ":"):
                pid = int(scan.owner.rsplit(":", 1)[1])
                if not _pid_alive(pid) and repo.finish_scan(
                    _id(scan), "failed", f"the process running it (pid {pid}) exited"
                ):
                    reaped.append(_id(scan))
            elif scan.backend == "celery" and scan.status == "queued" and scan.created_at is not None:
                waited = time.time() - scan.created_at.timestamp()
                if waited > self.settings.queue_timeout:
                    self._take_back(scan, waited)
        return reaped

    def shutdown(self, timeout: float = 3.0) -> None:
        """Before this process exits: stop the scans its threads run (they would
        die with it), so their rows say "cancelled" rather than wait for the reaper."""
        mine = [s for s in repo.active_scans() if s.backend == "thread" and s.owner == self.owner]
        for scan in mine:
            repo.request_cancel(_id(scan))
        self.thread.join(timeout)
        for scan in mine:
            repo.finish_scan(_id(scan), "cancelled", "the TUI running it was closed")

    def _take_back(self, scan: Scan, waited: float) -> None:
        """A queued Celery scan no worker took: run it here instead. Claiming is
        atomic, so if a worker starts it after all, only one of us runs it."""
        self.celery.revoke(scan.task_id)
        log.warning("no worker took scan %s in %.0f s; running it locally", _id(scan), waited)
        self.thread.start(_id(scan))


def _id(scan: Scan) -> int:
    """A stored row's id (SQLModel types it optional for rows not yet inserted)."""
    assert scan.id is not None
    return scan.id


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
