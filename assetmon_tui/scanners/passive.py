"""Passive API sources that take keys: SecurityTrails, VirusTotal, Shodan,
Censys and Chaos.

`PROVIDERS` is the one registry: per provider its default base URL, its pace
(requests a second per key), how to ask for a domain's subdomains with a key
(an auth header, basic auth or a query parameter) and how to read the answer,
page by page where the API pages. `configured()` gives every provider with
the keys and base URL of the config file (`[passive.<provider>]` with
`keys = [...]`, `url = "..."`) and the environment
(`ASSETMON_PASSIVE_<PROVIDER>_KEYS` comma separated, `..._URL`, `..._RATE`);
a provider without keys is still given, so the scan says it was skipped.

`search()` asks one provider about one domain. The keys of a provider are a
`KeyPool` shared by every search of a run and used in turn (round robin); a
key answered 401/403 is invalid for the run, one answered 429/402 (or a
quota message) is exhausted, and the next usable key is tried. Each key
counts its requests, good answers and errors, and keeps its last error, for
the outcome line. A key is never printed or logged: it is shown as its last
four characters at most (`mask`), every reason is scrubbed of the keys, and
a filter on httpx's logger scrubs its request lines (Shodan's key is in the
query).

Answers are hostile input: capped by bytes and time, never followed through
a redirect (a key goes to its provider's base URL only, and a `links.next`
is read for its cursor, never fetched), malformed JSON (or binary, or JSON
too deep) fails the search with one line, and every name goes through the
host-name grammar of scanners/subdomains.py and must be under the domain
asked about (the scan's scope is checked again when the name is emitted).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx

from assetmon_tui.core.config import SettingsError, _dirs
from assetmon_tui.core.sanitize import clean_text

from .subdomains import Outcome, _clean_name, _short, _under, _wildcard_bases

log = logging.getLogger(__name__)

_QUOTA_WORDS = ("quota", "exceeded", "rate limit", "ratelimit", "too many requests", "credits", "limit reached")
_MAX_KEY = 512


# ---- the registry -----------------------------------------------------------------


@dataclass(frozen=True)
class Ask:
    """One request: the URL (base + path), query parameters and headers."""

    url: str
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


# read(document, domain) -> (raw names, next cursor or None); None: not the expected shape
Reader = Callable[[Any, str], tuple[list[str], str | None] | None]


@dataclass(frozen=True)
class Provider:
    name: str
    url: str  # default base URL
    rate: float  # requests a second per key by default (0: no pace)
    ask: Callable[[str, str, str, str | None], Ask]  # (base, domain, key, cursor) -> request
    read: Reader
    key_form: str = "a key"  # what a key looks like, for configuration errors
    key_check: Callable[[str], bool] = lambda key: True


def _path(domain: str) -> str:
    return quote(domain, safe="")


def _labels(values: object, domain: str) -> list[str]:
    """Names from a list of labels relative to `domain` (or full names under it)."""
    out: list[str] = []
    if isinstance(values, list):
        for value in values:
            if isinstance(value, str):
                value = value.strip().rstrip(".")
                if not value:
                    continue
                full = value.lower() == domain or value.lower().endswith("." + domain)
                out.append(value if full else f"{value}.{domain}")
    return out


def _strings(values: object) -> list[str]:
    return [v for v in values if isinstance(v, str)] if isinstance(values, list) else []


def _get(doc: object, *path: str) -> object:
    for part in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(part)
    return doc


def _cursor(value: object) -> str | None:
    return value if isinstance(value, str) and value and len(value) <= 4096 else None


# SecurityTrails: GET /v1/domain/{domain}/subdomains, header APIKEY; labels in "subdomains".
def _st_ask(base: str, domain: str, key: str, cursor: str | None) -> Ask:
    return Ask(
        f"{base}/v1/domain/{_path(domain)}/subdomains",
        {"children_only": "false", "include_inactive": "true"},
        {"APIKEY": key},
    )


def _st_read(doc: Any, domain: str) -> tuple[list[str], str | None] | None:
    subdomains = _get(doc, "subdomains")
    return (_labels(subdomains, domain), None) if isinstance(subdomains, list) else None


# VirusTotal v3: GET /api/v3/domains/{domain}/subdomains?limit=40[&cursor=], header x-apikey;
# {"data": [{"id": name, "type": "domain"}], "meta": {"cursor"}, "links": {"next"}}.
def _vt_ask(base: str, domain: str, key: str, cursor: str | None) -> Ask:
    params = {"limit": "40", **({"cursor": cursor} if cursor else {})}
    return Ask(f"{base}/api/v3/domains/{_path(domain)}/subdomains", params, {"x-apikey": key})


def _vt_read(doc: Any, domain: str) -> tuple[list[str], str | None] | None:
    data = _get(doc, "data")
    if not isinstance(data, list):
        return None
    names = [str(d["id"]) for d in data if isinstance(d, dict) and isinstance(d.get("id"), str)]
    cursor = _cursor(_get(doc, "meta", "cursor"))
    following = _get(doc, "links", "next")
    if cursor is None and isinstance(following, str):  # its cursor only: the link itself is never fetched
        cursor = _cursor(next(iter(parse_qs(urlsplit(following).query).get("cursor", [])), None))
    return names, cursor


# Shodan: GET /dns/domain/{domain}?key=&page=; labels in "subdomains" and data[].subdomain, "more" pages.
def _shodan_ask(base: str, domain: str, key: str, cursor: str | None) -> Ask:
    return Ask(f"{base}/dns/domain/{_path(domain)}", {"key": key, **({"page": cursor} if cursor else {})})


def _shodan_read(doc: Any, domain: str) -> tuple[list[str], str | None] | None:
    subdomains = _get(doc, "subdomains")
    data = _get(doc, "data")
    if not isinstance(subdomains, list) and not isinstance(data, list):
        return None
    labels = _strings(subdomains)
    if isinstance(data, list):
        labels += [str(d["subdomain"]) for d in data if isinstance(d, dict) and isinstance(d.get("subdomain"), str)]
    names = _labels(labels, domain)
    if isinstance(subdomains, list) and "" in subdomains:
        names.append(domain)
    return names, None  # the page number is the caller's: see _shodan_next


# Censys Search v2: GET /v2/certificates/search?q=&per_page=100[&cursor=], basic auth API_ID:SECRET;
# {"result": {"hits": [{"names": [...]}], "links": {"next": cursor}}} (host hits: dns.names too).
def _censys_ask(base: str, domain: str, key: str, cursor: str | None) -> Ask:
    token = base64.b64encode(key.encode()).decode("ascii")
    params = {"q": domain, "per_page": "100", **({"cursor": cursor} if cursor else {})}
    return Ask(f"{base}/v2/certificates/search", params, {"Authorization": f"Basic {token}"})


def _censys_read(doc: Any, domain: str) -> tuple[list[str], str | None] | None:
    hits = _get(doc, "result", "hits")
    if not isinstance(hits, list):
        return None
    names: list[str] = []
    for hit in hits:
        names += _strings(_get(hit, "names"))
        names += _strings(_get(hit, "dns", "names"))
        names += _strings(_get(hit, "dns", "reverse_dns", "names"))
    return names, _cursor(_get(doc, "result", "links", "next"))


# Chaos: GET /dns/{domain}/subdomains, header Authorization: key; labels in "subdomains".
def _chaos_ask(base: str, domain: str, key: str, cursor: str | None) -> Ask:
    return Ask(f"{base}/dns/{_path(domain)}/subdomains", {}, {"Authorization": key})


PROVIDERS: dict[str, Provider] = {
    p.name: p
    for p in (
        Provider("securitytrails", "https://api.securitytrails.com", 1.0, _st_ask, _st_read),
        Provider("virustotal", "https://www.virustotal.com", 4 / 60, _vt_ask, _vt_read),  # public API: 4 a minute
        Provider("shodan", "https://api.shodan.io", 1.0, _shodan_ask, _shodan_read),
        Provider(
            "censys",
            "https://search.censys.io/api",
            0.4,
            _censys_ask,
            _censys_read,
            key_form="API_ID:SECRET",
            key_check=lambda key: ":" in key.strip(":"),
        ),
        Provider("chaos", "https://dns.projectdiscovery.io", 2.0, _chaos_ask, _st_read),
    )
}
NAMES = tuple(PROVIDERS)


# ---- keys -------------------------------------------------------------------------


def mask(key: str) -> str:
    """A key as it may be shown: its last four characters at most (two of a short key, none of a tiny one)."""
    tail = key[-4:] if len(key) >= 16 else key[-2:] if len(key) >= 8 else ""
    return f"…{tail}"


def _variants(key: str) -> set[str]:
    return {v for v in (key, quote(key, safe=""), quote(key), base64.b64encode(key.encode()).decode()) if v}


def scrub(text: str, keys: Iterable[str]) -> str:
    """`text` with every key (and its URL and base64 forms) replaced by its mask."""
    for key in sorted(keys, key=len, reverse=True):
        for variant in _variants(key):
            if variant in text:
                text = text.replace(variant, mask(key))
    return text


class _Redact(logging.Filter):
    """Scrubs the keys in use from the records of httpx's loggers (its request line has the URL)."""

    def __init__(self) -> None:
        super().__init__()
        self.keys: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.keys:
            message = record.getMessage()
            clean = scrub(message, self.keys)
            if clean != message:
                record.msg, record.args = clean, None
        return True


