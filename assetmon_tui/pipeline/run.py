"""Run one scan: steps in order, progress reported, results persisted.

Both backends call `run_scan`; only `report` differs (Celery update_state or
an in-memory slot). The scan row is claimed atomically first, so a scan runs
once even if a message is delivered twice or a local fallback raced a worker.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from collections.abc import Callable

from ..core.config import Settings, get_settings
from ..core.modules import check_modules
from ..core.progress import Progress
from ..core.targets import Scope
from ..store import repo
from .context import ScanContext, Tick, seed
from .steps import STEPS

log = logging.getLogger(__name__)

REPORT_EVERY = 0.2  # seconds between progress reports (Redis writes)
CANCEL_POLL = 0.5

Reporter = Callable[[Progress], None]


def owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_scan(scan_id: int, report: Reporter, backend: str) -> Progress:
    """Run a queued scan to a final state. Raises when the scan failed, after
    recording the failure, so Celery shows FAILURE rather than SUCCESS."""
    if not repo.claim_scan(scan_id, backend, owner_id()):
        scan = repo.get_scan(scan_id)
        log.info("scan %s not claimed (status %s): someone else has it", scan_id, scan.status)
        return Progress(scan_id, state=scan.status, message="taken by another runner")
    run = Run(scan_id, report, get_settings(), backend)
    try:
        asyncio.run(run.main())
    except BaseException as exc:
        run.finish("failed", f"{type(exc).__name__}: {exc}")
        raise
    run.finish("cancelled" if run.cancelled else "done")
    from ..events import after_scan

    after_scan(scan_id)  # change events + notifications; never raises, no-op unless done
    return run.progress


class Run:
    """The lifecycle of one claimed scan; the work itself is the steps'."""

    def __init__(self, scan_id: int, report: Reporter, settings: Settings, backend: str) -> None:
        scan = repo.get_scan(scan_id)
        assert scan.id is not None
        self.scan_id = scan.id
        self._report = report
        self._last_report = 0.0
        self.cancelled = False
        self.progress = Progress(scan_id, state="running", started_at=time.time(), message="starting")
        modules = [m for m in scan.modules.split(",") if m]
        for name in modules:
            self.progress.module(name)
        self.ctx = ScanContext(
            scan_id=self.scan_id,
            project_id=scan.project_id,
            backend=backend,
            modules=modules,
            options=json.loads(scan.options or "{}"),
            settings=settings,
            scope=Scope(repo.parsed_targets(scan.project_id)),
            progress=self.progress,
            ticker=self.ticker,
        )

    # -- progress, heartbeat, cancel ------------------------------------------------

    def report(self, message: str | None = None, force: bool = False) -> None:
        if message is not None:
            self.progress.message = message
        now = time.time()
        if force or now - self._last_report >= REPORT_EVERY:
            self._last_report = now
            self.progress.updated_at = now
            self._report(self.progress)

    def ticker(self, module: str) -> Tick:
        def tick(done: int, total: int) -> None:
            mod = self.progress.module(module)
            mod.done, mod.total = done, total
            self.report()

        return tick

    async def _watch(self, main: asyncio.Future[None]) -> None:
        """Heartbeat the scan row and turn a cancel request into task cancellation."""
        last_beat = 0.0
        while not main.done():
            await asyncio.sleep(CANCEL_POLL)
            if time.time() - last_beat >= self.ctx.settings.heartbeat_interval:
                last_beat = time.time()
                await asyncio.to_thread(repo.beat, self.scan_id)
            if await asyncio.to_thread(repo.cancel_requested, self.scan_id):
                self.cancelled = True
                self.progress.state = "cancelling"
                self.report("cancelling…", force=True)
                main.cancel()
                return

    async def main(self) -> None:
        self.report("starting", force=True)
        main = asyncio.ensure_future(self._steps())
        watcher = asyncio.ensure_future(self._watch(main))
        try:
            await main
        except asyncio.CancelledError:
            if not self.cancelled:
                raise
        finally:
            watcher.cancel()

    async def _steps(self) -> None:
        names = check_modules(self.ctx.modules)
        seed(self.ctx)
        for name in names:
            mod = self.progress.module(name)
            mod.status = "running"
            self.report(f"{name}: running", force=True)
            try:
                await STEPS[name](self.ctx).run()
            except asyncio.CancelledError:
                mod.status = "cancelled"
                raise
            except Exception as exc:
                mod.status = "failed"
                self.report(f"{name} failed: {exc}", force=True)
                raise
            mod.status = "done"
            if mod.total == 0:
                mod.done = mod.total = 1
            self.report(f"{name}: done", force=True)

    def finish(self, state: str, error: str = "") -> None:
        self.progress.state = state
        self.progress.finished_at = time.time()
        self.progress.message = error or {"done": "finished", "cancelled": "cancelled"}.get(state, state)
        repo.finish_scan(self.scan_id, state, error, {**self.progress.counters, "elapsed": self.progress.elapsed})
        self._report(self.progress)
