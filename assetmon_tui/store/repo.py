"""Projects, targets, scans and assets (the monitoring rows have their own
modules: snapshots, event_log, schedules, notifiers)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import delete, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import Select

if TYPE_CHECKING:  # imported where used: see `_insert`
    from sqlalchemy.dialects import postgresql, sqlite

from ..core import project_settings as settings_registry
from ..core.modules import check_modules
from ..core.targets import Target as ParsedTarget
from ..core.targets import parse_target
from . import chunks, leases
from .db import session
from .models import (
    DnsRecord,
    Event,
    Finding,
    Host,
    HttpEndpoint,
    JsFile,
    Project,
    Scan,
    Service,
    Target,
    utcnow,
)

ACTIVE = ("queued", "running", "cancelling")

Child = DnsRecord | Service | HttpEndpoint | JsFile  # assets hanging off a host
Asset = Host | Child | Finding  # rows with first/last seen, written by upsert()
C = TypeVar("C", DnsRecord, Service, HttpEndpoint, JsFile)


class NotFound(LookupError):
    pass


# -- projects and targets ----------------------------------------------------


def list_projects() -> list[Project]:
    with session() as s:
        return list(s.exec(select(Project).order_by(Project.name)))


def get_project(name_or_id: str | int) -> Project:
    with session() as s:
        if isinstance(name_or_id, int):
            project = s.get(Project, name_or_id)
        else:
            project = s.exec(select(Project).where(Project.name == name_or_id)).first()
        if project is None:
            raise NotFound(f"no project {name_or_id!r}")
        return project


def create_project(name: str) -> Project:
    name = name.strip()
    if not name:
        raise ValueError("a project needs a name")
    with session() as s:
        if s.exec(select(Project).where(Project.name == name)).first():
            raise ValueError(f"a project named {name!r} exists already")
        project = Project(name=name)
        s.add(project)
        s.commit()
        return project


def get_or_create_project(name: str) -> Project:
    try:
        return get_project(name)
    except NotFound:
        return create_project(name)


def project_name(project_id: int) -> str:
    """The project's name, or its id once it is gone."""
    with session() as s:
        project = s.get(Project, project_id)
        return project.name if project else str(project_id)


def delete_project(project_id: int) -> None:
    with session() as s:
        host_ids = select(Host.id).where(Host.project_id == project_id)
        child: type[Child]
        for child in (DnsRecord, Service, HttpEndpoint, JsFile):
            s.exec(delete(child).where(col(child.host_id).in_(host_ids)))
        owned: type[Finding | Event | Host | Target]
        for owned in (Finding, Event, Host, Target):
            s.exec(delete(owned).where(col(owned.project_id) == project_id))
        s.exec(delete(Scan).where(col(Scan.project_id) == project_id))
        s.exec(delete(Project).where(col(Project.id) == project_id))
        s.commit()


def add_targets(project_id: int, lines: list[str]) -> list[Target]:
    """Parse every line first so a typo stores nothing (raises TargetError):
    a bad name or address, an include CIDR over `max_cidr_addresses`. URLs are
    stored as typed but their host (credentials keep their case)."""
    parsed: list[ParsedTarget] = [parse_target(line) for line in lines if line.strip()]
    with session() as s:
        existing = {(t.value, t.exclude) for t in s.exec(select(Target).where(Target.project_id == project_id))}
        added = []
        for t in parsed:
            if (t.value, t.exclude) in existing:
                continue
            existing.add((t.value, t.exclude))
            row = Target(project_id=project_id, kind=t.kind, value=t.value, exclude=t.exclude)
            s.add(row)
            added.append(row)
        s.commit()
        return added


def list_targets(project_id: int) -> list[Target]:
    with session() as s:
        return list(s.exec(select(Target).where(Target.project_id == project_id).order_by(col(Target.id))))


def delete_target(target_id: int) -> None:
    with session() as s:
        s.exec(delete(Target).where(col(Target.id) == target_id))
        s.commit()


def parsed_targets(project_id: int) -> list[ParsedTarget]:
    return [ParsedTarget(t.kind, t.value, t.exclude) for t in list_targets(project_id)]


# -- project settings (core/project_settings.py: the keys and their checks) ----------