_REDACT = _Redact()


def _guard(keys: Iterable[str]) -> None:
    _REDACT.keys.update(keys)
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if _REDACT not in logger.filters:
            logger.addFilter(_REDACT)


@dataclass
class KeyStats:
    requests: int = 0
    ok: int = 0  # answers read
    errors: int = 0  # requests that failed (network, HTTP errors, bad answers), rejections included
    state: str = "usable"  # "usable" | "invalid" | "exhausted"
    last_error: str = ""
    next_at: float = 0.0  # loop time before which the key is not used again (its pace)


class KeyPool:
    """A provider's keys for one run, used in turn; a key rejected or out of
    quota is not used again in this run."""

    def __init__(self, keys: Iterable[str], rate: float = 0.0):
        self.keys = tuple(keys)
        self.stats = [KeyStats() for _ in self.keys]
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.turn = 0
        _guard(self.keys)

    def usable(self) -> bool:
        return any(s.state == "usable" for s in self.stats)

    async def take(self) -> int | None:
        """The next usable key's index, when its pace allows; None when none is left."""
        loop = asyncio.get_running_loop()
        while True:
            count = len(self.keys)
            turns = (i % count for i in range(self.turn, self.turn + count))
            pick = next((i for i in turns if self.stats[i].state == "usable"), None)
            if pick is None:
                return None
            self.turn = pick + 1
            stats = self.stats[pick]
            now = loop.time()
            at = max(now, stats.next_at)
            stats.next_at = at + self.interval
            if at > now:
                await asyncio.sleep(at - now)
                if stats.state != "usable":  # another search found it bad meanwhile
                    continue
            stats.requests += 1
            return pick

    def failed(self, index: int, why: str, state: str | None = None) -> None:
        stats = self.stats[index]
        stats.errors += 1
        stats.last_error = scrub(clean_text(why, 120), self.keys)
        if state and stats.state == "usable":
            stats.state = state

    def summary(self) -> str:
        """One line: each key (masked) with its state and counters."""
        parts = []
        for i, (key, s) in enumerate(zip(self.keys, self.stats, strict=True), 1):
            state = "" if s.state == "usable" else f" {s.state}"
            text = f"key {i} {mask(key)}{state}: {s.requests} req, {s.ok} ok"
            if s.errors:
                text += f", {s.errors} err ({s.last_error})"
            parts.append(text)
        return "; ".join(parts) if parts else "no key configured"


