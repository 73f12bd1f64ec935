"""Subdomain discovery: certificate transparency, DNS brute force, TLS SANs,
external tools, and recursion into sub-zones.

`discover()` runs every enabled source concurrently and yields `Found(name,
source)` for in-scope names as they turn up; a name comes once per source
that found it ("ct", "wordlist", "san", "subfinder", "amass"), plus
`Found(zone, "wildcard")` when a zone answers for any label. Whatever a source
finds is fed back: resolved names are handshaken for their certificate SANs,
and names that look like zones (the base of a wildcard certificate, an empty
non-terminal, the parent of a deeper name, an environment or region label)
are brute forced one level down, within `recursive_depth` and `max_names`.

Every brute-forced zone is tested for a wildcard first (a few random labels);
answers equal to the wildcard's are dropped, so `*.dyn.example.com` does not
turn into thousands of fake hosts.

Untrusted input is bounded: the CT answer by bytes and wall time (parsed by
a linear-time scan that salvages names from truncated or broken JSON),
external tools by time and output size, and every name by the hostname
grammar. `harvest_names` and `cert_names` are pure and public so the pipeline
can run them on HTTP bodies, redirects and certificates it fetched itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import signal
import string
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from importlib import resources
from urllib.parse import quote

import httpx
import re2

from assetmon_tui.core.sanitize import clean_text

from .dns import DnsOptions, DnsResult, make_resolver, normalise, resolve_one
from .http import CertInfo, HttpResult, fetch_certificate

SOURCES = ("ct", "wordlist", "san", "subfinder", "amass", "html", "js", "redirect", "header", "wildcard")
TOOLS = ("subfinder", "amass")
_MAX_NAME = 253
_TOOL_OUTPUT_LIMIT = 50_000_000
_LABEL = re2.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
# crt.sh rows: pull the two name fields out of the raw text, so a truncated or
# broken document still gives up what it holds.
# Python's `re` here, as RE2 is several times slower on big text: the pattern
# is linear anyway (the string body is the unrolled `[^"\\]*(?:\\.[^"\\]*)*`,
# where every character can be matched in one way only, so nothing backtracks
# more than once over the text).
_CT_FIELD = re.compile(r'"(?:name_value|common_name)"\s*:\s*"([^"\\]*(?:\\.[^"\\]*)*)"')
# Labels that usually name a zone of their own (dev.example.com has hosts below).
ZONE_WORDS = frozenset(
    [
        "dev",
        "development",
        "test",
        "testing",
        "qa",
        "uat",
        "stg",
        "stage",
        "staging",
        "preprod",
        "prod",
        "production",
        "sandbox",
        "demo",
        "int",
        "internal",
        "corp",
        "intranet",
        "lab",
        "labs",
        "perf",
        "sit",
        "dmz",
        "cloud",
        "aws",
        "azure",
        "gcp",
        "k8s",
        "kube",
        "apps",
        "svc",
        "services",
        "eu",
        "us",
        "uk",
        "de",
        "fr",
        "apac",
        "emea",
        "amer",
        "na",
        "asia",
        "dyn",
        "dynamic",
    ]
)


@dataclass
class SubdomainOptions:
    ct_url: str = "https://crt.sh/"  # settings.ct_url (ASSETMON_CT_URL)
    wordlist_path: str | None = None  # None: the bundled data/subdomains.txt
    brute: bool = True
    ct: bool = True
    san: bool = True  # TLS handshakes to resolved names, for certificate SANs
    tools: tuple[str, ...] = TOOLS  # external tools used when found on PATH
    recursive_depth: int = 1  # sub-zones this many labels below a root are brute forced too
    recursive_words: int = 1000  # head of the wordlist used under sub-zones
    max_names: int = 50_000  # unique names yielded at most
    ct_timeout: float = 20.0  # whole CT exchange, seconds
    ct_max_bytes: int = 20_000_000
    tool_timeout: float = 300.0
    tls_ports: tuple[int, ...] = (443,)
    tls_timeout: float = 3.0
    tls_concurrency: int = 50
    max_tls_hosts: int = 5000
    wildcard_probes: int = 3
    dns: DnsOptions = field(default_factory=lambda: DnsOptions(rtypes=("A", "AAAA")))
    resume: Resume = field(default_factory=lambda: Resume())  # what an interrupted run already did


@dataclass
class Resume:
    """How far the slow sources got, so a resumed run skips what is done:
        per brute-forced zone, how many words (from the list's start) are all
        tried; the roots whose CT search ended; names found but not yet taken by
        the caller (they belong to the tried words); names already followed up
    (resolved, certificate read), which a resumed run does not contact again.
    The run updates it in place;
        the caller discards a name from `pending` when it has taken it."""

    brute: dict[str, int] = field(default_factory=dict)
    ct: set[str] = field(default_factory=set)
    pending: set[str] = field(default_factory=set)
    followed: set[str] = field(default_factory=set)  # names resolved and their certificates read


@dataclass
class Found:
    name: str
    source: str
    dns: DnsResult | None = None  # when the source resolved the name itself (wordlist, wildcard)


# ---- pure helpers -------------------------------------------------------------


def valid_name(name: str) -> bool:
    if not name or len(name) > _MAX_NAME or "." not in name:
        return False
    labels = name.split(".")
    if labels[-1].isdigit():  # an IPv4 address, not a name
        return False
    return all(_LABEL.search(label) for label in labels)


def _clean_name(raw: str) -> str | None:
    """Lower-case, no trailing dot, no leading `*.`; None unless a host name."""
    name = raw.strip().lower().rstrip(".")
    while name.startswith("*."):
        name = name[2:]
    name = name.lstrip(".")
    return name if valid_name(name) else None


def _under(name: str, domains: Iterable[str]) -> bool:
    return any(name == d or name.endswith("." + d) for d in domains)


# Escapes that hide the `//` in front of a host name inside JS strings and URLs.
_UNESCAPE = (
    ("\\u002f", "/"),
    ("\\x2f", "/"),
    ("%2f", "/"),
    ("\\/", "/"),
    ("%3a", ":"),
    ("\\u003a", ":"),
    ("&#x2f;", "/"),
    ("&#47;", "/"),
    ("\\n", " "),
    ("\\t", " "),
    ("\\r", " "),
)


_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.*")
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")


def harvest_names(text: str, domains: list[str]) -> set[str]:
    """Host names under `domains` mentioned anywhere in `text` (HTML, JS,
    headers, URLs, tool output): lower-case, without `*.`, each a valid host
    name. Linear time: each occurrence of a root is found by `str.find` and
    widened to the left over at most 253 host-name characters."""
    roots = sorted({d for d in (normalise(x) for x in domains) if d})
    if not text or not roots:
        return set()
    text = text.lower()
    for escaped, plain in _UNESCAPE:
        if escaped in text:
            text = text.replace(escaped, plain)
    size = len(text)
    tokens: set[str] = set()
    for root in roots:
        at = text.find(root)
        while at != -1:
            end = at + len(root)
            after = text[end] if end < size else ""
            # acme.testing, acme.test.evil.com: not this root
            if after not in _NAME_CHARS and not (after == "." and end + 1 < size and text[end + 1] in _NAME_CHARS):
                start = at
                while start > 0 and end - start <= _MAX_NAME + 2 and text[start - 1] in _HOST_CHARS:
                    start -= 1
                if not (start > 0 and text[start - 1] in _HOST_CHARS):  # else: a run too long to be a name
                    tokens.add(text[start:end])
            at = text.find(root, end)
    out: set[str] = set()
    for token in tokens:
        name = _clean_name(token.lstrip(".-_"))
        if name and _under(name, roots):
            out.add(name)
    return out


def cert_names(cert_info: CertInfo | None, domains: list[str] | None = None) -> set[str]:
    """DNS names a certificate covers (SANs and subject CN), lower-case,
    without `*.`; only those under `domains` when given. `cert_info` is
    `HttpResult.tls` / `scanners.http.cert_info()`."""
    if not cert_info:
        return set()
    raw = [*cert_info.get("sans", ()), cert_info.get("subject_cn", "")]
    names = {n for n in (_clean_name(str(r)) for r in raw) if n}
    if domains is not None:
        roots = [normalise(d) for d in domains]
        names = {n for n in names if _under(n, roots)}
    return names


def _wildcard_bases(raw_names: Iterable[str]) -> set[str]:
    """`*.dyn.example.com` -> dyn.example.com: a wildcard certificate names a zone."""
    out = set()
    for raw in raw_names:
        raw = str(raw).strip().lower()
        if raw.startswith("*."):
            base = _clean_name(raw)
            if base:
                out.add(base)
    return out


def harvest_http(result: HttpResult, domains: list[str]) -> list[Found]:
    """Names one HTTP probe reveals (a `scanners.http.HttpResult`): its
    certificate ("san"), redirect Locations ("redirect"), headers such as CSP
    ("header"), and its body ("html" or "js")."""
    found: dict[str, str] = {}

    def add(names: Iterable[str], source: str) -> None:
        for n in names:
            found.setdefault(n, source)

    add(cert_names(getattr(result, "tls", None), domains), "san")
    add(harvest_names("\n".join(getattr(result, "redirects", []) or []), domains), "redirect")
    headers = getattr(result, "headers", {}) or {}
    add(harvest_names("\n".join(v for k, v in headers.items() if k not in ("date", "set-cookie")), domains), "header")
    body = getattr(result, "body", b"") or b""
    if body:
        ctype = (getattr(result, "content_type", "") or "").lower()
        source = "js" if "javascript" in ctype or "ecmascript" in ctype else "html"
        add(harvest_names(body.decode("utf-8", "replace"), domains), source)
    host = getattr(result, "host", "")
    return [Found(n, s) for n, s in sorted(found.items()) if n != host]


def load_wordlist(path: str | None = None) -> list[str]:
    """Words (labels, or dotted label pairs), deduplicated, in file order."""
    if path:
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    else:
        text = resources.files("assetmon_tui").joinpath("data", "subdomains.txt").read_text("utf-8")
    words: dict[str, None] = {}
    for line in text.splitlines():
        word = line.strip().lower().strip(".")
        if word and not word.startswith("#") and all(_LABEL.search(p) for p in word.split(".")):
            words.setdefault(word, None)
    return list(words)


# ---- sources -----------------------------------------------------------------------


def _ct_names_in(text: str) -> list[str]:
    """Unique raw names in crt.sh JSON text (complete or not), in order."""
    out: dict[str, None] = {}
    seen: set[str] = set()
    for raw in _CT_FIELD.findall(text):
        if raw in seen:  # crt.sh repeats rows (precertificate + certificate, renewals)
            continue
        seen.add(raw)
        for part in raw.split("\\n"):
            if "\\" in part:
                try:
                    part = json.loads(f'"{part}"')
                except ValueError:
                    continue
            for value in part.split("\n"):
                if value:
                    out.setdefault(value, None)
    return list(out)


async def ct_search(domain: str, options: SubdomainOptions) -> list[str]:
    """Raw names (may start with `*.`) from a crt.sh-style JSON search of
    `%.domain`. Capped by options.ct_max_bytes and options.ct_timeout; a
    failure, timeout or garbage answer gives whatever names arrived, never
    an exception."""
    base = options.ct_url.rstrip("?")
    url = f"{base}{'&' if '?' in base else '?'}q={quote('%.' + domain, safe='.')}&output=json"
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(options.ct_timeout):
            async with (
                httpx.AsyncClient(
                    trust_env=False,
                    timeout=options.ct_timeout,
                    follow_redirects=False,
                    headers={"User-Agent": "assetmon/0.1", "Accept": "application/json"},
                ) as c,
                c.stream("GET", url) as response,
            ):
                if response.status_code != 200:
                    return []
                async for chunk in response.aiter_bytes():
                    room = options.ct_max_bytes - size
                    chunks.append(chunk[:room])
                    size += min(len(chunk), room)
                    if size >= options.ct_max_bytes:
                        break
    except (TimeoutError, httpx.HTTPError, OSError, ValueError):
        pass  # keep what arrived
    return _ct_names_in(b"".join(chunks).decode("utf-8", "replace"))


def _tool_command(tool: str, path: str, domain: str) -> list[str]:
    if tool == "subfinder":
        return [path, "-d", domain, "-silent"]
    if tool == "amass":
        return [path, "enum", "-passive", "-nocolor", "-d", domain]
    raise ValueError(f"unknown tool {tool!r}")


async def run_tool(tool: str, domain: str, timeout: float) -> list[str]:
    """Names under `domain` printed by an external tool on PATH ([] when the
    tool is missing, fails or times out). Argument list, never a shell."""
    path = shutil.which(tool)
    if path is None:
        return []
    try:
        proc = await asyncio.create_subprocess_exec(
            *_tool_command(tool, path, domain),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError:
        return []
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            stdout = proc.stdout
            assert stdout is not None  # stdout=PIPE
            while size < _TOOL_OUTPUT_LIMIT:
                chunk = await stdout.read(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
    except TimeoutError:
        pass
    finally:
        if proc.returncode is None:  # the whole group: a wrapper script's children too
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await proc.wait()
    text = b"".join(chunks).decode("utf-8", "replace")
    return sorted(harvest_names(clean_text(text, len(text) + 1, single_line=False), [domain]))


# ---- the run ----------------------------------------------------------------------


def _answers(result: DnsResult) -> frozenset[str]:
    return frozenset(r.value for r in result.records if r.rtype in ("A", "AAAA", "CNAME"))


def _exists(result: DnsResult) -> bool:
    return result.status in ("ok", "nodata") or bool(result.records)


@dataclass
class _Wildcard:
    answers: frozenset[str] = frozenset()
    nodata: bool = False  # random labels get NOERROR without data

    @property
    def active(self) -> bool:
        return bool(self.answers) or self.nodata

    def covers(self, result: DnsResult) -> bool:
        if result.status == "nodata" and not result.records:
            return self.nodata
        answers = _answers(result)
        return bool(answers) and bool(self.answers) and answers <= self.answers


class _Run:
    def __init__(
        self,
        domains: list[str],
        options: SubdomainOptions,
        in_scope: Callable[[str], bool],
        progress: Callable[[int, int], None] | None,
    ):
        self.roots = domains
        self.options = options
        self.in_scope = in_scope
        self.progress = progress
        self.resolver = make_resolver(options.dns)
        self.rtypes = tuple(options.dns.rtypes) or ("A", "AAAA")
        self.dns_slots = asyncio.Semaphore(max(1, options.dns.concurrency))
        self.tls_slots = asyncio.Semaphore(max(1, options.tls_concurrency))
        # names found; a task's exception; None when the last task may have ended
        self.out: asyncio.Queue[Found | BaseException | None] = asyncio.Queue()
        self.tasks: set[asyncio.Task[None]] = set()
        self.names: dict[str, set[str]] = {}  # name -> sources yielded
        self.known: set[str] = set()  # seeds: not yielded, still followed up
        self.zones: set[str] = set()
        self.wildcard_checks: dict[str, asyncio.Future[_Wildcard]] = {}
        self.resolved: set[str] = set()
        self.tls_done: set[tuple[str, int, str]] = set()
        self.tls_hosts = 0
        self.words: list[str] | None = None
        self.done = 0
        self.total = 0
        self.full = False

    # -- bookkeeping
    def spawn(self, coro: Coroutine[object, object, None]) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.out.put_nowait(task.exception())
        if not self.tasks:
            self.out.put_nowait(None)

    def plan(self, n: int) -> None:
        self.total += n
        self._report()

    def tick(self, n: int = 1) -> None:
        self.done += n
        self._report()

    def _report(self) -> None:
        if self.progress:
            self.progress(min(self.done, self.total), self.total)

    def root_of(self, name: str) -> str | None:
        best = None
        for root in self.roots:
            if (name == root or name.endswith("." + root)) and (best is None or len(root) > len(best)):
                best = root
        return best

    def depth(self, name: str) -> int:
        root = self.root_of(name)
        return name.count(".") - root.count(".") if root else -1

    # -- intake
    def emit(self, raw: str, source: str, result: DnsResult | None = None) -> None:
        name = _clean_name(raw)
        if not name or self.root_of(name) is None or not self.in_scope(name):
            return
        sources = self.names.get(name)
        if sources is None:
            if len(self.names) >= self.options.max_names:
                self.full = True
                return
            sources = self.names[name] = set()
            if name not in self.known:
                self.follow(name, result)
        if source in sources or (name in self.known and source != "wildcard"):
            return
        sources.add(source)
        self.options.resume.pending.add(name)
        self.out.put_nowait(Found(name, source, result))

    def seed(self, name: str) -> None:
        name = _clean_name(name) or ""
        if name and self.root_of(name) and name not in self.known:
            self.known.add(name)
            if name in self.options.resume.followed:  # an interrupted run did resolve it and read its certificate
                self.resolved.add(name)
                self.zones_around(name)
            else:
                self.follow(name, None)

    def follow(self, name: str, result: DnsResult | None) -> None:
        """A new name: look for zones around it, resolve it, read its certificate."""
        self.zones_around(name)
        if result is None:
            if self.options.san or self.options.brute:
                self.spawn(self._resolve(name))
        else:
            self.after_resolve(name, result)

    def zones_around(self, name: str) -> None:
        root = self.root_of(name)
        assert root is not None  # emit() and seed() follow in-scope names only
        labels = name.split(".")
        for i in range(1, len(labels) - root.count(".") - 1):  # intermediate parents
            self.zone(".".join(labels[i:]), "parent")
        if name != root and labels[0] in ZONE_WORDS:
            self.zone(name, "label")

    def after_resolve(self, name: str, result: DnsResult) -> None:
        self.resolved.add(name)
        if result.status == "nodata" and not result.records:
            self.zone(name, "empty non-terminal")
        if self.options.san and result.addresses:
            self.spawn(self._certificates(name, result.addresses))
        else:
            self.options.resume.followed.add(name)

    def zone(self, zone: str, reason: str) -> None:
        if not self.options.brute or zone in self.zones or self.full:
            return
        depth = self.depth(zone)
        if depth < 0 or depth > self.options.recursive_depth or not self.in_scope(zone):
            return
        self.zones.add(zone)
        words = self.wordlist() if depth == 0 else self.wordlist()[: max(0, self.options.recursive_words)]
        if words:
            self.spawn(self._brute(zone, words))

    def wordlist(self) -> list[str]:
        if self.words is None:
            self.words = load_wordlist(self.options.wordlist_path)
        return self.words

    # -- DNS
    async def lookup(self, name: str) -> DnsResult:
        async with self.dns_slots:
            return await resolve_one(self.resolver, name, self.rtypes)

    async def _resolve(self, name: str) -> None:
        if name in self.resolved:
            return
        self.resolved.add(name)
        self.after_resolve(name, await self.lookup(name))

    def wildcard(self, zone: str) -> asyncio.Future[_Wildcard]:
        """The zone's wildcard, detected once per run (shared by every brute
        force that lands in the zone, dotted wordlist entries included)."""
        future = self.wildcard_checks.get(zone)
        if future is None:
            future = self.wildcard_checks[zone] = asyncio.ensure_future(self._detect_wildcard(zone))
        return future

    async def _detect_wildcard(self, zone: str) -> _Wildcard:
        rng = random.SystemRandom()
        labels = [
            "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(14))
            for _ in range(max(1, self.options.wildcard_probes))
        ]
        self.plan(len(labels))
        results = await asyncio.gather(*(self.lookup(f"{label}.{zone}") for label in labels))
        self.tick(len(labels))
        wildcard = _Wildcard()
        answers: set[str] = set()
        for result in results:
            if result.status == "ok" or result.records:
                answers |= _answers(result)
            elif result.status == "nodata":
                wildcard.nodata = True
        wildcard.answers = frozenset(answers)
        if wildcard.active:
            self.emit(zone, "wildcard", results[0])
        return wildcard

    async def _brute(self, zone: str, words: list[str]) -> None:
        wildcard = await self.wildcard(zone)  # first: it decides what counts
        resume = self.options.resume
        start = min(resume.brute.get(zone, 0), len(words))
        self.plan(len(words))
        self.tick(start)
        todo = iter(enumerate(words[start:], start))
        finished: set[int] = set()

        def tried(index: int) -> None:
            """Advance the zone's mark over the words tried without a gap."""
            finished.add(index)
            mark = resume.brute.get(zone, start)
            while mark in finished:
                finished.discard(mark)
                mark += 1
            resume.brute[zone] = mark

        async def worker() -> None:
            for index, word in todo:
                if self.full:
                    return
                name = f"{word}.{zone}"
                result = await self.lookup(name)
                self.tick()
                tried(index)
                if not _exists(result) or wildcard.covers(result):
                    continue
                if "." in word:  # api.dev: dev.<zone> may be a wildcard zone of its own
                    parent = name.split(".", 1)[1]
                    if (await self.wildcard(parent)).covers(result):
                        continue
                self.resolved.add(name)
                self.emit(name, "wordlist", result)

        workers = min(len(words), max(1, self.options.dns.concurrency))
        await asyncio.gather(*(worker() for _ in range(workers)))

    # -- TLS
    async def _certificates(self, name: str, addresses: list[str]) -> None:
        await self._read_certificates(name, addresses)
        self.options.resume.followed.add(name)  # after the names its certificate gave were emitted

    async def _read_certificates(self, name: str, addresses: list[str]) -> None:
        if self.tls_hosts >= self.options.max_tls_hosts:
            return
        self.tls_hosts += 1
        for port in self.options.tls_ports:
            for address in addresses[:2]:
                key = (address, port, name)
                if key in self.tls_done:
                    continue
                self.tls_done.add(key)
                async with self.tls_slots:
                    info = await fetch_certificate(address, port, name, self.options.tls_timeout)
                if info:
                    self.names_from_cert(info)
                    break  # one certificate per port is enough

    def names_from_cert(self, info: CertInfo) -> None:
        for base in _wildcard_bases(info.get("sans", ())):
            self.emit(base, "san")
            self.zone(base, "wildcard certificate")
        for name in cert_names(info):
            self.emit(name, "san")

    # -- sources
    async def _ct(self, domain: str) -> None:
        self.plan(1)
        raw = await ct_search(domain, self.options)
        self.tick()
        for name in raw:
            self.emit(name, "ct")
        for base in _wildcard_bases(raw):
            self.zone(base, "wildcard certificate")
        self.options.resume.ct.add(domain)

    async def _tool(self, tool: str, domain: str) -> None:
        self.plan(1)
        names = await run_tool(tool, domain, self.options.tool_timeout)
        self.tick()
        for name in names:
            self.emit(name, tool)

    def start(self, seeds: Iterable[str | Found]) -> None:
        for item in seeds:
            self.seed(item.name if isinstance(item, Found) else str(item))
        for zone in list(self.options.resume.brute):  # zones an interrupted run had started
            self.zone(zone, "resumed")
        for domain in self.roots:
            if self.options.ct and self.options.ct_url and domain not in self.options.resume.ct:
                self.spawn(self._ct(domain))
            for tool in self.options.tools:
                if shutil.which(tool):
                    self.spawn(self._tool(tool, domain))
            if self.options.brute:
                self.zone(domain, "root")
        if not self.tasks:
            self.out.put_nowait(None)


async def discover(
    domains: list[str],
    options: SubdomainOptions,
    in_scope: Callable[[str], bool],
    progress: Callable[[int, int], None] | None = None,
    seeds: Iterable[str | Found] = (),
) -> AsyncIterator[Found]:
    """Yield `Found` for in-scope names under `domains` as the sources find
    them (one per (name, source) pair). `seeds`: names the caller already
    knows (e.g. harvested from HTTP bodies): not yielded again, but followed
    up like found ones (zones, SANs), so calling `discover(..., seeds=new,
    options with ct=False)` after the HTTP stage runs the recursion for them."""
    roots = list(dict.fromkeys(n for n in (normalise(d) for d in domains) if valid_name(n)))
    if not roots:
        return
    run = _Run(roots, options, in_scope, progress)
    run.start(seeds)
    try:
        while True:
            item = await run.out.get()
            if item is None:
                if not run.tasks and run.out.empty():
                    return
                continue
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        tasks: list[asyncio.Future[None] | asyncio.Future[_Wildcard]] = [*run.tasks, *run.wildcard_checks.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
