"""Monitoring tables and their queries: per-scan snapshots (what change events
are computed from), events, schedules, notifiers and deliveries.

Foreign keys cascade on delete, so `repo.delete_project` (which deletes scans
and the project) also removes every row here without knowing these tables.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Column, Index, Text, UniqueConstraint, and_, func, or_, update
from sqlmodel import Field, Session, SQLModel, select

from . import db  # a module reference: db.py imports this module to register its tables
from .models import (
    DnsRecord,
    Event,
    Finding,
    Host,
    HttpEndpoint,
    JsFile,
    Project,
    Scan,
    Service,
    utcnow,
)

SEVERITIES = ("info", "low", "medium", "high", "critical")  # ascending
ACTIVE = ("queued", "running", "cancelling")


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else 0


def at_or_above(severity: str) -> list[str]:
    return list(SEVERITIES[severity_rank(severity) :])


def as_utc(value: datetime | None) -> datetime | None:
    """Databases hand back naive datetimes; ours are always UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# -- tables ------------------------------------------------------------------------


class Snapshot(SQLModel, table=True):
    """The inventory as known after one done scan. Written once, in the same
    transaction as the scan's events: its presence means "events computed"."""

    scan_id: int = Field(primary_key=True, foreign_key="scan.id", ondelete="CASCADE")
    project_id: int = Field(foreign_key="project.id", index=True, ondelete="CASCADE")
    prev_scan_id: int | None = None  # the snapshot compared with
    partial: bool = False  # a scan of some seeds only: nothing could be "gone"
    known: str = ""  # comma separated kinds observed up to this scan (later ones get a silent baseline)
    created_at: datetime = Field(default_factory=utcnow)


class SnapshotItem(SQLModel, table=True):
    """One asset present in a snapshot, with the values watched for changes."""

    __table_args__ = (
        UniqueConstraint("scan_id", "kind", "asset_id"),
        Index("ix_snapshotitem_asset", "kind", "asset_id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    scan_id: int = Field(foreign_key="snapshot.scan_id", ondelete="CASCADE")
    kind: str  # host | ip | dns | service | http | js | finding:<kind>
    asset_id: int  # id in the asset's own table
    host: str = ""  # owning host name, to fold a gone host's children into one event
    entity: str = ""  # display key, e.g. "service:10.0.0.5:22" (never a secret value)
    state: str = Field(default="{}", sa_column=Column(Text))  # JSON: watched values


class Schedule(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", unique=True, ondelete="CASCADE")
    kind: str = "interval"  # interval | cron
    interval_seconds: int | None = None
    cron: str = ""  # 5 fields, server local time
    modules: str = "dns,ports,http"
    options: str = Field(default="{}", sa_column=Column(Text))  # JSON, as Scan.options
    enabled: bool = True
    last_run_at: datetime | None = None
    next_run_at: datetime | None = Field(default=None, index=True)
    last_error: str = ""  # why the last due run could not start
    created_at: datetime = Field(default_factory=utcnow)


class Notifier(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True, ondelete="CASCADE")
    url: str = Field(sa_column=Column(Text, nullable=False))  # apprise URL (may hold a token)
    min_severity: str = "medium"
    enabled: bool = True
    created_at: datetime = Field(default_factory=utcnow)


class Delivery(SQLModel, table=True):
    """One batched message of one scan's events to one notifier."""

    __table_args__ = (UniqueConstraint("notifier_id", "scan_id"),)
    id: int | None = Field(default=None, primary_key=True)
    notifier_id: int = Field(foreign_key="notifier.id", index=True, ondelete="CASCADE")
    scan_id: int = Field(foreign_key="scan.id", index=True, ondelete="CASCADE")
    status: str = "pending"  # pending | sent | failed
    attempts: int = 0
    events: int = 0
    last_error: str = Field(default="", sa_column=Column(Text))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


# -- what a scan saw (read by events.py) -------------------------------------------


def seen_in(s: Session, project_id: int, scan_id: int) -> dict[str, list[tuple]]:
    """Assets whose last sighting is this scan, each with its host's name."""

    def children(model):
        return list(
            s.exec(
                select(model, Host.name)
                .join(Host, Host.id == model.host_id)
                .where(Host.project_id == project_id, model.last_scan_id == scan_id)
            )
        )

    findings = s.exec(
        select(Finding, Host.name)
        .join(Host, Host.id == Finding.host_id, isouter=True)
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
        .join(Scan, Scan.id == Snapshot.scan_id)
        .where(Snapshot.project_id == project_id, Snapshot.scan_id < scan_id, Scan.status == "done")
        .order_by(Snapshot.scan_id.desc())
    ).first()


def snapshot_items(s: Session, scan_id: int) -> list:
    """Rows with the item's columns as attributes (plain rows: snapshots are large)."""
    cols = (SnapshotItem.kind, SnapshotItem.asset_id, SnapshotItem.host, SnapshotItem.entity, SnapshotItem.state)
    return list(s.exec(select(*cols).where(SnapshotItem.scan_id == scan_id)))


def save_snapshot(s: Session, snapshot: Snapshot, items: list[dict], events: list[Event]) -> None:
    """Snapshot, items and events in the caller's transaction (items as one bulk insert)."""
    s.add(snapshot)
    s.flush()  # the items reference it
    if items:
        s.connection().execute(SnapshotItem.__table__.insert(), items)
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
            .where(SnapshotItem.kind == kind, SnapshotItem.asset_id.in_(ids), SnapshotItem.scan_id < scan_id)
        )
    )


def later_scan_started(s: Session, project_id: int, scan_id: int) -> bool:
    """A later scan may have moved last_scan_id: the live tables no longer say
    what `scan_id` saw, so it is too late to snapshot it."""
    return (
        s.exec(
            select(Scan.id).where(Scan.project_id == project_id, Scan.id > scan_id, Scan.started_at.is_not(None))
        ).first()
        is not None
    )


def scan_events(scan_id: int) -> list[Event]:
    with db.session() as s:
        return list(s.exec(select(Event).where(Event.scan_id == scan_id).order_by(Event.id)))


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
                .join(Snapshot, Snapshot.scan_id == Scan.id)
                .where(Scan.project_id == project_id, Scan.status == "done")
                .order_by(Scan.id)
            )
        )
        counts: dict[int, dict[str, int]] = {scan.id: {} for scan in scans}
        for scan_id, kind, n in s.exec(
            select(SnapshotItem.scan_id, SnapshotItem.kind, func.count())
            .join(Snapshot, Snapshot.scan_id == SnapshotItem.scan_id)
            .where(Snapshot.project_id == project_id)
            .group_by(SnapshotItem.scan_id, SnapshotItem.kind)
        ):
            counts.setdefault(scan_id, {})[kind] = n
        events = dict(
            s.exec(
                select(Event.scan_id, func.count()).where(Event.project_id == project_id).group_by(Event.scan_id)
            ).all()
        )
        return [(scan, counts[scan.id], events.get(scan.id, 0)) for scan in scans]


