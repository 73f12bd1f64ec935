"""JavaScript discovery and analysis for in-scope web pages.

Scripts come from the HTML pages the HTTP stage saw (`<script src>` and
inline scripts), from scripts (webpack/Vite chunk maps, dynamic imports) and
from source maps (their original sources). Each body is analysed once per
content hash: secrets, API endpoints and names to harvest. The analysis is a
plain picklable function, so the caller can run it in a process pool.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ..secrets.endpoints import Endpoint, extract_endpoints
from ..secrets.engine import SecretFinding, scan_bytes
from ..secrets.jsdiscovery import chunk_urls, inline_scripts, script_urls, sourcemap_sources, sourcemap_url
from .http import HttpOptions, HttpTarget, make_client, probe_one

if TYPE_CHECKING:
    import httpx


@dataclass
class JsOptions:
    max_size: int = 10_000_000  # bytes per file
    max_files: int = 500  # per scan: chunk maps can be huge
    concurrency: int = 20
    timeout: float = 15.0
    sourcemaps: bool = True


@dataclass
class Page:
    """An HTML page the HTTP stage fetched."""

    url: str
    host: str
    html: str


@dataclass
class Analysis:
    secrets: list[SecretFinding] = field(default_factory=list)
    endpoints: list[Endpoint] = field(default_factory=list)
    chunks: list[str] = field(default_factory=list)
    sourcemap: str | None = None


@dataclass
class JsFile:
    url: str  # script URL, page URL#inline-N, or map URL#source-name
    host: str
    sha256: str
    size: int
    body: bytes
    analysis: Analysis
    error: str = ""


def analyse(data: bytes, url: str, max_size: int) -> Analysis:
    """CPU-bound and picklable: secrets, endpoints, chunk and map references."""
    secrets = _redact_each_other(scan_bytes(data, url, max_size=max_size))
    text = data.decode("utf-8", "replace")
    return Analysis(secrets, extract_endpoints(text, url), chunk_urls(text, url), sourcemap_url(text, url))


def _redact_each_other(secrets: list[SecretFinding]) -> list[SecretFinding]:
    """A finding's context lines redact its own value; neighbours (an AWS key id
    next to its secret) must not show there in full either."""
    values = {f.secret: f.redacted for f in secrets if f.secret}
    out = []
    for finding in secrets:
        context = []
        for line in finding.context:
            for value, redacted in values.items():
                line = line.replace(value, redacted)
            context.append(line)
        out.append(replace(finding, context=tuple(context)))
    return out


Analyse = Callable[[bytes, str], Awaitable[Analysis]]
Locate = Callable[[str], tuple[str, int, str, str | None] | None]  # url -> (host, port, scheme, address) if in scope


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def discover(
    pages: list[Page],
    locate: Locate,
    options: JsOptions,
    run: Analyse,
    progress: Callable[[int, int], None] | None = None,
    skipped: set[str] | None = None,
) -> AsyncIterator[JsFile]:
    """Fetch and analyse every script reachable from `pages`; yield each file
    (inline scripts and source-map sources included). Scripts left out by
    `max_files` go to `skipped`: nothing is known about them this time."""
    http = HttpOptions(concurrency=options.concurrency, timeout=options.timeout, max_body=options.max_size)
    queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()  # (url, kind)
    seen: set[str] = set()
    results: asyncio.Queue[JsFile | None] = asyncio.Queue()
    done = total = 0

    def enqueue(url: str, kind: str = "script") -> None:
        nonlocal total
        url = url.split("#", 1)[0]
        if url in seen or locate(url) is None:
            return
        if len(seen) >= options.max_files:
            if skipped is not None:
                skipped.add(url)
            return
        seen.add(url)
        total += 1
        queue.put_nowait((url, kind))

    async def analysed(url: str, host: str, data: bytes) -> JsFile:
        return JsFile(url, host, _sha(data), len(data), data, await run(data, url))

    inline: list[tuple[str, str, bytes]] = []
    for page in pages:
        for src in script_urls(page.html, page.url):
            enqueue(src)
        for n, code in enumerate(inline_scripts(page.html), 1):
            inline.append((f"{page.url}#inline-{n}", page.host, code.encode()))
    for url, host, data in inline:
        await results.put(await analysed(url, host, data))

    async def fetch(client: httpx.AsyncClient, url: str, kind: str) -> None:
        nonlocal done
        located = locate(url)
        assert located is not None  # enqueue() queues in-scope URLs only
        host, port, scheme, address = located
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        response = await probe_one(client, HttpTarget(host, port, scheme, address, path or "/"), http)
        if response.status != 200 or response.truncated or not response.body:
            why = response.error or ("too large" if response.truncated else f"status {response.status}")
            await results.put(JsFile(url, host, "", 0, b"", Analysis(), error=why))
        elif kind == "map":
            text = response.body.decode("utf-8", "replace")
            for name, content in sourcemap_sources(text, max_bytes=options.max_size):
                await results.put(await analysed(f"{url}#{name}", host, content.encode()))
        else:
            file = await analysed(url, host, response.body)
            for chunk in file.analysis.chunks:
                enqueue(chunk)
            if options.sourcemaps and file.analysis.sourcemap and not file.analysis.sourcemap.startswith("data:"):
                enqueue(file.analysis.sourcemap, "map")
            await results.put(file)
        done += 1
        if progress:
            progress(done, total)

    async def worker(client: httpx.AsyncClient) -> None:
        while True:
            url, kind = await queue.get()
            try:
                await fetch(client, url, kind)
            except Exception as exc:  # one bad file never stops the others
                await results.put(JsFile(url, "", "", 0, b"", Analysis(), error=f"{type(exc).__name__}: {exc}"))
            finally:
                queue.task_done()

    async def drive() -> None:
        async with make_client(http) as client:
            workers = [asyncio.create_task(worker(client)) for _ in range(options.concurrency)]
            try:
                await queue.join()
            finally:
                for w in workers:
                    w.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
        await results.put(None)

    driver = asyncio.create_task(drive())
    try:
        while (item := await results.get()) is not None:
            yield item
        await driver
    finally:
        driver.cancel()
