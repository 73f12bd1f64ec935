"""Change events: what a scan changed since the project's previous snapshot.

How previous values are known: asset rows are upserted in place, so the live
tables only hold the latest values. When a scan's steps have all ended,
`record` freezes the project's inventory *as known after that scan* into a
snapshot (versions of `store.models.SnapshotItem`, carrying the watched
values: DNS status, HTTP status/title/tech/server/certificate/length...),
compares it with the previous snapshot, and stores snapshot, events and the
scan's end (status done) in one transaction: a scan is never done without
its events, and the project's next scan cannot start before they exist.

What the scan could not have seen is carried over, never "gone"; what it
looked at and did not see is unconfirmed, then gone (`freeze`). Findings
and assets move new -> open -> (unconfirmed ->) gone/resolved -> reopened.
Cancelled and failed scans get no snapshot. The first scan is a baseline
(one summary event); an asset kind observed for the first time later (the
first ports scan of a dns-only project) is a silent baseline for that kind.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from ..core.config import get_settings
from ..store import repo, snapshots
from ..store.db import session
from ..store.event_log import acknowledge, list_events, scan_events, unacknowledged_count
from ..store.models import Event, Scan, Snapshot, as_utc
from .compare import Diff, Thresholds, baseline
from .freeze import COVERAGE, freeze, gone_after_of
from .items import Inventory, Item, Looked, inventory, origin

__all__ = [
    "COVERAGE",
    "NUCLEI_TEMPLATES",
    "Inventory",
    "Item",
    "Looked",
    "Thresholds",
    "nuclei_templates",
    "acknowledge",
    "after_scan",
    "as_of",
    "compute_events",
    "history",
    "list_events",
    "origin",
    "record",
    "scan_diff",
    "unacknowledged_count",
]

log = logging.getLogger(__name__)


def record(
    scan_id: int,
    looked: Looked,
    owner: str,
    summary: dict[str, Any],
    sources: list[dict[str, str]],
    thresholds: Thresholds | None = None,
) -> bool:
    """End a scan whose steps all finished as done, with its snapshot and
    events, in one transaction. False when `owner` no longer holds the scan
    (nothing is written). Notifications are the caller's, after this."""
    with session() as s:
        scan = s.get_one(Scan, scan_id)
        inv = _snapshot(s, scan, looked, thresholds or Thresholds())
        if inv is not None:
            summary = {**summary, "inventory": inv.as_dict()}
        if not repo.end_scan(s, scan_id, "done", summary=summary, owner=owner, sources=sources):
            s.rollback()
            return False
        try:
            s.commit()
        except IntegrityError:  # another process snapshotted this project at the same moment
            s.rollback()
            log.warning("scan %s: a concurrent snapshot of its project won; ending it without events", scan_id)
            return repo.finish_scan(scan_id, "done", summary=summary, owner=owner, sources=sources)
    return True


def compute_events(scan_id: int, thresholds: Thresholds | None = None, looked: Looked | None = None) -> list[Event]:
    """Snapshot a scan already done (a store filled by hand, as tests do) and
    store its events. Idempotent: a second call returns the stored events.
    `looked`: what the scan looked at (default: everything its modules cover)."""
    with session() as s:
        scan = s.get_one(Scan, scan_id)
        if scan.status != "done":
            return []
        if s.get(Snapshot, scan_id) is None:
            _snapshot(s, scan, looked or Looked(), thresholds or Thresholds())
            try:
                s.commit()
            except IntegrityError:  # another process computed this scan at the same moment
                s.rollback()
    return scan_events(scan_id)


NUCLEI_TEMPLATES = "nuclei templates"  # the source whose reason tells the templates' version


def nuclei_templates(scan: Scan) -> str:
    """The nuclei templates' version a done scan used ("" : none recorded)."""
    try:
        sources = json.loads(scan.sources or "[]")
    except ValueError:
        return ""
    for source in sources if isinstance(sources, list) else []:
        if isinstance(source, dict) and source.get("source") == NUCLEI_TEMPLATES:
            return str(source.get("reason") or "").removeprefix("templates ").split(" ")[0]
    return ""