# -- events ------------------------------------------------------------------------


def list_events(
    project_id: int | None = None,
    severity: str | None = None,
    type: str | None = None,
    unacknowledged_only: bool = False,
    limit: int = 500,
    since_scan: int | None = None,
) -> list[Event]:
    """Newest first. `severity` is a minimum: "high" lists high and critical."""
    query = select(Event).order_by(Event.id.desc()).limit(limit)
    if project_id is not None:
        query = query.where(Event.project_id == project_id)
    if severity:
        query = query.where(Event.severity.in_(at_or_above(severity)))
    if type:
        query = query.where(Event.type == type)
    if unacknowledged_only:
        query = query.where(Event.acknowledged.is_(False))
    if since_scan is not None:
        query = query.where(Event.scan_id > since_scan)
    with db.session() as s:
        return list(s.exec(query))


def acknowledge(event_ids: Iterable[int]) -> int:
    ids = list(event_ids)
    if not ids:
        return 0
    with db.session() as s:
        result = s.exec(update(Event).where(Event.id.in_(ids)).values(acknowledged=True))
        s.commit()
        return result.rowcount


def unacknowledged_count(project_id: int | None = None) -> int:
    query = select(func.count()).select_from(Event).where(Event.acknowledged.is_(False))
    if project_id is not None:
        query = query.where(Event.project_id == project_id)
    with db.session() as s:
        return s.exec(query).one()


def findings(project_id: int) -> list[tuple[Finding, str]]:
    with db.session() as s:
        rows = s.exec(
            select(Finding, Host.name)
            .join(Host, Host.id == Finding.host_id, isouter=True)
            .where(Finding.project_id == project_id)
            .order_by(Finding.kind, Finding.id)
        )
        return [(f, name or "") for f, name in rows]


# -- schedules ---------------------------------------------------------------------


def save_schedule(project_id: int, **values) -> Schedule:
    """Create or replace the project's schedule."""
    with db.session() as s:
        row = s.exec(select(Schedule).where(Schedule.project_id == project_id)).first()
        if row is None:
            row = Schedule(project_id=project_id)
        for key, value in values.items():
            setattr(row, key, value)
        s.add(row)
        s.commit()
        s.refresh(row)
        return row


