"""Schedule rows: one per project (the rules live in `assetmon_tui.schedule`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, update
from sqlmodel import col, select

from . import db
from .models import Schedule


def save_schedule(project_id: int, **values: Any) -> Schedule:
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
        return list(s.exec(select(Schedule).order_by(col(Schedule.project_id))))


def delete_schedule(project_id: int) -> None:
    with db.session() as s:
        s.exec(delete(Schedule).where(col(Schedule.project_id) == project_id))
        s.commit()


def due_schedules(now: datetime) -> list[Schedule]:
    with db.session() as s:
        return list(
            s.exec(
                select(Schedule)
                .where(
                    col(Schedule.enabled).is_(True),
                    col(Schedule.next_run_at).is_not(None),
                    col(Schedule.next_run_at) <= now,
                )
                .order_by(col(Schedule.next_run_at))
            )
        )


def claim_run(schedule_id: int, at: datetime, next_at: datetime) -> bool:
    """Move a due schedule to its next slot; only one caller wins a given run
    (the TUI and beat may both be polling)."""
    with db.session() as s:
        result = s.exec(
            update(Schedule)
            .where(
                col(Schedule.id) == schedule_id,
                col(Schedule.next_run_at).is_not(None),
                col(Schedule.next_run_at) <= at,
            )
            .values(last_run_at=at, next_run_at=next_at, last_error="")
        )
        s.commit()
        return result.rowcount == 1


def set_schedule_error(schedule_id: int, error: str) -> None:
    with db.session() as s:
        s.exec(update(Schedule).where(col(Schedule.id) == schedule_id).values(last_error=error[:500]))
        s.commit()
