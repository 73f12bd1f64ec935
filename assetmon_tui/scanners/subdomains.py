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

Every brute-forced zone is tested for a wildcard first (a few random labels)
and the test fails closed, so no source invents names: a stable wildcard's
answers (the same addresses, or the same CNAME target, for every probe) are
dropped, so `*.dyn.example.com` does not turn into thousands of fake hosts;
a zone whose random labels get varying answers, or whose probes get no
answer after a few tries, is not brute forced at all.

Lookups (brute force, wildcard probes, names other sources found) go through
the brute force's own resolver, scanners/udp_resolver.py: one UDP socket per
nameserver, hand-built queries, answers matched by id and question, a pace
per nameserver (`dns_rate`, adapted to timeouts and SERVFAIL, told through
`dns_pace`), the dns step's too; its results are dnspython's.

Scope comes before traffic: nothing out of scope is looked up or
handshaken, and nothing is sent below a zone the scope excludes whole.
Each source says how it fared (`SubdomainOptions.report`): ok, failed (its
names may be incomplete) or skipped, with a reason.

Untrusted input is bounded: the CT answer by bytes and wall time (parsed by
a linear-time scan that salvages names from truncated or broken JSON),
external tools by time and output size, and every name by the hostname
grammar (ASCII only: anything else drops the name, never the scan).
`harvest_names` and `cert_names` are pure and public so the pipeline can run
them on HTTP bodies, redirects and certificates it fetched itself.
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
from typing import TYPE_CHECKING
from urllib.parse import quote

import httpx
import re2

from assetmon_tui.core.sanitize import clean_text

from . import sources
from .dns import PACE_EVERY, DnsOptions, DnsRecord, DnsResult, host_port, normalise
from .http import CertInfo, HttpResult, fetch_certificate
from .udp_resolver import ServerStats, UdpResolver

if TYPE_CHECKING:  # passive.py imports this module
    from .passive import PassiveSource

SOURCES = (
    "ct", "wordlist", "san", "subfinder", "amass", "html", "js", "redirect", "header", "wildcard",
    "mx", "ns", "srv", "spf", "dmarc", "axfr", "ptr", "permutation",
    "securitytrails", "virustotal", "shodan", "censys", "chaos",  # scanners/passive.py PROVIDERS
)  # fmt: skip
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
    words: list[str] | None = None  # the words tried under the roots (a chunk's share); None: the wordlist
    follow: bool = True  # follow found names up (their zones, addresses, certificates); a chunk does not
    ct: bool = True
    # The sources of scanners/sources.py, off unless asked for (the scan's step asks):
    records: bool = False  # MX, NS, SRV, SPF and DMARC names of every zone
    axfr: bool = False  # zone transfers from the zones' name servers and the nameservers given
    axfr_timeout: float = 5.0
    ptr: bool = False  # reverse DNS of the addresses met (and of `addresses` given to discover)
    max_ptr: int = 4096
    permutations: int = 0  # candidates from the names found, for the whole run (0: none)
    spf_depth: int = 3  # SPF includes followed (in scope only)
    # Passive API sources that take keys (scanners/passive.py `configured()`), each asked once
    # per root; one without keys is reported skipped. Empty: none (the default).
    passive: tuple[PassiveSource, ...] = ()
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
    wildcard_probes: int = 5  # random labels per zone: enough to tell a stable wildcard from a varying one
    wildcard_rounds: int = 3  # tries of a probe that got no answer (timeout, SERVFAIL) before the zone is skipped
    dns: DnsOptions = field(default_factory=lambda: DnsOptions(rtypes=("A", "AAAA")))
    # Queries a second to each nameserver at most (settings.dns_rate; 0: no ceiling), adapted
    # down on timeouts and SERVFAIL and back up (scanners/udp_resolver.py); shared through
    # Redis with every process asking the same nameserver when dns.share_url is set.
    dns_rate: float = 0.0
    # dns_pace(stats): each nameserver's counters and the rate in use, about four
    # times a second while lookups run and once at the end.
    dns_pace: Callable[[list[ServerStats]], None] | None = None
    resume: Resume = field(default_factory=lambda: Resume())  # what an interrupted run already did
    # report(source, status, reason), once per source when it ends: source "ct <root>",
    # "wordlist <zone>" or "<tool> <root>"; status "ok" | "failed" | "skipped"; reason one
    # line of plain text ("" for ok). See `discover()`.
    report: Callable[[str, str, str], None] | None = None