# ---- configuration ----------------------------------------------------------------


@dataclass(frozen=True)
class PassiveSource:
    """A provider as configured: base URL, keys (never in the repr), pace and limits."""

    name: str
    url: str
    keys: tuple[str, ...] = field(default=(), repr=False)
    rate: float = 1.0  # requests a second per key (0: no pace)
    timeout: float = 120.0  # one domain's requests together, seconds (waits for a key's pace not counted)
    request_timeout: float = 30.0  # one request, whole
    max_bytes: int = 5_000_000  # one answer
    max_pages: int = 10

    @property
    def provider(self) -> Provider:
        return PROVIDERS[self.name]

    @property
    def masked(self) -> tuple[str, ...]:
        return tuple(mask(k) for k in self.keys)


_TABLE_KEYS = ("keys", "url", "rate", "timeout", "max_pages")


def _check_url(name: str, url: object, where: str) -> str:
    what = f"passive.{name}.url in {where}"
    if not isinstance(url, str):
        raise SettingsError(f'{what}: expected a string, e.g. url = "{PROVIDERS[name].url}"')
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(f"{what}: expected an http:// or https:// base URL, e.g. {PROVIDERS[name].url}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise SettingsError(f"{what}: give the base URL only (no query, fragment or user:password@)")
    return url.strip().rstrip("/")


def _check_keys(name: str, keys: object, where: str) -> tuple[str, ...]:
    what = f"passive.{name}.keys in {where}"
    provider = PROVIDERS[name]
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise SettingsError(f'{what}: expected a list of strings, e.g. keys = ["KEY1", "KEY2"]')
    out: list[str] = []
    for number, key in enumerate(keys, 1):
        key = key.strip()
        if not key:
            continue
        if len(key) > _MAX_KEY or not key.isascii() or not key.isprintable() or any(c.isspace() for c in key):
            raise SettingsError(f"{what}: key {number} has spaces, control or non-ASCII characters: fix it")
        if not provider.key_check(key):
            raise SettingsError(f"{what}: key {number} ({mask(key)}) is not {provider.key_form}")
        if key not in out:
            out.append(key)
    return tuple(out)


def _check_number(name: str, field_name: str, value: object, where: str, low: float, whole: bool = False) -> float:
    what = f"passive.{name}.{field_name} in {where}"
    try:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ValueError
        number = int(value) if whole else float(value)
    except ValueError:
        raise SettingsError(f"{what}: expected {'a whole number' if whole else 'a number'}") from None
    if number < low:
        raise SettingsError(f"{what}: must be at least {low:g}")
    return number


def config_file() -> Path:
    """The config file get_settings() reads."""
    return _dirs()[2] / "config.toml"


def _file_tables(path: Path) -> dict[str, dict[str, Any]]:
    if not path.is_file():
        return {}
    try:
        with path.open("rb") as fh:
            loaded = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path} is not valid TOML ({exc}): fix or remove it") from None
    except OSError as exc:
        raise SettingsError(f"{path} cannot be read ({exc.strerror}): check its permissions") from None
    passive = loaded.get("passive", {})
    if not isinstance(passive, dict):
        raise SettingsError(f"passive in {path}: expected tables, e.g. [passive.shodan] with keys = [...]")
    for name, table in passive.items():
        if name not in PROVIDERS:
            raise SettingsError(f"[passive.{name}] in {path}: unknown source, use one of {', '.join(NAMES)}")
        if not isinstance(table, dict):
            raise SettingsError(f"passive.{name} in {path}: expected a table [passive.{name}] with keys = [...]")
        unknown = sorted(set(table) - set(_TABLE_KEYS))
        if unknown:
            raise SettingsError(f"passive.{name}.{unknown[0]} in {path}: unknown setting, use {', '.join(_TABLE_KEYS)}")
    return passive


