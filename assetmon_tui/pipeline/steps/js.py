"""Scripts of the pages the http step kept: fetched, analysed for secrets and
API endpoints, saved with their findings."""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
from collections import OrderedDict
from functools import partial
from urllib.parse import urlsplit

from ...core.procpool import spawn_pool
from ...scanners.js import Analysis, JsFile, JsOptions, analyse, discover
from ...scanners.subdomains import harvest_names
from ...secrets import verify
from ..persist import BatchSaver, save_js, save_verification
from .base import Step
from .dns import dns_options, resolve_names

# sha256 -> Analysis, per process: a bundle served by many hosts is analysed once (bounded LRU).
ANALYSIS_CACHE_SIZE = 1024
_analysis_cache: OrderedDict[str, Analysis] = OrderedDict()
_pool: concurrent.futures.ProcessPoolExecutor | None = None


def cpu_pool() -> concurrent.futures.ProcessPoolExecutor:
    """One spawned process for CPU-heavy analysis of thread-backend scans, so the
    TUI's own process (and GIL) stays free for the interface."""
    global _pool
    if _pool is None:
        _pool = spawn_pool(1)
    return _pool


class Js(Step):
    name = "js"
    inputs = ("pages", "addresses")
    outputs = ("addresses", "probed")  # the hosts its scripts name, resolved and probed
    saves = ("host", "jsfile", "finding")
    growing = True  # chunks and source maps are found in the scripts fetched

    def locate(self, url: str) -> tuple[str, int, str, str | None] | None:
        """(host, port, scheme, address) for an in-scope http(s) URL we can reach."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("http", "https") or not host or host not in self.ctx.scope:
            return None
        address = self.ctx.address_of(host)
        if address is None:
            return None
        return host, parts.port or (443 if parts.scheme == "https" else 80), parts.scheme, address

    async def probe_named(self, named: set[str]) -> None:
        """Hosts the scripts name (an API host, a CDN origin in scope) that the
        scan did not know: resolved and probed, one round, like the names the
        http step's pages revealed."""
        from .http import Http  # (http imports nothing of js)

        fresh = sorted(n for n in named if n in self.ctx.scope and n not in self.found.addresses)
        if not fresh:
            return
        self.ctx.progress.count("subdomains", len(fresh))
        for name in fresh:
            self.found.addresses[name] = set()
        await resolve_names(self.ctx, fresh, dns_options(self.ctx), key="jsdns:", source="resolver (script hosts)")
        http = Http(self.ctx)
        silent: dict[str, str] = {}
        tried = await http.probe(http.targets(fresh, direct=False), silent=silent)
        http.unanswered(silent, tried, "web probes (script hosts)")

    async def verify(self, checks: dict[str, list[verify.Candidate]]) -> None:
        """The secrets of verifiable rules seen this scan (new or seen again), checked
        live with their providers once their findings are saved; the result stored with them."""
        urls = verify.base_urls(self.ctx.settings)
        unique = [c for found in checks.values() for c in found]
        results = await verify.verify_all(unique, urls, timeout=min(verify.TIMEOUT, self.ctx.settings.http_timeout))
        by_finding = {fp: verify.best(results[c.key] for c in found) for fp, found in checks.items()}
        await asyncio.to_thread(save_verification, self.ctx, by_finding)
        states = [r.state for r in by_finding.values()]
        self.ctx.outcome(
            self.name,
            "secret verification",
            "ok",
            f"{len(states)} checked: {states.count(verify.VERIFIED)} live, "
            f"{states.count(verify.INVALID)} invalid, {states.count(verify.UNKNOWN)} unknown",
        )

    async def run(self) -> None:
        options = JsOptions(max_size=self.ctx.settings.js_max_size, timeout=self.ctx.settings.http_timeout)
        loop = asyncio.get_running_loop()
        pool = cpu_pool() if self.ctx.backend == "thread" else None  # keep CPU work off the TUI's process

        async def run(data: bytes, url: str) -> Analysis:
            key = hashlib.sha256(data).hexdigest()
            if key in _analysis_cache:
                _analysis_cache.move_to_end(key)
                return _analysis_cache[key]
            result = await loop.run_in_executor(pool, analyse, data, url, options.max_size)
            _analysis_cache[key] = result
            if len(_analysis_cache) > ANALYSIS_CACHE_SIZE:
                _analysis_cache.popitem(last=False)
            return result

        capped: set[str] = set()
        named: set[str] = set()  # host names the scripts mention
        checks: dict[str, list[verify.Candidate]] = {}  # finding fingerprint -> live checks (verify_secrets)
        verifying = bool(self.ctx.setting("verify_secrets"))
        async with BatchSaver[JsFile](partial(save_js, self.ctx), size=50) as saver:
            # pages in a stable order: which scripts a file limit leaves out must not depend on timing
            pages = sorted(self.found.pages, key=lambda page: page.url)
            async for file in discover(pages, self.locate, options, run, self.tick(), skipped=capped):
                if file.error:
                    self.found.failed_scripts.add(file.url)
                    continue
                self.found.scripts.add(file.url)
                text = file.body.decode("utf-8", "replace")
                named |= harvest_names(text, self.found.roots)
                if verifying:
                    for fingerprint, found in verify.candidates_of(file.analysis.secrets, text).items():
                        checks.setdefault(fingerprint, []).extend(found)
                self.ctx.progress.count("js_files")
                self.ctx.progress.count("findings", len(file.analysis.secrets))
                await saver.add(file)
        if capped:
            self.found.failed_scripts |= capped
            self.ctx.outcome(
                self.name,
                "scripts (limit)",
                "failed",
                f"{len(capped)} left out at the limit of {options.max_files} files per scan, e.g. "
                f"{', '.join(sorted(capped)[:2])}; their findings keep what they had",
            )
        if checks:
            await self.verify(checks)
        await self.probe_named(named)
        failed = self.found.failed_scripts - self.found.scripts - capped
        if failed:
            self.ctx.outcome(
                self.name,
                "scripts",
                "failed",
                f"{len(failed)} could not be fetched, e.g. {', '.join(sorted(failed)[:3])}; "
                "their findings keep what they had",
            )
