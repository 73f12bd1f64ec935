"""Every table. Assets carry first/last seen (scan id and time), so "what
changed since the last scan" is a query rather than a blob diff.

Monitoring tables (snapshots, schedules, notifiers, deliveries) reference
projects and scans with ON DELETE CASCADE, so `repo.delete_project` (which
deletes scans and the project) also removes their rows without knowing them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload

from sqlalchemy import Column, Index, Table, Text, UniqueConstraint, event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


@overload
def as_utc(value: datetime) -> datetime: ...
@overload
def as_utc(value: None) -> None: ...
@overload
def as_utc(value: datetime | None) -> datetime | None: ...
def as_utc(value: datetime | None) -> datetime | None:
    """Databases hand back naive datetimes; ours are always UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def row_id(row: Scan | ScanChunk) -> int:
    """A stored row's id (SQLModel types it optional for rows not yet inserted)."""
    assert row.id is not None
    return row.id


def create_tables(engine: Engine) -> None:
    """Create the tables defined here (all of them) where missing. Processes
    that open a new database at the same moment (a worker's reaper and the
    TUI) race between "is it there?" and CREATE: the loser looks again."""
    for attempt in range(3):
        try:
            SQLModel.metadata.create_all(engine)
            return
        except (OperationalError, ProgrammingError, IntegrityError) as exc:
            if "already exists" not in str(exc) and "duplicate key" not in str(exc) or attempt == 2:
                raise


class Project(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True)
    created_at: datetime = Field(default_factory=utcnow)
    # JSON: this project's scan settings (nameservers, CT URL, ports, modules...),
    # over the global ones; every scan and schedule of the project uses them.
    settings: str = Field(default="{}", sa_column=Column(Text))


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
        # partial on both stores; PostgreSQL's WHERE is attached when a PostgreSQL
        # database creates it (see `_where_on_postgresql`)
        Index("ux_scan_one_active_per_project", "project_id", unique=True, sqlite_where=_ACTIVE_SQL),
    )
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    status: str = Field(default="queued", index=True)  # core.progress states
    modules: str = "dns,http,ports"  # comma separated, in run order
    options: str = Field(default="{}", sa_column=Column(Text))  # JSON: ports, nameservers...
    backend: str = ""  # celery | thread
    task_id: str = ""
    owner: str = ""  # host:pid of the process running it now (the lease holder)
    submitter: str = ""  # host:pid of the process that submitted it: only it may take a queued scan back
    cancel_requested: bool = False
    created_at: datetime = Field(default_factory=utcnow)
    queued_at: datetime | None = Field(default_factory=utcnow)  # last (re)queued: the broker has had it since
    started_at: datetime | None = None
    finished_at: datetime | None = None
    heartbeat: datetime | None = None
    lease_until: datetime | None = None  # the owner's lease: past it, anyone may take the scan over
    attempts: int = 0  # runs started (a resumed scan has several)
    checkpoint: str = Field(default="{}", sa_column=Column(Text))  # JSON: steps done, shared state, cursors
    error: str = ""
    summary: str = Field(default="{}", sa_column=Column(Text))  # final counters, JSON
    # JSON list: how each source of the scan fared (pipeline.coverage.Outcome):
    # a failed or skipped source is a warning, and keeps what it found before.
    sources: str = Field(default="[]", sa_column=Column(Text))


@event.listens_for(SQLModel.metadata.tables["scan"], "before_create")
def _where_on_postgresql(table: Table, connection: Connection, **_: object) -> None:
    """The one-active-scan index's WHERE for PostgreSQL, given only there: as an
    Index option it would load SQLAlchemy's PostgreSQL dialect (~30 ms) into
    every process, on SQLite too."""
    if connection.dialect.name == "postgresql":
        for index in table.indexes:
            if index.name == "ux_scan_one_active_per_project":
                index.dialect_options["postgresql"]["where"] = _ACTIVE_SQL


class ScanAttempt(SQLModel, table=True):
    """One run of a scan by one runner, and how it ended (a lost runner's
    attempt is closed by whoever takes the scan over)."""

    __table_args__ = (UniqueConstraint("scan_id", "number"),)
    id: int | None = Field(default=None, primary_key=True)
    scan_id: int = Field(foreign_key="scan.id", index=True, ondelete="CASCADE")
    number: int
    runner: str  # host:pid
    backend: str
    started_at: datetime = Field(default_factory=utcnow)
    ended_at: datetime | None = None
    outcome: str = ""  # done | failed | cancelled | lost
    reason: str = ""


