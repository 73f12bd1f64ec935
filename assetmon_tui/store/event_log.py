"""The change-event log: severities, listing and acknowledging events (they
are computed and written by `assetmon_tui.events`, with their snapshot)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, update
from sqlmodel import col, select

from . import db
from .models import Event

SEVERITIES = ("info", "low", "medium", "high", "critical")  # ascending


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else 0


def at_or_above(severity: str) -> list[str]:
    return list(SEVERITIES[severity_rank(severity) :])


def scan_events(scan_id: int) -> list[Event]:
    with db.session() as s:
        return list(s.exec(select(Event).where(Event.scan_id == scan_id).order_by(col(Event.id))))


def list_events(
    project_id: int | None = None,
    severity: str | None = None,
    type: str | None = None,
    unacknowledged_only: bool = False,
    limit: int | None = 500,
    since_scan: int | None = None,
) -> list[Event]:
    """Newest first, at most `limit` (None: all). `severity` is a minimum:
    "high" lists high and critical."""
    query = select(Event).order_by(col(Event.id).desc()).limit(limit)
    if project_id is not None:
        query = query.where(Event.project_id == project_id)
    if severity:
        query = query.where(col(Event.severity).in_(at_or_above(severity)))
    if type:
        query = query.where(Event.type == type)
    if unacknowledged_only:
        query = query.where(col(Event.acknowledged).is_(False))
    if since_scan is not None:
        query = query.where(Event.scan_id > since_scan)
    with db.session() as s:
        return list(s.exec(query))


def acknowledge(event_ids: Iterable[int]) -> int:
    ids = list(event_ids)
    if not ids:
        return 0
    with db.session() as s:
        result = s.exec(update(Event).where(col(Event.id).in_(ids)).values(acknowledged=True))
        s.commit()
        return result.rowcount


def unacknowledged_count(project_id: int | None = None) -> int:
    query = select(func.count()).select_from(Event).where(col(Event.acknowledged).is_(False))
    if project_id is not None:
        query = query.where(Event.project_id == project_id)
    with db.session() as s:
        return s.exec(query).one()
