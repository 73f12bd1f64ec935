"""Notifier and delivery rows (sending lives in `assetmon_tui.notify`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from . import db
from .models import Delivery, Notifier, utcnow


def add_notifier(project_id: int, url: str, min_severity: str, enabled: bool = True) -> Notifier:
    with db.session() as s:
        row = Notifier(project_id=project_id, url=url, min_severity=min_severity, enabled=enabled)
        s.add(row)
        s.commit()
        return row


def list_notifiers(project_id: int | None = None, enabled_only: bool = False) -> list[Notifier]:
    query = select(Notifier).order_by(col(Notifier.id))
    if project_id is not None:
        query = query.where(Notifier.project_id == project_id)
    if enabled_only:
        query = query.where(col(Notifier.enabled).is_(True))
    with db.session() as s:
        return list(s.exec(query))


def update_notifier(notifier_id: int, **values: Any) -> None:
    with db.session() as s:
        s.exec(update(Notifier).where(col(Notifier.id) == notifier_id).values(**values))
        s.commit()


def delete_notifier(notifier_id: int) -> None:
    with db.session() as s:
        s.exec(delete(Delivery).where(col(Delivery.notifier_id) == notifier_id))
        s.exec(delete(Notifier).where(col(Notifier.id) == notifier_id))
        s.commit()


def get_delivery(notifier_id: int, scan_id: int) -> Delivery | None:
    with db.session() as s:
        return s.exec(select(Delivery).where(Delivery.notifier_id == notifier_id, Delivery.scan_id == scan_id)).first()


def claim_delivery(notifier_id: int, scan_id: int, now: datetime, pending_before: datetime) -> Delivery | None:
    """The delivery to send now, marked pending at `now` before anything is sent
    (a sender killed mid-send leaves it pending, and `notify.deliver_due` finds it);
    made if missing. None: it was sent, or another sender holds it (pending
    since `pending_before` or later). Two claimers: one wins."""
    with db.session() as s:
        row = s.exec(select(Delivery).where(Delivery.notifier_id == notifier_id, Delivery.scan_id == scan_id)).first()
        if row is None:
            row = Delivery(notifier_id=notifier_id, scan_id=scan_id, status="pending", created_at=now, updated_at=now)
            s.add(row)
            try:
                s.commit()
            except IntegrityError:  # another sender made it a moment ago
                return None
            s.refresh(row)
            return row
        if row.status == "sent":
            return None
        won = s.exec(
            update(Delivery)
            .where(
                col(Delivery.id) == row.id,
                col(Delivery.status) == row.status,
                col(Delivery.attempts) == row.attempts,
                or_(col(Delivery.status) != "pending", col(Delivery.updated_at) < pending_before),
            )
            .values(status="pending", updated_at=now)
        ).rowcount
        s.commit()
        if not won:
            return None
        s.refresh(row)
        return row


def unsent_deliveries(since: datetime) -> list[Delivery]:
    """Deliveries not sent, touched since `since`, of enabled notifiers (oldest first)."""
    query = (
        select(Delivery)
        .join(Notifier, col(Notifier.id) == Delivery.notifier_id)
        .where(col(Delivery.status) != "sent", col(Delivery.updated_at) >= since, col(Notifier.enabled).is_(True))
        .order_by(col(Delivery.updated_at))
    )
    with db.session() as s:
        return list(s.exec(query))


def save_delivery(delivery: Delivery) -> Delivery:
    delivery.updated_at = utcnow()
    with db.session() as s:
        delivery = s.merge(delivery)
        s.commit()
        s.refresh(delivery)
        return delivery


def list_deliveries(project_id: int | None = None, scan_id: int | None = None, limit: int = 200) -> list[Delivery]:
    query = (
        select(Delivery)
        .join(Notifier, col(Notifier.id) == Delivery.notifier_id)
        .order_by(col(Delivery.id).desc())
        .limit(limit)
    )
    if project_id is not None:
        query = query.where(Notifier.project_id == project_id)
    if scan_id is not None:
        query = query.where(Delivery.scan_id == scan_id)
    with db.session() as s:
        return list(s.exec(query))
