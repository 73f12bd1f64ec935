"""Subdomain takeover: names whose CNAME points at a service anyone can claim.

The tables live in `data/takeover.json`: providers (CNAME patterns, the text
of their "nothing here" page, whether an NXDOMAIN target alone proves the
resource is unclaimed) and CDNs, whose CNAMEs are normal plumbing.

`check()` is pure: a name is a finding only when one of its CNAME targets
matches a claimable provider AND there is proof, either the target does not
exist (NXDOMAIN, for providers where that means "unclaimed") or a fetched
body carries the provider's signature. A CNAME to a CDN, to an unknown
provider, or to a provider that answers normally is not a finding.

`check_many()` does the I/O for a batch: it resolves names (or takes DNS
results the pipeline already has) and fetches bodies only for names whose
CNAME points at a provider with body signatures.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import NotRequired, TypedDict

from assetmon_tui.core.sanitize import clean_text

from .dns import DnsOptions, DnsResult, normalise, resolve
from .http import HttpOptions, HttpTarget, probe

BODY_LIMIT = 256 * 1024  # bytes of a body searched for signatures


@dataclass
class TakeoverFinding:
    name: str
    cname: str  # the CNAME target that matched the provider
    provider: str
    evidence: str  # "nxdomain" | "http-body"
    severity: str  # "high" | "medium"
    confidence: str  # "high" | "medium"
    detail: str = ""  # the signature seen, or why NXDOMAIN proves it


@dataclass(frozen=True)
class Provider:
    provider: str
    cname: tuple[str, ...]
    fingerprints: tuple[str, ...] = ()
    nxdomain: bool = False
    status: str = "vulnerable"  # or "edge"
    cdn: bool = False

    def matches(self, host: str) -> bool:
        return any(_glob(pattern, host) for pattern in self.cname)


def _glob(pattern: str, host: str) -> bool:
    """`*.example.com` matches any name below example.com (any depth);
    other `*` match within one label; no `*`: exact."""
    pattern = pattern.lower()
    if pattern.startswith("*.") and "*" not in pattern[2:]:
        return host.endswith(pattern[1:])
    if "*" not in pattern:
        return host == pattern
    return fnmatch.fnmatchcase(host, pattern) and host.count(".") >= pattern.count(".")


@dataclass(frozen=True)
class Tables:
    providers: tuple[Provider, ...]
    cdns: tuple[Provider, ...]

    def provider_for(self, host: str) -> Provider | None:
        return next((p for p in self.providers if p.matches(host)), None)

    def cdn_for(self, host: str) -> Provider | None:
        return next((p for p in self.cdns if p.matches(host)), None)


class ProviderSpec(TypedDict):
    """One entry of `providers` or `cdns` in takeover.json."""

    provider: str
    cname: list[str]
    fingerprints: NotRequired[list[str]]
    nxdomain: NotRequired[bool]
    status: NotRequired[str]


class TablesSpec(TypedDict):
    """takeover.json."""

    about: NotRequired[str]
    providers: list[ProviderSpec]
    cdns: NotRequired[list[ProviderSpec]]


def load_tables(data: TablesSpec) -> Tables:
    providers = tuple(
        Provider(
            p["provider"],
            tuple(p["cname"]),
            tuple(p.get("fingerprints", ())),
            bool(p.get("nxdomain")),
            p.get("status", "vulnerable"),
        )
        for p in data["providers"]
    )
    cdns = tuple(
        Provider(p["provider"], tuple(p["cname"]), (), bool(p.get("nxdomain")), "cdn", True)
        for p in data.get("cdns", ())
    )
    return Tables(providers, cdns)


@lru_cache(maxsize=1)
def tables() -> Tables:
    text = resources.files("assetmon_tui").joinpath("data", "takeover.json").read_text("utf-8")
    return load_tables(json.loads(text))


def classify(cname: str) -> tuple[str, str] | None:
    """("provider"|"cdn", name) for a CNAME target, None when unknown."""
    host = normalise(cname)
    t = tables()
    provider = t.provider_for(host)
    if provider is not None:
        return "provider", provider.provider
    cdn = t.cdn_for(host)
    return ("cdn", cdn.provider) if cdn is not None else None


def _finding(name: str, cname: str, provider: Provider, evidence: str, detail: str) -> TakeoverFinding:
    edge = provider.status == "edge"
    confidence = "high" if evidence == "nxdomain" else "medium" if edge else "high"
    return TakeoverFinding(
        clean_text(name, 256),
        clean_text(cname, 256),
        provider.provider,
        evidence,
        "medium" if edge and evidence == "http-body" else "high",
        confidence,
        clean_text(detail, 200),
    )


def dangles(dns_result: DnsResult) -> bool:
    """A CNAME chain that ends without an address. `scanners.dns` reports
    "nxdomain" when the A query said so, but merges per-type outcomes into
    "ok" once the chain gave records, so no address at the end is the sign;
    `check_many` confirms it with a query for the last target."""
    return bool(dns_result.cnames) and not dns_result.addresses and dns_result.status in ("nxdomain", "ok", "nodata")


def check(
    name: str,
    dns_result: DnsResult,
    http_bodies: dict[str, bytes] | None = None,
    table: Tables | None = None,
    target_status: str | None = None,
) -> TakeoverFinding | None:
    """The takeover finding for `name`, or None.

    `dns_result`: the name's resolution with its CNAME chain (`scanners.dns`).
    `http_bodies`: url -> body fetched from the name (any may be empty).
    `target_status`: the status of a direct query for the last CNAME target,
    when the caller made one ("nxdomain" confirms a dangling chain)."""
    t = table or tables()
    chain = [normalise(c) for c in dns_result.cnames]
    if not chain:
        return None
    confirmed = target_status == "nxdomain" or (target_status is None and dns_result.status == "nxdomain")
    dangling = confirmed or (target_status is None and dangles(dns_result))
    for cname in chain:
        provider = t.provider_for(cname)
        if provider is None:
            continue
        # NXDOMAIN is about the end of the chain; it proves the claim only
        # when the provider's names exist exactly while a resource is claimed.
        if dangling and provider.nxdomain:
            finding = _finding(
                name,
                cname,
                provider,
                "nxdomain",
                f"{chain[-1]} does not exist (NXDOMAIN)" if confirmed else f"{chain[-1]} has no address",
            )
            if not confirmed:
                finding.confidence = "medium"
            return finding
        for url, body in (http_bodies or {}).items():
            text = (body or b"")[:BODY_LIMIT].decode("utf-8", "replace").lower()
            for signature in provider.fingerprints:
                if signature.lower() in text:
                    return _finding(name, cname, provider, "http-body", f"{signature} ({url})")
    # A CDN that resolves, an unknown provider, or a known one that answers: no finding.
    return None


def wants_body(dns_result: DnsResult, table: Tables | None = None) -> bool:
    """True when fetching the name's pages could prove a takeover."""
    t = table or tables()
    if dns_result.status != "ok" or not dns_result.addresses:
        return False
    return any((p := t.provider_for(normalise(c))) is not None and p.fingerprints for c in dns_result.cnames)