def configured(path: Path | None = None, environ: Mapping[str, str] | None = None) -> tuple[PassiveSource, ...]:
    """Every provider with its keys, base URL and pace: the environment over
    the config file over the defaults. SettingsError (one line) when an entry
    is malformed."""
    if environ is None:
        try:
            from dotenv import load_dotenv

            load_dotenv(override=False)
        except ImportError:  # optional at runtime
            pass
        environ = os.environ
    path = path or config_file()
    tables = _file_tables(path)
    where_file = str(path)
    out = []
    for name, provider in PROVIDERS.items():
        table = tables.get(name, {})
        env = f"ASSETMON_PASSIVE_{name.upper()}_"
        url, rate = provider.url, provider.rate
        keys: tuple[str, ...] = ()
        timeout, pages = PassiveSource.timeout, PassiveSource.max_pages
        if "url" in table:
            url = _check_url(name, table["url"], where_file)
        if "keys" in table:
            keys = _check_keys(name, table["keys"], where_file)
        if "rate" in table:
            rate = _check_number(name, "rate", table["rate"], where_file, 0)
        if "timeout" in table:
            timeout = _check_number(name, "timeout", table["timeout"], where_file, 1)
        if "max_pages" in table:
            pages = int(_check_number(name, "max_pages", table["max_pages"], where_file, 1, whole=True))
        if environ.get(env + "URL") is not None:
            url = _check_url(name, environ[env + "URL"], f"${env}URL")
        if environ.get(env + "KEYS") is not None:
            keys = _check_keys(name, environ[env + "KEYS"].split(","), f"${env}KEYS")
        if environ.get(env + "RATE") is not None:
            rate = _check_number(name, "rate", environ[env + "RATE"], f"${env}RATE", 0)
        out.append(PassiveSource(name, url, keys, rate=rate, timeout=timeout, max_pages=pages))
    return tuple(out)