def project_settings(project_id: int) -> dict[str, Any]:
    """The settings this project sets, as stored (the others: the global defaults)."""
    with session() as s:
        project = s.get(Project, project_id)
        if project is None:
            raise NotFound(f"no project {project_id!r}")
        settings: dict[str, Any] = json.loads(project.settings or "{}")
        return settings


def set_project_settings(project_id: int, values: dict[str, Any]) -> dict[str, Any]:
    """Change some of a project's settings: each value is checked (ValueError,
    one line naming the setting) before anything is stored; an empty value
    removes the setting, so the global default applies again. Returns all the
    project's settings, as stored."""
    checked = settings_registry.check_all(values)
    with session() as s:
        project = s.get(Project, project_id)
        if project is None:
            raise NotFound(f"no project {project_id!r}")
        current: dict[str, Any] = json.loads(project.settings or "{}")
        for name, value in checked.items():
            if value is None:
                current.pop(name, None)
            else:
                current[name] = value
        order = {name: i for i, name in enumerate(settings_registry.NAMES)}
        current = dict(sorted(current.items(), key=lambda item: order.get(item[0], len(order))))
        project.settings = json.dumps(current)
        s.add(project)
        s.commit()
        return current


# -- scans --------------------------------------------------------------------


class ProjectBusy(ValueError):
    """The project has an active scan already."""


def create_scan(project_id: int, modules: list[str], options: dict[str, Any], submitter: str = "") -> Scan:
    with session() as s:
        scan = Scan(project_id=project_id, modules=",".join(modules), options=json.dumps(options), submitter=submitter)
        s.add(scan)
        try:
            s.commit()
        except IntegrityError:
            s.rollback()
            active = s.exec(select(Scan.id).where(Scan.project_id == project_id, col(Scan.status).in_(ACTIVE))).first()
            raise ProjectBusy(f"scan #{active} of this project is still active: cancel it or wait") from None
        return scan


def new_scan(project_id: int, modules: list[str], options: dict[str, Any], submitter: str = "") -> Scan:
    """A scan row for someone to run: the modules checked and put in run order,
    the project's targets present. What every submitter (TUI, CLI, beat) calls.

    The project's settings fill in what the caller left out: its modules when
    none are given, and its scan settings (ports, nameservers, CT URL,
    wordlist, gone_after) in the options, so the row records what the scan
    uses. Explicit options win; every setting used is checked first."""
    stored = project_settings(project_id)
    options = dict(options)
    for name in settings_registry.SCAN_OPTIONS:
        if not settings_registry.is_empty(options.get(name)):
            options[name] = settings_registry.check(name, options[name])
        elif name in stored:
            options[name] = _project_setting(name, stored[name])
        else:
            options.pop(name, None)
    if not modules and "modules" in stored:
        modules = _project_setting("modules", stored["modules"])
    modules = check_modules(modules)
    if not modules:
        raise ValueError("choose at least one module")
    if not list_targets(project_id):
        raise ValueError("the project has no targets: add some first")
    return create_scan(project_id, modules, options, submitter)


def _project_setting(name: str, value: Any) -> Any:
    try:
        return settings_registry.check(name, value)
    except ValueError as exc:
        raise ValueError(f"project setting {exc} (fix it in the project's settings)") from None


def get_scan(scan_id: int) -> Scan:
    with session() as s:
        scan = s.get(Scan, scan_id)
        if scan is None:
            raise NotFound(f"no scan {scan_id}")
        return scan


def set_backend(scan_id: int, backend: str, task_id: str = "", owner: str = "") -> bool:
    """Record who is to run a queued scan. Only while it is queued: a second
    enqueue of a scan a runner took already (a reaper's, racing its
    submitter) must not take it from that runner. True when recorded."""
    with session() as s:
        done = s.exec(
            update(Scan)
            .where(col(Scan.id) == scan_id, col(Scan.status) == "queued")
            .values(backend=backend, task_id=task_id, owner=owner, queued_at=utcnow())
        )
        s.commit()
        return bool(done.rowcount)


def cancel_requested(scan_id: int) -> bool:
    with session() as s:
        return bool(s.exec(select(Scan.cancel_requested).where(Scan.id == scan_id)).first())


