"""Probe every web target; names that pages, redirects and certificates
reveal are resolved and probed too (one round)."""

from __future__ import annotations

import re
from dataclasses import replace
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from ...scanners.host_pace import HostPace
from ...scanners.http import HttpOptions, HttpTarget, probe, target_url, web_targets
from ...scanners.js import Page
from ...scanners.subdomains import harvest_http, harvest_names
from ..context import ScanContext, Tick
from ..persist import save_http
from .base import ChunkedStep, finished, mark, offset
from .dns import dns_options, resolve_names

SITE_FILES = ("/robots.txt", "/sitemap.xml")
SITE_FILE_BYTES = 2_000_000
MAX_SITEMAPS = 10  # nested sitemaps fetched per file at most
SITEMAP_URL = re.compile(r"(?:<loc>\s*|^sitemap:\s*)(https?://[^\s<]+)", re.IGNORECASE | re.MULTILINE)


class Http(ChunkedStep):
    name = "http"
    inputs = ("addresses", "direct", "urls", "roots", "open_ports", "port_scanned")
    outputs = ("addresses", "cnamed", "pages", "probed")  # revealed names (resolved); pages only when js runs
    chunk_outputs = ("probed", "unsure_hosts", "revealed", "pages")
    saves = ("host", "dnsrecord", "httpendpoint")
    unit_seconds = 0.02  # one probe
    min_units = 10

    def __init__(self, ctx: ScanContext) -> None:
        super().__init__(ctx)
        self.silent: dict[str, str] = {}  # url -> why it gave no answer (the first round)
        self.tried = 0
        self.answered: set[str] = set()  # URLs that gave an HTTP answer (their origins' site files are read)
        self.pace = HostPace()  # one per step run: what a host's answers taught holds for all its probes

    def items(self) -> list[str]:
        return [target_url(t) for t in self.targets()]  # by name: a host's probes mostly share a chunk

    async def work(self, items: list[str]) -> None:
        mine = set(items)
        targets = [t for t in self.targets() if target_url(t) in mine]
        self.tried += await self.probe(targets, self.tick(), reveal=True, silent=self.silent)
        await self.site_files(targets)

    async def site_files(self, targets: list[HttpTarget]) -> None:
        """robots.txt and sitemap.xml of every host that answered (and the
        sitemaps they list on the same origin, two levels): names they mention
        are revealed like the pages'. Not endpoints of the inventory."""
        answered = [t for t in targets if target_url(t) in self.answered]
        one: dict[str, HttpTarget] = {}  # a host's files are read once: on https where it answers
        for t in sorted(answered, key=lambda t: t.scheme != "https"):
            one.setdefault(t.host, t)
        origins = {(t.host, t.port, t.scheme): t for t in one.values()}
        files = [replace(t, path=path) for t in origins.values() for path in SITE_FILES]
        for _ in range(3):  # the files, the sitemaps they list, and the sitemaps of a sitemap index
            if not files:
                return
            nested: dict[str, HttpTarget] = {}
            async for result in probe(files, self.site_options()):
                if result.status != 200 or not result.body:
                    continue
                text = result.body[:SITE_FILE_BYTES].decode("utf-8", "replace")
                names = harvest_names(text, self.found.roots)
                self.found.revealed.update(n for n in names if n not in self.found.addresses)
                for url in SITEMAP_URL.findall(text)[:MAX_SITEMAPS]:
                    parts = urlsplit(url.strip())
                    origin = (
                        parts.hostname or "",
                        parts.port or (443 if parts.scheme == "https" else 80),
                        parts.scheme,
                    )
                    if origin in origins and parts.path not in SITE_FILES:
                        nested[url] = replace(origins[origin], path=parts.path or "/")
            files = list(nested.values())

    def site_options(self) -> HttpOptions:
        settings = self.ctx.settings
        return HttpOptions(
            concurrency=int(self.ctx.setting("http_concurrency")),
            timeout=settings.http_timeout,
            max_body=min(settings.http_max_body, SITE_FILE_BYTES),
            tls_info=False,
            fingerprint=False,
        )

    def delta(self, items: list[str]) -> dict[str, Any]:
        return {**super().delta(items), "_silent": self.silent, "_tried": self.tried}

    def absorb(self, delta: dict[str, Any]) -> None:
        self.silent.update(delta.pop("_silent", {}))
        self.tried += int(delta.pop("_tried", 0))
        super().absorb(delta)

    async def finish(self) -> None:
        self.unanswered(self.silent, self.tried, "web probes")
        # Names the first round's answers revealed (unknown until then) get one
        # round of their own. `revealed` is checkpointed, so a resume knows
        # them even after they were added to `addresses`.
        fresh = sorted(n for n in self.found.revealed if n in self.ctx.scope)
        if fresh:
            new = [n for n in fresh if n not in self.found.addresses]
            self.ctx.progress.count("subdomains", len(new))
            for name in new:
                self.found.addresses[name] = set()
            await resolve_names(self.ctx, fresh, dns_options(self.ctx), key="dns:")
            silent: dict[str, str] = {}
            tried = await self.probe(self.targets(fresh, direct=False), silent=silent)
            self.unanswered(silent, tried, "web probes (revealed names)")

    def targets(self, names: list[str] | None = None, direct: bool = True) -> list[HttpTarget]:
        found, scope = self.found, self.ctx.scope

        def ports_of(address: str) -> dict[int, str] | None:  # None: unknown, so the usual web ports are tried
            return found.open_ports.get(address, {}) if address in found.port_scanned else None

        targets = []
        for name in sorted(found.addresses if names is None else names):
            addresses = found.addresses.get(name, ())
            if name not in scope:
                continue
            for address in sorted(addresses)[:1]:  # one address per name is enough to probe
                targets += web_targets(name, address, ports_of(address))
        if not direct:
            return targets
        for address in sorted(found.direct):
            targets += web_targets(address, address, ports_of(address))
        for url in found.urls:
            parts = urlsplit(url)
            host = parts.hostname or ""
            port = parts.port or (443 if parts.scheme == "https" else 80)
            targets.append(HttpTarget(host, port, parts.scheme, self.ctx.address_of(host), parts.path or "/"))
        unique = {(t.host, t.port, t.scheme, t.path): t for t in targets}
        return list(unique.values())

    async def probe(
        self, targets: list[HttpTarget], progress: Tick | None = None, reveal: bool = False, *, silent: dict[str, str]
    ) -> int:
        """Probe and save (less what a resumed step already probed); with
        `reveal`, in-zone names the answers mention that were not known go to
        `found.revealed`. Those that gave no answer go to `silent`; returns how
        many were probed."""
        settings = self.ctx.settings
        options = HttpOptions(
            concurrency=int(self.ctx.setting("http_concurrency")),  # a profile may set it
            timeout=settings.http_timeout,
            max_body=settings.http_max_body,
            favicon=True,
            pace=self.pace,
        )
        keep_pages = "js" in self.ctx.modules
        done = finished(self.ctx)
        todo = [t for t in targets if target_url(t) not in done]
        if progress is not None and targets:
            progress(len(targets) - len(todo), len(targets))  # the whole total before the first answer
        async with self.saver(partial(save_http, self.ctx), 100) as batch:
            async for result in probe(todo, options, offset(progress, len(targets) - len(todo))):
                self.show_pace()
                mark(self.ctx, result.url)
                await batch.add(result)
                if result.definitive:
                    self.found.probed.add(result.url)
                else:
                    silent[result.url] = result.error or "no answer"
                    self.found.unsure_hosts.add(result.host)
                if result.status is None:
                    continue
                self.answered.add(result.url)
                self.ctx.progress.count("endpoints")
                if reveal:
                    names = {f.name for f in harvest_http(result, self.found.roots)}
                    self.found.revealed.update(n for n in names if n not in self.found.addresses)
                if keep_pages and result.status == 200 and "html" in result.content_type and result.body:
                    page = Page(result.final_url or result.url, result.host, result.body.decode("utf-8", "replace"))
                    self.found.pages.append(page)
        return len(todo)

    def show_pace(self) -> None:
        """Hosts slowed down because they pushed back (429/503, timeouts), in the live counters."""
        counters, slowed = self.ctx.progress.counters, self.pace.slowed()
        if slowed:
            counters["http_slowed"] = slowed
        else:
            counters.pop("http_slowed", None)

    def unanswered(self, silent: dict[str, str], tried: int, source: str) -> None:
        if silent:
            reasons = sorted(set(silent.values()))
            self.ctx.outcome(
                self.name,
                source,
                "failed",
                f"{len(silent)} of {tried} gave no answer ({', '.join(reasons[:3])}), e.g. "
                f"{', '.join(sorted(silent)[:3])}; their endpoints keep what they had",
            )