# ---- the search -------------------------------------------------------------------


@dataclass
class Answer:
    names: list[str]  # clean, under the domain, in order
    zones: list[str]  # bases of wildcard names (`*.dev.x` -> dev.x): zones to look into
    outcome: Outcome


def _rejection(status: int, body: bytes) -> str | None:
    """The key's state ("invalid" or "exhausted") when an answer says the key cannot be used; None otherwise."""
    text = body[:4096].decode("utf-8", "replace").lower()
    quota = any(word in text for word in _QUOTA_WORDS)
    if status in (429, 402) or (status in (401, 403) and quota):
        return "exhausted"
    if status in (401, 403):
        return "invalid"
    if status == 200 and quota and isinstance(_get(_loads(body), "error"), (dict, str)):
        return "exhausted"  # a quota error in a 200's body
    return None


def _loads(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


async def _fetch(client: httpx.AsyncClient, ask: Ask, max_bytes: int) -> tuple[int, bytes, bool]:
    """Status, body (at most max_bytes) and whether it was cut."""
    chunks: list[bytes] = []
    size = 0
    async with client.stream("GET", ask.url, params=ask.params, headers=ask.headers) as response:
        async for chunk in response.aiter_bytes():
            room = max_bytes - size
            chunks.append(chunk[:room])
            size += min(len(chunk), room)
            if size >= max_bytes:
                return response.status_code, b"".join(chunks), True
        return response.status_code, b"".join(chunks), False


_TRIES = 2  # requests of one page that failed for reasons other than the key, before the search fails


async def _page(
    client: httpx.AsyncClient,
    source: PassiveSource,
    pool: KeyPool,
    domain: str,
    cursor: str | None,
    budget: list[float],
) -> tuple[Any, str]:
    """One page's JSON document, or (None, why it failed). `budget`: the
    search's seconds of requests left (spent in place); TimeoutError when gone."""
    provider = source.provider
    tries = 0
    while True:
        index = await pool.take()
        if index is None:
            return None, f"every key failed: {pool.summary()}"
        ask = provider.ask(source.url, domain, pool.keys[index], cursor)
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            async with asyncio.timeout(min(source.request_timeout, max(0.0, budget[0]))):
                status, body, cut = await _fetch(client, ask, source.max_bytes)
        except (httpx.TimeoutException, TimeoutError):
            budget[0] -= loop.time() - started
            if budget[0] <= 0:
                pool.failed(index, "timed out")
                raise TimeoutError from None  # the search's time is up
            why = f"timed out after {source.request_timeout:g} s"
        except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError) as exc:
            why = f"request failed ({_short(exc)})"
        else:
            budget[0] -= loop.time() - started
            rejected = _rejection(status, body)
            if rejected:
                pool.failed(index, f"HTTP {status}", rejected)
                log.warning("%s: key %s %s (HTTP %d)", provider.name, mask(pool.keys[index]), rejected, status)
                continue
            if status != 200:
                why = f"HTTP {status}"
            elif cut:
                pool.failed(index, "answer cut")
                return None, f"answer over {source.max_bytes} bytes, cut"
            else:
                doc = _loads(body)
                if doc is None:
                    pool.failed(index, "answer is not JSON")
                    return None, f"answer is not JSON ({len(body)} bytes)"
                pool.stats[index].ok += 1
                return doc, ""
        pool.failed(index, why)
        tries += 1
        if tries >= _TRIES:
            return None, why