async def check_many(
    names_or_results: Iterable[str | DnsResult],
    dns_options: DnsOptions | None = None,
    http_options: HttpOptions | None = None,
    web: tuple[tuple[str, int], ...] = (("http", 80), ("https", 443)),
    fetch: bool = True,
) -> AsyncIterator[TakeoverFinding]:
    """Check a batch. Names are resolved with `dns_options` (CNAME chains
    included); DnsResults are used as they are. Bodies are fetched (over
    `web` scheme/port pairs, connecting to the name's own address with the
    real Host header) only for names whose CNAME points at a provider that
    has body signatures."""
    results: list[DnsResult] = []
    names: list[str] = []
    for item in names_or_results:
        if isinstance(item, DnsResult):
            results.append(item)
        else:
            names.append(normalise(item))
    if names:
        base = dns_options or DnsOptions()
        both = DnsOptions(base.nameservers, ("A", "AAAA"), base.concurrency, base.timeout, base.retries)
        results += [r async for r in resolve(names, both)]
    options = dns_options or DnsOptions()
    # Chains that end without an address: ask for the last target itself.
    targets_to_confirm = {normalise(r.cnames[-1]) for r in results if dangles(r) and r.status != "nxdomain"}
    target_status: dict[str, str] = {}
    if targets_to_confirm:
        confirm = DnsOptions(options.nameservers, ("A",), options.concurrency, options.timeout, options.retries)
        target_status = {r.name: r.status async for r in resolve(targets_to_confirm, confirm)}
    to_fetch: dict[str, DnsResult] = {}
    for result in results:
        if fetch and wants_body(result):
            to_fetch[result.name] = result
            continue
        status = (
            "nxdomain"
            if result.status == "nxdomain"
            else target_status.get(normalise(result.cnames[-1]))
            if result.cnames
            else None
        )
        finding = check(result.name, result, target_status=status)
        if finding is not None:
            yield finding
    if not to_fetch:
        return
    targets = [
        HttpTarget(name, port, scheme, address=r.addresses[0] if r.addresses else None)
        for name, r in to_fetch.items()
        for scheme, port in web
    ]
    base_http = http_options or HttpOptions(timeout=5.0, max_body=BODY_LIMIT)
    probe_options = HttpOptions(**{**base_http.__dict__, "favicon": False, "fingerprint": False, "tls_info": False})
    bodies: dict[str, dict[str, bytes]] = {name: {} for name in to_fetch}
    async for response in probe(targets, probe_options):
        if response.status is not None:
            bodies[response.host][response.final_url or response.url] = response.body
    for name, result in to_fetch.items():
        finding = check(name, result, bodies[name])
        if finding is not None:
            yield finding