def finish_scan(
    scan_id: int,
    status: str,
    error: str = "",
    summary: dict[str, Any] | None = None,
    owner: str | None = None,
    sources: list[dict[str, str]] | None = None,
) -> bool:
    """Move an active scan to a final state (a final state is never overwritten).
    With `owner`, only while that runner still holds the scan: a runner that
    lost its lease must not end a scan someone else has resumed."""
    with session() as s:
        ended = end_scan(s, scan_id, status, error, summary, owner, sources)
        s.commit()
    return ended


def end_scan(
    s: Session,
    scan_id: int,
    status: str,
    error: str = "",
    summary: dict[str, Any] | None = None,
    owner: str | None = None,
    sources: list[dict[str, str]] | None = None,
) -> bool:
    """`finish_scan` in the caller's transaction, its open attempt closed and
    the chunks nobody will run now settled in it too: a done scan's snapshot
    and events commit with it."""
    values: dict[str, Any] = dict(status=status, error=error[:2000], finished_at=utcnow(), lease_until=None)
    if summary is not None:
        values["summary"] = json.dumps(summary)
    if sources is not None:
        values["sources"] = json.dumps(sources)
    query = update(Scan).where(col(Scan.id) == scan_id, col(Scan.status).in_(ACTIVE))
    if owner is not None:
        query = query.where(col(Scan.owner) == owner)
    if s.exec(query.values(**values)).rowcount != 1:
        return False
    leases.close_attempts(s, scan_id, status, error)
    chunks.cancel_queued_in(s, scan_id)
    return True


def has_active_scan(project_id: int) -> bool:
    """The project lock as the database holds it (queued, running or cancelling)."""
    with session() as s:
        query = select(Scan.id).where(Scan.project_id == project_id, col(Scan.status).in_(ACTIVE))
        return s.exec(query).first() is not None


def request_cancel(scan_id: int) -> str:
    """Ask a scan to stop. A queued scan is cancelled at once (nobody runs it
    afterwards: claiming needs status queued); a running one becomes
    "cancelling" until its runner notices. Returns the resulting status."""
    with session() as s:
        dropped = s.exec(
            update(Scan)
            .where(col(Scan.id) == scan_id, col(Scan.status) == "queued")
            .values(status="cancelled", cancel_requested=True, finished_at=utcnow(), error="cancelled before start")
        )
        if dropped.rowcount == 0:
            s.exec(
                update(Scan)
                .where(col(Scan.id) == scan_id, col(Scan.status).in_(("running", "cancelling")))
                .values(status="cancelling", cancel_requested=True)
            )
        s.commit()
        return s.exec(select(Scan.status).where(Scan.id == scan_id)).first() or ""


def active_scans() -> list[Scan]:
    with session() as s:
        return list(s.exec(select(Scan).where(col(Scan.status).in_(ACTIVE)).order_by(col(Scan.id))))


def list_scans(project_id: int | None = None, limit: int = 200) -> list[Scan]:
    with session() as s:
        query = select(Scan).order_by(col(Scan.id).desc()).limit(limit)
        if project_id is not None:
            query = query.where(Scan.project_id == project_id)
        return list(s.exec(query))


def previous_scan(project_id: int, before_scan_id: int) -> Scan | None:
    with session() as s:
        return s.exec(
            select(Scan)
            .where(Scan.project_id == project_id, col(Scan.id) < before_scan_id, Scan.status == "done")
            .order_by(col(Scan.id).desc())
        ).first()


# -- assets -------------------------------------------------------------------


def _insert(s: Session, model: type[Asset]) -> postgresql.Insert | sqlite.Insert:
    # the dialect in use only: importing PostgreSQL's costs a SQLite user ~30 ms at start-up
    if s.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(model)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(model)


def upsert(s: Session, model: type[Asset], keys: dict[str, Any], values: dict[str, Any], scan_id: int) -> int:
    """Insert or refresh one asset, keeping first_seen; return its id."""
    now = utcnow()
    fresh = {"last_seen": now, "last_scan_id": scan_id, **values}
    stmt = _insert(s, model).values(**keys, **fresh, first_seen=now, first_scan_id=scan_id)
    upserted = stmt.on_conflict_do_update(index_elements=list(keys), set_=fresh).returning(col(model.id))
    asset_id: int = s.exec(upserted).scalar_one()
    return asset_id


