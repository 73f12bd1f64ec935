"""Compare a frozen inventory with the previous one: the change events.

Events name what changed once: a gone host folds its ports and endpoints
into its own event, a new host's records are not listed again, a
certificate entering its expiry window is reported once. Items missed for
the first time give quiet "unconfirmed" events (shown, never notified).
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..core.sanitize import clean_text
from ..store.event_log import SEVERITIES
from ..store.models import Event, Scan, as_utc, utcnow
from .freeze import Frozen
from .items import Item, Items, inventory, parse_time

RISKY_PORTS = frozenset({21, 23, 445, 1433, 2375, 3306, 3389, 5432, 5900, 6379, 9200, 11211, 27017})


@dataclass(frozen=True)
class Thresholds:
    """Tuning for noisy sources."""

    content_length_ratio: float = 0.3  # a body size change counts from this fraction...
    content_length_min_bytes: int = 100  # ...and this many bytes
    ignore_title_digits: bool = True  # "Uptime 12:04" == "Uptime 12:05"
    cert_expiry_days: int = 14


# -- comparison --------------------------------------------------------------------------


def baseline(scan: Scan, items: Items) -> Event:
    assert scan.id is not None  # a stored scan
    n = inventory(items)
    summary = (
        f"baseline: {n.hosts} hosts ({n.names} names, {n.addresses} addresses), {n.services} open ports, "
        f"{n.endpoints} web endpoints, {n.scripts} scripts, {n.findings} findings"
    )
    return Event(
        project_id=scan.project_id,
        scan_id=scan.id,
        type="baseline",
        severity="info",
        summary=summary,
        entity=f"scan:{scan.id}",
        fingerprint=f"scan:{scan.id}",
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


def _present(items: Items) -> Items:
    return {k: i for k, i in items.items() if i.present}


class Diff:
    def __init__(
        self,
        scan: Scan,
        prev_scan: Scan,
        prev: Items,
        frozen: Frozen,
        known: set[str],
        t: Thresholds,
        templates: tuple[str, str] = ("", ""),
    ) -> None:
        assert scan.id is not None  # a stored scan
        self.scan, self.scan_id, self.prev_scan, self.t = scan, scan.id, prev_scan, t
        self.templates = templates  # nuclei's templates version: (previous scan, this scan)
        self.prev, self.cur = _present(prev), _present(frozen.cur)
        # findings always alert; other kinds seen for the first time are a silent baseline
        self.known = known | {i.kind for i in frozen.cur.values() if i.kind.startswith("finding:")}
        self.out: list[Event] = []
        now = utcnow()
        self.cur_time = as_utc(scan.finished_at) or now
        self.prev_time = as_utc(prev_scan.finished_at) or now
        self.added = [i for i in frozen.added if i.kind in self.known]
        self.removed = [i for i in frozen.removed if i.kind in self.known]
        self.missing = [i for i in frozen.missing if i.kind in self.known]
        self.common = [(a, b) for a, b in frozen.common if b.kind in self.known]
        self.again = {i.key for i in self.added if i.status == "reopened"}
        # An address that DNS names is not a host coming or going: only its ports change.
        named = self.named = _named(self.cur)
        was_named = _named(self.prev)
        self.new_hosts = {i.host for i in self.added if i.kind == "host" or i.kind == "ip" and i.host not in was_named}
        self.gone_hosts = {i.host for i in self.removed if i.kind == "host" or i.kind == "ip" and i.host not in named}

    def emit(
        self,
        type_: str,
        severity: str,
        summary: str,
        entity: str,
        item: Item | None = None,
        quiet: bool = False,
        host: str = "",
    ) -> None:
        fingerprint = str(item.state.get("fingerprint") or item.entity) if item else entity
        if len(fingerprint) > 200:  # a long entity: its digest
            fingerprint = hashlib.sha256(fingerprint.encode()).hexdigest()
        self.out.append(
            Event(
                project_id=self.scan.project_id,
                scan_id=self.scan_id,
                prev_scan_id=self.prev_scan.id,
                type=type_,
                severity=severity if severity in SEVERITIES else "medium",
                summary=clean_text(summary, 500),
                entity=clean_text(entity, 500),
                host=clean_text(item.host if item else host, 255),
                fingerprint=fingerprint,
                quiet=quiet,
            )
        )

    def events(self) -> list[Event]:
        again = self.again
        self.hosts(again)
        self.dns()
        self.services(again)
        self.http(again)
        self.certs()
        self.findings(again)
        self.unconfirmed()
        return self.out

    def unconfirmed(self) -> None:
        """Quiet events for what a covered scan missed once (a host folds its children)."""
        hosts = {i.host for i in self.missing if i.kind in ("host", "ip")}
        for i in self.missing:
            if i.kind == "ip" and i.host in self.named:
                continue  # an address DNS names: only its ports come and go
            if i.kind in ("host", "ip") or i.host not in hosts:
                what = "host" if i.kind in ("host", "ip") else i.kind.split(":")[-1]
                self.emit(
                    "unconfirmed",
                    "info",
                    f"{what} not seen this scan (gone if the next scan misses it too): {i.label}",
                    i.entity,
                    i,
                    quiet=True,
                )

    def hosts(self, again: set[tuple[str, int]]) -> None:
        for i in self.added:
            if i.kind in ("host", "ip") and i.host in self.new_hosts:
                addresses = sorted(
                    d.state["value"]
                    for d in self.cur.values()
                    if d.kind == "dns" and d.host == i.host and d.state.get("rtype") in ("A", "AAAA")
                )
                extra = f" ({', '.join(addresses[:4])})" if addresses else ""
                if i.key in again:
                    self.emit("host_new", "low", f"host seen again: {i.host}{extra}", i.entity, i)
                else:
                    self.emit("host_new", "medium", f"new host: {i.host}{extra}", i.entity, i)
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
                    i,
                )

    def dns(self) -> None:
        changes: dict[str, list[str]] = defaultdict(list)
        for sign, items in (("+", self.added), ("-", self.removed)):
            for i in items:
                if i.kind == "dns" and i.host not in self.new_hosts | self.gone_hosts:
                    changes[i.host].append(f"{i.state.get('rtype')} {sign}{i.state.get('value')}")
        for host, parts in sorted(changes.items()):
            self.emit("dns_changed", "low", f"dns changed: {host} {', '.join(sorted(parts))}", f"dns:{host}", host=host)

    def services(self, again: set[tuple[str, int]]) -> None:
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

    def http(self, again: set[tuple[str, int]]) -> None:
        t = self.t
        for i in self.added:
            if i.kind != "http":
                continue
            status, title = i.state.get("status"), i.state.get("title") or ""
            if i.key in again:
                self.emit("http_status_changed", "info", f"{i.label}: down -> {status} {_q(title)}", i.entity, i)
            else:
                self.emit("http_new", "low", f"new web endpoint: {i.label} {status} {_q(title)}", i.entity, i)
        for i in self.removed:
            if i.kind == "http" and i.host not in self.gone_hosts:
                self.emit("http_status_changed", "low", f"{i.label}: {i.state.get('status')} -> down", i.entity, i)
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
                    new,
                )
            if a.get("tech") != b.get("tech"):
                plus = sorted(set(b.get("tech") or []) - set(a.get("tech") or []))
                minus = sorted(set(a.get("tech") or []) - set(b.get("tech") or []))
                parts = [f"+{x}" for x in plus] + [f"-{x}" for x in minus]
                self.emit(
                    "tech_changed", "info", f"technology changed on {new.label}: {' '.join(parts)}", new.entity, new
                )
            if (a.get("server") or "") != (b.get("server") or ""):
                self.emit(
                    "server_changed",
                    "info",
                    f"server header changed on {new.label}: {_q(a.get('server'))} -> {_q(b.get('server'))}",
                    new.entity,
                    new,
                )
            if a.get("cert") and b.get("cert") and a["cert"] != b["cert"]:
                same_issuer = a.get("issuer") == b.get("issuer")
                self.emit(
                    "cert_changed",
                    "low" if same_issuer else "medium",
                    f"certificate changed on {new.label}"
                    + ("" if same_issuer else f": issuer {_q(a.get('issuer'))} -> {_q(b.get('issuer'))}"),
                    new.entity,
                    new,
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
                        new,
                    )

    def certs(self) -> None:
        """One event per certificate when it enters the expiry window (or is new and already in it)."""
        window = timedelta(days=self.t.cert_expiry_days)
        expiring: dict[str, list[tuple[Item, datetime]]] = defaultdict(list)
        for key, i in self.cur.items():
            if i.kind != "http" or "http" not in self.known or not i.state.get("not_after"):
                continue
            not_after = parse_time(i.state["not_after"])
            if not_after is None or not_after - self.cur_time > window:  # None: never, stored by iso()
                continue
            old = self.prev.get(key)
            if old is not None and old.state.get("cert") == i.state.get("cert") and old.state.get("not_after"):
                old_after = parse_time(old.state["not_after"])
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
                host=first.host,
            )

    def verification(self) -> None:
        """A secret's live check: a key first verified live is high ("secret_live"),
        one verified before and now refused is "secret_revoked" (info); still live,
        or an inconclusive check (never stored over an answer), is nothing new."""
        pairs = [(None, i) for i in self.added] + [(a, b) for a, b in self.common]
        for old, new in pairs:
            if new.kind != "finding:secret":
                continue
            before = old.state.get("verified", "") if old is not None else ""
            now = new.state.get("verified", "")
            if now == "verified" and before != "verified":
                self.emit(
                    "secret_live", "high", f"secret verified live with its provider: {new.label}", new.entity, new
                )
            elif now == "invalid" and before == "verified":
                self.emit(
                    "secret_revoked",
                    "info",
                    f"secret revoked (its provider refuses it now): {new.label}",
                    new.entity,
                    new,
                )

    def findings(self, again: set[tuple[str, int]]) -> None:
        for i in self.added:
            if not i.kind.startswith("finding:"):
                continue
            kind, severity = i.kind.split(":", 1)[1], i.state.get("severity") or "medium"
            seen = i.key in again
            if kind == "secret":
                if seen:
                    self.emit("secret_reopened", severity, f"secret back after it was resolved: {i.label}", i.entity, i)
                else:
                    self.emit("secret_new", severity, f"new secret: {i.label}", i.entity, i)
            elif kind == "endpoint":
                if not seen:
                    self.emit(
                        "endpoint_new", "low", f"new API endpoint: {i.label} (in {i.state.get('where')})", i.entity, i
                    )
            elif kind == "takeover":
                self.emit(
                    "takeover",
                    severity if severity != "info" else "high",
                    f"possible subdomain takeover{' (again)' if seen else ''}: {i.label}",
                    i.entity,
                    i,
                )
            elif kind == "nuclei":
                before, now = self.templates
                why = f" (nuclei templates {before or '?'} -> {now}: maybe the templates, not the target)"
                note = why if now and before != now else ""
                self.emit("nuclei_new", severity, f"nuclei{' again' if seen else ''}: {i.label}{note}", i.entity, i)
            else:
                self.emit(f"{kind}_new", severity, f"{kind}{' seen again' if seen else ''}: {i.label}", i.entity, i)
        self.verification()
        for i in self.added:
            if i.kind == "js" and i.key not in again:
                self.emit("js_new", "info", f"new script: {i.label} ({i.state.get('size')} bytes)", i.entity, i)
        for i in self.removed:
            if i.kind == "finding:secret":
                self.emit("secret_resolved", "info", f"secret resolved (no longer served): {i.label}", i.entity, i)
            elif i.kind == "finding:takeover":
                self.emit("takeover_resolved", "info", f"takeover risk resolved: {i.label}", i.entity, i)