def _snapshot(s: Session, scan: Scan, looked: Looked, thresholds: Thresholds) -> Inventory | None:
    """Add the scan's snapshot and events to the session (not committed); its inventory."""
    assert scan.id is not None  # a stored scan
    if s.get(Snapshot, scan.id) is not None:
        return _counts(s.get_one(Snapshot, scan.id))
    if snapshots.later_scan_started(s, scan.project_id, scan.id):
        log.warning("scan %s: a later scan already ran, its changes can no longer be computed", scan.id)
        return None
    prev = snapshots.last_snapshot(s, scan.project_id)
    prev_items = {i.key: i for i in map(Item.from_row, snapshots.items(s, scan.project_id))} if prev else {}
    partial = _partial(scan)
    gone_after = gone_after_of(scan, get_settings().gone_after)
    frozen = freeze(s, scan, prev_items, looked, gone_after, partial)
    observed = {i.kind for i in frozen.cur.values()} | frozen.covered
    known_before = set(filter(None, prev.known.split(","))) if prev else set()
    if prev is None:
        events = [baseline(scan, frozen.cur)]
    else:
        prev_scan = s.get_one(Scan, prev.scan_id)
        templates = (nuclei_templates(prev_scan), looked.nuclei_templates)
        events = Diff(scan, prev_scan, prev_items, frozen, known_before, thresholds, templates).events()
    seq = prev.seq + 1 if prev else 1
    counts = inventory(frozen.cur)
    snapshot = Snapshot(
        scan_id=scan.id,
        project_id=scan.project_id,
        seq=seq,
        prev_scan_id=prev.scan_id if prev else None,
        partial=partial,
        known=",".join(sorted(known_before | observed)),
        counts=json.dumps(counts.as_dict()),
    )
    versions = [i.version(scan.project_id, seq) for i in frozen.versions]
    snapshots.save_snapshot(s, snapshot, frozen.ended, versions, events)
    log.info(
        "scan %s: %d events, %d item versions written (compared with scan %s)",
        scan.id,
        len(events),
        len(versions),
        prev.scan_id if prev else None,
    )
    return counts


def _counts(snapshot: Snapshot) -> Inventory:
    return Inventory.of(json.loads(snapshot.counts or "{}"))


def _partial(scan: Scan) -> bool:
    """A scan of some seeds only (the CLI passes its targets as seeds)."""
    seeds = set(json.loads(scan.options or "{}").get("seeds") or [])
    if not seeds:
        return False
    includes = {str(t) for t in repo.parsed_targets(scan.project_id) if not t.exclude}
    return not includes <= seeds


def after_scan(scan_id: int) -> list[Event]:
    """Notifications for a scan's events (what the pipeline calls once a scan
    has ended). Never raises: notifying must not fail a scan."""
    events = scan_events(scan_id)
    if events:
        try:
            from ..notify import notify_scan

            notify_scan(scan_id)  # records its own failures
        except Exception:
            log.exception("scan %s: notifying its events failed", scan_id)
    return events


def as_of(project_id: int, scan_id: int | None = None) -> tuple[int, list[tuple[Item, str]]]:
    """The inventory as of a snapshotted scan (None: the latest), gone items
    included: (the snapshot's seq or 0, [(item, status shown)])."""
    with session() as s:
        snap = s.get(Snapshot, scan_id) if scan_id is not None else snapshots.last_snapshot(s, project_id)
        if snap is None or snap.project_id != project_id:
            return 0, []
        rows = [Item.from_row(r) for r in snapshots.items(s, project_id, snap.seq)]
        return snap.seq, [(i, i.shown_status(snap.seq)) for i in rows]


def scan_diff(scan_a: int, scan_b: int) -> dict[str, Any]:
    """What differs between two snapshotted (done) scans of one project."""
    a, b = repo.get_scan(scan_a), repo.get_scan(scan_b)
    if a.project_id != b.project_id:
        raise ValueError(f"scans {scan_a} and {scan_b} belong to different projects")
    sets: dict[int, dict[str, set[str]]] = {}
    for scan_id, scan in ((scan_a, a), (scan_b, b)):
        if scan.status != "done" or snapshots.get_snapshot(scan_id) is None:
            raise ValueError(f"scan {scan_id} has no inventory snapshot (only done scans that were compared have one)")
        sets[scan_id] = snapshots.snapshot_entities(scan_id)
    groups = {
        "hosts": ("host", "ip"),
        "dns": ("dns",),
        "services": ("service",),
        "endpoints": ("http",),
        "js": ("js",),
        "findings": ("finding:",),
    }
    out: dict[str, Any] = {"from": scan_a, "to": scan_b}
    for name, kinds in groups.items():
        old, new = (_entities(sets[scan], kinds, strip=name != "findings") for scan in (scan_a, scan_b))
        out[name] = {"added": sorted(new - old), "removed": sorted(old - new)}
    return out


def _entities(by_kind: dict[str, set[str]], kinds: tuple[str, ...], strip: bool) -> set[str]:
    """Entities of the given kinds ("finding:" matches every finding kind), "host:" prefix stripped."""
    picked = {
        e for k, es in by_kind.items() if k in kinds or k.startswith("finding:") and "finding:" in kinds for e in es
    }
    return {e.split(":", 1)[1] for e in picked} if strip else picked


def history(project_id: int) -> list[dict[str, Any]]:
    """Per snapshotted scan, oldest first: its inventory counts and event count (for a chart)."""
    rows = []
    for scan, counts, events in snapshots.snapshot_counts(project_id):
        inv = Inventory.of(counts)
        rows.append(
            {
                "id": scan.id,
                "finished_at": as_utc(scan.finished_at),
                "hosts": inv.hosts,
                "services": inv.services,
                "endpoints": inv.endpoints,
                "findings": inv.findings,
                "unconfirmed": inv.unconfirmed,
                "events": events,
            }
        )
    return rows