class ScanChunk(SQLModel, table=True):
    """One chunk of a fanned-out step (`pipeline.fanout`): the items it covers,
    who runs it under which lease, and what it found (JSON, merged into the
    scan's state when the step ends). A done chunk is never run again."""

    __table_args__ = (UniqueConstraint("scan_id", "step", "number"),)
    id: int | None = Field(default=None, primary_key=True)
    scan_id: int = Field(foreign_key="scan.id", index=True, ondelete="CASCADE")
    step: str
    number: int  # 1-based within the step
    items: str = Field(default="[]", sa_column=Column(Text))  # JSON list of the step's item keys
    units: int = 0  # its share of the step's progress total (e.g. addresses x ports)
    status: str = "queued"  # queued | running | done | cancelled
    owner: str = ""  # host:pid running it (the lease holder)
    worker: str = ""  # the Celery worker's name, for the workers view and logs
    task_id: str = ""  # the message that carries it (the reaper asks the broker about it)
    lease_until: datetime | None = None
    attempts: int = 0
    seconds: float = 0.0  # time its work took: the pace that sizes the next chunks
    result: str = Field(default="{}", sa_column=Column(Text))  # JSON: what it adds to the scan's state
    queued_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None


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
    # live verification (secrets/verify.py): "" never checked | verified | invalid | unknown
    verified: str = ""
    verified_at: datetime | None = None  # the last check that said verified or invalid
    verify_reason: str = ""  # short, never the secret


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
    host: str = ""  # the host it is about, for rules by host pattern
    fingerprint: str = ""  # what it is about, stable across scans (a finding's own fingerprint)
    quiet: bool = False  # shown in the feed, never notified (an asset missed once: unconfirmed)
    created_at: datetime = Field(default_factory=utcnow)
    acknowledged: bool = False


class EventRule(SQLModel, table=True):
    """Acknowledge or suppress the events it matches: every given field must
    match (type and host are globs). Applied when events are read, so a rule
    covers past events as well as future ones."""

    id: int | None = Field(default=None, primary_key=True)
    project_id: int | None = Field(default=None, foreign_key="project.id", index=True, ondelete="CASCADE")  # None: all
    action: str = "suppress"  # acknowledge | suppress
    event_type: str = ""
    host: str = ""
    fingerprint: str = ""
    note: str = ""
    created_at: datetime = Field(default_factory=utcnow)


# -- monitoring ------------------------------------------------------------------


class Snapshot(SQLModel, table=True):
    """The inventory as known after one done scan. Written once, in the same
    transaction as the scan's events: its presence means "events computed"."""

    __table_args__ = (UniqueConstraint("project_id", "seq"),)
    scan_id: int = Field(primary_key=True, foreign_key="scan.id", ondelete="CASCADE")
    project_id: int = Field(foreign_key="project.id", index=True, ondelete="CASCADE")
    seq: int  # 1, 2, ... per project, in the order snapshots were taken
    prev_scan_id: int | None = None  # the snapshot compared with
    partial: bool = False  # a scan of some seeds only: nothing could be "gone"
    known: str = ""  # comma separated kinds observed up to this scan (later ones get a silent baseline)
    counts: str = Field(default="{}", sa_column=Column(Text))  # JSON: the inventory's counts (events.Inventory)
    created_at: datetime = Field(default_factory=utcnow)


class SnapshotItem(SQLModel, table=True):
    """One version of one asset in a project's snapshots: it holds from snapshot
    `since_seq` until just before `until_seq` (None: still). A new version is
    written only when something watched changes (values, status, misses), so
    storage grows with what changed, not with the inventory."""

    __table_args__ = (
        Index("ix_snapshotitem_current", "project_id", "until_seq"),
        Index("ix_snapshotitem_asset", "kind", "asset_id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", ondelete="CASCADE")
    kind: str  # host | ip | dns | service | http | js | finding:<kind>
    asset_id: int  # id in the asset's own table
    host: str = ""  # owning host name, to fold a gone host's children into one event
    entity: str = ""  # display key, e.g. "service:10.0.0.5:22" (never a secret value)
    state: str = Field(default="{}", sa_column=Column(Text))  # JSON: watched values
    # new | open | unconfirmed | gone | reopened; "new" and "reopened" hold for
    # `since_seq` only (later snapshots show them as open)
    status: str = "new"
    misses: int = 0  # consecutive covered scans that did not see it
    since_seq: int
    until_seq: int | None = None


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
    status: str = "pending"  # pending (being sent, or its sender lost) | sent | failed | dropped (nothing left to say)
    attempts: int = 0
    events: int = 0
    last_error: str = Field(default="", sa_column=Column(Text))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class StoreMeta(SQLModel, table=True):
    """Facts about this database itself. `id` (random, made once: `store.identity`)
    names its Celery queue and its workers' heartbeats, so two installs that
    share one Redis never take each other's scans nor count each other's workers."""

    __tablename__ = "store_meta"
    key: str = Field(primary_key=True)
    value: str = Field(sa_column=Column(Text, nullable=False))
