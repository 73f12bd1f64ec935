"""Find scans whose runner is gone and hand them on, on evidence only.

Evidence that a runner is gone: its lease expired (it stopped renewing), or
it is a process on this host that no longer exists. A lost scan goes back to
"queued" with its checkpoint, to be resumed by whoever runs it next; after
`max_attempts` runs it is failed with the reasons. A queued scan is sent
to Celery again only when the broker no longer holds its message (Redis lost
it, or the scan was requeued). How long a message has waited in a queue is
never evidence: a busy worker is not a dead one.

The same `Reaper` runs in every worker (at start and periodically), in beat,
and in the TUI and CLI (through `dispatch`), so nothing waits on a TUI.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from .core.config import Settings
from .core.owners import is_dead
from .store import chunks, leases, repo
from .store.models import Scan, ScanChunk, as_utc, row_id, utcnow

log = logging.getLogger(__name__)

QUEUE_GRACE = 10.0  # seconds a just-queued message may take to show up in the broker

Enqueue = Callable[[int], object]  # scan id -> send it to Celery
SendChunks = Callable[[list[int]], object]  # chunk ids -> send them to Celery
HeldTasks = Callable[[], "set[str] | None"]  # the task ids the broker holds (None: cannot tell)


def chunk_lost(row: ScanChunk) -> bool:
    lease = as_utc(row.lease_until)
    return bool(row.owner and is_dead(row.owner)) or lease is None or lease < utcnow()


def lost_because(scan: Scan) -> str:
    """Why `scan`'s runner counts as gone ("" while it holds its lease)."""
    if scan.owner and is_dead(scan.owner):
        return f"its runner {scan.owner} exited"
    lease = as_utc(scan.lease_until)
    if lease is None or lease < utcnow():
        return f"its runner {scan.owner or '?'} stopped renewing its lease"
    return ""


@dataclass
class Reaper:
    settings: Settings
    enqueue: Enqueue | None = None  # None: this process cannot reach Celery now
    held_tasks: HeldTasks | None = None
    send_chunks: SendChunks | None = None
    _held: set[str] | None = field(default=None, init=False, repr=False)
    _asked: bool = field(default=False, init=False, repr=False)

    def reap(self) -> list[int]:
        """One pass; returns the ids of scans it requeued, re-sent or ended."""
        self._held, self._asked = None, False  # the broker is read at most once a pass, if at all
        acted = [
            sid
            for scan in leases.running_scans()
            if not chunks.fanned_step(scan.owner) and (sid := self._running(scan)) is not None
        ]
        acted += [sid for scan, rows in chunks.fanned_out() if (sid := self._fanned(scan, rows)) is not None]
        if self.enqueue is not None:
            acted += [sid for scan in repo.active_scans() if (sid := self._queued(scan)) is not None]
        return acted

    def _fanned(self, scan: Scan, rows: list[ScanChunk]) -> int | None:
        """A scan its step's chunks hold: lost chunks go back to the queue and
        are sent again; a cancelled one ends once no chunk runs; a step whose
        chunks all settled without anyone carrying on is resumed."""
        sid, now = row_id(scan), utcnow()
        if scan.cancel_requested:
            chunks.cancel_queued(sid)
        resend: list[int] = []
        for row in rows:
            if row.status == "running" and chunk_lost(row):
                if row.attempts >= self.settings.max_attempts:
                    error = f"{row.step} chunk {row.number}: runner lost {row.attempts} times; gave up"
                    return sid if repo.finish_scan(sid, "failed", error, owner=scan.owner) else None
                if chunks.requeue(row_id(row), row.owner):
                    log.warning("scan %s: %s chunk %s lost (%s); sent again", sid, row.step, row.number, row.owner)
                    resend.append(row_id(row))
            elif row.status == "queued" and not scan.cancel_requested:
                waited = now - (as_utc(row.queued_at) or now)
                if waited > timedelta(seconds=QUEUE_GRACE) and self._broker_holds(row.task_id) is False:
                    resend.append(row_id(row))
        if resend and self.send_chunks is not None:
            self.send_chunks(resend)
        rows = chunks.of_step(sid, chunks.fanned_step(scan.owner))
        if any(r.status not in chunks.SETTLED for r in rows):
            return sid if resend else None
        if scan.cancel_requested:
            return sid if repo.finish_scan(sid, "cancelled", "cancelled", owner=scan.owner) else None
        last = max((as_utc(r.finished_at) or now for r in rows), default=now)
        if now - last < timedelta(seconds=QUEUE_GRACE):
            return None  # its last chunk's runner is about to carry on
        if leases.requeue(sid, scan.owner, "the runner of its last chunk exited before carrying on"):
            if self.enqueue is not None:
                self.enqueue(sid)
            return sid
        return None

    def _broker_holds(self, task_id: str) -> bool | None:
        if not self._asked:
            self._asked = True
            self._held = self.held_tasks() if self.held_tasks else None
        return None if self._held is None else task_id in self._held

    def _running(self, scan: Scan) -> int | None:
        reason = lost_because(scan)
        if not reason:
            return None
        sid = row_id(scan)
        if scan.cancel_requested:
            ended = repo.finish_scan(sid, "cancelled", f"cancelled ({reason})")
            return sid if ended else None
        if scan.attempts >= self.settings.max_attempts:
            error = f"runner lost: {reason}; gave up after {scan.attempts} attempts (see `assetmon scans`)"
            return sid if repo.finish_scan(sid, "failed", error) else None
        if not leases.requeue(sid, scan.owner, reason):
            return None  # someone else got there first
        log.warning(
            "scan %s: %s; queued to resume (attempt %d of %d next)",
            sid,
            reason,
            scan.attempts + 1,
            self.settings.max_attempts,
        )
        if self.enqueue is not None:
            self.enqueue(sid)
        return sid

    def _queued(self, scan: Scan) -> int | None:
        if scan.status != "queued":
            return None
        if scan.backend == "thread":
            if not (scan.owner and is_dead(scan.owner)):
                return None  # a TUI or CLI is about to run it here (one that died before it could: re-sent)
        else:
            queued_at = as_utc(scan.queued_at) or as_utc(scan.created_at)
            if queued_at and utcnow() - queued_at < timedelta(seconds=QUEUE_GRACE):
                return None  # just submitted (without a task id: its submitter is queueing it now)
            if scan.task_id:
                holds = self._broker_holds(scan.task_id)
                if holds is not False:
                    return None  # held (waiting behind busy workers), or we cannot tell: leave it
                log.warning("scan %s: the broker lost its message %s; queued again", row_id(scan), scan.task_id)
        assert self.enqueue is not None
        self.enqueue(row_id(scan))
        return row_id(scan)
