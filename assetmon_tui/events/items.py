"""What a snapshot holds: one `Item` per asset (with the values watched for
changes and its lifecycle status), what a scan looked at (`Looked`), and the
one definition of a scan's inventory counts (`inventory`)."""

from __future__ import annotations

import hashlib
import json
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from ..store.models import as_utc

# Lifecycle: new -> open -> (unconfirmed ->) gone, and gone -> reopened -> open.
# "new" and "reopened" hold for the snapshot that made them; later ones show them as open.
PRESENT = ("new", "open", "unconfirmed", "reopened")
LIVE_DNS = ("ok", "partial", "nodata", "")  # "": a name that answered HTTP but was never resolved here
DEFINITIVE_DNS = ("ok", "nodata", "nxdomain")  # answers that say what a name has (or that it is not)


@dataclass
class Item:
    kind: str  # host | ip | dns | service | http | js | finding:<kind>
    asset_id: int
    host: str
    entity: str
    state: dict[str, Any] = field(default_factory=dict)
    status: str = "new"
    misses: int = 0
    since: int = 0  # the snapshot (seq) this version holds from
    version_id: int | None = None  # its stored row, when it is one

    @property
    def key(self) -> tuple[str, int]:
        return self.kind, self.asset_id

    @property
    def label(self) -> str:
        return self.entity.split(":", 1)[1] if ":" in self.entity else self.entity

    @property
    def present(self) -> bool:
        return self.status != "gone"

    def shown_status(self, seq: int) -> str:
        """Its status as of snapshot `seq`: new and reopened only where they happened."""
        return self.status if self.status not in ("new", "reopened") or seq == self.since else "open"

    @classmethod
    def from_row(cls, row: Any) -> Item:
        return cls(
            row.kind,
            row.asset_id,
            row.host,
            row.entity,
            json.loads(row.state or "{}"),
            row.status,
            row.misses,
            row.since_seq,
            row.id,
        )

    def version(self, project_id: int, seq: int) -> dict[str, Any]:
        """A new stored version of this item, holding from snapshot `seq`."""
        return {
            "project_id": project_id,
            "kind": self.kind,
            "asset_id": self.asset_id,
            "host": self.host,
            "entity": self.entity,
            "state": json.dumps(self.state, sort_keys=True),
            "status": self.status,
            "misses": self.misses,
            "since_seq": seq,
            "until_seq": None,
        }


Key = tuple[str, int]  # (kind, asset id)
Items = dict[Key, Item]


@dataclass
class Looked:
    """What a scan looked at definitively, beyond the names DNS answered for:
    only what was looked at and not seen counts as missing. `None` stands for
    everything its modules cover (a store filled by hand, as tests do)."""

    answered: set[str] | None = None  # addresses the port scan got some answer from
    probed: set[str] | None = None  # URLs that answered, or definitively refused
    scripts: set[str] | None = None  # scripts fetched and analysed
    failed_scripts: set[str] = field(default_factory=set)
    pages: set[str] | None = None  # pages read for scripts (their inline scripts were looked at)
    # origins (scheme://host:port) whose every page was read for scripts: by origin, not host,
    # so pages read on :80 say nothing of the scripts of the same host's app on :8443
    page_origins: set[str] | None = None
    cnamed: set[str] | None = None  # names whose CNAMEs the takeover check looked at
    nuclei: set[str] | None = None  # URLs nuclei ran on with the previous scan's templates
    nuclei_templates: str = ""  # the templates' version this scan used ("" : nuclei did not run)

    @staticmethod
    def has(values: set[str] | None, value: str) -> bool:
        return values is None or value in values


def origin(url: str) -> str:
    """ "https://App.acme.test/x.js" -> "https://app.acme.test:443" (the default port written out)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or {"http": 80, "https": 443}.get(scheme, 0)
    except ValueError:  # a port out of range in a stored URL
        port = 0
    return f"{scheme}://{(parts.hostname or '').lower()}:{port}"


def item_of(kind: str, row: Any, host: str) -> Item:
    """The snapshot item of a live asset row (`kind` as `store.snapshots.seen_in` names it)."""
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
                "url": row.url,
                "status": row.status,
                "title": row.title,
                "server": row.server,
                "length": row.content_length,
                "tech": sorted(t.strip() for t in row.tech.split(",") if t.strip()),
                "cert": _cert_fingerprint(tls),
                "issuer": str(tls.get("issuer") or ""),
                "not_after": iso(parse_time(tls.get("not_after"))),
            },
        )
    if kind == "js":
        return Item("js", row.id, host, f"js:{row.url}", {"url": row.url, "sha256": row.sha256, "size": row.size})
    # findings: never the secret value, only its redacted form
    where = f"{row.location}:{row.line}" if row.line else row.location
    common = {"where": where, "location": row.location, "fingerprint": row.fingerprint}
    if row.kind == "endpoint":
        shown = row.value or row.redacted or row.rule
        return Item("finding:endpoint", row.id, host, f"endpoint:{shown}", common)
    label = " ".join(filter(None, (f"{row.kind}:{row.rule}", row.redacted, f"@ {where}" if where else "")))
    state = {**common, "rule": row.rule, "severity": row.severity, "redacted": row.redacted}
    verified = getattr(row, "verified", "") or ""
    if verified in ("verified", "invalid"):  # a live check's last definitive answer (unknown changes nothing)
        state["verified"] = verified
    return Item(f"finding:{row.kind}", row.id, host, label, state)


@dataclass(frozen=True)
class Inventory:
    """The counts of one scan's inventory: the scan row, its baseline event,
    Results and Trends all show these (`hosts` = names that exist plus
    addresses no name points at)."""

    hosts: int = 0
    names: int = 0
    addresses: int = 0
    services: int = 0
    endpoints: int = 0
    scripts: int = 0
    findings: int = 0
    unconfirmed: int = 0  # missed by the latest covered scan, not yet gone
    gone: int = 0  # ever gone and not back

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)

    @classmethod
    def of(cls, counts: dict[str, Any]) -> Inventory:
        return cls(**{k: int(v) for k, v in counts.items() if k in cls.__dataclass_fields__})


def inventory(items: Items | list[Item]) -> Inventory:
    values = list(items.values()) if isinstance(items, dict) else items
    present = [i for i in values if i.present]
    named = {i.state.get("value") for i in present if i.kind == "dns" and i.state.get("rtype") in ("A", "AAAA")}
    by_kind: dict[str, int] = {}
    for i in present:
        kind = "finding" if i.kind.startswith("finding:") else i.kind
        by_kind[kind] = by_kind.get(kind, 0) + 1
    bare = sum(1 for i in present if i.kind == "ip" and i.host not in named)
    return Inventory(
        hosts=by_kind.get("host", 0) + bare,
        names=by_kind.get("host", 0),
        addresses=by_kind.get("ip", 0),
        services=by_kind.get("service", 0),
        endpoints=by_kind.get("http", 0),
        scripts=by_kind.get("js", 0),
        findings=by_kind.get("finding", 0),
        unconfirmed=sum(1 for i in present if i.status == "unconfirmed"),
        gone=len(values) - len(present),
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


def parse_time(value: Any) -> datetime | None:
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
        return datetime.fromtimestamp(ssl.cert_time_to_seconds(text), UTC)
    except ValueError:
        return None


def iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""
