"""Chunks of fanned-out steps, decided in the database like scans are.

A step's chunks are planned once (one row each, numbered); a runner claims
one with a lease and renews it; a done chunk is never claimed again, so its
work is never done twice. While a step's chunks run, the scan row is owned
by `fanout_owner(step)` instead of a process: the chunk runner that settles
the last chunk takes the scan back (`leases.hand_over`) and carries on with
the next step. Every change is one guarded UPDATE, so racing runners cannot
both win.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, update
from sqlmodel import col, select

from ..core.owners import is_dead
from .db import session
from .models import Scan, ScanChunk, row_id, utcnow

log = logging.getLogger(__name__)

FANOUT = "fanout:"  # the scan row's owner while a step's chunks run: "fanout:ports"
SETTLED = ("done", "cancelled")


def fanout_owner(step: str) -> str:
    return FANOUT + step


def fanned_step(owner: str) -> str:
    """The step whose chunks own the scan ("" when a process owns it)."""
    return owner[len(FANOUT) :] if owner.startswith(FANOUT) else ""


def plan(scan_id: int, step: str, parts: list[tuple[list[str], int]]) -> list[ScanChunk]:
    """The step's chunks: planned now from `parts` ((items, units) each), or the
    ones planned before (a resumed scan keeps its chunks and what they found)."""
    with session() as s:
        rows = of_step_in(s, scan_id, step)
        if rows:
            return rows
        for number, (items, units) in enumerate(parts, 1):
            s.add(ScanChunk(scan_id=scan_id, step=step, number=number, items=json.dumps(items), units=units))
        s.commit()
        return of_step_in(s, scan_id, step)


def of_step_in(s: Any, scan_id: int, step: str) -> list[ScanChunk]:
    query = select(ScanChunk).where(ScanChunk.scan_id == scan_id, ScanChunk.step == step)
    return list(s.exec(query.order_by(col(ScanChunk.number))))


def of_step(scan_id: int, step: str) -> list[ScanChunk]:
    with session() as s:
        return of_step_in(s, scan_id, step)


def get(chunk_id: int) -> ScanChunk | None:
    with session() as s:
        return s.get(ScanChunk, chunk_id)


def claim(chunk_id: int, owner: str, worker: str, lease: float) -> ScanChunk | None:
    """Take a chunk to run: a queued one, or a running one whose lease expired
    or whose holder is known dead (a pid of this host that is gone: the pool
    child killed under it, whose message Celery redelivers at once). None when
    it is done, cancelled, held by a live runner, or its scan is being cancelled."""
    now = utcnow()
    with session() as s:
        chunk = s.get(ScanChunk, chunk_id)
        if chunk is None:
            return None
        scan = s.get(Scan, chunk.scan_id)
        if scan is None or scan.cancel_requested or scan.status not in ("running", "cancelling"):
            return None
        lost = or_(col(ScanChunk.lease_until).is_(None), col(ScanChunk.lease_until) < now)
        dead = chunk.status == "running" and bool(chunk.owner) and is_dead(chunk.owner)
        if dead:
            lost = or_(lost, col(ScanChunk.owner) == chunk.owner)  # (a live claimer changed it: then not)
        previous = chunk.owner if chunk.status == "running" else ""
        result = s.exec(
            update(ScanChunk)
            .where(
                col(ScanChunk.id) == chunk_id,
                or_(col(ScanChunk.status) == "queued", (col(ScanChunk.status) == "running") & lost),
            )
            .values(
                status="running",
                owner=owner,
                worker=worker,
                lease_until=now + timedelta(seconds=lease),
                attempts=col(ScanChunk.attempts) + 1,
            )
        )
        s.commit()
        if result.rowcount != 1:
            return None
        claimed = s.get(ScanChunk, chunk_id)
        if previous and claimed is not None:
            why = "which exited" if dead else "whose lease expired"
            log.warning(
                "scan %s: %s chunk %s: took over from %s, %s",
                claimed.scan_id,
                claimed.step,
                claimed.number,
                previous,
                why,
            )
        return claimed


def renew(chunk_id: int, owner: str, lease: float) -> bool:
    """Extend the chunk's lease (and the scan's heartbeat). False: it is no
    longer this runner's, which must stop."""
    now = utcnow()
    with session() as s:
        result = s.exec(
            update(ScanChunk)
            .where(col(ScanChunk.id) == chunk_id, col(ScanChunk.owner) == owner, col(ScanChunk.status) == "running")
            .values(lease_until=now + timedelta(seconds=lease))
        )
        chunk = s.get(ScanChunk, chunk_id)
        if chunk is not None:
            s.exec(update(Scan).where(col(Scan.id) == chunk.scan_id).values(heartbeat=now))
        s.commit()
        return result.rowcount == 1


