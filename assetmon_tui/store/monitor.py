"""Compatibility facade: the monitoring names that used to live here.

The tables are in `models`; their queries in `snapshots`, `event_log`,
`schedules` and `notifiers` (and `repo` for findings, project names and the
busy check). New code imports from those homes; this module only re-exports
them (it imports no `db`, so the store stays acyclic).
"""

from __future__ import annotations

from .event_log import (
    SEVERITIES,
    acknowledge,
    at_or_above,
    list_events,
    scan_events,
    severity_rank,
    unacknowledged_count,
)
from .models import Delivery, Notifier, Schedule, Snapshot, SnapshotItem, as_utc
from .notifiers import (
    add_notifier,
    delete_notifier,
    get_delivery,
    list_deliveries,
    list_notifiers,
    save_delivery,
    update_notifier,
)
from .repo import ACTIVE, findings, project_name
from .schedules import (
    claim_run,
    delete_schedule,
    due_schedules,
    get_schedule,
    get_schedule_by_id,
    list_schedules,
    save_schedule,
    set_schedule_error,
)
from .snapshots import (
    get_snapshot,
    later_scan_started,
    previous_snapshot,
    save_snapshot,
    seen_before,
    seen_in,
    snapshot_counts,
    snapshot_entities,
    snapshot_items,
)

__all__ = [
    "ACTIVE",
    "SEVERITIES",
    "Delivery",
    "Notifier",
    "Schedule",
    "Snapshot",
    "SnapshotItem",
    "acknowledge",
    "add_notifier",
    "as_utc",
    "at_or_above",
    "claim_run",
    "delete_notifier",
    "delete_schedule",
    "due_schedules",
    "findings",
    "get_delivery",
    "get_schedule",
    "get_schedule_by_id",
    "get_snapshot",
    "later_scan_started",
    "list_deliveries",
    "list_events",
    "list_notifiers",
    "list_schedules",
    "previous_snapshot",
    "project_name",
    "save_delivery",
    "save_schedule",
    "save_snapshot",
    "scan_events",
    "seen_before",
    "seen_in",
    "set_schedule_error",
    "severity_rank",
    "snapshot_counts",
    "snapshot_entities",
    "snapshot_items",
    "unacknowledged_count",
    "update_notifier",
]
