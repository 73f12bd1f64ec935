"""Snapshots: the project's inventory as known after each done scan (change
events are computed from them by `assetmon_tui.events`).

Items are stored as versions (`SnapshotItem`): a version holds from the
snapshot `since_seq` until just before `until_seq`, and a new one is written
only when something watched changes. So a scan that changed nothing adds one
`Snapshot` row and no items, and "the inventory as of scan N" is the versions
that hold at N's sequence number.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import and_, func, insert, or_, update
from sqlmodel import Session, col, select

from . import db
from .models import DnsRecord, Event, Finding, Host, HttpEndpoint, JsFile, Scan, Service, Snapshot, SnapshotItem

Child = DnsRecord | Service | HttpEndpoint | JsFile
ITEM_COLUMNS = (
    SnapshotItem.id,
    SnapshotItem.kind,
    SnapshotItem.asset_id,
    SnapshotItem.host,
    SnapshotItem.entity,
    SnapshotItem.state,
    SnapshotItem.status,
    SnapshotItem.misses,
    SnapshotItem.since_seq,
)


def seen_in(s: Session, project_id: int, scan_id: int) -> dict[str, list[tuple[Any, str]]]:
    """Assets whose last sighting is this scan, each with its host's name."""

    def children(model: type[Child]) -> list[tuple[Any, str]]:
        return list(
            s.exec(
                select(model, Host.name)
                .join(Host, col(Host.id) == model.host_id)
                .where(Host.project_id == project_id, model.last_scan_id == scan_id)
            )
        )

    findings = s.exec(
        select(Finding, Host.name)
        .join(Host, col(Host.id) == Finding.host_id, isouter=True)
        .where(Finding.project_id == project_id, Finding.last_scan_id == scan_id)
    )
    return {
        "host": [
            (h, h.name) for h in s.exec(select(Host).where(Host.project_id == project_id, Host.last_scan_id == scan_id))
        ],
        "dns": children(DnsRecord),
        "service": children(Service),
        "http": children(HttpEndpoint),
        "js": children(JsFile),
        "finding": [(f, name or "") for f, name in findings],
    }


def last_snapshot(s: Session, project_id: int) -> Snapshot | None:
    """The project's latest snapshot (the one a new scan is compared with)."""
    return s.exec(select(Snapshot).where(Snapshot.project_id == project_id).order_by(col(Snapshot.seq).desc())).first()


def later_scan_started(s: Session, project_id: int, scan_id: int) -> bool:
    """A later scan may have moved the assets' last_scan_id: the live tables no
    longer say what `scan_id` saw, so it is too late to snapshot it. (A scan
    ending as done is snapshotted before the project lock frees.)"""
    query = select(Scan.id).where(
        Scan.project_id == project_id, col(Scan.id) > scan_id, col(Scan.started_at).is_not(None)
    )
    return s.exec(query).first() is not None


def _holding(project_id: int, seq: int | None) -> Any:
    """Versions that hold at `seq` (None: the current ones)."""
    if seq is None:
        return and_(col(SnapshotItem.project_id) == project_id, col(SnapshotItem.until_seq).is_(None))
    return and_(
        col(SnapshotItem.project_id) == project_id,
        col(SnapshotItem.since_seq) <= seq,
        or_(col(SnapshotItem.until_seq).is_(None), col(SnapshotItem.until_seq) > seq),
    )


def items(s: Session, project_id: int, seq: int | None = None) -> list[Any]:
    """Item versions holding at snapshot `seq` (None: now), gone ones included,
    as plain rows (id, kind, asset_id, host, entity, state, status, misses, since_seq)."""
    query = select(*ITEM_COLUMNS).where(_holding(project_id, seq))  # type: ignore[call-overload]  # sqlmodel's select() is typed for at most 4 columns
    return list(s.exec(query))


def save_snapshot(
    s: Session, snapshot: Snapshot, ended: Iterable[int], versions: list[dict[str, Any]], events: list[Event]
) -> None:
    """Snapshot, item versions and events in the caller's transaction: the
    versions `ended` stop holding at this snapshot, `versions` start."""
    s.add(snapshot)
    s.flush()  # a concurrent snapshot of the same project (same seq) fails here
    ids = list(ended)
    for start in range(0, len(ids), 500):
        s.connection().execute(
            update(SnapshotItem)
            .where(col(SnapshotItem.id).in_(ids[start : start + 500]))
            .values(until_seq=snapshot.seq)
        )
    if versions:
        s.connection().execute(insert(SnapshotItem), versions)
    s.add_all(events)


def known_names(project_id: int) -> list[str]:
    """Host names in the project's current inventory (gone ones left out)."""
    with db.session() as s:
        query = (
            select(SnapshotItem.host)
            .where(_holding(project_id, None), SnapshotItem.kind == "host", SnapshotItem.status != "gone")
            .distinct()
        )
        return sorted(s.exec(query))


def get_snapshot(scan_id: int) -> Snapshot | None:
    with db.session() as s:
        return s.get(Snapshot, scan_id)


def scan_items(scan_id: int) -> list[Any]:
    """The inventory as of a snapshotted scan (item version rows, gone ones included)."""
    with db.session() as s:
        snap = s.get(Snapshot, scan_id)
        return items(s, snap.project_id, snap.seq) if snap else []


def snapshot_entities(scan_id: int) -> dict[str, set[str]]:
    """kind -> entity keys present in a snapshot (gone ones left out)."""
    out: dict[str, set[str]] = {}
    for row in scan_items(scan_id):
        if row.status != "gone":
            out.setdefault(row.kind, set()).add(row.entity)
    return out


def snapshot_counts(project_id: int) -> list[tuple[Scan, dict[str, int], int]]:
    """Per done, snapshotted scan (oldest first): its inventory's counts, its event count."""
    with db.session() as s:
        rows = list(
            s.exec(
                select(Scan, Snapshot)
                .join(Snapshot, col(Snapshot.scan_id) == Scan.id)
                .where(Scan.project_id == project_id)
                .order_by(col(Snapshot.seq))
            )
        )
        events: dict[int | None, int] = dict(
            s.exec(
                select(Event.scan_id, func.count()).where(Event.project_id == project_id).group_by(col(Event.scan_id))
            ).all()
        )
        return [(scan, json.loads(snap.counts or "{}"), events.get(scan.id, 0)) for scan, snap in rows]
