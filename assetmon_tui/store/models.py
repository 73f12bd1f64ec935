"""Normalised tables. Assets carry first/last seen (scan id and time), so
"what changed since the last scan" is a query rather than a blob diff."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class Project(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True)
    created_at: datetime = Field(default_factory=utcnow)


class Target(SQLModel, table=True):
    """A scope rule: an include or an exclude of a domain, IP, CIDR or URL."""

    __table_args__ = (UniqueConstraint("project_id", "value", "exclude"),)
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    kind: str
    value: str
    exclude: bool = False


_ACTIVE_SQL = text("status IN ('queued', 'running', 'cancelling')")


class Scan(SQLModel, table=True):
    # The project lock: at most one active scan per project, enforced by the
    # database itself (atomic, and released when the reaper fails a dead scan).
    __table_args__ = (
        Index(
            "ux_scan_one_active_per_project",
            "project_id",
            unique=True,
            sqlite_where=_ACTIVE_SQL,
            postgresql_where=_ACTIVE_SQL,
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    status: str = Field(default="queued", index=True)  # core.progress states
    modules: str = "dns,http,ports"  # comma separated, in run order
    options: str = Field(default="{}", sa_column=Column(Text))  # JSON: ports, nameservers...
    backend: str = ""  # celery | thread
    task_id: str = ""
    owner: str = ""  # host:pid running a thread scan
    cancel_requested: bool = False
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    heartbeat: datetime | None = None
    error: str = ""
    summary: str = Field(default="{}", sa_column=Column(Text))  # final counters, JSON


class _Seen(SQLModel):
    first_seen: datetime = Field(default_factory=utcnow)
    last_seen: datetime = Field(default_factory=utcnow)
    first_scan_id: int | None = Field(default=None, foreign_key="scan.id")
    last_scan_id: int | None = Field(default=None, foreign_key="scan.id", index=True)


class Host(_Seen, table=True):
    """A name or an address (services hang off address hosts)."""

    __table_args__ = (UniqueConstraint("project_id", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    name: str
    is_address: bool = False
    dns_status: str = ""  # ok | nxdomain | servfail | timeout ...


class DnsRecord(_Seen, table=True):
    __table_args__ = (UniqueConstraint("host_id", "rtype", "value"),)
    id: int | None = Field(default=None, primary_key=True)
    host_id: int = Field(foreign_key="host.id", index=True)
    rtype: str
    value: str
    ttl: int | None = None


class Service(_Seen, table=True):
    __table_args__ = (UniqueConstraint("host_id", "port"),)
    id: int | None = Field(default=None, primary_key=True)
    host_id: int = Field(foreign_key="host.id", index=True)
    port: int
    service: str = ""
    banner: str = ""


class HttpEndpoint(_Seen, table=True):
    __table_args__ = (UniqueConstraint("host_id", "url"),)
    id: int | None = Field(default=None, primary_key=True)
    host_id: int = Field(foreign_key="host.id", index=True)
    url: str
    status: int | None = None
    title: str = ""
    server: str = ""
    content_type: str = ""
    content_length: int | None = None
    redirects: str = Field(default="[]", sa_column=Column(Text))  # JSON list
    final_url: str = ""
    response_ms: float | None = None
    tls: str = Field(default="{}", sa_column=Column(Text))  # JSON: subject, issuer, sans, not_after
    favicon_hash: int | None = None
    tech: str = ""  # comma separated
    cdn: str = ""  # CDN/WAF hint from the headers
    error: str = ""


class JsFile(_Seen, table=True):
    __table_args__ = (UniqueConstraint("host_id", "url"),)
    id: int | None = Field(default=None, primary_key=True)
    host_id: int = Field(foreign_key="host.id", index=True)
    url: str
    sha256: str = Field(index=True)
    size: int = 0


class Finding(_Seen, table=True):
    """A secret, takeover or exposure, stored once per fingerprint."""

    __table_args__ = (UniqueConstraint("project_id", "fingerprint"),)
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    host_id: int | None = Field(default=None, foreign_key="host.id", index=True)
    kind: str  # secret | takeover | exposure | endpoint
    rule: str
    severity: str
    confidence: str = ""
    location: str = ""  # url or path
    line: int | None = None
    column: int | None = None
    value: str = ""  # full value (secrets): shown only on request
    redacted: str = ""
    context: str = Field(default="", sa_column=Column(Text))
    fingerprint: str


class Event(SQLModel, table=True):
    """Something that changed between two scans of a project."""

    __table_args__ = (Index("ix_event_project_scan", "project_id", "scan_id"),)
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id")
    scan_id: int = Field(foreign_key="scan.id")
    prev_scan_id: int | None = Field(default=None, foreign_key="scan.id")
    type: str
    severity: str = "info"
    summary: str = ""
    entity: str = ""  # e.g. "host:www.acme.test" or "service:127.0.0.1:22"
    created_at: datetime = Field(default_factory=utcnow)
    acknowledged: bool = False
