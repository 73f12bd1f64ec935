"""Scanner results -> store rows, and the one batched writer every step uses.

The `save_*` functions run in a worker thread (one session per batch); the
`BatchSaver` decides when: every `size` results, and at least every
`FLUSH_EVERY` seconds, so rows show up while a long step is still running.

Every text a scanned host controls (names, titles, headers, banners, TLS
fields, redirects, technologies, script URLs, DNS values, a finding's rule,
location, value and the code around it) is cleaned here, whatever the
scanner did: escape sequences, control characters and bidi overrides never
reach the store. The limits are above the scanners' own caps, so cleaning
never truncates what a scanner kept.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import urlsplit

from sqlmodel import Session

from ..core.sanitize import clean_lines, clean_text
from ..core.targets import is_ip
from ..scanners.dns_status import UNCERTAIN
from ..store import repo
from ..store.blobs import has_blob, save_blob
from ..store.db import session
from ..store.models import DnsRecord, Finding, HttpEndpoint, Service
from ..store.models import JsFile as JsFileRow
from .context import ScanContext

if TYPE_CHECKING:
    from ..scanners.dns import DnsResult
    from ..scanners.http import HttpResult
    from ..scanners.js import JsFile
    from ..scanners.nuclei import NucleiFinding
    from ..scanners.ports import PortResult
    from ..scanners.takeover import TakeoverFinding
    from ..secrets.verify import Result
    from .checkpoint import Checkpoint

FLUSH_EVERY = 2.0  # seconds a found result waits for its batch at most
NAME, TEXT, URL, VALUE = 255, 1024, 4096, 65536  # cleaning limits (chars), above the scanners' caps


def _text(value: object, limit: int = TEXT) -> str:
    return clean_text(value, limit)


def _clean_json(value: Any) -> Any:
    """Strings anywhere in a JSON-able value (the TLS fields), keys included, cleaned."""
    if isinstance(value, str):
        return clean_text(value, TEXT)
    if isinstance(value, dict):
        return {clean_text(k, NAME): _clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean_json(v) for v in value]
    return value


T = TypeVar("T")


class BatchSaver(Generic[T]):
    """Collects results and hands them to `save` in a worker thread, `size` at a
    time or every `every` seconds, whichever comes first; one batch at a time.

    Use as `async with`: a normal exit writes what is left. An error or a
    cancellation drops it, as the scan is failing or being cancelled anyway.

    With a `checkpoint`, a batch is followed (at most every few seconds) by
    the checkpoint as it was when the batch was taken, so the checkpoint
    never covers rows that are not yet committed. A step uses one saver at
    a time, so the items it marks belong to the batches of that saver."""

    def __init__(
        self,
        save: Callable[[list[T]], None],
        size: int,
        every: float = FLUSH_EVERY,
        checkpoint: Checkpoint | None = None,
    ) -> None:
        self._save = save
        self._size = size
        self._every = every
        self._checkpoint = checkpoint
        self._rows: list[T] = []
        self._lock = asyncio.Lock()  # batches never overlap: upserts of one host stay ordered
        self._stop = asyncio.Event()
        self._timer: asyncio.Task[None] | None = None

    async def __aenter__(self) -> BatchSaver[T]:
        self._timer = asyncio.create_task(self._tick())
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._timer is not None, "BatchSaver used outside `async with`"
        if exc_type is not None:
            self._timer.cancel()
            return
        self._stop.set()
        await self._timer  # lets a batch in flight finish, and raises if one failed
        await self.flush()

    async def add(self, row: T) -> None:
        if self._timer is not None and self._timer.done():
            self._timer.result()  # a timed batch failed: fail the step now, not at its end
        self._rows.append(row)
        if len(self._rows) >= self._size:
            await self.flush()

    async def flush(self) -> None:
        async with self._lock:
            rows, self._rows = self._rows, []
            cp = self._checkpoint
            state = cp.capture() if cp is not None and cp.due() else None
            if rows or state is not None:
                await asyncio.to_thread(self._write, rows, state)

    def _write(self, rows: list[T], state: dict[str, Any] | None) -> None:
        if rows:
            self._save(rows)
        if state is not None and self._checkpoint is not None:
            self._checkpoint.write(state)

    async def _tick(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._stop.wait(), self._every)
                return  # stopping: the final flush is __aexit__'s
            except TimeoutError:
                await self.flush()


def save_names(ctx: ScanContext, names: list[str]) -> None:
    """Names discovered (not yet resolved): stored at once, so a crash keeps them."""
    with session() as s:
        for name in names:
            repo.upsert_host(s, ctx.project_id, _text(name, NAME), ctx.scan_id)
        s.commit()


def merged_status(before: str | None, now: str) -> str:
    """A name resolved twice in one scan (a root: A/AAAA, then MX/NS/TXT) keeps
    the least certain answer: one unanswered query means its records are unknown."""
    if before is None or before == now:
        return now
    for worst in (*UNCERTAIN, "partial"):
        if worst in (before, now):
            return worst
    return "ok" if "ok" in (before, now) else now


def save_dns(ctx: ScanContext, results: list[DnsResult]) -> None:
    with session() as s:
        for result in results:
            name = _text(result.name, NAME)
            fresh = name not in ctx.saved_hosts
            ctx.saved_hosts.add(name)
            status = ctx.dns_status[name] = merged_status(ctx.dns_status.get(name), _text(result.status, 32))
            host_id = repo.upsert_host(s, ctx.project_id, name, ctx.scan_id, dns_status=status)
            for rec in result.records:
                repo.upsert(
                    s,
                    DnsRecord,
                    {"host_id": host_id, "rtype": _text(rec.rtype, 16), "value": _text(rec.value, URL)},
                    {"ttl": rec.ttl},
                    ctx.scan_id,
                )
            ctx.progress.count("hosts", int(fresh))
            ctx.progress.count("records", len(result.records))
        s.commit()


def save_services(ctx: ScanContext, results: list[PortResult]) -> None:
    with session() as s:
        for result in results:
            host_id = repo.upsert_host(s, ctx.project_id, _text(result.address, NAME), ctx.scan_id, is_address=True)
            repo.upsert(
                s,
                Service,
                {"host_id": host_id, "port": result.port},
                {"service": _text(result.service, NAME), "banner": _text(result.banner)},
                ctx.scan_id,
            )
        s.commit()


def save_http(ctx: ScanContext, results: list[HttpResult]) -> None:
    with session() as s:
        for r in results:
            if r.status is None or not r.definitive:
                continue  # nothing answered (not an endpoint), or not in full: what we had stands
            host = _text(r.host, NAME)
            host_id = repo.upsert_host(s, ctx.project_id, host, ctx.scan_id, is_address=is_ip(host))
            repo.upsert(
                s,
                HttpEndpoint,
                {"host_id": host_id, "url": _text(r.url, URL)},
                {
                    "status": r.status,
                    "title": _text(r.title),
                    "server": _text(r.server),
                    "content_type": _text(r.content_type, NAME),
                    "content_length": r.content_length,
                    "redirects": json.dumps([_text(u, URL) for u in r.redirects]),
                    "final_url": _text(r.final_url, URL),
                    "response_ms": r.response_ms,
                    "error": _text(r.error),
                    "tls": json.dumps(_clean_json(r.tls or {})),
                    "favicon_hash": r.favicon_hash,
                    "tech": ",".join(_text(t, NAME) for t in r.tech),
                    "cdn": _text(r.cdn, NAME),
                },
                ctx.scan_id,
            )
        s.commit()


def _fingerprint(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def _finding(s: Session, ctx: ScanContext, fingerprint: str, host_id: int, **values: object) -> None:
    """One finding per fingerprint and project, however often it is seen."""
    key = {"project_id": ctx.project_id, "fingerprint": fingerprint}
    repo.upsert(s, Finding, key, {"host_id": host_id, **values}, ctx.scan_id)


def save_takeovers(ctx: ScanContext, findings: list[TakeoverFinding]) -> None:
    with session() as s:
        for f in findings:
            name, cname = _text(f.name, NAME), _text(f.cname, NAME)
            host_id = repo.upsert_host(s, ctx.project_id, name, ctx.scan_id)
            _finding(
                s,
                ctx,
                _fingerprint("takeover", f.name, f.cname),
                host_id,
                kind="takeover",
                rule=_text(f"takeover-{f.provider}", NAME),
                severity=_text(f.severity, 16),
                confidence=_text(f.confidence, 16),
                location=name,
                value=cname,
                redacted=cname,
                context=clean_lines(f"{f.evidence}: {f.detail}", VALUE),
            )
        s.commit()


def save_nuclei(ctx: ScanContext, findings: list[NucleiFinding]) -> None:
    """nuclei's findings, one per template and place; everything in them may
    quote what a host sent (matched-at, extracted results): cleaned here."""
    with session() as s:
        for f in findings:
            where = _text(f.matched, URL)
            host = _text(urlsplit(f.matched).hostname or f.host.split(":")[0] or "?", NAME)
            host_id = repo.upsert_host(s, ctx.project_id, host, ctx.scan_id, is_address=is_ip(host))
            extracted = ", ".join(f.extracted)
            _finding(
                s,
                ctx,
                _fingerprint("nuclei", f.template, f.matched),
                host_id,
                kind="nuclei",
                rule=_text(f.template, NAME),
                severity=_text(f.severity, 16),
                confidence=_text(f.kind, 16),
                location=where,
                value=_text(extracted, VALUE),
                redacted=_text(f.name, TEXT),
                context=clean_lines(f"{f.name}" + (f"\nextracted: {extracted}" if extracted else ""), VALUE),
            )
        s.commit()


def save_js(ctx: ScanContext, files: list[JsFile]) -> None:
    """Scripts (bodies as blobs), their secrets and the API endpoints they mention."""
    with session() as s:
        for f in files:
            if not has_blob(f.sha256):
                save_blob(f.body)
            host_id = repo.upsert_host(s, ctx.project_id, _text(f.host, NAME), ctx.scan_id)
            url = _text(f.url, URL)
            repo.upsert(
                s, JsFileRow, {"host_id": host_id, "url": url}, {"sha256": f.sha256, "size": f.size}, ctx.scan_id
            )
            for secret in f.analysis.secrets:
                _finding(
                    s,
                    ctx,
                    secret.fingerprint,
                    host_id,
                    kind="secret",
                    rule=_text(secret.rule_id, NAME),
                    severity=_text(secret.severity, 16),
                    confidence=_text(secret.confidence, 16),
                    location=url,
                    line=secret.line,
                    column=secret.column,
                    # lines kept (a PEM block), so the export can still find it in old contexts
                    value=clean_text(secret.secret, VALUE, single_line=False),
                    redacted=clean_text(secret.redacted, VALUE, single_line=False),
                    context=clean_lines("\n".join(secret.context), VALUE),
                )
            for ep in f.analysis.endpoints:
                _finding(
                    s,
                    ctx,
                    _fingerprint("endpoint", f.host, ep.value),
                    host_id,
                    kind="endpoint",
                    rule=_text(f"js-{ep.kind}", NAME),
                    severity="info",
                    confidence="medium",
                    location=url,
                    line=ep.line,
                    column=ep.column,
                    value=_text(ep.url or ep.value, URL),
                    redacted=_text(ep.value, URL),
                )
        s.commit()


def save_verification(ctx: ScanContext, results: dict[str, Result]) -> None:
    """Secret findings' live checks (fingerprint -> result). An unknown result
    never replaces a verified or invalid one: it changes nothing then."""
    from sqlmodel import col, select

    from ..store.models import utcnow

    now = utcnow()
    with session() as s:
        for fingerprint, result in results.items():
            row = s.exec(
                select(Finding).where(Finding.project_id == ctx.project_id, col(Finding.fingerprint) == fingerprint)
            ).first()
            if row is None:
                continue
            if result.state == "unknown" and row.verified in ("verified", "invalid"):
                continue
            row.verified = _text(result.state, 16)
            row.verify_reason = _text(result.reason, TEXT)
            if result.state != "unknown":
                row.verified_at = now
            s.add(row)
        s.commit()
