"""Who runs a scan, decided in the database: leases, takeovers and attempts.

A runner claims a scan with a lease (`lease_until`) and renews it with its
heartbeat. A scan is another runner's to take over only on evidence: its
lease has expired, or its owner is a process known to be dead (a pid on this
host that no longer exists). Every claim starts a numbered `ScanAttempt`;
taking over closes the previous one as "lost". Every change is one guarded
UPDATE, so two processes racing for a scan cannot both win.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import func, or_, update
from sqlmodel import col, select

from .db import session
from .models import Scan, ScanAttempt, utcnow

RUNNING = ("running", "cancelling")


def claim(scan_id: int, backend: str, owner: str, lease: float, max_attempts: int, dead_owner: str = "") -> bool:
    """Take a scan to run: a queued one, or a running one whose lease expired
    (or whose owner is `dead_owner`, known dead). True when this caller won."""
    now = utcnow()
    lost = or_(col(Scan.lease_until).is_(None), col(Scan.lease_until) < now)
    if dead_owner:
        lost = or_(lost, col(Scan.owner) == dead_owner)
    with session() as s:
        previous = s.get(Scan, scan_id)
        if previous is None:
            return False
        result = s.exec(
            update(Scan)
            .where(
                col(Scan.id) == scan_id,
                col(Scan.cancel_requested).is_(False),
                col(Scan.attempts) < max_attempts,
                or_(col(Scan.status) == "queued", (col(Scan.status) == "running") & lost),
            )
            .values(
                status="running",
                backend=backend,
                owner=owner,
                heartbeat=now,
                lease_until=now + timedelta(seconds=lease),
                attempts=col(Scan.attempts) + 1,
                started_at=previous.started_at or now,
                error="",
            )
        )
        if result.rowcount != 1:
            s.rollback()
            return False
        close_attempts(s, scan_id, "lost", f"taken over by {owner}")
        last = s.exec(select(func.max(ScanAttempt.number)).where(ScanAttempt.scan_id == scan_id)).one()
        s.add(ScanAttempt(scan_id=scan_id, number=(last or 0) + 1, runner=owner, backend=backend))
        s.commit()
        return True


def reopen(scan_id: int, submitter: str) -> bool:
    """A failed or cancelled scan back to queued, by hand (`assetmon resume`):
    it keeps its checkpoint and gets a fresh budget of attempts. Raises
    IntegrityError when another scan of the project is active."""
    with session() as s:
        result = s.exec(
            update(Scan)
            .where(col(Scan.id) == scan_id, col(Scan.status).in_(("failed", "cancelled")))
            .values(
                status="queued",
                backend="",
                submitter=submitter,
                owner="",
                task_id="",
                attempts=0,
                cancel_requested=False,
                finished_at=None,
                lease_until=None,
                error="",
                queued_at=utcnow(),
            )
        )
        s.commit()
        return result.rowcount == 1


def renew(scan_id: int, owner: str, lease: float) -> bool:
    """Extend the owner's lease. False: the scan is no longer this owner's
    (taken over, finished or reaped): the runner must stop."""
    now = utcnow()
    with session() as s:
        result = s.exec(
            update(Scan)
            .where(col(Scan.id) == scan_id, col(Scan.owner) == owner, col(Scan.status).in_(RUNNING))
            .values(heartbeat=now, lease_until=now + timedelta(seconds=lease))
        )
        s.commit()
        return result.rowcount == 1


def hand_over(scan_id: int, owner: str, to: str, lease: float) -> bool:
    """Pass a running scan from `owner` to `to` (a step's chunks, or the
    runner that settled its last chunk), if `owner` still holds it."""
    now = utcnow()
    with session() as s:
        result = s.exec(
            update(Scan)
            .where(col(Scan.id) == scan_id, col(Scan.owner) == owner, col(Scan.status).in_(RUNNING))
            .values(owner=to, heartbeat=now, lease_until=now + timedelta(seconds=lease))
        )
        s.commit()
        return result.rowcount == 1


def requeue(scan_id: int, owner: str, reason: str) -> bool:
    """A lost runner's scan back to queued (for anyone to resume), if `owner`
    still holds it: the attempt is closed as lost with the reason."""
    with session() as s:
        result = s.exec(
            update(Scan)
            .where(col(Scan.id) == scan_id, col(Scan.owner) == owner, col(Scan.status) == "running")
            .values(status="queued", backend="", owner="", task_id="", lease_until=None, queued_at=utcnow())
        )
        if result.rowcount != 1:
            s.rollback()
            return False
        close_attempts(s, scan_id, "lost", reason)
        s.commit()
        return True


def close_attempts(s: Any, scan_id: int, outcome: str, reason: str) -> None:
    """Close the scan's open attempt in the caller's transaction (the one that
    ends the scan or requeues it: nobody sees one without the other)."""
    query = update(ScanAttempt).where(col(ScanAttempt.scan_id) == scan_id, col(ScanAttempt.ended_at).is_(None))
    s.exec(query.values(ended_at=utcnow(), outcome=outcome, reason=reason[:500]))


def attempts(scan_id: int) -> list[ScanAttempt]:
    with session() as s:
        rows = s.exec(select(ScanAttempt).where(ScanAttempt.scan_id == scan_id).order_by(col(ScanAttempt.number)))
        return list(rows)


def running_scans() -> list[Scan]:
    """Scans some runner holds (or held): what a reaper looks at."""
    with session() as s:
        return list(s.exec(select(Scan).where(col(Scan.status).in_(RUNNING)).order_by(col(Scan.id))))


def save_checkpoint(scan_id: int, owner: str, checkpoint: dict[str, Any]) -> bool:
    """Store the runner's checkpoint, only while it still owns the scan."""
    with session() as s:
        result = s.exec(
            update(Scan)
            .where(col(Scan.id) == scan_id, col(Scan.owner) == owner, col(Scan.status).in_(RUNNING))
            .values(checkpoint=json.dumps(checkpoint, separators=(",", ":")))
        )
        s.commit()
        return result.rowcount == 1


def load_checkpoint(scan_id: int) -> dict[str, Any]:
    with session() as s:
        raw = s.exec(select(Scan.checkpoint).where(Scan.id == scan_id)).first()
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
