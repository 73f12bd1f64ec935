"""Run one scan: modules in order, progress reported, results persisted.

Both backends call `run_scan`; only `report` differs (Celery update_state or
an in-memory slot). The scan row is claimed atomically first, so a scan runs
once even if a message is delivered twice or a local fallback raced a worker.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import logging
import os
import socket
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .core.config import Settings, get_settings
from .core.progress import Progress
from .core.targets import Scope, is_ip, parse_target
from .store import repo
from .store.db import session
from .store.models import DnsRecord, Finding, HttpEndpoint, Service
from .store.models import JsFile as JsFileRow

log = logging.getLogger(__name__)

MAX_CIDR_ADDRESSES = 4096
REPORT_EVERY = 0.2  # seconds between progress reports (Redis writes)
CANCEL_POLL = 0.5

Reporter = Callable[[Progress], None]


def owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_scan(scan_id: int, report: Reporter, backend: str) -> Progress:
    """Run a queued scan to a final state. Raises when the scan failed, after
    recording the failure, so Celery shows FAILURE rather than SUCCESS."""
    if not repo.claim_scan(scan_id, backend, owner_id()):
        scan = repo.get_scan(scan_id)
        log.info("scan %s not claimed (status %s): someone else has it", scan_id, scan.status)
        return Progress(scan_id, state=scan.status, message="taken by another runner")
    run = _Run(scan_id, report, get_settings(), backend)
    try:
        asyncio.run(run.main())
    except BaseException as exc:
        run.finish("failed", f"{type(exc).__name__}: {exc}")
        raise
    run.finish("cancelled" if run.cancelled else "done")
    from .events import after_scan

    after_scan(scan_id)  # change events + notifications; never raises, no-op unless done
    return run.progress


@dataclass
class _Found:
    """What earlier modules learned, for later ones."""

    addresses: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # name -> IPs
    open_ports: dict[str, dict[int, str]] = field(default_factory=lambda: defaultdict(dict))  # IP -> port -> service
    port_scanned: set[str] = field(default_factory=set)  # addresses the ports module covered
    direct: set[str] = field(default_factory=set)  # IP targets
    urls: list[str] = field(default_factory=list)
    pages: list = field(default_factory=list)  # HTML pages for the js module
    roots: list[str] = field(default_factory=list)  # domains to enumerate under
    wildcards: set[str] = field(default_factory=set)  # zones answering any label
    cnamed: list = field(default_factory=list)  # DnsResults with CNAMEs, for takeover


class _Run:
    def __init__(self, scan_id: int, report: Reporter, settings: Settings, backend: str):
        self.backend = backend
        self.scan = repo.get_scan(scan_id)
        self.settings = settings
        self.options = json.loads(self.scan.options or "{}")
        self.modules = [m for m in self.scan.modules.split(",") if m]
        self.project_id = self.scan.project_id
        self.scope = Scope(repo.parsed_targets(self.project_id))
        self._report = report
        self._last_report = 0.0
        self.cancelled = False
        self.progress = Progress(scan_id, state="running", started_at=time.time(), message="starting")
        for name in self.modules:
            self.progress.module(name)
        self.found = _Found()
        self._saved_hosts: set[str] = set()

    # -- progress, heartbeat, cancel ------------------------------------------------

    def report(self, message: str | None = None, force: bool = False) -> None:
        if message is not None:
            self.progress.message = message
        now = time.time()
        if force or now - self._last_report >= REPORT_EVERY:
            self._last_report = now
            self.progress.updated_at = now
            self._report(self.progress)

    def ticker(self, module: str) -> Callable[[int, int], None]:
        def tick(done: int, total: int) -> None:
            mod = self.progress.module(module)
            mod.done, mod.total = done, total
            self.report()

        return tick

    async def _watch(self, main: asyncio.Task) -> None:
        """Heartbeat the scan row and turn a cancel request into task cancellation."""
        last_beat = 0.0
        while not main.done():
            await asyncio.sleep(CANCEL_POLL)
            if time.time() - last_beat >= self.settings.heartbeat_interval:
                last_beat = time.time()
                await asyncio.to_thread(repo.beat, self.scan.id)
            if await asyncio.to_thread(repo.cancel_requested, self.scan.id):
                self.cancelled = True
                self.progress.state = "cancelling"
                self.report("cancelling…", force=True)
                main.cancel()
                return

    async def main(self) -> None:
        self.report("starting", force=True)
        main = asyncio.ensure_future(self._modules())
        watcher = asyncio.ensure_future(self._watch(main))
        try:
            await main
        except asyncio.CancelledError:
            if not self.cancelled:
                raise
        finally:
            watcher.cancel()

    async def _modules(self) -> None:
        self._seed()
        for name in self.modules:
            mod = self.progress.module(name)
            mod.status = "running"
            self.report(f"{name}: running", force=True)
            try:
                await getattr(self, f"_{name}")()
            except asyncio.CancelledError:
                mod.status = "cancelled"
                raise
            except Exception as exc:
                mod.status = "failed"
                self.report(f"{name} failed: {exc}", force=True)
                raise
            mod.status = "done"
            if mod.total == 0:
                mod.done = mod.total = 1
            self.report(f"{name}: done", force=True)

    def finish(self, state: str, error: str = "") -> None:
        self.progress.state = state
        self.progress.finished_at = time.time()
        self.progress.message = error or {"done": "finished", "cancelled": "cancelled"}.get(state, state)
        repo.finish_scan(self.scan.id, state, error, {**self.progress.counters, "elapsed": self.progress.elapsed})
        self._report(self.progress)

    # -- inputs ------------------------------------------------------------------------

    def _seed(self) -> None:
        """Names and addresses to start from: the include rules, or the
        `seeds` option (a CLI scan of some targets; the project's exclusions still apply)."""
        seeds = [parse_target(t) for t in self.options.get("seeds", [])] or self.scope.includes
        for target in seeds:
            if target.kind == "domain":
                self.found.addresses.setdefault(target.host, set())
                self.found.roots.append(target.host)
            elif target.kind == "url":
                self.found.urls.append(target.value)
                host = target.host
                if is_ip(host):
                    self.found.direct.add(host)
                else:
                    self.found.addresses.setdefault(host, set())
            elif target.kind == "ip":
                self.found.direct.add(target.value)
            elif target.kind == "cidr":
                network = ipaddress.ip_network(target.value)
                if network.num_addresses > MAX_CIDR_ADDRESSES:
                    raise ValueError(
                        f"{target.value} has {network.num_addresses} addresses; "
                        f"split it into ranges of at most {MAX_CIDR_ADDRESSES}"
                    )
                hosts = list(network.hosts()) or [network.network_address]
                self.found.direct.update(str(a) for a in hosts)
        self.found.direct = {a for a in self.found.direct if a in self.scope}
        # Enumerate under each zone once: a root below another root adds nothing but queries.
        roots = set(self.found.roots)
        self.found.roots = sorted(r for r in roots if not any(r.endswith("." + o) for o in roots))

    def _nameservers(self) -> list[str]:
        return self.options.get("nameservers") or self.settings.nameserver_list

    # -- modules -----------------------------------------------------------------------

    def _dns_options(self, rtypes: tuple[str, ...] = ("A", "AAAA", "CNAME")):
        from .scanners.dns import DnsOptions

        return DnsOptions(
            nameservers=self._nameservers(),
            rtypes=rtypes,
            concurrency=self.settings.dns_concurrency,
            timeout=self.settings.dns_timeout,
            retries=self.settings.dns_retries,
        )

    async def _subdomains(self) -> None:
        from .scanners.subdomains import SubdomainOptions, discover

        options = SubdomainOptions(
            ct_url=self.settings.ct_url,
            wordlist_path=self.settings.wordlist or None,
            dns=self._dns_options(("A", "AAAA")),
        )
        async for found in discover(self.found.roots, options, self.scope.__contains__, self.ticker("subdomains")):
            if found.source == "wildcard":
                self.found.wildcards.add(found.name)
            elif found.name not in self.found.addresses:
                self.found.addresses[found.name] = set()
                self.progress.count("subdomains")

    async def _dns(self) -> None:
        names = sorted(n for n in self.found.addresses if n in self.scope)
        await self._resolve(names, self._dns_options(), self.ticker("dns"))
        # Mail, name servers and TXT (SPF, verification tokens) of the roots only.
        await self._resolve(self.found.roots, self._dns_options(("MX", "NS", "TXT")))

    async def _resolve(self, names: list[str], options, progress=None) -> None:
        from .scanners.dns import resolve

        batch = []
        async for result in resolve(names, options, progress):
            self.found.addresses[result.name].update(result.addresses)
            if result.cnames:
                self.found.cnamed.append(result)
            batch.append(result)
            if len(batch) >= 200:
                await asyncio.to_thread(self._save_dns, batch)
                batch = []
        await asyncio.to_thread(self._save_dns, batch)

    def _save_dns(self, results) -> None:
        with session() as s:
            for result in results:
                fresh = result.name not in self._saved_hosts
                self._saved_hosts.add(result.name)
                host_id = repo.upsert_host(s, self.project_id, result.name, self.scan.id, dns_status=result.status)
                for rec in result.records:
                    repo.upsert(
                        s,
                        DnsRecord,
                        {"host_id": host_id, "rtype": rec.rtype, "value": rec.value},
                        {"ttl": rec.ttl},
                        self.scan.id,
                    )
                self.progress.count("hosts", int(fresh))
                self.progress.count("records", len(result.records))
            s.commit()

    def _all_addresses(self) -> list[str]:
        resolved = {a for addrs in self.found.addresses.values() for a in addrs}
        return sorted(resolved | self.found.direct)

    async def _ports(self) -> None:
        from .scanners.ports import PortOptions, parse_ports, scan

        ports = parse_ports(self.options.get("ports") or self.settings.ports)
        options = PortOptions(
            concurrency=self.settings.port_concurrency,
            timeout=self.settings.port_timeout,
            rate=self.settings.port_rate,
        )
        results = []
        addresses = self._all_addresses()
        self.found.port_scanned.update(addresses)
        async for result in scan(addresses, ports, options, self.ticker("ports")):
            self.found.open_ports[result.address][result.port] = result.service
            results.append(result)
            self.progress.count("services")
        await asyncio.to_thread(self._save_ports, results)

    def _save_ports(self, results) -> None:
        with session() as s:
            for result in results:
                host_id = repo.upsert_host(s, self.project_id, result.address, self.scan.id, is_address=True)
                repo.upsert(
                    s,
                    Service,
                    {"host_id": host_id, "port": result.port},
                    {"service": result.service, "banner": result.banner},
                    self.scan.id,
                )
            s.commit()

    def _http_targets(self, names: list[str] | None = None, direct: bool = True) -> list:
        from .scanners.http import HttpTarget, web_targets

        def ports_of(address: str):  # None: unknown, so the usual web ports are tried
            return self.found.open_ports.get(address, {}) if address in self.found.port_scanned else None

        targets = []
        for name in sorted(self.found.addresses if names is None else names):
            addresses = self.found.addresses.get(name, ())
            if name not in self.scope:
                continue
            for address in sorted(addresses)[:1]:  # one address per name is enough to probe
                targets += web_targets(name, address, ports_of(address))
        if not direct:
            return targets
        for address in sorted(self.found.direct):
            targets += web_targets(address, address, ports_of(address))
        for url in self.found.urls:
            parts = urlsplit(url)
            host = parts.hostname or ""
            address = host if is_ip(host) else next(iter(sorted(self.found.addresses.get(host, ()))), None)
            port = parts.port or (443 if parts.scheme == "https" else 80)
            targets.append(HttpTarget(host, port, parts.scheme, address, parts.path or "/"))
        unique = {(t.host, t.port, t.scheme, t.path): t for t in targets}
        return list(unique.values())

    async def _http(self) -> None:
        """Probe every web target; names that pages, redirects and certificates
        reveal are resolved and probed too (one round)."""
        known = set(self.found.addresses)
        revealed = await self._probe(self._http_targets(), self.ticker("http"))
        fresh = sorted(n for n in revealed - known if n in self.scope)
        if fresh:
            self.progress.count("subdomains", len(fresh))
            for name in fresh:
                self.found.addresses[name] = set()
            await self._resolve(fresh, self._dns_options())
            await self._probe(self._http_targets(fresh, direct=False))

    async def _probe(self, targets: list, progress=None) -> set[str]:
        from .scanners.http import HttpOptions, probe
        from .scanners.js import Page
        from .scanners.subdomains import harvest_http

        options = HttpOptions(
            concurrency=self.settings.http_concurrency,
            timeout=self.settings.http_timeout,
            max_body=self.settings.http_max_body,
            favicon=True,
        )
        batch, revealed = [], set()
        keep_pages = "js" in self.modules
        async for result in probe(targets, options, progress):
            batch.append(result)
            if result.status is None:
                continue
            self.progress.count("endpoints")
            revealed.update(f.name for f in harvest_http(result, self.found.roots))
            if keep_pages and result.status == 200 and "html" in result.content_type and result.body:
                self.found.pages.append(
                    Page(result.final_url or result.url, result.host, result.body.decode("utf-8", "replace"))
                )
            if len(batch) >= 100:
                await asyncio.to_thread(self._save_http, batch)
                batch = []
        await asyncio.to_thread(self._save_http, batch)
        return revealed

    def _save_http(self, results) -> None:
        with session() as s:
            for r in results:
                if r.status is None:
                    continue  # nothing answered: not an endpoint
                host_id = repo.upsert_host(s, self.project_id, r.host, self.scan.id, is_address=is_ip(r.host))
                repo.upsert(
                    s,
                    HttpEndpoint,
                    {"host_id": host_id, "url": r.url},
                    {
                        "status": r.status,
                        "title": r.title,
                        "server": r.server,
                        "content_type": r.content_type,
                        "content_length": r.content_length,
                        "redirects": json.dumps(r.redirects),
                        "final_url": r.final_url,
                        "response_ms": r.response_ms,
                        "error": r.error,
                        "tls": json.dumps(r.tls or {}),
                        "favicon_hash": r.favicon_hash,
                        "tech": ",".join(r.tech),
                        "cdn": r.cdn,
                    },
                    self.scan.id,
                )
            s.commit()

    # -- takeover ---------------------------------------------------------------------------

    async def _takeover(self) -> None:
        from .scanners.http import HttpOptions
        from .scanners.takeover import check_many

        http = HttpOptions(timeout=self.settings.http_timeout, max_body=self.settings.http_max_body)
        found = []
        async for finding in check_many(self.found.cnamed, self._dns_options(), http):
            found.append(finding)
            self.progress.count("findings")
        await asyncio.to_thread(self._save_takeovers, found)

    def _save_takeovers(self, findings) -> None:
        with session() as s:
            for f in findings:
                host_id = repo.upsert_host(s, self.project_id, f.name, self.scan.id)
                key = hashlib.sha256(f"takeover\x00{f.name}\x00{f.cname}".encode()).hexdigest()
                repo.upsert(
                    s,
                    Finding,
                    {"project_id": self.project_id, "fingerprint": key},
                    {
                        "host_id": host_id,
                        "kind": "takeover",
                        "rule": f"takeover-{f.provider}",
                        "severity": f.severity,
                        "confidence": f.confidence,
                        "location": f.name,
                        "value": f.cname,
                        "redacted": f.cname,
                        "context": f"{f.evidence}: {f.detail}",
                    },
                    self.scan.id,
                )
            s.commit()

    # -- js: scripts, secrets, endpoints ------------------------------------------------

    def _locate(self, url: str):
        """(host, port, scheme, address) for an in-scope http(s) URL we can reach."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("http", "https") or not host or host not in self.scope:
            return None
        address = host if is_ip(host) else next(iter(sorted(self.found.addresses.get(host, ()))), None)
        if address is None:
            return None
        return host, parts.port or (443 if parts.scheme == "https" else 80), parts.scheme, address

    async def _js(self) -> None:
        from .scanners.js import JsOptions, analyse, discover

        options = JsOptions(max_size=self.settings.js_max_size, timeout=self.settings.http_timeout)
        loop = asyncio.get_running_loop()
        pool = cpu_pool() if self.backend == "thread" else None  # keep CPU work off the TUI's process

        async def run(data: bytes, url: str):
            key = hashlib.sha256(data).hexdigest()
            if key in _analysis_cache:
                _analysis_cache.move_to_end(key)
                return _analysis_cache[key]
            result = await loop.run_in_executor(pool, analyse, data, url, options.max_size)
            _analysis_cache[key] = result
            if len(_analysis_cache) > ANALYSIS_CACHE_SIZE:
                _analysis_cache.popitem(last=False)
            return result

        batch = []
        async for file in discover(self.found.pages, self._locate, options, run, self.ticker("js")):
            if file.error:
                continue
            batch.append(file)
            self.progress.count("js_files")
            self.progress.count("findings", len(file.analysis.secrets))
            if len(batch) >= 50:
                await asyncio.to_thread(self._save_js, batch)
                batch = []
        await asyncio.to_thread(self._save_js, batch)

    def _save_js(self, files) -> None:
        from .store.blobs import has_blob, save_blob

        with session() as s:
            for f in files:
                if not has_blob(f.sha256):
                    save_blob(f.body)
                host_id = repo.upsert_host(s, self.project_id, f.host, self.scan.id)
                repo.upsert(
                    s, JsFileRow, {"host_id": host_id, "url": f.url}, {"sha256": f.sha256, "size": f.size}, self.scan.id
                )
                for secret in f.analysis.secrets:
                    repo.upsert(
                        s,
                        Finding,
                        {"project_id": self.project_id, "fingerprint": secret.fingerprint},
                        {
                            "host_id": host_id,
                            "kind": "secret",
                            "rule": secret.rule_id,
                            "severity": secret.severity,
                            "confidence": secret.confidence,
                            "location": f.url,
                            "line": secret.line,
                            "column": secret.column,
                            "value": secret.secret,
                            "redacted": secret.redacted,
                            "context": "\n".join(secret.context),
                        },
                        self.scan.id,
                    )
                for ep in f.analysis.endpoints:
                    value = ep.url or ep.value
                    key = hashlib.sha256(f"endpoint\x00{f.host}\x00{ep.value}".encode()).hexdigest()
                    repo.upsert(
                        s,
                        Finding,
                        {"project_id": self.project_id, "fingerprint": key},
                        {
                            "host_id": host_id,
                            "kind": "endpoint",
                            "rule": f"js-{ep.kind}",
                            "severity": "info",
                            "confidence": "medium",
                            "location": f.url,
                            "line": ep.line,
                            "column": ep.column,
                            "value": value,
                            "redacted": ep.value,
                        },
                        self.scan.id,
                    )
            s.commit()


# sha256 -> Analysis, per process: a bundle served by many hosts is analysed once (bounded LRU).
ANALYSIS_CACHE_SIZE = 1024
_analysis_cache: OrderedDict = OrderedDict()
_pool = None


def cpu_pool():
    """One spawned process for CPU-heavy analysis of thread-backend scans, so the
    TUI's own process (and GIL) stays free for the interface."""
    global _pool
    if _pool is None:
        from .core.procpool import spawn_pool

        _pool = spawn_pool(1)
    return _pool
