"""Run one scan: steps in order, progress reported, results persisted,
checkpoints written, and resumed from the last checkpoint when a previous
runner was lost.

Both backends call `run_scan`; only `report` differs (Celery update_state or
an in-memory slot). The scan is claimed in the database first, with a lease
(`store.leases`): a duplicate message finds it taken and does nothing, a
redelivered one whose runner died takes it over and resumes it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from ..core.config import Settings, get_settings
from ..core.modules import check_modules
from ..core.owners import is_dead, this_process
from ..core.progress import Progress
from ..core.targets import Scope
from ..events import Looked, after_scan, origin, record
from ..store import leases, repo
from ..store.models import as_utc
from .checkpoint import Checkpoint, LeaseLost
from .context import ScanContext, Tick, seed
from .steps import STEPS

log = logging.getLogger(__name__)

REPORT_EVERY = 0.2  # seconds between progress reports (Redis writes)
CANCEL_POLL = 0.5

Reporter = Callable[[Progress], None]


def run_scan(scan_id: int, report: Reporter, backend: str) -> Progress:
    """Run (or resume) a scan to a final state. Raises when the scan failed,
    after recording the failure, so Celery shows FAILURE rather than SUCCESS."""
    settings = get_settings()
    owner = this_process()
    scan = repo.get_scan(scan_id)
    dead = scan.owner if scan.status == "running" and scan.owner and is_dead(scan.owner) else ""
    if not leases.claim(scan_id, backend, owner, settings.lease_timeout, settings.max_attempts, dead_owner=dead):
        scan = repo.get_scan(scan_id)
        log.info("scan %s not claimed (status %s, run by %s): nothing to do", scan_id, scan.status, scan.owner or "-")
        return Progress(scan_id, state=scan.status, message="taken by another runner")
    if dead:
        log.warning("scan %s: took over from %s, which exited; resuming", scan_id, dead)
    run = Run(scan_id, report, settings, backend, owner)
    try:
        asyncio.run(run.main())
    except LeaseLost as exc:
        log.warning("scan %s: %s; stopped without ending it", scan_id, exc)
        return run.progress
    except BaseException as exc:
        run.finish("failed", f"{type(exc).__name__}: {exc}")
        raise
    if run.lost:
        log.warning("scan %s: another runner holds it now; stopped without ending it", scan_id)
        return run.progress
    if run.cancelled:
        run.finish("cancelled")
    elif run.finish_done():
        after_scan(scan_id)  # notifications; never raises
    return run.progress


class Run:
    """The lifecycle of one claimed scan; the work itself is the steps'."""

    def __init__(self, scan_id: int, report: Reporter, settings: Settings, backend: str, owner: str) -> None:
        scan = repo.get_scan(scan_id)
        self.scan_id = scan_id
        self.owner = owner
        self.attempt = scan.attempts
        self._report = report
        self._last_report = 0.0
        self.cancelled = False
        self.lost = False
        # A resumed scan's clock runs from its first start (claims keep started_at).
        started = as_utc(scan.started_at)
        began = started.timestamp() if started else time.time()
        self.progress = Progress(scan_id, state="running", started_at=began, message="starting")
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
        self.checkpoint = Checkpoint(self.ctx, owner)
        self.ctx.checkpoint = self.checkpoint

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
            # A final total is fixed; a growing one never shrinks (a bar never moves backwards).
            mod.done, mod.total = done, total if mod.total_final else max(total, mod.total)
            self.report()

        return tick

    async def _watch(self, main: asyncio.Future[None]) -> None:
        """Renew the lease, and turn a cancel request (or a lost lease) into
        task cancellation."""
        settings = self.ctx.settings
        last_beat = time.time()
        while not main.done():
            await asyncio.sleep(CANCEL_POLL)
            if time.time() - last_beat >= settings.heartbeat_interval:
                last_beat = time.time()
                if not await asyncio.to_thread(leases.renew, self.scan_id, self.owner, settings.lease_timeout):
                    self.lost = True
                    main.cancel()
                    return
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
            if not (self.cancelled or self.lost):
                raise
        finally:
            watcher.cancel()

    async def _steps(self) -> None:
        names = check_modules(self.ctx.modules)
        resumed = self.checkpoint.restore()
        if not resumed:
            seed(self.ctx)
        elif self.checkpoint.done or self.checkpoint.step:
            where = self.checkpoint.step or "the next step"
            self.report(
                f"resuming (attempt {self.attempt}) after {', '.join(self.checkpoint.done) or 'seeding'}"
                f"; continuing {where}",
                force=True,
            )
        for name in names:
            mod = self.progress.module(name)
            if name in self.checkpoint.done:
                mod.status = "done"
                mod.done = mod.total = max(mod.total, 1)
                continue
            mod.status = "running"
            mod.total_final = not STEPS[name].growing
            self.report(f"{name}: running", force=True)
            self.checkpoint.begin(name)
            try:
                await STEPS[name](self.ctx).run()
            except asyncio.CancelledError:
                mod.status = "cancelled"
                raise
            except LeaseLost:
                raise
            except Exception as exc:
                mod.status = "failed"
                self.report(f"{name} failed: {exc}", force=True)
                raise
            await asyncio.to_thread(self.checkpoint.write, self.checkpoint.finish_step(name))
            mod.status = "done"
            mod.total_final = True
            if mod.total == 0:
                mod.done = mod.total = 1
            self.report(f"{name}: done", force=True)

    def _ending(self, state: str, error: str = "") -> dict[str, Any]:
        self.progress.end(state, error, time.time())
        return {**self.progress.counters, "elapsed": self.progress.elapsed, "warnings": len(self.progress.warnings)}

    def sources(self) -> list[dict[str, str]]:
        return [{"source": source, **outcome} for source, outcome in sorted(self.ctx.found.outcomes.items())]

    def finish(self, state: str, error: str = "") -> None:
        summary = self._ending(state, error)
        repo.finish_scan(self.scan_id, state, error, summary, owner=self.owner, sources=self.sources())
        self._report(self.progress)

    def finish_done(self) -> bool:
        """End as done together with the snapshot and change events (one
        transaction); if they cannot be computed, done with that warning."""
        found = self.ctx.found
        looked = Looked(
            answered=found.answered,
            probed=found.probed,
            scripts=found.scripts,
            failed_scripts=found.failed_scripts - found.scripts,
            pages={page.url for page in found.pages},
            page_origins={origin(page.url) for page in found.pages if page.host not in found.unsure_hosts},
            cnamed={result.name for result in found.cnamed} if "takeover" in self.ctx.modules else set(),
        )
        summary = self._ending("done")
        try:
            ended = record(self.scan_id, looked, self.owner, summary, self.sources())
        except Exception as exc:
            log.exception("scan %s: computing change events failed", self.scan_id)
            self.ctx.outcome("events", "change events", "failed", f"{type(exc).__name__}: {exc}")
            summary = self._ending("done")
            ended = repo.finish_scan(self.scan_id, "done", "", summary, owner=self.owner, sources=self.sources())
        if not ended:
            log.warning("scan %s: another runner holds it now; stopped without ending it", self.scan_id)
            return False
        self._report(self.progress)
        return True
