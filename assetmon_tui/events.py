"""Change events: what a done scan changed since the project's previous done scan.

How previous values are known: asset rows are upserted in place, so the live
tables only hold the latest values. When a scan is done, `compute_events`
freezes the project's inventory *as known after that scan* into a snapshot
(`store.models.Snapshot` + one `SnapshotItem` per asset, carrying the watched
values: DNS status, HTTP status/title/tech/server/certificate/length...),
compares it with the previous done scan's snapshot, and stores snapshot and
events in one transaction. The pipeline calls `after_scan` (events, then
notifications) once a scan has ended; nothing else needs to record history.

A snapshot takes an asset kind from the live tables (`last_scan_id == scan`)
only where this scan could have seen all of it; elsewhere what the previous
snapshot knew is carried over, so nothing is "gone" merely because it was not
looked at:
- a module that did not run (a dns-only scan keeps every port and endpoint);
- a scan of some seeds only (`options.seeds` not covering the scope);
- a port outside this scan's port list;
- a name whose DNS answer was uncertain (timeout, servfail): its records,
  endpoints and findings keep their previous state.
Cancelled and failed scans get no snapshot, so they never serve as "previous".
The first scan is a baseline (one summary event); an asset kind observed for
the first time later (the first ports scan of a dns-only project) is a silent
baseline for that kind. Findings are never silent after the first scan.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from .core.config import get_settings
from .core.modules import coverage
from .core.sanitize import clean_text
from .store import repo, snapshots
from .store.db import session
from .store.event_log import SEVERITIES, acknowledge, list_events, scan_events, unacknowledged_count
from .store.models import Event, Scan, Snapshot, as_utc, utcnow

__all__ = [
    "COVERAGE",
    "Thresholds",
    "acknowledge",
    "after_scan",
    "compute_events",
    "history",
    "list_events",
    "scan_diff",
    "unacknowledged_count",
]

log = logging.getLogger(__name__)

# Which scan modules see *all* of an asset kind (so absence means gone); a kind
# no module covers is never "gone", only new.
COVERAGE = coverage()
LIVE_DNS = ("ok", "nodata", "")  # "": a name that answered HTTP but was never resolved here
UNCERTAIN_DNS = ("timeout", "servfail", "error")
RISKY_PORTS = frozenset({21, 23, 445, 1433, 2375, 3306, 3389, 5432, 5900, 6379, 9200, 11211, 27017})


@dataclass(frozen=True)
class Thresholds:
    """Tuning for noisy sources."""

    content_length_ratio: float = 0.3  # a body size change counts from this fraction...
    content_length_min_bytes: int = 100  # ...and this many bytes
    ignore_title_digits: bool = True  # "Uptime 12:04" == "Uptime 12:05"
    cert_expiry_days: int = 14


@dataclass
class Item:
    kind: str
    asset_id: int
    host: str
    entity: str
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, int]:
        return self.kind, self.asset_id

    @property
    def label(self) -> str:
        return self.entity.split(":", 1)[1] if ":" in self.entity else self.entity

    @classmethod
    def from_row(cls, row: Any) -> Item:
        return cls(row.kind, row.asset_id, row.host, row.entity, json.loads(row.state or "{}"))

    def to_row(self, scan_id: int) -> dict[str, Any]:
        return {
            "scan_id": scan_id,
            "kind": self.kind,
            "asset_id": self.asset_id,
            "host": self.host,
            "entity": self.entity,
            "state": json.dumps(self.state, sort_keys=True),
        }


Key = tuple[str, int]  # (kind, asset id)
Items = dict[Key, Item]


# -- public API ---------------------------------------------------------------------


def compute_events(scan_id: int, thresholds: Thresholds | None = None) -> list[Event]:
    """Snapshot a done scan and store its change events. Idempotent: a second
    call returns the stored events. Other statuses produce nothing."""
    scan = repo.get_scan(scan_id)
    if scan.status != "done":
        return []
    with session() as s:
        if s.get(Snapshot, scan_id) is not None:
            return scan_events(scan_id)
        if snapshots.later_scan_started(s, scan.project_id, scan_id):
            log.warning("scan %s: a later scan already ran, its changes can no longer be computed", scan_id)
            return []
        prev = snapshots.previous_snapshot(s, scan.project_id, scan_id)
        prev_items = {i.key: i for i in map(Item.from_row, snapshots.snapshot_items(s, prev.scan_id))} if prev else {}
        partial = _partial(scan)
        cur_items, exhaustive = _freeze(s, scan, prev_items, partial)
        observed = {kind for kind, _ in cur_items} | exhaustive
        known_before = set(filter(None, prev.known.split(","))) if prev else set()
        if prev is None:
            events = [_baseline(scan, cur_items)]
        else:
            prev_scan = s.get_one(Scan, prev.scan_id)  # a done scan: previous_snapshot() joins it
            diff = _Diff(s, scan, prev_scan, prev_items, cur_items, known_before, thresholds or Thresholds())
            events = diff.events()
        snapshot = Snapshot(
            scan_id=scan_id,
            project_id=scan.project_id,
            prev_scan_id=prev.scan_id if prev else None,
            partial=partial,
            known=",".join(sorted(known_before | observed)),
        )
        try:
            snapshots.save_snapshot(s, snapshot, [item.to_row(scan_id) for item in cur_items.values()], events)
            s.commit()
        except IntegrityError:  # another process computed this scan at the same moment
            s.rollback()
            return scan_events(scan_id)
    log.info("scan %s: %d events (compared with scan %s)", scan_id, len(events), prev.scan_id if prev else None)
    return scan_events(scan_id)


def after_scan(scan_id: int) -> list[Event]:
    """What the pipeline calls when a scan ends: events, then notifications.
    Never raises: change tracking must not fail a scan."""
    try:
        events = compute_events(scan_id)
    except Exception:
        log.exception("scan %s: computing change events failed", scan_id)
        return []
    if events:
        from .notify import notify_scan

        notify_scan(scan_id)  # records its own failures
    return events


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
    """Per snapshotted done scan, oldest first: inventory counts and events (for a chart)."""
    rows = []
    for scan, counts, events in snapshots.snapshot_counts(project_id):
        rows.append(
            {
                "id": scan.id,
                "finished_at": as_utc(scan.finished_at),
                "hosts": counts.get("host", 0) + counts.get("ip", 0),
                "services": counts.get("service", 0),
                "endpoints": counts.get("http", 0),
                "findings": sum(n for k, n in counts.items() if k.startswith("finding:")),
                "events": events,
            }
        )
    return rows


# -- snapshot ---------------------------------------------------------------------------


def _partial(scan: Scan) -> bool:
    """A scan of some seeds only (the CLI passes its targets as seeds)."""
    seeds = set(json.loads(scan.options or "{}").get("seeds") or [])
    if not seeds:
        return False
    includes = {str(t) for t in repo.parsed_targets(scan.project_id) if not t.exclude}
    return not includes <= seeds


def _port_set(scan: Scan) -> set[int] | None:
    from .scanners.ports import parse_ports

    try:
        return set(parse_ports(json.loads(scan.options or "{}").get("ports") or get_settings().ports))
    except ValueError:
        return None  # unknown list: treat every port as scanned


def _freeze(s: Session, scan: Scan, prev: Items, partial: bool) -> tuple[Items, set[str]]:
    """Items of the inventory after `scan`, and the kinds it saw exhaustively."""
    assert scan.id is not None  # a stored scan
    modules = set(filter(None, scan.modules.split(",")))
    live: Items = {}
    uncertain: set[str] = set()
    for kind, rows in snapshots.seen_in(s, scan.project_id, scan.id).items():
        for row, host in rows:
            if kind == "host" and not row.is_address and row.dns_status not in LIVE_DNS:
                if row.dns_status in UNCERTAIN_DNS:
                    uncertain.add(row.name)
                continue  # NXDOMAIN: absent
            item = _item(kind, row, host)
            live[item.key] = item
    exhaustive = {k for k, mods in COVERAGE.items() if mods & modules} if not partial else set()
    ports = _port_set(scan) if "service" in exhaustive else None
    cur = dict(live)

    def keep(old: Item) -> bool:
        """Carry over an item this scan could not have re-observed."""
        if old.kind not in exhaustive or old.host in uncertain:
            return True
        return old.kind == "service" and ports is not None and old.state.get("port") not in ports

    for key, old in prev.items():
        if key not in cur and old.kind != "ip" and keep(old):
            cur[key] = old
    # An address stays while any of its services or endpoints does.
    hosts_with_children = {i.host for i in cur.values() if i.kind in ("service", "http")}
    for key, old in prev.items():
        if key not in cur and old.kind == "ip" and ("ip" not in exhaustive or old.host in hosts_with_children):
            cur[key] = old
    return cur, exhaustive


def _item(kind: str, row: Any, host: str) -> Item:
    if kind == "host":
        if row.is_address:
            return Item("ip", row.id, row.name, f"host:{row.name}")
        return Item("host", row.id, row.name, f"host:{row.name}", {"dns": row.dns_status})
    if kind == "dns":
        return Item(
            "dns", row.id, host, f"dns:{host} {row.rtype} {row.value}", {"rtype": row.rtype, "value": row.value}
        )
    if kind == "service":
        return Item("service", row.id, host, f"service:{host}:{row.port}", {"port": row.port, "service": row.service})
    if kind == "http":
        tls = _json(row.tls)
        return Item(
            "http",
            row.id,
            host,
            f"http:{row.url}",
            {
                "status": row.status,
                "title": row.title,
                "server": row.server,
                "length": row.content_length,
                "tech": sorted(t.strip() for t in row.tech.split(",") if t.strip()),
                "cert": _cert_fingerprint(tls),
                "issuer": str(tls.get("issuer") or ""),
                "not_after": _iso(_parse_time(tls.get("not_after"))),
            },
        )
    if kind == "js":
        return Item("js", row.id, host, f"js:{row.url}", {"sha256": row.sha256, "size": row.size})
    # findings: never the secret value, only its redacted form
    where = f"{row.location}:{row.line}" if row.line else row.location
    if row.kind == "endpoint":
        shown = row.value or row.redacted or row.rule
        return Item("finding:endpoint", row.id, host, f"endpoint:{shown}", {"where": where})
    label = " ".join(filter(None, (f"{row.kind}:{row.rule}", row.redacted, f"@ {where}" if where else "")))
    return Item(
        f"finding:{row.kind}",
        row.id,
        host,
        label,
        {"rule": row.rule, "severity": row.severity, "redacted": row.redacted, "where": where},
    )


def _json(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _cert_fingerprint(tls: dict[str, Any]) -> str:
    for key in ("sha256", "fingerprint", "fingerprint_sha256"):
        if tls.get(key):
            return str(tls[key])
    if not tls:
        return ""
    core = {k: tls.get(k) for k in ("subject", "issuer", "sans", "not_after", "serial")}
    return hashlib.sha256(json.dumps(core, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _parse_time(value: Any) -> datetime | None:
    """not_after as ISO 8601, epoch seconds, or OpenSSL's "Jun  1 12:00:00 2030 GMT"."""
    if value in (None, ""):
        return None
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, UTC)
    text = str(value).strip()
    try:
        return as_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        pass
    try:
        import ssl

        return datetime.fromtimestamp(ssl.cert_time_to_seconds(text), UTC)
    except ValueError:
        return None


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