@dataclass
class Resume:
    """How far the slow sources got, so a resumed run skips what is done:
    per brute-forced zone, how many words (from the list's start) are all
    tried and how many of those lookups got no answer; the roots whose CT
    search ended well, and the passive API searches ("source root") that did
    (a failed one is tried again: a key's quota is not spent twice on one
    answer); names found but not yet
    taken by the caller (they belong to the tried words); names already
    followed up (resolved, certificate read), which a resumed run does not
    contact again. The run updates it in place; the caller discards a name
    from `pending` when it has taken it."""

    brute: dict[str, int] = field(default_factory=dict)
    ct: set[str] = field(default_factory=set)
    passive: set[str] = field(default_factory=set)  # "source root" searches that ended well
    pending: set[str] = field(default_factory=set)
    followed: set[str] = field(default_factory=set)  # names resolved and their certificates read
    unanswered: dict[str, int] = field(default_factory=dict)  # zone -> lookups of tried words without an answer


@dataclass
class Found:
    name: str
    source: str
    dns: DnsResult | None = None  # when the source resolved the name itself (wordlist, wildcard)


# ---- pure helpers -------------------------------------------------------------


_LABEL_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-"


def _is_label(label: str) -> bool:
    """`_LABEL` at string-method speed (a wordlist has thousands of words)."""
    return 0 < len(label) < 64 and label[0] != "-" and label[-1] != "-" and not label.strip(_LABEL_CHARS)


def valid_name(name: str) -> bool:
    # ASCII first: a lone surrogate or other non-ASCII text (from JSON escapes,
    # say) is no host name, and RE2 cannot even encode it.
    if not name or len(name) > _MAX_NAME or "." not in name or not name.isascii():
        return False
    labels = name.split(".")
    if labels[-1].isdigit():  # an IPv4 address, not a name
        return False
    return all(_LABEL.search(label) for label in labels)


def _clean_name(raw: str) -> str | None:
    """Lower-case, no trailing dot, no leading `*.`; None unless a host name."""
    if not isinstance(raw, str) or not raw.isascii():  # ("İ".lower() is not ASCII either)
        return None
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
    text = "\n".join(v for k, v in headers.items() if k not in ("date", "set-cookie"))
    add(harvest_names(f"{text}\n{getattr(result, 'host_headers', '')}", domains), "header")  # CSP etc. in full
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
        if word and word.isascii() and not word.startswith("#") and all(map(_is_label, word.split("."))):
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


@dataclass(frozen=True)
class Outcome:
    """How one source fared: "ok", "failed" (what it gave may be incomplete)
    or "skipped" (it gave nothing on purpose); `reason` is one line of plain text."""

    status: str
    reason: str = ""


def _short(exc: BaseException) -> str:
    text = clean_text(str(exc), 120)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _salvaged(reason: str, names: list[str]) -> str:
    count = len({n for n in map(_clean_name, names) if n})
    return f"{reason}; {count} name{'' if count == 1 else 's'} salvaged" if count else reason


async def ct_fetch(domain: str, options: SubdomainOptions) -> tuple[list[str], Outcome]:
    """Raw names (may start with `*.`) from a crt.sh-style JSON search of
    `%.domain`, and how the search fared. Capped by options.ct_max_bytes and
    options.ct_timeout. A failure, a timeout, a non-200 answer, an answer cut
    by the cap or the peer, or one that is no complete JSON array is "failed"
    (with whatever names arrived); never an exception."""
    base = options.ct_url.rstrip("?")
    url = f"{base}{'&' if '?' in base else '?'}q={quote('%.' + domain, safe='.')}&output=json"
    chunks: list[bytes] = []
    size = 0
    failure = ""
    answered = False
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
                answered = True
                if response.status_code != 200:
                    return [], Outcome("failed", f"HTTP {response.status_code} from {clean_text(options.ct_url, 100)}")
                async for chunk in response.aiter_bytes():
                    room = options.ct_max_bytes - size
                    chunks.append(chunk[:room])
                    size += min(len(chunk), room)
                    if size >= options.ct_max_bytes:
                        failure = f"answer over {options.ct_max_bytes} bytes, cut"
                        break
    except (TimeoutError, httpx.TimeoutException):
        failure = f"timed out after {options.ct_timeout:g} s"
    except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError) as exc:  # keep what arrived
        failure = f"answer cut ({_short(exc)})" if answered else f"request failed ({_short(exc)})"
    text = b"".join(chunks).decode("utf-8", "replace")
    names = _ct_names_in(text)
    if not failure:
        body = text.strip()
        if not (body.startswith("[") and body.endswith("]")):
            failure = "answer is not a complete JSON array"
    if failure:
        return names, Outcome("failed", _salvaged(failure, names))
    return names, Outcome("ok")


