"""Bulk DNS resolution: the types every resolver of ours returns, and
`resolve`, the dns step's many names of many record types.

Every query goes through udp_resolver.UdpResolver (one socket per
nameserver, a lost query asked again after about a round trip, the pace
adapted to losses and SERVFAIL, shared through Redis with `share_url`), the
brute force's resolver too: one engine, whose results are dnspython's, word
for word. A fixed pool of workers pulls names from a shared iterator, so
memory stays bounded however long the list; results are yielded as each name
completes. Failures are statuses, never exceptions.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

import dns.exception
import dns.rdatatype

from assetmon_tui.core.sanitize import clean_text

from .dns_status import UNCERTAIN
from .pool import bounded

if TYPE_CHECKING:
    import dns.rdata
    from dns.rdtypes.IN.A import A
    from dns.rdtypes.IN.AAAA import AAAA
    from dns.rdtypes.mxbase import MXBase
    from dns.rdtypes.nsbase import NSBase
    from dns.rdtypes.txtbase import TXTBase

    from .udp_resolver import ServerStats

VALUE_LIMIT = 1024  # TXT records can be long; keep them, within reason


@dataclass
class DnsOptions:
    nameservers: list[str] = field(default_factory=list)  # "host:port" or "host"; empty = system
    rtypes: tuple[str, ...] = ("A", "AAAA", "CNAME")
    concurrency: int = 200
    timeout: float = 2.0  # per query attempt
    retries: int = 2  # retries on timeout
    # Queries a second to each nameserver at most (0: no limit), every attempt counted; with
    # share_url (a Redis URL) the rate is shared by every process asking that nameserver.
    rate: float = 0.0
    share_url: str = ""


@dataclass
class DnsRecord:
    name: str
    rtype: str
    value: str
    ttl: int | None = None


@dataclass
class DnsResult:
    name: str
    # "ok" | "partial" (some record types unknown) | "nxdomain" | "nodata" | "servfail" | "timeout" | "error"
    status: str
    records: list[DnsRecord]

    @property
    def addresses(self) -> list[str]:
        return [r.value for r in self.records if r.rtype in ("A", "AAAA")]

    @property
    def cnames(self) -> list[str]:
        return [r.value for r in self.records if r.rtype == "CNAME"]


def normalise(name: str) -> str:
    return name.strip().lower().rstrip(".")


def host_port(spec: str) -> tuple[str, int]:
    """A nameserver as given: "host", "host:port", "[v6]:port" or a bare IPv6 address."""
    spec = spec.strip()
    host, port = spec, 53
    if spec.startswith("["):  # [::1]:5353
        host, _, rest = spec[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else 53
    elif spec.count(":") == 1:  # host:port (a bare IPv6 address has several colons)
        host, _, port_text = spec.partition(":")
        port = int(port_text)
    return host, port


def _value(rdata: dns.rdata.Rdata) -> str:
    # Dispatch on the record type; the casts name the class dnspython uses for it.
    kind = rdata.rdtype
    text: str
    if kind in (dns.rdatatype.A, dns.rdatatype.AAAA):
        text = cast("A | AAAA", rdata).address
    elif kind in (dns.rdatatype.CNAME, dns.rdatatype.NS, dns.rdatatype.PTR):
        text = normalise(cast("NSBase", rdata).target.to_text())
    elif kind == dns.rdatatype.MX:
        mx = cast("MXBase", rdata)
        text = f"{mx.preference} {normalise(mx.exchange.to_text())}"
    elif kind in (dns.rdatatype.TXT, dns.rdatatype.SPF):
        text = b"".join(cast("TXTBase", rdata).strings).decode("utf-8", "replace")
    else:
        text = rdata.to_text()
    return clean_text(text, VALUE_LIMIT)  # zone content is attacker-controlled


# When queries for one name disagree, the most telling status wins.
_PRIORITY = ("ok", "nxdomain", "servfail", "timeout", "error", "nodata")


def merge(name: str, outcomes: Iterable[tuple[str, list[DnsRecord]]]) -> DnsResult:
    """One name's result from its queries' (status, records): records once each,
    the most telling status, "partial" when it exists but some types are unknown."""
    outcomes = list(outcomes)
    records: list[DnsRecord] = []
    seen: set[tuple[str, str, str]] = set()
    for _, found in outcomes:
        for record in found:
            key = (record.name, record.rtype, record.value)
            if key not in seen:  # A and AAAA both report the same CNAME chain
                seen.add(key)
                records.append(record)
    statuses = {status for status, _ in outcomes}
    status = "ok" if records else next(s for s in _PRIORITY if s in statuses)
    if records and statuses & set(UNCERTAIN):
        status = "partial"  # it exists, but some record types are unknown this time
    return DnsResult(name, status, records)


PACE_EVERY = 0.25  # seconds between two calls of a resolver's pace callback (here and the brute force's)


async def resolve(
    names: Iterable[str],
    options: DnsOptions,
    progress: Callable[[int, int], None] | None = None,
    pace: Callable[[list[ServerStats]], None] | None = None,
) -> AsyncIterator[DnsResult]:
    """Resolve each name (lowercased, no trailing dot, duplicates dropped)
    for options.rtypes; yield DnsResults as they complete. `pace` is told each
    nameserver's counters and pace (a back-off shows) every PACE_EVERY seconds
    and at the end."""
    for rtype in options.rtypes:  # a typo here is a caller bug: say so up front
        try:
            dns.rdatatype.from_text(rtype)
        except dns.exception.DNSException:
            raise ValueError(f"unknown DNS record type {rtype!r}") from None
    unique = list(dict.fromkeys(n for n in map(normalise, names) if n))
    if not unique or not options.rtypes:
        return
    from .udp_resolver import UdpResolver  # (it builds on this module's types)

    rtypes = tuple(options.rtypes)
    told = time.monotonic()
    async with UdpResolver(options.nameservers, options.timeout, options.retries, options.rate, options.share_url) as r:
        async for result in bounded(unique, lambda name: r.resolve(name, rtypes), options.concurrency, progress):
            if pace is not None and time.monotonic() - told >= PACE_EVERY:
                told = time.monotonic()
                pace(r.stats())
            yield result
        if pace is not None:
            pace(r.stats())
