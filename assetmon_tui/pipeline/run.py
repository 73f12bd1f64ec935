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
import logging
import time
from collections.abc import Callable
from typing import Any

from ..core.config import Settings, SettingsError, get_settings
from ..core.fleet import Beat, Fleet
from ..core.modules import check_modules
from ..core.owners import is_dead, this_process
from ..core.progress import Progress
from ..events import Looked, after_scan, origin, record
from ..store import chunks, leases, repo
from ..store.chunks import fanout_owner
from ..store.identity import store_id
from ..store.models import as_utc, row_id
from .checkpoint import Checkpoint, LeaseLost
from .context import Tick, scan_context, seed
from .fanout import ChunkRun, Sender, absorb, plan_parts
from .steps import STEPS
from .steps.base import ChunkedStep

log = logging.getLogger(__name__)

REPORT_EVERY = 0.2  # seconds between progress reports (Redis writes)
CANCEL_POLL = 0.5

Reporter = Callable[[Progress], None]


def failure(exc: BaseException) -> str:
    """A failed scan's error line: a setting to fix says only what to do; anything
    else is named by its type (a bug to report)."""
    return str(exc) if isinstance(exc, SettingsError) else f"{type(exc).__name__}: {exc}"


def run_scan(scan_id: int, report: Reporter, backend: str, send: Sender | None = None, worker: str = "") -> Progress:
    """Run (or resume) a scan to a final state, or until its chunks are sent
    to workers (`send`: Celery). Raises when the scan failed (after recording
    the failure, so Celery shows FAILURE rather than SUCCESS), except for a
    setting to fix (SettingsError): its one line is the scan's error."""
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
    return drive(Run(scan_id, report, settings, backend, owner, send, worker))


def run_chunk(chunk_id: int, report: Reporter, send: Sender, worker: str = "") -> Progress | None:
    """Run one chunk of a fanned-out step (a Celery task); the runner that
    settles the step's last chunk takes the scan back and carries on."""
    settings = get_settings()
    owner = this_process()
    chunk = chunks.claim(chunk_id, owner, worker, settings.lease_timeout)  # (it logs a take-over)
    if chunk is None:
        log.info("chunk %s not claimed (done, cancelled or run elsewhere): nothing to do", chunk_id)
        return None
    scan_id, step = chunk.scan_id, chunk.step
    log.info("scan %s: %s chunk %s (%s units) on %s", scan_id, step, chunk.number, chunk.units, worker or owner)
    fleet = Fleet(settings.redis_url, store=store_id())
    try:
        outcome = asyncio.run(ChunkRun(chunk, settings, owner, "celery", fleet=fleet, worker=worker).run())
    except SettingsError as exc:  # a setting to fix: the scan fails with its line, no traceback
        log.warning("scan %s: %s chunk %s failed: %s", scan_id, step, chunk.number, exc)
        _chunk_failed(chunk_id, scan_id, step, chunk.number, owner, settings, exc)
        return None
    except Exception as exc:  # a bug in the step: the scan fails with it, once
        log.exception("scan %s: %s chunk %s failed", scan_id, step, chunk.number)
        _chunk_failed(chunk_id, scan_id, step, chunk.number, owner, settings, exc)
        raise
    log.info("scan %s: %s chunk %s %s", scan_id, step, chunk.number, outcome)
    if outcome == "lost" or chunks.unsettled(scan_id, step):
        return None
    if not leases.hand_over(scan_id, fanout_owner(step), owner, settings.lease_timeout):
        return None  # another chunk's runner (or a reaper) carries on
    log.info("scan %s: the last %s chunk settled here; carrying on", scan_id, step)
    return drive(Run(scan_id, report, settings, "celery", owner, send, worker, continuing=True))


def _chunk_failed(
    chunk_id: int, scan_id: int, step: str, number: int, owner: str, settings: Settings, exc: Exception
) -> None:
    chunks.finish(chunk_id, owner, "failed", {"error": failure(exc)}, 0.0)
    if leases.hand_over(scan_id, fanout_owner(step), owner, settings.lease_timeout):
        repo.finish_scan(scan_id, "failed", f"{step} chunk {number}: {failure(exc)}", owner=owner)