async def ct_search(domain: str, options: SubdomainOptions) -> list[str]:
    """The names of `ct_fetch` alone: whatever arrived, never an exception."""
    names, _ = await ct_fetch(domain, options)
    return names


def _tool_command(tool: str, path: str, domain: str) -> list[str]:
    if tool == "subfinder":
        return [path, "-d", domain, "-silent"]
    if tool == "amass":
        return [path, "enum", "-passive", "-nocolor", "-d", domain]
    raise ValueError(f"unknown tool {tool!r}")


def _tool_names(text: str, domain: str) -> list[str]:
    """Names under `domain` in a tool's output: each a whole word (one per
    line, or the first of amass's `name (FQDN) --> ...` lines); a word with
    anything a host name cannot have is dropped, not cut down to a name."""
    root = normalise(domain)
    names = {n for n in map(_clean_name, text.split()) if n and _under(n, [root])}
    return sorted(names)


async def tool_search(tool: str, domain: str, timeout: float) -> tuple[list[str], Outcome]:
    """Names under `domain` printed by an external tool on PATH, and how the
    run fared: "skipped" when the tool is missing; "failed" when it cannot
    start, times out, prints more than the output cap or exits non-zero (the
    names it printed are kept). Argument list, never a shell."""
    path = shutil.which(tool)
    if path is None:
        return [], Outcome("skipped", f"{tool} is not on PATH")
    try:
        proc = await asyncio.create_subprocess_exec(
            *_tool_command(tool, path, domain),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError as exc:
        return [], Outcome("failed", f"cannot start {tool} ({_short(exc)})")
    chunks: list[bytes] = []
    size = 0
    failure = ""
    try:
        async with asyncio.timeout(timeout):
            stdout = proc.stdout
            assert stdout is not None  # stdout=PIPE
            while True:
                if size >= _TOOL_OUTPUT_LIMIT:
                    failure = f"output over {_TOOL_OUTPUT_LIMIT} bytes, cut"
                    break
                chunk = await stdout.read(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            if not failure:
                await proc.wait()  # within the time limit: its exit status counts
    except TimeoutError:
        failure = f"timed out after {timeout:g} s"
    finally:
        if proc.returncode is None:  # the whole group: a wrapper script's children too
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await proc.wait()
    text = b"".join(chunks).decode("utf-8", "replace")
    names = _tool_names(clean_text(text, len(text) + 1, single_line=False), domain)
    if not failure and proc.returncode:
        code = proc.returncode
        failure = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
    return names, Outcome("failed", _salvaged(failure, names)) if failure else Outcome("ok")


async def run_tool(tool: str, domain: str, timeout: float) -> list[str]:
    """The names of `tool_search` alone ([] when the tool is missing)."""
    names, _ = await tool_search(tool, domain, timeout)
    return names


# ---- the run ----------------------------------------------------------------------

# Lookup statuses that say nothing about the name (no answer, or a failing
# server); a DnsResult with records is an answer whatever its status.
_UNANSWERED = frozenset(("timeout", "servfail", "error"))
# Statuses a wildcard probe can be judged by; anything else (no answer, some
# record types unknown) is asked again.
_DEFINITE = frozenset(("ok", "nxdomain", "nodata"))
_FAILED_SHARE = 0.02  # a brute force with more unanswered lookups than this has failed


def _answers(result: DnsResult) -> frozenset[str]:
    return frozenset(r.value for r in result.records if r.rtype in ("A", "AAAA", "CNAME"))


def _exists(result: DnsResult) -> bool:
    return result.status in ("ok", "nodata", "partial") or bool(result.records)


def _unanswered(result: DnsResult) -> bool:
    return result.status in _UNANSWERED and not result.records


def _signature(result: DnsResult) -> tuple[str, frozenset[str]]:
    """What a random label got, to compare probes: the CNAME target (a CNAME
    wildcard's addresses may rotate behind it), else the address set, else
    the status (NXDOMAIN, or NOERROR without data)."""
    cnames = result.cnames
    if cnames:
        return "cname", frozenset(cnames[:1])
    if result.addresses:
        return "address", frozenset(result.addresses)
    return result.status, frozenset()


_PERMUTATION_WINDOW = 100  # permutation lookups in flight (more only queue at the resolver's pace)


@dataclass(frozen=True)
class _Wildcard:
    """A zone's answer to random labels. "none": NXDOMAIN for each; "stable":
    each got the same answer (names answered the same way are dropped);
    "varying": random labels resolve but differently (nothing from the brute
    force can be told from the wildcard); "unknown": some probes never got an
    answer, or could not be sent (out of scope). Only "none" and "stable" are
    brute forced."""

    kind: str = "none"
    answers: frozenset[str] = frozenset()  # stable: A/AAAA/CNAME values every probe got
    cname: str | None = None  # stable CNAME wildcard: the target every probe got
    nodata: bool = False  # stable: random labels get NOERROR without data
    reason: str = ""  # why not trusted

    @property
    def trusted(self) -> bool:
        return self.kind in ("none", "stable")

    def covers(self, result: DnsResult) -> bool:
        """Whether `result` (for a name in the zone) is the wildcard's answer."""
        if self.kind != "stable":
            return self.kind != "none"  # never trust an answer next to a wildcard we cannot read
        if result.status == "nodata" and not result.records:
            return self.nodata
        if self.cname is not None:
            cnames = result.cnames
            return bool(cnames) and cnames[0] == self.cname
        answers = _answers(result)
        return bool(answers) and bool(self.answers) and answers <= self.answers


class _Run:
    def __init__(
        self,
        domains: list[str],
        options: SubdomainOptions,
        in_scope: Callable[[str], bool],
        progress: Callable[[int, int], None] | None,
        excludes_below: Callable[[str], bool] | None = None,
    ):
        self.roots = domains
        self.options = options
        self.in_scope = in_scope
        self.excludes_below = excludes_below
        self.progress = progress
        dns = options.dns
        self.resolver = UdpResolver(dns.nameservers, dns.timeout, dns.retries, options.dns_rate, dns.share_url)
        self.paced = 0.0  # when dns_pace was last called (loop time)
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
        self.addresses: list[str] = []  # addresses to look up the PTR of (in-scope targets)
        self.words: list[str] | None = None
        self.reported: set[str] = set()
        self.record_zones: set[str] = set()  # zones whose records were read
        self.ptr_done: set[str] = set()
        self.ptr_unsure = 0
        self.permuted = False
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

    def report(self, source: str, outcome: Outcome) -> None:
        """Tell the caller how a source ended (once per source)."""
        if source in self.reported:
            return
        self.reported.add(source)
        if self.options.report:
            reason = "" if outcome.status == "ok" else clean_text(outcome.reason, 200)
            self.options.report(source, outcome.status, reason)

    def excluded(self, zone: str) -> bool:
        """Every name below `zone` is out of scope: nothing is sent under it."""
        return self.excludes_below is not None and self.excludes_below(zone)

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
            if name not in self.known and self.options.follow:
                self.follow(name, result)
        if source in sources or (name in self.known and source != "wildcard"):
            return
        sources.add(source)
        self.options.resume.pending.add(name)
        self.out.put_nowait(Found(name, source, result))

    def seed(self, name: str) -> None:
        name = _clean_name(name) or ""
        if name and self.root_of(name) and name not in self.known and self.in_scope(name):
            self.known.add(name)
            if name in self.options.resume.followed:  # an interrupted run did resolve it and read its certificate
                self.resolved.add(name)
                self.zones_around(name)
            else:
                self.follow(name, None)

    def follow(self, name: str, result: DnsResult | None) -> None:
        """A new in-scope name: look for zones around it, resolve it, read its certificate."""
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
        for address in result.addresses:
            self.ptr(address)
        if result.status == "nodata" and not result.records:
            self.zone(name, "empty non-terminal")
        if self.options.san and result.addresses:
            self.spawn(self._certificates(name, result.addresses))
        else:
            self.options.resume.followed.add(name)

    def zone(self, zone: str, reason: str) -> None:
        self.zone_sources(zone)
        if not self.options.brute or zone in self.zones or self.full:
            return
        depth = self.depth(zone)
        if depth < 0 or depth > self.options.recursive_depth:
            return
        self.zones.add(zone)
        # (The zone's own name may be out of scope and names below it in: each
        # candidate and probe is checked before it is sent.)
        if self.excluded(zone):
            self.report(f"wordlist {zone}", Outcome("skipped", "excluded by scope"))
            return
        if depth == 0 and self.options.words is not None:
            words = self.options.words
        else:
            words = self.wordlist() if depth == 0 else self.wordlist()[: max(0, self.options.recursive_words)]
        if words:
            self.plan(len(words))  # counted now, before the wildcard check: the roots' words at the start
            self.spawn(self._brute(zone, words))

    def wordlist(self) -> list[str]:
        if self.words is None:
            self.words = load_wordlist(self.options.wordlist_path)
        return self.words

    # -- DNS
    async def lookup(self, name: str) -> DnsResult:
        async with self.dns_slots:
            result = await self.resolver.resolve(name, self.rtypes)
        if self.options.dns_pace is not None:
            now = asyncio.get_running_loop().time()
            if now - self.paced >= PACE_EVERY:
                self.paced = now
                self.options.dns_pace(self.resolver.stats())
        return result

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
        """Ask for random labels; a probe that gets no answer is asked again
        (up to `wildcard_rounds` tries) and the zone's wildcard stays unknown
        if it never gets one."""
        if self.excluded(zone):
            return _Wildcard("unknown", reason="excluded by scope")
        rng = random.SystemRandom()
        probes = [
            "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(14)) + "." + zone
            for _ in range(max(2, self.options.wildcard_probes))
        ]
        if not all(self.in_scope(probe) for probe in probes):
            return _Wildcard("unknown", reason="wildcard probes would leave the scope")
        results: dict[str, DnsResult] = {}
        todo = probes
        rounds = max(1, self.options.wildcard_rounds)
        for _ in range(rounds):
            self.plan(len(todo))
            answers = await asyncio.gather(*(self.lookup(probe) for probe in todo))
            self.tick(len(todo))
            results.update(zip(todo, answers, strict=True))
            todo = [probe for probe in todo if results[probe].status not in _DEFINITE]
            if not todo:
                break
        if todo:
            statuses = "/".join(sorted({results[p].status for p in todo}))
            return _Wildcard(
                "unknown",
                reason=f"wildcard status unknown: {len(todo)} of {len(probes)} probes unanswered "
                f"({statuses}) after {rounds} tries",
            )
        existing = [results[p] for p in probes if _exists(results[p])]
        if not existing:
            return _Wildcard("none")
        self.emit(zone, "wildcard", existing[0])
        if len({_signature(results[p]) for p in probes}) > 1:
            return _Wildcard("varying", reason="wildcard answering varying addresses")
        first = existing[0]
        cnames = first.cnames
        return _Wildcard(
            "stable",
            answers=_answers(first),
            cname=cnames[0] if cnames else None,
            nodata=first.status == "nodata" and not first.records,
        )

    async def _brute(self, zone: str, words: list[str]) -> None:
        source = f"wordlist {zone}"
        resume = self.options.resume
        start = min(resume.brute.get(zone, 0), len(words))
        tallied = zone in resume.unanswered  # the interrupted run's count of unanswered lookups is known
        wildcard = await self.wildcard(zone)  # first: it decides what counts
        if start >= len(words):  # done before an interruption: its outcome was reported then
            self.tick(len(words))  # (planned by `zone`)
            if tallied:
                self.report(source, self._brute_outcome(resume.unanswered[zone], len(words)))
            return
        if not wildcard.trusted:
            self.tick(len(words))  # none will be asked
            self.report(source, Outcome("skipped", wildcard.reason))
            return
        resume.unanswered.setdefault(zone, 0)
        self.tick(start)
        todo = iter(enumerate(words[start:], start))
        finished: set[int] = set()

        def tried(index: int, answered: bool = True) -> None:
            """Advance the zone's mark over the words tried without a gap."""
            if not answered:
                resume.unanswered[zone] = resume.unanswered.get(zone, 0) + 1
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
                parent = name.split(".", 1)[1]  # api.dev: dev.<zone> may be a wildcard zone of its own
                if not self.in_scope(name) or (parent != zone and self.excluded(parent)):
                    self.tick()  # never asked: a name out of scope is not even looked up
                    tried(index)
                    continue
                result = await self.lookup(name)
                self.tick()
                answered = not _unanswered(result)
                keep = answered and _exists(result) and not wildcard.covers(result)
                if keep and parent != zone:
                    below = await self.wildcard(parent)
                    if below.kind == "unknown":  # cannot tell it from the sub-zone's wildcard: not seen
                        answered = keep = False
                    elif below.covers(result):
                        keep = False
                # The mark passes the word and its name is pending in one go (no await between).
                tried(index, answered)
                if keep:
                    self.resolved.add(name)
                    self.emit(name, "wordlist", result)

        workers = min(len(words) - start, max(1, self.options.dns.concurrency))
        await asyncio.gather(*(worker() for _ in range(workers)))
        if resume.brute.get(zone, start) < len(words):  # stopped early: the name limit was reached
            self.report(source, Outcome("failed", f"stopped at the name limit ({self.options.max_names})"))
            return
        unanswered = resume.unanswered.get(zone, 0)
        self.report(source, self._brute_outcome(unanswered, len(words) if tallied else len(words) - start))

    @staticmethod
    def _brute_outcome(unanswered: int, lookups: int) -> Outcome:
        if unanswered > _FAILED_SHARE * lookups:
            return Outcome("failed", f"{unanswered} of {lookups} lookups unanswered (timeout/SERVFAIL)")
        return Outcome("ok")

    # -- other sources (scanners/sources.py)
    def zone_sources(self, zone: str) -> None:
        """Records and a transfer of a zone discovery met, once."""
        if zone in self.record_zones or self.depth(zone) < 0 or self.excluded(zone) or not self.in_scope(zone):
            return
        self.record_zones.add(zone)
        if self.options.records:
            self.spawn(self._records(zone))
        if self.options.axfr:
            self.spawn(self._axfr(zone))

    async def _records(self, zone: str) -> None:
        async def lookup(name: str, rtype: str) -> tuple[str, list[DnsRecord]]:
            if not self.in_scope(name) and name != zone:  # never a query about a name out of scope
                return "nxdomain", []
            async with self.dns_slots:
                return await self.resolver.query(name, rtype)

        unsure = await sources.zone_records(zone, lookup, self.emit, self.in_scope, self.options.spf_depth)
        self.report(f"records {zone}", Outcome("failed", unsure) if unsure else Outcome("ok"))

    async def _axfr(self, zone: str) -> None:
        async with self.dns_slots:
            _, records = await self.resolver.query(zone, "NS")
        servers = {host_port(spec) for spec in self.options.dns.nameservers}
        for record in records:
            if record.rtype == "NS":
                host = record.value.rstrip(".").lower()
                if self.in_scope(host) and not self.excluded(host):
                    async with self.dns_slots:
                        _, addresses = await self.resolver.query(host, "A")
                    servers.update((a.value, 53) for a in addresses if a.rtype == "A")
        for server, port in sorted(servers):
            names, _why = await sources.axfr(zone, server, port, self.options.axfr_timeout)
            for name in names:
                self.emit(name, "axfr")
        self.report(f"axfr {zone}", Outcome("ok"))  # a refusal is the usual answer, not a failure

    def ptr(self, address: str) -> None:
        if self.options.ptr and address not in self.ptr_done and len(self.ptr_done) < self.options.max_ptr:
            self.ptr_done.add(address)
            self.spawn(self._ptr(address))

    async def _ptr(self, address: str) -> None:
        async with self.dns_slots:
            names, why = await sources.ptr_names(address, self.resolver.query)
        self.ptr_unsure += bool(why)
        for name in names:
            self.emit(name, "ptr")

    def permute(self) -> bool:
        """Permutations of the names found, once the other sources are quiet; False when none to try."""
        self.permuted = True
        if self.ptr_done:
            unsure = self.ptr_unsure > _FAILED_SHARE * len(self.ptr_done)
            why = f"{self.ptr_unsure} of {len(self.ptr_done)} PTR lookups unanswered"
            self.report("reverse dns", Outcome("failed", why) if unsure else Outcome("ok"))
        if self.options.permutations <= 0 or self.full:
            return False
        found = set(self.names) | self.known
        zones = set(self.roots) | self.zones
        budget = self.options.permutations  # for the whole run: the roots first, then the zones found
        spawned = False
        for zone in sorted(zones, key=lambda z: (self.depth(z), z)):
            if budget <= 0:
                break
            if self.excluded(zone):
                continue
            candidates = sources.permutations(found, zone, budget, zones)
            if candidates:
                budget -= len(candidates)
                spawned = True
                self.plan(len(candidates))
                self.spawn(self._permutations(zone, candidates))
        return spawned

    async def _permutations(self, zone: str, candidates: list[str]) -> None:
        unanswered = 0

        async def one(name: str) -> None:
            nonlocal unanswered
            parent = name.split(".", 1)[1]
            if not self.in_scope(name) or self.excluded(parent) or name in self.resolved:
                return
            wildcard = await self.wildcard(parent)
            if not wildcard.trusted:
                return
            result = await self.lookup(name)
            unanswered += _unanswered(result)
            if _exists(result) and not wildcard.covers(result):
                self.resolved.add(name)
                self.emit(name, "permutation", result)

        todo = iter(candidates)

        async def worker() -> None:  # a window, not batches: one slow lookup holds up nobody else
            for name in todo:
                await one(name)
                self.tick()

        await asyncio.gather(*(worker() for _ in range(min(len(candidates), _PERMUTATION_WINDOW))))
        self.report(f"permutations {zone}", self._brute_outcome(unanswered, len(candidates)))

    # -- TLS
    async def _certificates(self, name: str, addresses: list[str]) -> None:
        await self._read_certificates(name, addresses)
        self.options.resume.followed.add(name)  # after the names its certificate gave were emitted

    async def _read_certificates(self, name: str, addresses: list[str]) -> None:
        if self.tls_hosts >= self.options.max_tls_hosts or not self.in_scope(name):
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
    def took_all(self, outcome: Outcome) -> Outcome:
        """A source whose names met the name limit did not deliver them all."""
        if self.full and outcome.status == "ok":
            return Outcome("failed", f"stopped at the name limit ({self.options.max_names})")
        return outcome

    async def _ct(self, domain: str) -> None:
        self.plan(1)
        raw, outcome = await ct_fetch(domain, self.options)
        self.tick()
        for name in raw:
            self.emit(name, "ct")
        for base in _wildcard_bases(raw):
            self.zone(base, "wildcard certificate")
        outcome = self.took_all(outcome)
        if outcome.status == "ok":  # a failed search is tried again by a resumed run
            self.options.resume.ct.add(domain)
        self.report(f"ct {domain}", outcome)

    async def _passive(self, source: PassiveSource, domain: str) -> None:
        from .passive import search

        self.plan(1)
        pool = self.passive_pools[source.name]
        try:
            answer = await search(source, pool, domain)
        finally:
            self.tick()
            self.passive_left[source.name] -= 1
        for name in answer.names:
            self.emit(name, source.name)
        for base in answer.zones:
            self.zone(base, "wildcard name")
        outcome = self.took_all(answer.outcome)
        if outcome.status == "ok":  # a failed search is asked again by a resumed run
            self.options.resume.passive.add(f"{source.name} {domain}")
        self.report(f"{source.name} {domain}", outcome)
        bad = [s for s in pool.stats if s.state != "usable"]
        if not self.passive_left[source.name] and bad and pool.usable():  # (none usable: each root said so)
            why = f"{len(bad)} of {len(pool.keys)} keys unusable: {pool.summary()}"
            self.report(f"{source.name} keys", Outcome("failed", why))

    async def _tool(self, tool: str, domain: str) -> None:
        self.plan(1)
        names, outcome = await tool_search(tool, domain, self.options.tool_timeout)
        self.tick()
        for name in names:
            self.emit(name, tool)
        self.report(f"{tool} {domain}", self.took_all(outcome))

    def start(self, seeds: Iterable[str | Found]) -> None:
        if self.options.passive:
            from .passive import KeyPool

            # one pool per provider for the run: a key found invalid or exhausted is not used again
            self.passive_pools: dict[str, KeyPool] = {s.name: KeyPool(s.keys, s.rate) for s in self.options.passive}
            self.passive_left: dict[str, int] = {s.name: 0 for s in self.options.passive}
        for item in seeds:
            self.seed(item.name if isinstance(item, Found) else str(item))
        for zone in list(self.options.resume.brute):  # zones an interrupted run had started
            zone = _clean_name(zone) or ""
            if zone and self.root_of(zone):
                self.zone(zone, "resumed")
        for domain in self.roots:
            excluded = self.excluded(domain)
            if self.options.ct and self.options.ct_url:
                if excluded:
                    self.report(f"ct {domain}", Outcome("skipped", "excluded by scope"))
                elif domain in self.options.resume.ct:  # ended well before an interruption
                    self.report(f"ct {domain}", Outcome("ok"))
                else:
                    self.spawn(self._ct(domain))
            for source in self.options.passive:
                if excluded:
                    self.report(f"{source.name} {domain}", Outcome("skipped", "excluded by scope"))
                elif f"{source.name} {domain}" in self.options.resume.passive:  # ended well before an interruption
                    self.report(f"{source.name} {domain}", Outcome("ok"))
                else:  # (one without keys says it was skipped)
                    self.passive_left[source.name] += 1
                    self.spawn(self._passive(source, domain))
            for tool in self.options.tools:
                if shutil.which(tool):  # a tool that is not installed is no source of this run
                    if excluded:
                        self.report(f"{tool} {domain}", Outcome("skipped", "excluded by scope"))
                    else:
                        self.spawn(self._tool(tool, domain))
            if self.options.brute:
                self.zone(domain, "root")
            else:
                self.zone_sources(domain)
        for address in self.addresses:
            self.ptr(address)
        if not self.tasks:
            self.out.put_nowait(None)


async def discover(
    domains: list[str],
    options: SubdomainOptions,
    in_scope: Callable[[str], bool],
    progress: Callable[[int, int], None] | None = None,
    seeds: Iterable[str | Found] = (),
    *,
    excludes_below: Callable[[str], bool] | None = None,
    addresses: Iterable[str] = (),
) -> AsyncIterator[Found]:
    """Yield `Found` for in-scope names under `domains` as the sources find
    them (one per (name, source) pair). `seeds`: names the caller already
    knows (e.g. harvested from HTTP bodies): not yielded again, but followed
    up like found ones (zones, SANs), so calling `discover(..., seeds=new,
    options with ct=False)` after the HTTP stage runs the recursion for them.

    Scope comes before traffic: no name for which `in_scope` is false is
    looked up or handshaken (brute-force candidates and wildcard probes
    included), and no zone for which `excludes_below(zone)` is true (every
    name below it excluded: `Scope.excludes_below`) is probed, brute forced
    or searched in CT, nor are tools run for it.

    `options.report(source, status, reason)` is called once per source that
    ran (or was skipped) when it ends: "ct <root>" failed when the search
    failed, timed out, answered non-200 or was cut (its names still come);
    "wordlist <zone>" skipped when the zone's wildcard is unknown (probes
    unanswered) or answers varying addresses, failed when more than 2 % of
    its lookups got no answer or the name limit stopped it; "<tool> <root>"
    failed on a timeout or a non-zero exit; skipped: "excluded by scope".
    Sources that are disabled, or tools not on PATH, are not reported. A
    resumed run reports a CT search that ended well before as "ok" (failed
    ones are run again), and a zone whose words were all tried before only
    when `options.resume.unanswered` holds its tally (else the caller keeps
    the outcome reported then)."""
    roots = list(dict.fromkeys(n for n in (normalise(d) for d in domains) if valid_name(n)))
    if not roots:
        return
    run = _Run(roots, options, in_scope, progress, excludes_below)
    run.addresses = sorted(set(addresses))
    run.start(seeds)
    try:
        while True:
            item = await run.out.get()
            if item is None:
                quiet = not run.tasks and run.out.empty()
                if quiet and (run.permuted or not run.permute()):  # permutations come last, once
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
        stats = run.resolver.stats()
        run.resolver.close()
        if stats and options.dns_pace is not None:
            options.dns_pace(stats)