# -- comparison --------------------------------------------------------------------------


def _baseline(scan: Scan, items: Items) -> Event:
    assert scan.id is not None  # a stored scan
    n: defaultdict[str, int] = defaultdict(int)
    for kind, _ in items:
        n["findings" if kind.startswith("finding:") else kind] += 1
    summary = (
        f"baseline: {n['host']} hosts, {n['ip']} addresses, {n['service']} open ports, "
        f"{n['http']} web endpoints, {n['js']} scripts, {n['findings']} findings"
    )
    return Event(
        project_id=scan.project_id,
        scan_id=scan.id,
        type="baseline",
        severity="info",
        summary=summary,
        entity=f"scan:{scan.id}",
    )


def _status_class(status: int | None) -> str:
    return f"{status // 100}xx" if status else "down"


def _title_key(title: str | None, t: Thresholds) -> str:
    text = " ".join((title or "").split())
    return re.sub(r"\d+", "#", text) if t.ignore_title_digits else text


def _q(text: str | None, limit: int = 80) -> str:
    return '"' + clean_text(text, limit) + '"'


def _named(items: Items) -> set[str | None]:
    """Addresses that A/AAAA records point at."""
    return {i.state.get("value") for i in items.values() if i.kind == "dns" and i.state.get("rtype") in ("A", "AAAA")}