def drive(run: Run) -> Progress:
    """Run a claimed scan's steps to its end, or until it is handed to chunks."""
    scan_id = run.scan_id
    try:
        asyncio.run(run.main())
    except LeaseLost as exc:
        log.warning("scan %s: %s; stopped without ending it", scan_id, exc)
        return run.progress
    except SettingsError as exc:  # not a bug: the one line says what to fix (no traceback)
        log.warning("scan %s failed: %s", scan_id, exc)
        run.finish("failed", failure(exc))
        return run.progress
    except BaseException as exc:
        run.finish("failed", failure(exc))
        raise
    finally:
        run.fleet.clear(run.owner)
    if run.handed:
        return run.progress
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

    def __init__(
        self,
        scan_id: int,
        report: Reporter,
        settings: Settings,
        backend: str,
        owner: str,
        send: Sender | None = None,
        worker: str = "",
        continuing: bool = False,
    ) -> None:
        scan = repo.get_scan(scan_id)
        # True when the runner of a step's last chunk carries the scan on: the
        # same attempt going on, not a resume (its progress goes on from the checkpoint).
        self.continuing = continuing
        self.scan_id = scan_id
        self.owner = owner
        self.send = send  # None: this runner runs every chunk itself
        self.handed = False  # True once a step's chunks were sent to workers
        self.fleet = Fleet(settings.redis_url, store=store_id()) if backend == "celery" else Fleet("")
        self.beat = Beat(owner, scan_id, worker)
        self.attempt = scan.attempts
        self._report = report
        self._last_report = 0.0
        self.cancelled = False
        self.lost = False
        # A resumed scan's clock runs from its first start (claims keep started_at).
        started = as_utc(scan.started_at)
        began = started.timestamp() if started else time.time()
        self.progress = Progress(scan_id, state="running", started_at=began, message="starting")
        self.ctx = scan_context(scan, backend, settings, self.progress, self.ticker)
        for name in self.ctx.modules:
            self.progress.module(name)
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
            running = [(n, m) for n, m in self.progress.modules.items() if m.status == "running"]
            self.beat.step, mod = running[0] if running else ("", None)
            self.beat.done, self.beat.total = (mod.done, mod.total) if mod else (0, 0)
            self.fleet.beat(self.beat)

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
        if not self.continuing:  # (a continuation reports once its checkpoint is back)
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
        elif (self.checkpoint.done or self.checkpoint.step) and not self.continuing:
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
                mod.total = max(mod.total, 1)  # as it ended (from the checkpoint), or a full bar
                mod.done = mod.total
                continue
            mod.status = "running"
            mod.total_final = not STEPS[name].growing
            if not (self.continuing and name == self.checkpoint.step):  # else: its chunks' totals come first
                self.report(f"{name}: running", force=True)
            self.checkpoint.begin(name)
            step = STEPS[name](self.ctx)
            try:
                if isinstance(step, ChunkedStep):
                    if not await self._fan(step):
                        return  # sent to workers, or stopped by a cancel
                else:
                    await step.run()
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

    async def _fan(self, step: ChunkedStep) -> bool:
        """Run `step` as chunks. False when it is not over here: its chunks
        were sent to workers (`handed`), or the scan is being cancelled."""
        name = step.name
        if await asyncio.to_thread(chunks.take_back, self.scan_id, name):  # a resume: their runners were lost
            log.info("scan %s: %s chunks of a lost attempt run again", self.scan_id, name)
        rows = await asyncio.to_thread(chunks.of_step, self.scan_id, name)
        if not rows:
            items = step.items()
            pace = await asyncio.to_thread(chunks.pace, self.ctx.project_id, name)
            pace = pace or await asyncio.to_thread(chunks.pace, None, name)  # a new project: any project's
            parts = plan_parts(step, items, pace, self.ctx.settings)
            await asyncio.to_thread(self.checkpoint.write, self.checkpoint.capture())  # what the chunks start from
            rows = await asyncio.to_thread(chunks.plan, self.scan_id, name, parts)
        mod = self.progress.module(name)
        mod.total, mod.total_final = sum(r.units for r in rows), not step.growing
        settled = sum(r.units for r in rows if r.status in chunks.SETTLED)
        mod.done = settled
        self.report(force=True)
        pending = [r for r in rows if r.status not in chunks.SETTLED]
        if pending and self.send is not None and len(rows) > 1:
            lease = self.ctx.settings.scan_time_limit  # the chunks, not a process, hold it now
            if not await asyncio.to_thread(leases.hand_over, self.scan_id, self.owner, fanout_owner(name), lease):
                raise LeaseLost(f"scan {self.scan_id} is no longer run by {self.owner}")
            self.handed = True
            self.report(f"{name}: {len(pending)} of {len(rows)} chunks sent to workers", force=True)
            await asyncio.to_thread(self.send, [row_id(r) for r in pending])
            return False
        before = self.progress.gauges()  # the chunks' rates show while they run, then what showed before
        try:
            for row in pending:
                claimed = await asyncio.to_thread(
                    chunks.claim, row_id(row), self.owner, self.beat.worker, self.ctx.settings.lease_timeout
                )  # (the worker's name, where a worker runs the scan: a chunk says who ran it)
                if claimed is None:  # a cancel that came after the plan refuses the claim: that is a cancel
                    if await asyncio.to_thread(repo.cancel_requested, self.scan_id):
                        self.cancelled = True
                        return False
                    raise LeaseLost(f"chunk {row.number} of scan {self.scan_id} was taken by another runner")

                def tick(done: int, total: int, gauges: dict[str, int], base: int = settled) -> None:
                    mod.done = base + done
                    self.progress.set_gauges(gauges)  # the chunk's rates, live
                    self.report()

                self.report(f"{name}: chunk {row.number} of {len(rows)}", force=len(rows) > 1)
                outcome = await ChunkRun(claimed, self.ctx.settings, self.owner, self.ctx.backend, tick).run()
                if outcome == "lost":
                    raise LeaseLost(f"chunk {row.number} of scan {self.scan_id} is no longer run by {self.owner}")
                settled += row.units
        finally:
            self.progress.set_gauges(before)
        rows = await asyncio.to_thread(chunks.of_step, self.scan_id, name)
        if any(r.status == "cancelled" for r in rows) or await asyncio.to_thread(repo.cancel_requested, self.scan_id):
            self.cancelled = True
            return False
        absorb(self.ctx, step, rows)
        await step.finish()
        return True

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
            nuclei=found.nuclei,
            nuclei_templates=found.nuclei_templates,
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