def upsert_host(s: Session, project_id: int, name: str, scan_id: int, **values: Any) -> int:
    return upsert(s, Host, {"project_id": project_id, "name": name}, values, scan_id)


def hosts(project_id: int) -> list[Host]:
    with session() as s:
        return list(s.exec(select(Host).where(Host.project_id == project_id).order_by(col(Host.name))))


def _children(model: type[C], project_id: int, scan_id: int | None) -> Select[C, str]:
    query = select(model, Host.name).join(Host, col(Host.id) == model.host_id).where(Host.project_id == project_id)
    if scan_id is not None:
        query = query.where(model.last_scan_id == scan_id)
    return query


def dns_records(project_id: int, scan_id: int | None = None) -> list[tuple[DnsRecord, str]]:
    with session() as s:
        return list(s.exec(_children(DnsRecord, project_id, scan_id).order_by(col(Host.name), col(DnsRecord.rtype))))


def services(project_id: int, scan_id: int | None = None) -> list[tuple[Service, str]]:
    with session() as s:
        return list(s.exec(_children(Service, project_id, scan_id).order_by(col(Host.name), col(Service.port))))


def endpoints(project_id: int, scan_id: int | None = None) -> list[tuple[HttpEndpoint, str]]:
    with session() as s:
        return list(s.exec(_children(HttpEndpoint, project_id, scan_id).order_by(col(HttpEndpoint.url))))


def host_detail(host_id: int) -> dict[str, Any]:
    with session() as s:
        host = s.get(Host, host_id)
        if host is None:
            raise NotFound(f"no host {host_id}")
        return {
            "host": host,
            "records": list(s.exec(select(DnsRecord).where(DnsRecord.host_id == host_id))),
            "services": list(s.exec(select(Service).where(Service.host_id == host_id))),
            "endpoints": list(s.exec(select(HttpEndpoint).where(HttpEndpoint.host_id == host_id))),
        }


def scan_results(scan_id: int) -> list[dict[str, Any]]:
    """Everything a scan saw, as plain dicts (the CLI's JSON lines)."""
    scan = get_scan(scan_id)
    rows: list[dict[str, Any]] = []
    with session() as s:
        for host in s.exec(select(Host).where(Host.project_id == scan.project_id, Host.last_scan_id == scan_id)):
            rows.append(
                {"type": "host", "name": host.name, "dns_status": host.dns_status, "new": host.first_scan_id == scan_id}
            )
    for rec, name in dns_records(scan.project_id, scan_id):
        rows.append({"type": "dns", "name": name, "rtype": rec.rtype, "value": rec.value, "ttl": rec.ttl})
    for svc, name in services(scan.project_id, scan_id):
        rows.append(
            {"type": "service", "address": name, "port": svc.port, "service": svc.service, "banner": svc.banner}
        )
    for ep, name in endpoints(scan.project_id, scan_id):
        rows.append(
            {
                "type": "http",
                "host": name,
                "url": ep.url,
                "status": ep.status,
                "title": ep.title,
                "server": ep.server,
                "content_type": ep.content_type,
                "content_length": ep.content_length,
                "redirects": json.loads(ep.redirects),
                "final_url": ep.final_url,
                "response_ms": ep.response_ms,
                "error": ep.error,
            }
        )
    return rows


def counts(project_id: int) -> dict[str, int]:
    with session() as s:
        host_ids = select(Host.id).where(Host.project_id == project_id)
        return {
            "hosts": s.exec(select(func.count()).select_from(Host).where(Host.project_id == project_id)).one(),
            "services": s.exec(
                select(func.count()).select_from(Service).where(col(Service.host_id).in_(host_ids))
            ).one(),
            "endpoints": s.exec(
                select(func.count()).select_from(HttpEndpoint).where(col(HttpEndpoint.host_id).in_(host_ids))
            ).one(),
        }


def findings(project_id: int) -> list[tuple[Finding, str]]:
    """The project's findings, each with its host's name ("" for none)."""
    with session() as s:
        rows = s.exec(
            select(Finding, Host.name)
            .join(Host, col(Host.id) == Finding.host_id, isouter=True)
            .where(Finding.project_id == project_id)
            .order_by(col(Finding.kind), col(Finding.id))
        )
        return [(f, name or "") for f, name in rows]
