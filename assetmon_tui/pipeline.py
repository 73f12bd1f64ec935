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
from collections import defaultdict
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

MODULES = ("dns", "ports", "http", "js")  # run order
MAX_CIDR_ADDRESSES = 4096
REPORT_EVERY = 0.2  # seconds between progress reports (Redis writes)
CANCEL_POLL = 0.5

Reporter = Callable[[Progress], None]


def owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def check_modules(modules: list[str]) -> list[str]:
    unknown = [m for m in modules if m not in MODULES]
    if unknown:
        raise ValueError(f"unknown module(s): {', '.join(unknown)} (choose from {', '.join(MODULES)})")
    return [m for m in MODULES if m in modules]  # canonical order


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
    except BaseException as exc:  # noqa: BLE001 - record, then re-raise
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
    direct: set[str] = field(default_factory=set)  # IP targets
    urls: list[str] = field(default_factory=list)
    pages: list = field(default_factory=list)  # HTML pages for the js module


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
                    raise ValueError(f"{target.value} has {network.num_addresses} addresses; "
                                     f"split it into ranges of at most {MAX_CIDR_ADDRESSES}")
                hosts = list(network.hosts()) or [network.network_address]
                self.found.direct.update(str(a) for a in hosts)
        self.found.direct = {a for a in self.found.direct if a in self.scope}

    def _nameservers(self) -> list[str]:
        return self.options.get("nameservers") or self.settings.nameserver_list

    # -- modules -----------------------------------------------------------------------

    async def _dns(self) -> None:
        from .scanners.dns import DnsOptions, resolve

        names = sorted(n for n in self.found.addresses if n in self.scope)
        options = DnsOptions(
            nameservers=self._nameservers(),
            concurrency=self.settings.dns_concurrency,
            timeout=self.settings.dns_timeout,
            retries=self.settings.dns_retries,
        )
        batch = []
        async for result in resolve(names, options, self.ticker("dns")):
            self.found.addresses[result.name].update(result.addresses)
            batch.append(result)
            if len(batch) >= 200:
                await asyncio.to_thread(self._save_dns, batch)
                batch = []
        await asyncio.to_thread(self._save_dns, batch)

    def _save_dns(self, results) -> None:
        with session() as s:
            for result in results:
                host_id = repo.upsert_host(s, self.project_id, result.name, self.scan.id, dns_status=result.status)
                for rec in result.records:
                    repo.upsert(s, DnsRecord, {"host_id": host_id, "rtype": rec.rtype, "value": rec.value},
                                {"ttl": rec.ttl}, self.scan.id)
                self.progress.count("hosts")
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
        async for result in scan(self._all_addresses(), ports, options, self.ticker("ports")):
            self.found.open_ports[result.address][result.port] = result.service
            results.append(result)
            self.progress.count("services")
        await asyncio.to_thread(self._save_ports, results)

    def _save_ports(self, results) -> None:
        with session() as s:
            for result in results:
                host_id = repo.upsert_host(s, self.project_id, result.address, self.scan.id, is_address=True)
                repo.upsert(s, Service, {"host_id": host_id, "port": result.port},
                            {"service": result.service, "banner": result.banner}, self.scan.id)
            s.commit()

    def _http_targets(self) -> list:
        from .scanners.http import HttpTarget, web_targets

        scanned_ports = "ports" in self.modules
        targets = []
        for name, addresses in sorted(self.found.addresses.items()):
            if name not in self.scope:
                continue
            for address in sorted(addresses)[:1]:  # one address per name is enough to probe
                ports = self.found.open_ports.get(address, {}) if scanned_ports else None
                targets += web_targets(name, address, ports)
        for address in sorted(self.found.direct):
            ports = self.found.open_ports.get(address, {}) if scanned_ports else None
            targets += web_targets(address, address, ports)
        for url in self.found.urls:
            parts = urlsplit(url)
            host = parts.hostname or ""
            address = host if is_ip(host) else next(iter(sorted(self.found.addresses.get(host, ()))), None)
            port = parts.port or (443 if parts.scheme == "https" else 80)
            targets.append(HttpTarget(host, port, parts.scheme, address, parts.path or "/"))
        unique = {(t.host, t.port, t.scheme, t.path): t for t in targets}
        return list(unique.values())

    async def _http(self) -> None:
        from .scanners.http import HttpOptions, probe

        options = HttpOptions(
            concurrency=self.settings.http_concurrency,
            timeout=self.settings.http_timeout,
            max_body=self.settings.http_max_body,
        )
        batch = []
        keep_pages = "js" in self.modules
        async for result in probe(self._http_targets(), options, self.ticker("http")):
            batch.append(result)
            if keep_pages and result.status == 200 and "html" in result.content_type and result.body:
                from .scanners.js import Page

                self.found.pages.append(Page(result.final_url or result.url, result.host,
                                             result.body.decode("utf-8", "replace")))
            if result.status is not None:
                self.progress.count("endpoints")
            if len(batch) >= 100:
                await asyncio.to_thread(self._save_http, batch)
                batch = []
        await asyncio.to_thread(self._save_http, batch)

    def _save_http(self, results) -> None:
        with session() as s:
            for r in results:
                if r.status is None:
                    continue  # nothing answered: not an endpoint
                host_id = repo.upsert_host(s, self.project_id, r.host, self.scan.id, is_address=is_ip(r.host))
                repo.upsert(
                    s, HttpEndpoint, {"host_id": host_id, "url": r.url},
                    {
                        "status": r.status, "title": r.title, "server": r.server,
                        "content_type": r.content_type, "content_length": r.content_length,
                        "redirects": json.dumps(r.redirects), "final_url": r.final_url,
                        "response_ms": r.response_ms, "error": r.error,
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
            cached = _analysis_cache.get(hashlib.sha256(data).hexdigest())
            if cached is not None:
                return cached
            result = await loop.run_in_executor(pool, analyse, data, url, options.max_size)
            _analysis_cache[hashlib.sha256(data).hexdigest()] = result
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
                repo.upsert(s, JsFileRow, {"host_id": host_id, "url": f.url},
                            {"sha256": f.sha256, "size": f.size}, self.scan.id)
                for secret in f.analysis.secrets:
                    repo.upsert(s, Finding, {"project_id": self.project_id, "fingerprint": secret.fingerprint}, {
                        "host_id": host_id, "kind": "secret", "rule": secret.rule_id, "severity": secret.severity,
                        "confidence": secret.confidence, "location": f.url, "line": secret.line,
                        "column": secret.column, "value": secret.secret, "redacted": secret.redacted,
                        "context": "\n".join(secret.context),
                    }, self.scan.id)
                for ep in f.analysis.endpoints:
                    value = ep.url or ep.value
                    key = hashlib.sha256(f"endpoint\x00{f.host}\x00{ep.value}".encode()).hexdigest()
                    repo.upsert(s, Finding, {"project_id": self.project_id, "fingerprint": key}, {
                        "host_id": host_id, "kind": "endpoint", "rule": f"js-{ep.kind}", "severity": "info",
                        "confidence": "medium", "location": f.url, "line": ep.line, "column": ep.column,
                        "value": value, "redacted": ep.value,
                    }, self.scan.id)
            s.commit()


_analysis_cache: dict = {}  # sha256 -> Analysis, per process: a file on many hosts is analysed once
_pool = None


def cpu_pool():
    """One spawned process for CPU-heavy analysis of thread-backend scans, so the
    TUI's own process (and GIL) stays free for the interface."""
    global _pool
    if _pool is None:
        from .core.procpool import spawn_pool

        _pool = spawn_pool(1)
    return _pool
