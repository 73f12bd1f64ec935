"""Submit, poll and cancel scans on Celery, or in a local thread when no
worker can take them. The UI and the CLI talk to scans only through here."""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .core.config import Settings, get_settings
from .core.fleet import Fleet
from .core.owners import is_dead, this_process
from .core.progress import FINAL_STATES, Progress

# The database layer (sqlalchemy, sqlmodel, the models: ~0.5 s) and Celery
# (~0.4 s) are imported by the methods that use them, so choosing a backend
# (`assetmon health`, the TUI's header) costs neither.
if TYPE_CHECKING:
    from celery import Celery

    from .store.models import Scan

log = logging.getLogger(__name__)

BEAT_FRESH = 10.0  # seconds: a runner silent longer is not shown as working on a scan


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
        self._changed = threading.Condition(self._lock)  # notified at every report and when a run ends
        self._seq: dict[int, int] = {}  # reports (and ends) per scan: what a waiter has seen
        self._seen: dict[int, int] = {}  # the sequence number the last `wait` returned at

    def start(self, scan_id: int) -> None:
        thread = threading.Thread(target=self._run, args=(scan_id,), name=f"scan-{scan_id}", daemon=True)
        with self._lock:
            self._threads[scan_id] = thread
        thread.start()

    def _run(self, scan_id: int) -> None:
        from .pipeline import run_scan  # heavy: imported when a scan runs, not at start-up

        def report(progress: Progress) -> None:
            snapshot = Progress.from_dict(progress.to_dict())  # readers never see a half-written object
            with self._changed:
                self._progress[scan_id] = snapshot
                self._bump(scan_id)

        try:
            run_scan(scan_id, report, backend=self.name)
        except Exception:  # the pipeline recorded the failure in the scan row
            log.exception("scan %s failed", scan_id)
        finally:
            with self._changed:
                self._bump(scan_id)

    def _bump(self, scan_id: int) -> None:
        self._seq[scan_id] = self._seq.get(scan_id, 0) + 1
        self._changed.notify_all()

    def wait(self, scan_id: int, timeout: float) -> bool:
        """Until this process's run of `scan_id` reports (or ends) after the last
        `wait` returned, or `timeout` passes. True: something changed."""
        with self._changed:
            seen = self._seen.get(scan_id, 0)
            changed = self._changed.wait_for(lambda: self._seq.get(scan_id, 0) != seen, timeout)
            self._seen[scan_id] = self._seq.get(scan_id, 0)
            return changed

    def poll(self, scan_id: int) -> Progress | None:
        with self._lock:
            return self._progress.get(scan_id)

    def running(self, scan_id: int) -> bool:
        thread = self._threads.get(scan_id)
        return bool(thread and thread.is_alive())

    def busy(self) -> list[int]:
        """Scans whose run is still in a thread here: a scan's last work, its
        notifications, follows its end."""
        with self._lock:
            return sorted(i for i, thread in self._threads.items() if thread.is_alive())

    def join(self, timeout: float) -> None:
        """Wait for every run here, `timeout` seconds in all."""
        deadline = time.monotonic() + timeout
        for thread in list(self._threads.values()):
            thread.join(max(0.0, deadline - time.monotonic()))


