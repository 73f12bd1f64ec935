"""Snapshots: what a scan saw, frozen once it is done (change events are
computed from them by `assetmon_tui.events`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, insert
from sqlmodel import Session, col, select

from . import db
from .models import DnsRecord, Event, Finding, Host, HttpEndpoint, JsFile, Scan, Service, Snapshot, SnapshotItem

Child = DnsRecord | Service | HttpEndpoint | JsFile


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


def previous_snapshot(s: Session, project_id: int, scan_id: int) -> Snapshot | None:
    """The latest snapshot of a done scan of the project before `scan_id`."""
    return s.exec(
        select(Snapshot)
        .join(Scan, col(Scan.id) == Snapshot.scan_id)
        .where(Snapshot.project_id == project_id, Snapshot.scan_id < scan_id, Scan.status == "done")
        .order_by(col(Snapshot.scan_id).desc())
    ).first()


def snapshot_items(s: Session, scan_id: int) -> list[Any]:
    """Rows with the item's columns as attributes (plain rows: snapshots are large)."""
    return list(
        s.exec(
            select(  # type: ignore[call-overload]  # sqlmodel's select() is typed for at most 4 columns
                SnapshotItem.kind, SnapshotItem.asset_id, SnapshotItem.host, SnapshotItem.entity, SnapshotItem.state
            ).where(SnapshotItem.scan_id == scan_id)
        )
    )


def save_snapshot(s: Session, snapshot: Snapshot, items: list[dict[str, Any]], events: list[Event]) -> None:
    """Snapshot, items and events in the caller's transaction (items as one bulk insert)."""
    s.add(snapshot)
    s.flush()  # the items reference it
    if items:
        s.connection().execute(insert(SnapshotItem), items)
    s.add_all(events)


def seen_before(s: Session, kind: str, asset_ids: Iterable[int], scan_id: int) -> set[int]:
    """Which of these assets were in some snapshot older than `scan_id`."""
    ids = list(asset_ids)
    if not ids:
        return set()
    return set(
        s.exec(
            select(SnapshotItem.asset_id)
            .distinct()
            .where(SnapshotItem.kind == kind, col(SnapshotItem.asset_id).in_(ids), SnapshotItem.scan_id < scan_id)
        )
    )


def later_scan_started(s: Session, project_id: int, scan_id: int) -> bool:
    """A later scan may have moved last_scan_id: the live tables no longer say
    what `scan_id` saw, so it is too late to snapshot it."""
    return (
        s.exec(
            select(Scan.id).where(
                Scan.project_id == project_id, col(Scan.id) > scan_id, col(Scan.started_at).is_not(None)
            )
        ).first()
        is not None
    )


def get_snapshot(scan_id: int) -> Snapshot | None:
    with db.session() as s:
        return s.get(Snapshot, scan_id)


def snapshot_entities(scan_id: int) -> dict[str, set[str]]:
    """kind -> entity keys present in a snapshot."""
    out: dict[str, set[str]] = {}
    with db.session() as s:
        for kind, entity in s.exec(
            select(SnapshotItem.kind, SnapshotItem.entity).where(SnapshotItem.scan_id == scan_id)
        ):
            out.setdefault(kind, set()).add(entity)
    return out


def snapshot_counts(project_id: int) -> list[tuple[Scan, dict[str, int], int]]:
    """Per done, snapshotted scan (oldest first): item counts per kind, event count."""
    with db.session() as s:
        scans = list(
            s.exec(
                select(Scan)
                .join(Snapshot, col(Snapshot.scan_id) == Scan.id)
                .where(Scan.project_id == project_id, Scan.status == "done")
                .order_by(col(Scan.id))
            )
        )
        counts: dict[int | None, dict[str, int]] = {scan.id: {} for scan in scans}
        for scan_id, kind, n in s.exec(
            select(SnapshotItem.scan_id, SnapshotItem.kind, func.count())
            .join(Snapshot, col(Snapshot.scan_id) == SnapshotItem.scan_id)
            .where(Snapshot.project_id == project_id)
            .group_by(col(SnapshotItem.scan_id), col(SnapshotItem.kind))
        ):
            counts.setdefault(scan_id, {})[kind] = n
        events: dict[int | None, int] = dict(
            s.exec(
                select(Event.scan_id, func.count()).where(Event.project_id == project_id).group_by(col(Event.scan_id))
            ).all()
        )
        return [(scan, counts[scan.id], events.get(scan.id, 0)) for scan in scans]