def finish(chunk_id: int, owner: str, status: str, result: dict[str, Any], seconds: float) -> bool:
    """Settle a chunk this runner holds: done with what it found, or cancelled."""
    with session() as s:
        updated = s.exec(
            update(ScanChunk)
            .where(col(ScanChunk.id) == chunk_id, col(ScanChunk.owner) == owner, col(ScanChunk.status) == "running")
            .values(
                status=status,
                result=json.dumps(result, separators=(",", ":")),
                seconds=seconds,
                lease_until=None,
                finished_at=utcnow(),
            )
        )
        s.commit()
        return updated.rowcount == 1


def requeue(chunk_id: int, owner: str) -> bool:
    """A lost runner's chunk back to queued, if `owner` still holds it."""
    with session() as s:
        result = s.exec(
            update(ScanChunk)
            .where(col(ScanChunk.id) == chunk_id, col(ScanChunk.owner) == owner, col(ScanChunk.status) == "running")
            .values(status="queued", owner="", worker="", lease_until=None, queued_at=utcnow())
        )
        s.commit()
        return result.rowcount == 1


def take_back(scan_id: int, step: str) -> int:
    """Running chunks of the step back to queued: the scan's runner, which holds
    the scan now, knows their runners belong to an attempt that was lost."""
    with session() as s:
        result = s.exec(
            update(ScanChunk)
            .where(col(ScanChunk.scan_id) == scan_id, col(ScanChunk.step) == step, col(ScanChunk.status) == "running")
            .values(status="queued", owner="", worker="", lease_until=None)
        )
        s.commit()
        return int(result.rowcount)


def set_task(chunk_id: int, task_id: str) -> None:
    with session() as s:
        s.exec(update(ScanChunk).where(col(ScanChunk.id) == chunk_id).values(task_id=task_id, queued_at=utcnow()))
        s.commit()


def cancel_queued(scan_id: int) -> int:
    """Chunks nobody runs yet are cancelled at once (running ones stop themselves)."""
    with session() as s:
        count = cancel_queued_in(s, scan_id)
        s.commit()
        return count


def cancel_queued_in(s: Any, scan_id: int) -> int:
    """`cancel_queued` in the caller's transaction (the one that ends the scan)."""
    result = s.exec(
        update(ScanChunk)
        .where(col(ScanChunk.scan_id) == scan_id, col(ScanChunk.status) == "queued")
        .values(status="cancelled", finished_at=utcnow())
    )
    return int(result.rowcount)


def unsettled(scan_id: int, step: str) -> int:
    """Chunks of the step still queued or running."""
    return sum(1 for c in of_step(scan_id, step) if c.status not in SETTLED)


def fanned_out() -> list[tuple[Scan, list[ScanChunk]]]:
    """Scans whose step's chunks own them, with those chunks: what a reaper looks at."""
    with session() as s:
        scans = s.exec(
            select(Scan).where(col(Scan.owner).startswith(FANOUT), col(Scan.status).in_(("running", "cancelling")))
        )
        return [(scan, of_step_in(s, row_id(scan), fanned_step(scan.owner))) for scan in scans]


def pace(project_id: int | None, step: str, last: int = 20) -> float | None:
    """Units a second one chunk runner got through, over the last chunks of
    this step (of the project, or of any): what sizes the next chunks. None
    before any chunk of the step ran."""
    query = select(ScanChunk.units, ScanChunk.seconds).where(ScanChunk.step == step, ScanChunk.status == "done")
    if project_id is not None:
        query = query.join(Scan, col(Scan.id) == col(ScanChunk.scan_id)).where(Scan.project_id == project_id)
    with session() as s:
        rows = s.exec(query.order_by(col(ScanChunk.id).desc()).limit(last)).all()
    units = sum(u for u, _ in rows)
    seconds = sum(t for _, t in rows)
    return units / seconds if rows and seconds > 0 else None