class CeleryBackend:
    """Celery over Redis. Celery is imported on first use: it costs ~0.4 s."""

    name = "celery"

    def __init__(self, settings: Settings):
        self.settings = settings
        self._app: Celery | None = None
        self.down_since: float | None = None  # when polling Redis started failing
        self._sub: Any = None  # a Redis pub/sub on one task's result key (see `wait`)
        self._sub_task = ""

    @property
    def app(self) -> Celery:
        if self._app is None:
            from worker.celery_app import make_app

            self._app = make_app(self.settings)  # this dispatcher's settings, not the import-time ones
        return self._app

    def start(self, scan_id: int) -> str:
        from worker.celery_app import enqueue_scan

        return enqueue_scan(self.app, scan_id)

    def poll(self, scan: Scan) -> Progress | None:
        from celery.result import AsyncResult

        from .store.models import row_id

        try:
            result = AsyncResult(scan.task_id, app=self.app)
            state, info = result.state, result.info
        except Exception as exc:  # kombu/redis raise many kinds when Redis vanishes
            if self.down_since is None:
                self.down_since = time.time()
                log.info("poll of scan %s failed: %s", row_id(scan), exc)
            return None
        self.down_since = None
        if state in ("PROGRESS", "SUCCESS") and isinstance(info, dict) and "scan_id" in info:
            return Progress.from_dict(info)
        if state == "FAILURE":
            return Progress(row_id(scan), state="failed", message=str(info)[:300])
        if state == "STARTED":
            return Progress(row_id(scan), state="running", message="started on a worker")
        return None  # PENDING: queued or unknown; the row says which

    def wait(self, task_id: str, timeout: float) -> bool:
        """Until a worker publishes progress of `task_id`, or `timeout` passes.
        Celery's Redis result backend PUBLISHes every state it stores on the
        task's key (`update_state` included), so the worker's Publisher pushes
        already. The first call subscribes and returns at once (a report sent
        before the subscription is read by the next poll, not missed). True:
        something was published (or the subscription just began)."""
        try:
            if self._sub is None or self._sub_task != task_id:
                self.close_wait()
                backend = self.app.backend
                sub = backend.client.pubsub(ignore_subscribe_messages=True)
                sub.subscribe(backend.get_key_for_task(task_id))
                self._sub, self._sub_task = sub, task_id
                return True
            deadline = time.monotonic() + timeout
            while (left := deadline - time.monotonic()) > 0:
                if self._sub.get_message(timeout=left) is not None:
                    while self._sub.get_message(timeout=0) is not None:  # the backlog: one poll reads the latest
                        pass
                    return True
            return False
        except Exception as exc:  # Redis away: nothing can push; poll() says so, wait out the tick
            log.debug("progress subscription for %s failed: %s", task_id, exc)
            self.close_wait()
            threading.Event().wait(max(0.0, timeout))
            return False

    def close_wait(self) -> None:
        sub, self._sub, self._sub_task = self._sub, None, ""
        if sub is not None:
            try:
                sub.close()
            except Exception as exc:
                log.debug("closing the progress subscription: %s", exc)

    def send_chunks(self, chunk_ids: list[int]) -> None:
        from worker.celery_app import enqueue_chunks

        enqueue_chunks(self.app, chunk_ids)

    def held_tasks(self) -> set[str] | None:
        from worker.celery_app import held_tasks

        return held_tasks(self.app)

    def revoke(self, task_id: str) -> None:
        try:
            self.app.control.revoke(task_id)
        except Exception as exc:
            log.info("revoke %s failed: %s", task_id, exc)


