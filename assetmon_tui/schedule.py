"""Recurring scans: one schedule per project (an interval or a cron line), kept
in the database so an edit in the TUI takes effect at the next poll, whoever
polls (the TUI in thread mode, `worker.beat` with Celery, or both at once:
claiming a run is atomic).

A project never has two scans at once: a due schedule waits while the
project has an active scan. A crashed runner's scan does not hold it for
long: the reapers (in every worker, beat, the TUI and the CLI) resume it or,
after `max_attempts`, fail it.

A schedule's options may name a scan profile (`profile`, core/profiles.py);
each run applies it (else the project's profile) under the project's settings
and the schedule's own options, so the profile's ports, nameservers, sources
and rates reach every scheduled scan.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from .core import profiles, project_settings
from .core.modules import check_modules
from .store import repo, schedules
from .store.models import Schedule, as_utc, utcnow
from .store.schedules import delete_schedule, get_schedule, list_schedules

__all__ = [
    "MIN_INTERVAL",
    "Schedule",
    "Submit",
    "as_utc",
    "delete_schedule",
    "due_schedules",
    "enable_schedule",
    "get_schedule",
    "list_schedules",
    "mark_ran",
    "next_run",
    "run_due",
    "set_schedule",
]

log = logging.getLogger(__name__)

MIN_INTERVAL = 60  # seconds: a monitor, not a load test

Submit = Callable[[int, list[str], dict[str, Any]], object]


def set_schedule(
    project_id: int,
    interval_seconds: int | None = None,
    cron: str | None = None,
    modules: list[str] | tuple[str, ...] = ("dns", "ports", "http"),
    enabled: bool = True,
    options: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> Schedule:
    """Create or replace a project's schedule; the next run is computed from now.
    Cron lines have 5 fields in the server's local time. Raises ValueError."""
    if (interval_seconds is None) == (not cron):
        raise ValueError("give either an interval in seconds or a cron line, not both or neither")
    modules = check_modules(list(modules))
    if not modules:
        raise ValueError("a schedule needs at least one module")
    if options and options.get("profile"):
        options = {**options, "profile": project_settings.check("profile", options["profile"])}
    values: dict[str, Any]
    if cron:
        cron = " ".join(cron.split())
        _check_cron(cron)
        values = dict(kind="cron", cron=cron, interval_seconds=None)
    else:
        assert interval_seconds is not None  # checked above: an interval or a cron line
        if int(interval_seconds) < MIN_INTERVAL:
            raise ValueError(f"the interval must be at least {MIN_INTERVAL} seconds")
        values = dict(kind="interval", interval_seconds=int(interval_seconds), cron="")
    draft = Schedule(project_id=project_id, **values)
    return schedules.save_schedule(
        project_id,
        **values,
        modules=",".join(modules),
        options=json.dumps(options or {}),
        enabled=enabled,
        next_run_at=next_run(draft, now or utcnow()),
        last_error="",
    )


def enable_schedule(project_id: int, enabled: bool, now: datetime | None = None) -> Schedule:
    """Switch a schedule on or off; switched on, it runs at its next slot from now
    (not at once for the slots missed while off)."""
    schedule = get_schedule(project_id)
    if schedule is None:
        raise ValueError("this project has no schedule")
    values: dict[str, Any] = {"enabled": enabled}
    if enabled:
        values["next_run_at"] = next_run(schedule, as_utc(now) if now else utcnow())
    return schedules.save_schedule(project_id, **values)


def _check_cron(expr: str) -> None:
    from croniter import croniter

    if len(expr.split()) != 5:
        raise ValueError(
            f"bad cron line {expr!r}: expected 5 fields (minute hour day month weekday), "
            "e.g. '0 3 * * *' for 03:00 daily"
        )
    try:
        croniter(expr, datetime.now()).get_next(datetime)  # also refuses dates that never come (31 Feb)
    except (ValueError, KeyError) as exc:  # croniter's errors subclass ValueError
        raise ValueError(f"bad cron line {expr!r}: {exc}") from None


def next_run(schedule: Schedule, after: datetime) -> datetime:
    """The first run strictly after `after` (UTC). Intervals keep their cadence
    from the previous slot, without a burst of catch-up runs after downtime."""
    after = as_utc(after)
    if schedule.kind == "cron":
        from croniter import croniter

        local = after.astimezone()  # cron fields mean the server's wall clock
        local_next: datetime = croniter(schedule.cron, local).get_next(datetime)
        return local_next.astimezone(UTC)
    assert schedule.interval_seconds is not None  # an interval schedule has one
    step = timedelta(seconds=schedule.interval_seconds)
    anchor = as_utc(schedule.next_run_at)
    if anchor is None:
        return after + step
    if anchor > after:
        return anchor
    return anchor + (math.floor((after - anchor) / step) + 1) * step


def due_schedules(now: datetime | None = None) -> list[Schedule]:
    return schedules.due_schedules(as_utc(now) if now else utcnow())


def mark_ran(schedule_id: int, at: datetime) -> bool:
    """Record a due run and move to the next slot. False when the schedule was
    not due or another poller claimed this run first."""
    schedule = schedules.get_schedule_by_id(schedule_id)
    if schedule is None:
        return False
    at = as_utc(at)
    return schedules.claim_run(schedule_id, at, next_run(schedule, at))


def run_due(submit: Submit, now: datetime | None = None) -> list[int]:
    """Start every due, enabled schedule whose project is free; return those
    projects' ids. A busy project's schedule stays due and starts once free."""
    now = as_utc(now) if now else utcnow()
    started = []
    for schedule in due_schedules(now):
        assert schedule.id is not None  # a stored row
        if repo.has_active_scan(schedule.project_id):  # a lost runner's scan is requeued or failed by a reaper
            log.info("schedule of project %s is due but a scan of it is active: waiting", schedule.project_id)
            continue
        if not mark_ran(schedule.id, now):
            continue  # another poller took this run
        modules = [m for m in schedule.modules.split(",") if m]
        try:
            options = json.loads(schedule.options or "{}")
            modules, options = profiles.resolve(modules, options, repo.project_settings(schedule.project_id))
            submit(schedule.project_id, modules, options)
        except Exception as exc:  # e.g. the project lost its targets; retried at the next slot
            log.warning("scheduled scan of project %s not started: %s", schedule.project_id, exc)
            schedules.set_schedule_error(schedule.id, f"{type(exc).__name__}: {exc}")
            continue
        log.info("scheduled scan of project %s submitted (modules %s)", schedule.project_id, ",".join(modules))
        started.append(schedule.project_id)
    return started