class _Diff:
    def __init__(
        self, s: Session, scan: Scan, prev_scan: Scan, prev: Items, cur: Items, known: set[str], t: Thresholds
    ) -> None:
        assert scan.id is not None  # a stored scan
        self.s, self.scan, self.scan_id, self.prev_scan, self.t = s, scan, scan.id, prev_scan, t
        self.prev, self.cur = prev, cur
        self.known = known | {i.kind for i in cur.values() if i.kind.startswith("finding:")}  # findings always alert
        self.out: list[Event] = []
        now = utcnow()
        self.cur_time = as_utc(scan.finished_at) or now
        self.prev_time = as_utc(prev_scan.finished_at) or now
        self.added = [i for k, i in cur.items() if k not in prev and i.kind in self.known]
        self.removed = [i for k, i in prev.items() if k not in cur and i.kind in self.known]
        self.common = [(prev[k], i) for k, i in cur.items() if k in prev and i.kind in self.known]
        # An address that DNS names is not a host coming or going: only its ports change.
        named = _named(cur)
        was_named = _named(prev)
        self.new_hosts = {i.host for i in self.added if i.kind == "host" or i.kind == "ip" and i.host not in was_named}
        self.gone_hosts = {i.host for i in self.removed if i.kind == "host" or i.kind == "ip" and i.host not in named}

    def emit(self, type_: str, severity: str, summary: str, entity: str) -> None:
        self.out.append(
            Event(
                project_id=self.scan.project_id,
                scan_id=self.scan_id,
                prev_scan_id=self.prev_scan.id,
                type=type_,
                severity=severity if severity in SEVERITIES else "medium",
                summary=clean_text(summary, 500),
                entity=entity,
            )
        )

    def seen_before(self, items: list[Item]) -> set[Key]:
        by_kind: defaultdict[str, list[int]] = defaultdict(list)
        for i in items:
            by_kind[i.kind].append(i.asset_id)
        return {(k, a) for k, ids in by_kind.items() for a in snapshots.seen_before(self.s, k, ids, self.scan_id)}

    def events(self) -> list[Event]:
        again = self.seen_before(self.added)
        self.hosts(again)
        self.dns()
        self.services(again)
        self.http(again)
        self.certs()
        self.findings(again)
        return self.out

    def hosts(self, again: set[Key]) -> None:
        for i in self.added:
            if i.kind in ("host", "ip") and i.host in self.new_hosts:
                addresses = sorted(
                    d.state["value"]
                    for d in self.cur.values()
                    if d.kind == "dns" and d.host == i.host and d.state.get("rtype") in ("A", "AAAA")
                )
                extra = f" ({', '.join(addresses[:4])})" if addresses else ""
                if i.key in again:
                    self.emit("host_new", "low", f"host seen again: {i.host}{extra}", i.entity)
                else:
                    self.emit("host_new", "medium", f"new host: {i.host}{extra}", i.entity)
        for i in self.removed:
            if i.kind in ("host", "ip") and i.host in self.gone_hosts:
                folded: defaultdict[str, int] = defaultdict(int)
                for c in self.removed:
                    if c.host == i.host and c.kind in ("service", "http"):
                        folded[c.kind] += 1
                extra = ", ".join(
                    f"{n} {'open ports' if k == 'service' else 'web endpoints'}" for k, n in folded.items()
                )
                self.emit(
                    "host_gone",
                    "low",
                    f"host gone: {i.host}" + (f" ({extra} no longer seen)" if extra else ""),
                    i.entity,
                )

    def dns(self) -> None:
        changes: dict[str, list[str]] = defaultdict(list)
        for sign, items in (("+", self.added), ("-", self.removed)):
            for i in items:
                if i.kind == "dns" and i.host not in self.new_hosts | self.gone_hosts:
                    changes[i.host].append(f"{i.state.get('rtype')} {sign}{i.state.get('value')}")
        for host, parts in sorted(changes.items()):
            self.emit("dns_changed", "low", f"dns changed: {host} {', '.join(sorted(parts))}", f"dns:{host}")

    def services(self, again: set[Key]) -> None:
        for i in self.added:
            if i.kind == "service":
                port, name = i.state.get("port"), i.state.get("service") or "unknown"
                how = "open again" if i.key in again else "new open port"
                self.emit(
                    "port_new", "high" if port in RISKY_PORTS else "medium", f"{how}: {i.label} ({name})", i.entity
                )
        for i in self.removed:
            if i.kind == "service" and i.host not in self.gone_hosts:
                self.emit(
                    "port_closed", "info", f"port closed: {i.label} ({i.state.get('service') or 'unknown'})", i.entity
                )

    def http(self, again: set[Key]) -> None:
        t = self.t
        for i in self.added:
            if i.kind != "http":
                continue
            status, title = i.state.get("status"), i.state.get("title") or ""
            if i.key in again:
                self.emit("http_status_changed", "info", f"{i.label}: down -> {status} {_q(title)}", i.entity)
            else:
                self.emit("http_new", "low", f"new web endpoint: {i.label} {status} {_q(title)}", i.entity)
        for i in self.removed:
            if i.kind == "http" and i.host not in self.gone_hosts:
                self.emit("http_status_changed", "low", f"{i.label}: {i.state.get('status')} -> down", i.entity)
        for old, new in self.common:
            if new.kind != "http":
                continue
            a, b = old.state, new.state
            ca, cb = _status_class(a.get("status")), _status_class(b.get("status"))
            if ca != cb:
                severity = "medium" if cb == "2xx" and ca in ("3xx", "4xx") else "low" if cb == "5xx" else "info"
                self.emit(
                    "http_status_changed", severity, f"{new.label}: {a.get('status')} -> {b.get('status')}", new.entity
                )
            if _title_key(a.get("title"), t) != _title_key(b.get("title"), t):
                self.emit(
                    "title_changed",
                    "info",
                    f"title changed on {new.label}: {_q(a.get('title'))} -> {_q(b.get('title'))}",
                    new.entity,
                )
            if a.get("tech") != b.get("tech"):
                plus = sorted(set(b.get("tech") or []) - set(a.get("tech") or []))
                minus = sorted(set(a.get("tech") or []) - set(b.get("tech") or []))
                parts = [f"+{x}" for x in plus] + [f"-{x}" for x in minus]
                self.emit("tech_changed", "info", f"technology changed on {new.label}: {' '.join(parts)}", new.entity)
            if (a.get("server") or "") != (b.get("server") or ""):
                self.emit(
                    "server_changed",
                    "info",
                    f"server header changed on {new.label}: {_q(a.get('server'))} -> {_q(b.get('server'))}",
                    new.entity,
                )
            if a.get("cert") and b.get("cert") and a["cert"] != b["cert"]:
                same_issuer = a.get("issuer") == b.get("issuer")
                self.emit(
                    "cert_changed",
                    "low" if same_issuer else "medium",
                    f"certificate changed on {new.label}"
                    + ("" if same_issuer else f": issuer {_q(a.get('issuer'))} -> {_q(b.get('issuer'))}"),
                    new.entity,
                )
            la, lb = a.get("length"), b.get("length")
            if la is not None and lb is not None:
                delta = abs(lb - la)
                if delta >= t.content_length_min_bytes and delta >= t.content_length_ratio * max(la, 1):
                    self.emit(
                        "content_changed",
                        "info",
                        f"content size changed on {new.label}: {la} -> {lb} bytes",
                        new.entity,
                    )

    def certs(self) -> None:
        """One event per certificate when it enters the expiry window (or is new and already in it)."""
        window = timedelta(days=self.t.cert_expiry_days)
        expiring: dict[str, list[tuple[Item, datetime]]] = defaultdict(list)
        for key, i in self.cur.items():
            if i.kind != "http" or "http" not in self.known or not i.state.get("not_after"):
                continue
            not_after = _parse_time(i.state["not_after"])
            if not_after is None or not_after - self.cur_time > window:  # None: never, stored by _iso()
                continue
            old = self.prev.get(key)
            if old is not None and old.state.get("cert") == i.state.get("cert") and old.state.get("not_after"):
                old_after = _parse_time(old.state["not_after"])
                if old_after is not None and old_after - self.prev_time <= window:
                    continue  # already reported
            expiring[i.state.get("cert") or i.entity].append((i, not_after))
        for cert, items in expiring.items():
            first, not_after = items[0]
            days = (not_after - self.cur_time).days
            when = f"expired {-days} days ago" if not_after < self.cur_time else f"expires in {days} days"
            more = f" (+{len(items) - 1} more)" if len(items) > 1 else ""
            self.emit(
                "cert_expiring",
                "high" if not_after < self.cur_time else "medium",
                f"certificate for {first.label}{more} {when} ({not_after.date()})",
                f"cert:{cert[:32]}",
            )

    def findings(self, again: set[Key]) -> None:
        for i in self.added:
            if not i.kind.startswith("finding:"):
                continue
            kind, severity = i.kind.split(":", 1)[1], i.state.get("severity") or "medium"
            seen = i.key in again
            if kind == "secret":
                if seen:
                    self.emit("secret_returned", severity, f"secret seen again after being absent: {i.label}", i.entity)
                else:
                    self.emit("secret_new", severity, f"new secret: {i.label}", i.entity)
            elif kind == "endpoint":
                if not seen:
                    self.emit(
                        "endpoint_new", "low", f"new API endpoint: {i.label} (in {i.state.get('where')})", i.entity
                    )
            elif kind == "takeover":
                self.emit(
                    "takeover",
                    severity if severity != "info" else "high",
                    f"possible subdomain takeover{' (again)' if seen else ''}: {i.label}",
                    i.entity,
                )
            else:
                self.emit(f"{kind}_new", severity, f"{kind}{' seen again' if seen else ''}: {i.label}", i.entity)
        for i in self.added:
            if i.kind == "js" and i.key not in again:
                self.emit("js_new", "info", f"new script: {i.label} ({i.state.get('size')} bytes)", i.entity)
        for i in self.removed:
            if i.kind == "finding:secret":
                self.emit("secret_gone", "info", f"secret no longer seen: {i.label}", i.entity)