def get_schedule(project_id: int) -> Schedule | None:
    with db.session() as s:
        return s.exec(select(Schedule).where(Schedule.project_id == project_id)).first()


def get_schedule_by_id(schedule_id: int) -> Schedule | None:
    with db.session() as s:
        return s.get(Schedule, schedule_id)


def list_schedules() -> list[Schedule]:
    with db.session() as s:
        return list(s.exec(select(Schedule).order_by(Schedule.project_id)))


def delete_schedule(project_id: int) -> None:
    with db.session() as s:
        s.exec(Schedule.__table__.delete().where(Schedule.project_id == project_id))
        s.commit()


def due_schedules(now: datetime) -> list[Schedule]:
    with db.session() as s:
        return list(
            s.exec(
                select(Schedule)
                .where(Schedule.enabled.is_(True), Schedule.next_run_at.is_not(None), Schedule.next_run_at <= now)
                .order_by(Schedule.next_run_at)
            )
        )


def claim_run(schedule_id: int, at: datetime, next_at: datetime) -> bool:
    """Move a due schedule to its next slot; only one caller wins a given run
    (the TUI and beat may both be polling)."""
    with db.session() as s:
        result = s.exec(
            update(Schedule)
            .where(Schedule.id == schedule_id, Schedule.next_run_at.is_not(None), Schedule.next_run_at <= at)
            .values(last_run_at=at, next_run_at=next_at, last_error="")
        )
        s.commit()
        return result.rowcount == 1


def set_schedule_error(schedule_id: int, error: str) -> None:
    with db.session() as s:
        s.exec(update(Schedule).where(Schedule.id == schedule_id).values(last_error=error[:500]))
        s.commit()


def project_busy(project_id: int, stale_after: float, queued_for: float) -> bool:
    """An active scan of the project whose runner showed life within
    `stale_after` seconds, or a scan queued within `queued_for` seconds (it
    may be waiting behind a busy worker). A crashed runner's scan goes stale
    and stops counting."""
    now = utcnow()
    with db.session() as s:
        return (
            s.exec(
                select(Scan.id).where(
                    Scan.project_id == project_id,
                    Scan.status.in_(ACTIVE),
                    or_(
                        Scan.heartbeat >= now - timedelta(seconds=stale_after),
                        and_(Scan.heartbeat.is_(None), Scan.created_at >= now - timedelta(seconds=queued_for)),
                    ),
                )
            ).first()
            is not None
        )


# -- notifiers and deliveries ------------------------------------------------------


def add_notifier(project_id: int, url: str, min_severity: str, enabled: bool = True) -> Notifier:
    with db.session() as s:
        row = Notifier(project_id=project_id, url=url, min_severity=min_severity, enabled=enabled)
        s.add(row)
        s.commit()
        return row


def list_notifiers(project_id: int | None = None, enabled_only: bool = False) -> list[Notifier]:
    query = select(Notifier).order_by(Notifier.id)
    if project_id is not None:
        query = query.where(Notifier.project_id == project_id)
    if enabled_only:
        query = query.where(Notifier.enabled.is_(True))
    with db.session() as s:
        return list(s.exec(query))


def update_notifier(notifier_id: int, **values) -> None:
    with db.session() as s:
        s.exec(update(Notifier).where(Notifier.id == notifier_id).values(**values))
        s.commit()


def delete_notifier(notifier_id: int) -> None:
    with db.session() as s:
        s.exec(Delivery.__table__.delete().where(Delivery.notifier_id == notifier_id))
        s.exec(Notifier.__table__.delete().where(Notifier.id == notifier_id))
        s.commit()


def get_delivery(notifier_id: int, scan_id: int) -> Delivery | None:
    with db.session() as s:
        return s.exec(select(Delivery).where(Delivery.notifier_id == notifier_id, Delivery.scan_id == scan_id)).first()


def save_delivery(delivery: Delivery) -> Delivery:
    delivery.updated_at = utcnow()
    with db.session() as s:
        delivery = s.merge(delivery)
        s.commit()
        s.refresh(delivery)
        return delivery


def list_deliveries(project_id: int | None = None, scan_id: int | None = None, limit: int = 200) -> list[Delivery]:
    query = (
        select(Delivery).join(Notifier, Notifier.id == Delivery.notifier_id).order_by(Delivery.id.desc()).limit(limit)
    )
    if project_id is not None:
        query = query.where(Notifier.project_id == project_id)
    if scan_id is not None:
        query = query.where(Delivery.scan_id == scan_id)
    with db.session() as s:
        return list(s.exec(query))


def project_name(project_id: int) -> str:
    with db.session() as s:
        project = s.get(Project, project_id)
        return project.name if project else str(project_id)