async def search(source: PassiveSource, pool: KeyPool, domain: str) -> Answer:
    """The names `source` knows under `domain`, and how the search fared:
    skipped without keys; failed when every key failed (with the per-key
    summary), on an answer that is no JSON of the expected shape, cut, an
    HTTP error, a timeout or the page limit (the names of earlier pages are
    kept). Never an exception, never a key in the reason."""
    if not source.keys:
        env = f"ASSETMON_PASSIVE_{source.name.upper()}_KEYS"
        return Answer([], [], Outcome("skipped", f"no key configured ([passive.{source.name}] keys or ${env})"))
    provider = source.provider
    raw: list[str] = []
    failure = ""
    pages = 0
    try:
        budget = [source.timeout]
        async with (
            httpx.AsyncClient(
                trust_env=False,  # no proxy from the environment: the key goes to the base URL only
                timeout=source.request_timeout,
                follow_redirects=False,  # nor to where an answer points
                headers={"User-Agent": "assetmon/0.1", "Accept": "application/json"},
            ) as client,
        ):
            cursor: str | None = None
            seen: set[str] = set()
            while True:
                doc, failure = await _page(client, source, pool, domain, cursor, budget)
                if failure:
                    break
                pages += 1
                read = provider.read(doc, domain)
                if read is None:
                    failure = "answer is not in the expected shape"
                    break
                names, cursor = read
                raw += names
                if provider.name == "shodan" and doc.get("more") is True and names:
                    cursor = str(pages + 1)
                if cursor is None:
                    break
                if cursor in seen:
                    failure = "the API sent the same page cursor twice"
                    break
                seen.add(cursor)
                if pages >= source.max_pages:
                    failure = f"stopped after {pages} pages (max_pages)"
                    break
    except TimeoutError:
        failure = f"timed out after {source.timeout:g} s"
    clean = list(dict.fromkeys(n for n in map(_clean_name, raw) if n and _under(n, [domain])))
    zones = [z for z in _wildcard_bases(raw) if _under(z, [domain])]
    if failure:
        reason = scrub(failure, pool.keys)
        if clean:
            reason += f"; {len(clean)} name{'' if len(clean) == 1 else 's'} salvaged"
        log.info("%s %s: failed (%s)", provider.name, domain, reason)
        return Answer(clean, zones, Outcome("failed", reason))
    log.info("%s %s: %d names in %d pages", provider.name, domain, len(clean), pages)
    return Answer(clean, zones, Outcome("ok", pool.summary()))