class Dispatcher:
    def __init__(self, settings: Settings | None = None):
        self.settings = settings or get_settings()
        self.thread = ThreadBackend()
        self._last: dict[int, Progress] = {}  # last progress polled from Celery, per scan
        self.celery = CeleryBackend(self.settings)
        self.fleet = Fleet(self.settings.redis_url)
        self._health_fleet = Fleet(self.settings.redis_url, timeout=self.settings.health_timeout)
        self._health: Health | None = None
        self._health_lock = threading.Lock()
        self.owner = this_process()

    # -- backend choice --------------------------------------------------------------

    def check_health(self, quick: bool = False, max_age: float | None = None) -> Health:
        """PING Redis, then read the workers' heartbeats (one SCAN/MGET, no Celery):
        a worker is alive while its last beat is younger than `max_age` (default
        fleet.MISSED_BEATS of its beat interval, 5 s) and, on this host, its
        process exists (a killed worker is seen at once). `quick` is kept for
        callers: counting every worker now costs no more than finding one.

        Celery's control ping is not kept: the beat is written by the worker's
        main process (the one that would answer the ping) from worker_ready
        until its shutdown begins, into the Redis it consumes from. The one
        thing a ping tells sooner is a worker on another host killed less than
        `max_age` ago: it still counts as alive until its beat ages out, so a
        scan submitted meanwhile waits in the queue and its submitter takes it
        back at its next reaper pass after that (the CLI reaps every 5 s)."""
        url = redis_place(self.settings.redis_url)
        self._learn_store()
        if os.environ.get("ASSETMON_BACKEND") == "thread":
            health = Health("thread", False, 0, "Local thread · ASSETMON_BACKEND=thread")
        elif (workers := self._health_fleet.alive_workers(max_age)) is None:
            health = Health("thread", False, 0, f"Local thread · no Redis at {url}")
        elif takers := [w for w in workers if not w.older]:
            label = "worker" if len(takers) == 1 else "workers"
            health = Health("celery", True, len(takers), f"Celery · {len(takers)} {label}")
        elif workers:  # a rolling upgrade: sent to them, a scan would wait in a queue nobody reads
            label = "worker" if len(workers) == 1 else "workers"
            them = "it" if len(workers) == 1 else "them"
            health = Health(
                "thread", True, 0, f"Local thread · {len(workers)} old-release {label} on this Redis: restart {them}"
            )
        else:
            health = Health("thread", True, 0, f"Local thread · no worker on {url}")
        with self._health_lock:
            self._health = health
        return health

    def _learn_store(self) -> None:
        """Count and show only the workers of this database (installs may share
        one Redis): its id, once a worker or a submit made it (a quick read)."""
        if not self._health_fleet.store:
            from .store.identity import known_store_id

            self.fleet.store = self._health_fleet.store = known_store_id()

    def health(self) -> Health:
        """The last answer, re-checked when older than the health interval."""
        with self._health_lock:
            health = self._health
        if health is None or time.time() - health.checked_at > self.settings.health_interval:
            health = self.check_health(quick=True)
        return health

    # -- scans ---------------------------------------------------------------------------

    def submit(self, project_id: int, modules: list[str], options: dict[str, object] | None = None) -> Scan:
        from .store import repo
        from .store.models import row_id

        self.reap()  # a dead scan must not hold the project's lock
        scan = repo.new_scan(project_id, modules, options or {}, self.owner)  # ProjectBusy if one is active
        return self._start(row_id(scan))

    def resume(self, scan_id: int) -> Scan:
        """Resume a failed or cancelled scan from its checkpoint (`assetmon resume`)."""
        from sqlalchemy.exc import IntegrityError

        from .store import leases, repo

        scan = repo.get_scan(scan_id)
        try:
            reopened = leases.reopen(scan_id, self.owner)
        except IntegrityError:
            raise repo.ProjectBusy("another scan of this project is active: cancel it or wait") from None
        if not reopened:
            raise ValueError(f"scan {scan_id} is {scan.status}: only failed or cancelled scans can be resumed")
        return self._start(scan_id)

    def _start(self, scan_id: int) -> Scan:
        """Send a queued scan to Celery, or run it here when no worker can take it."""
        from .store import repo

        if self.health().backend == "celery":
            try:
                self.celery.start(scan_id)
                return repo.get_scan(scan_id)
            except Exception as exc:  # Redis vanished between the check and now
                log.warning("could not queue scan %s on Celery (%s); running it here", scan_id, exc)
                self.check_health()
        repo.set_backend(scan_id, "thread", owner=self.owner)
        self.thread.start(scan_id)
        return repo.get_scan(scan_id)

    def poll(self, scan_id: int) -> tuple[Scan, Progress]:
        """The scan row and the freshest progress we can see for it."""
        from .store import repo
        from .store.models import as_utc

        scan = repo.get_scan(scan_id)
        live = None
        if scan.backend == "thread":
            live = self.thread.poll(scan_id)
        elif scan.status in FINAL_STATES:
            self._last.pop(scan_id, None)
        elif scan.backend == "celery" and scan.task_id:
            live = self.celery.poll(scan)
            if live is not None:
                self._last[scan_id] = live
            elif self.celery.down_since is not None:
                live = self._outage(scan)
        progress = live or Progress(scan_id, state=scan.status, message=scan.error or _waiting(scan))
        if scan.backend == "celery" and scan.status not in FINAL_STATES and live is not None:
            self._merge_chunks(scan, progress)
        if scan.status in FINAL_STATES and progress.state != scan.status:
            ended = as_utc(scan.finished_at)  # the row is the truth once a scan ended
            progress.end(scan.status, scan.error, ended.timestamp() if ended else None)
        elif scan.status == "cancelling" and progress.state == "running":
            progress.state = "cancelling"
        if progress.started_at is None and scan.started_at is not None:
            progress.started_at = scan.started_at.timestamp()
        return scan, progress

    def wait(self, scan: Scan, timeout: float) -> None:
        """Until `scan`'s progress may have changed or `timeout` passes: woken by
        the thread's report (thread backend) or the worker's publish (Celery),
        not by polling. One waiter per scan (the CLI's `_follow`)."""
        from .store.models import row_id

        if scan.backend == "celery" and scan.task_id and scan.status not in FINAL_STATES:
            self.celery.wait(scan.task_id, timeout)
        else:  # a thread scan; or a row waiting for a runner: its change is read at the next tick
            self.thread.wait(row_id(scan), timeout)

    def _merge_chunks(self, scan: Scan, progress: Progress) -> None:
        """One scan's progress from its workers: a fanned-out step's done
        chunks (the database) and running ones (their beats), and who runs what."""
        from .store import chunks
        from .store.models import row_id

        self._learn_store()
        beats = self.fleet.beats(row_id(scan))
        beats = [b for b in beats if b.age < BEAT_FRESH]
        progress.workers = [f"{b.worker or b.runner} {b.doing()}" for b in beats]
        step = chunks.fanned_step(scan.owner)
        if not step:
            return
        rows = chunks.of_step(row_id(scan), step)
        running = {(b.step, b.chunk): b for b in beats}
        rates: dict[str, int] = {}
        for (beat_step, number), b in running.items():  # this step's chunks running now: their rates add up
            if beat_step == step and number:
                for name, value in b.gauges.items():
                    rates[name] = rates.get(name, 0) + value
        progress.set_gauges(rates)
        mod = progress.module(step)
        mod.status, mod.total = "running", sum(r.units for r in rows)
        mod.done = sum(
            r.units if r.status in chunks.SETTLED else min(r.units, running[(step, r.number)].done)
            for r in rows
            if r.status in chunks.SETTLED or (step, r.number) in running
        )
        settled = sum(1 for r in rows if r.status in chunks.SETTLED)
        on = len({b.worker or b.runner for b in beats} | {r.worker for r in rows if r.status == "running" and r.worker})
        progress.message = f"{step}: {settled} of {len(rows)} chunks done, {on} worker{'s' * (on != 1)} on it"
        # A chunk whose runner was lost is done again from its start: its share of
        # `done` drops, and the line says why.
        again = sum(1 for r in rows if r.attempts > (0 if r.status == "queued" else 1))
        if again:
            progress.message += f"; {again} redone (a worker was lost)"

    def _outage(self, scan: Scan) -> Progress:
        """The last progress seen, saying plainly that Redis is away and what the
        database still shows (the worker keeps scanning and saving)."""
        from .store.models import as_utc, row_id, utcnow

        last = self._last.get(row_id(scan))
        progress = Progress.from_dict(last.to_dict()) if last else Progress(row_id(scan), state=scan.status)
        since = time.strftime("%H:%M:%S", time.localtime(self.celery.down_since))
        beat = as_utc(scan.heartbeat)
        alive = f"; last heartbeat {(utcnow() - beat).total_seconds():.0f} s ago" if beat else ""
        progress.message = f"Redis unreachable since {since}; the worker keeps scanning{alive}"
        return progress

    def active(self) -> list[tuple[Scan, Progress]]:
        from .store import repo
        from .store.models import row_id

        return [self.poll(row_id(scan)) for scan in repo.active_scans()]

    def cancel(self, scan_id: int) -> str:
        from .store import chunks, repo

        scan = repo.get_scan(scan_id)
        status = repo.request_cancel(scan_id)
        if scan.backend == "celery" and scan.task_id and scan.status == "queued":
            self.celery.revoke(scan.task_id)
        step = chunks.fanned_step(scan.owner)
        if step:  # chunks nobody took yet stop now; running ones within a poll; if none runs, it ends here
            chunks.cancel_queued(scan_id)
            if not chunks.unsettled(scan_id, step) and repo.finish_scan(scan_id, "cancelled", owner=scan.owner):
                status = "cancelled"
        return status

    def reap(self, deliveries: bool = False) -> list[int]:
        """Hand on scans whose runner is gone (see `reaper`), and run here the
        queued scans this process submitted when no worker is alive to take
        them; with `deliveries` (the periodic passes, not a submit's: a thread
        of queries there costs a quick command ~75 ms of its GIL), the
        notifications due go out in the background. Returns the ids of scans acted on."""
        from .reaper import Reaper
        from .store import repo
        from .store.models import row_id

        celery = self.health().backend == "celery"
        reaper = Reaper(
            self.settings,
            enqueue=self.celery.start if celery else None,
            held_tasks=self.celery.held_tasks if celery else None,
            send_chunks=self.celery.send_chunks if celery else None,
        )
        acted = reaper.reap()
        if deliveries:
            from .notify import deliver_due_in_background

            deliver_due_in_background()  # a notification whose sender was lost, or whose receiver was down
        mine = [s for s in repo.active_scans() if s.status == "queued" and self._may_take_back(s)]
        if mine and self.check_health(quick=True).workers == 0:
            for scan in mine:
                self._take_back(scan)
                acted.append(row_id(scan))
        return acted

    def _may_take_back(self, scan: Scan) -> bool:
        """Queued scans this process submitted (or whose submitter is known dead)."""
        from .store.models import row_id

        if scan.backend == "thread" and self.thread.running(row_id(scan)):
            return False
        return scan.submitter == self.owner or (bool(scan.submitter) and is_dead(scan.submitter))

    def local_scans(self) -> list[Scan]:
        """The active scans this process runs in its threads: they end when it exits."""
        from .store import repo

        return [s for s in repo.active_scans() if s.backend == "thread" and s.owner == self.owner]

    def wait_for_worker(self, until: float) -> Health:
        """A worker is starting beside us (./start.sh): ask until it answers or
        `until` (a time.time()) passes, so no scan runs here meanwhile. Each ask
        waits up to the health timeout (at least 0.25 s, should the ping fail at once)."""
        while True:
            asked = time.monotonic()
            health = self.check_health(quick=True)
            if health.backend == "celery" or not health.redis_ok or time.time() >= until:
                return health
            time.sleep(max(0.0, 0.25 - (time.monotonic() - asked)))

    def shutdown(self, timeout: float = 3.0) -> None:
        """Before this process exits: stop the scans its threads run (they would
        die with it), so their rows say "cancelled" rather than wait for the reaper."""
        from .store import repo
        from .store.models import row_id

        mine = self.local_scans()
        if not mine:
            return  # runs that ended and still notify are waited for once the terminal is back (cli)
        for scan in mine:
            repo.request_cancel(row_id(scan))
        self.thread.join(timeout)
        for scan in mine:
            repo.finish_scan(row_id(scan), "cancelled", "the TUI running it was closed")

    def _take_back(self, scan: Scan) -> None:
        """Run here a queued scan no worker is alive to take. Claiming is
        atomic: if a worker starts it after all, only one of us runs it."""
        from .store import repo
        from .store.models import row_id

        if scan.task_id:
            self.celery.revoke(scan.task_id)
        if not repo.set_backend(row_id(scan), "thread", owner=self.owner):
            return  # a worker took it after all
        log.warning("no Celery worker answers; running scan %s here", row_id(scan))
        self.thread.start(row_id(scan))


def _waiting(scan: Scan) -> str:
    """What a queued scan waits for, in words."""
    if scan.status != "queued":
        return ""
    if scan.attempts:
        return f"interrupted after attempt {scan.attempts}: waiting for a worker to resume it"
    return "queued: waiting for a worker"
