"""Fan-out: a big step's items cut into chunks that any worker runs.

The scan's runner plans a `ChunkedStep`'s chunks (`plan_parts`: sized from
the pace earlier chunks of the project measured, to about `chunk_seconds`
each), writes the checkpoint the chunks start from, and then either runs
them itself one after another (the thread backend, or a single chunk) or
hands the scan to the chunks (`store.chunks.FANOUT`), sends them to Celery
and ends. Nothing waits: the runner that settles a step's last chunk takes
the scan back and carries on with the next step (`resume_scan`); a lost
chunk is sent again by a reaper. Both backends run chunks with `ChunkRun`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from typing import Any

from ..core.config import Settings
from ..core.fleet import Beat, Fleet
from ..core.progress import GAUGES, Progress
from ..store import chunks, leases, repo
from ..store.models import ScanChunk, row_id
from .checkpoint import decode_found
from .context import ScanContext, Tick, scan_context
from .steps import STEPS
from .steps.base import ChunkedStep

log = logging.getLogger(__name__)

CANCEL_POLL = 0.5  # seconds between looks at the scan's cancel flag (cancel stops a chunk within 2 s)
BEAT_EVERY = 0.5  # seconds between a chunk's progress beats

Sender = Callable[[list[int]], None]  # chunk ids -> sent to workers


def cut(items: list[str], parts: int) -> list[list[str]]:
    """`items` in `parts` runs of nearly equal length, order kept (a host's
    probes, sorted together, mostly share a chunk)."""
    parts = max(1, min(parts, len(items)))
    size, extra = divmod(len(items), parts)
    out, at = [], 0
    for n in range(parts):
        end = at + size + (1 if n < extra else 0)
        out.append(items[at:end])
        at = end
    return [part for part in out if part]


def plan_parts(
    step: ChunkedStep, items: list[str], pace: float | None, settings: Settings
) -> list[tuple[list[str], int]]:
    """Chunks of about `chunk_seconds` of work each, from the measured pace
    (units a second) or the step's first guess, and none under the step's `min_units`."""
    if not items:
        return []
    seconds = step.units(items) / pace if pace else step.units(items) * step.unit_seconds
    count = min(settings.max_chunks, math.ceil(seconds / settings.chunk_seconds), step.units(items) // step.min_units)
    return [(part, step.units(part)) for part in cut(items, count)]


class ChunkRun:
    """One claimed chunk: its own context (the scan row, and the step's inputs
    from the checkpoint the runner wrote before cutting), its lease renewed,
    the scan's cancel flag watched, its delta stored when done."""

    def __init__(
        self,
        chunk: ScanChunk,
        settings: Settings,
        owner: str,
        backend: str,
        tick: Callable[[int, int, dict[str, int]], None] | None = None,
        fleet: Fleet | None = None,
        worker: str = "",
    ) -> None:
        self.chunk, self.settings, self.owner, self.backend = chunk, settings, owner, backend
        self.chunk_id = row_id(chunk)
        self._tick, self.fleet, self.worker = tick, fleet, worker
        self.count = len(chunks.of_step(chunk.scan_id, chunk.step))
        self.beat = Beat(owner, chunk.scan_id, worker, chunk.step, chunk.number, self.count, 0, chunk.units)
        self._last_beat = 0.0
        self.progress = Progress(chunk.scan_id, state="running")  # this chunk's: its counters go in its result

    def _progress(self, module: str) -> Tick:
        def tick(done: int, total: int) -> None:
            self.beat.done, self.beat.total = min(done, self.chunk.units), self.chunk.units
            self.beat.gauges = self.progress.gauges()  # its rates, shown live by whoever follows the scan
            if self._tick is not None:
                self._tick(self.beat.done, self.beat.total, self.beat.gauges)
            now = time.monotonic()
            if self.fleet is not None and now - self._last_beat >= BEAT_EVERY:
                self._last_beat = now
                self.fleet.beat(self.beat)

        return tick

    def context(self) -> tuple[ScanContext, ChunkedStep]:
        scan = repo.get_scan(self.chunk.scan_id)
        ctx = scan_context(scan, self.backend, self.settings, self.progress, self._progress)
        step_class = STEPS[self.chunk.step]
        assert issubclass(step_class, ChunkedStep)
        ctx.found = decode_found(leases.load_checkpoint(ctx.scan_id).get("found") or {}, fields=step_class.inputs)
        return ctx, step_class(ctx)

    async def run(self) -> str:
        """Run it: "done", "cancelled" (the scan is being cancelled) or "lost" (it is someone else's now)."""
        import json

        started = time.monotonic()
        ctx, step = await asyncio.to_thread(self.context)
        items = [str(i) for i in json.loads(self.chunk.items)]
        if self.fleet is not None:
            self.fleet.beat(self.beat)
        work = asyncio.ensure_future(step.work(items))
        outcome = await self._watch(work)
        try:
            if outcome == "done":
                await work  # its exception (a bug) fails the chunk, below
                result = {
                    "found": step.delta(items),
                    "counters": ctx.progress.counters,
                    "outcomes": ctx.found.outcomes,
                    "dns_status": ctx.dns_status,
                    "saved_hosts": sorted(ctx.saved_hosts),
                }
                ok = await asyncio.to_thread(
                    chunks.finish, self.chunk_id, self.owner, "done", result, time.monotonic() - started
                )
                return "done" if ok else "lost"
            if outcome == "cancelled":
                await asyncio.to_thread(chunks.finish, self.chunk_id, self.owner, "cancelled", {}, 0.0)
            return outcome
        finally:
            if self.fleet is not None:
                self.fleet.clear(self.owner)

    async def _watch(self, work: asyncio.Future[None]) -> str:
        """Renew the lease while `work` runs; stop it on a cancel or a lost lease."""
        last_beat = time.monotonic()
        while not work.done():
            await asyncio.wait({work}, timeout=CANCEL_POLL)
            if work.done():
                break
            if time.monotonic() - last_beat >= self.settings.heartbeat_interval:
                last_beat = time.monotonic()
                if not await asyncio.to_thread(chunks.renew, self.chunk_id, self.owner, self.settings.lease_timeout):
                    work.cancel()
                    return "lost"
            if await asyncio.to_thread(repo.cancel_requested, self.chunk.scan_id):
                work.cancel()
                return "cancelled"
        return "done"


def absorb(ctx: ScanContext, step: ChunkedStep, rows: list[ScanChunk]) -> None:
    """Every done chunk's delta into the scan's state and counters."""
    import json

    for row in rows:
        if row.status != "done":
            continue
        result: dict[str, Any] = json.loads(row.result or "{}")
        step.absorb(dict(result.get("found") or {}))
        for name, n in (result.get("counters") or {}).items():
            if name not in GAUGES:
                ctx.progress.count(str(name), int(n))
        for source, outcome in (result.get("outcomes") or {}).items():
            if ctx.found.outcomes.get(source, {}).get("status", "ok") == "ok":  # one chunk's failure stands
                ctx.found.outcomes[source] = outcome
        ctx.dns_status.update(result.get("dns_status") or {})
        ctx.saved_hosts.update(result.get("saved_hosts") or [])
    ctx.show_outcomes()
