"""Bulk DNS resolution with dnspython's asyncio resolver.

A fixed pool of workers pulls names from a shared iterator, so memory and
sockets stay bounded however long the list; results are yielded as each name
completes. Failures are statuses, never exceptions.

`rate` paces each nameserver (shared_rate.py: shared through Redis with
`share_url`). A name's first query waits for its turn before dnspython's
lifetime starts, so a long queue does not eat its retries; a retry waits
ahead of the queue.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

import dns.asyncresolver
import dns.exception
import dns.message
import dns.name
import dns.nameserver
import dns.rdataclass
import dns.rdatatype
import dns.resolver

from assetmon_tui.core.sanitize import clean_text

from .dns_status import UNCERTAIN
from .pool import bounded
from .shared_rate import Pacer, SharedRate

if TYPE_CHECKING:
    import dns._asyncbackend  # Backend (dns.asyncbackend does not re-export it for mypy)
    import dns.rdata
    from dns.rdtypes.IN.A import A
    from dns.rdtypes.IN.AAAA import AAAA
    from dns.rdtypes.mxbase import MXBase
    from dns.rdtypes.nsbase import NSBase
    from dns.rdtypes.txtbase import TXTBase

VALUE_LIMIT = 1024  # TXT records can be long; keep them, within reason
_CHAIN_LIMIT = 16  # CNAME hops followed inside one response


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


def _nameserver(spec: str) -> dns.nameserver.Nameserver:
    return dns.nameserver.Do53Nameserver(*host_port(spec))


def make_resolver(options: DnsOptions) -> dns.asyncresolver.Resolver:
    if options.nameservers:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [_nameserver(s) for s in options.nameservers]
    else:
        resolver = dns.asyncresolver.Resolver()
    resolver.timeout = options.timeout
    # dnspython retries until `lifetime` runs out, sleeping 0.1, 0.2, ... s
    # between rounds; budget one attempt per retry plus those pauses.
    retries = max(0, options.retries)
    backoff = sum(min(0.1 * 2**i, 2.0) for i in range(retries))
    resolver.lifetime = options.timeout * (retries + 1) + backoff
    return resolver


def _address(host: str, port: int) -> str:
    """The key of a nameserver's rate (udp_resolver's `address` too, so both paths share it)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# The nameserver whose turn the current lookup already waited for (its first attempt).
_prepaid: contextvars.ContextVar[object] = contextvars.ContextVar("prepaid", default=None)


class _PacedNameserver(dns.nameserver.Do53Nameserver):
    """A Do53 nameserver whose every query waits its turn at the pace."""

    def __init__(self, address: str, port: int, shared: SharedRate) -> None:
        super().__init__(address, port)
        self.shared = shared
        self.pacer = Pacer(lambda: shared.share)

    async def async_query(
        self,
        request: dns.message.QueryMessage,
        timeout: float,
        source: str | None,
        source_port: int,
        max_size: bool,
        backend: dns._asyncbackend.Backend,
        one_rr_per_rrset: bool = False,
        ignore_trailing: bool = False,
    ) -> dns.message.Message:
        if _prepaid.get() is self:
            _prepaid.set(None)
        else:
            await self.pacer.wait(urgent=True)  # a retry: dnspython's lifetime is running
        return await super().async_query(
            request, timeout, source, source_port, max_size, backend, one_rr_per_rrset, ignore_trailing
        )


def _paced(resolver: dns.asyncresolver.Resolver, options: DnsOptions) -> list[_PacedNameserver]:
    """The resolver's Do53 nameservers, paced at options.rate each (others, DoH, are left as they are)."""
    paced: list[_PacedNameserver] = []
    servers: list[str | dns.nameserver.Nameserver] = []
    for server in resolver.nameservers:
        if isinstance(server, dns.nameserver.Do53Nameserver):
            host, port = server.address, server.port
        elif isinstance(server, str) and not server.startswith("https:"):
            host, port = server, resolver.nameserver_ports.get(server, resolver.port)
        else:
            servers.append(server)
            continue
        shared = SharedRate(_address(host, port), options.rate, options.share_url).start()
        paced.append(_PacedNameserver(host, port, shared))
        servers.append(paced[-1])
    resolver.nameservers = servers
    resolver.rotate = False  # the first one is asked first: its turn is taken before the lifetime starts
    return paced


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


def _records(qname: dns.name.Name, rtype: str, response: dns.message.Message) -> list[DnsRecord]:
    """CNAME hops from qname (in order), then the rtype records at the end."""
    wanted = dns.rdatatype.from_text(rtype)
    records: list[DnsRecord] = []
    current = qname
    for _ in range(_CHAIN_LIMIT):
        cname = response.get_rrset(response.answer, current, dns.rdataclass.IN, dns.rdatatype.CNAME)
        if cname is None or wanted == dns.rdatatype.CNAME:
            break
        target = cname[0].target
        records.append(DnsRecord(_text(current), "CNAME", _value(cname[0]), cname.ttl))
        current = target
    final = response.get_rrset(response.answer, current, dns.rdataclass.IN, wanted)
    if final is not None:
        records += [DnsRecord(_text(current), rtype, _value(r), final.ttl) for r in final]
    return records


def _text(name: dns.name.Name) -> str:
    return clean_text(normalise(name.to_text()), VALUE_LIMIT)


async def _query(resolver: dns.asyncresolver.Resolver, qname: dns.name.Name, rtype: str) -> tuple[str, list[DnsRecord]]:
    first = resolver.nameservers[0] if resolver.nameservers else None
    if not isinstance(first, _PacedNameserver):
        return await _ask(resolver, qname, rtype)
    await first.pacer.wait()  # dnspython asks the first one first (no rotation)
    token = _prepaid.set(first)
    try:
        return await _ask(resolver, qname, rtype)
    finally:
        _prepaid.reset(token)


async def _ask(resolver: dns.asyncresolver.Resolver, qname: dns.name.Name, rtype: str) -> tuple[str, list[DnsRecord]]:
    try:
        answer = await resolver.resolve(qname, rtype, raise_on_no_answer=False, search=False)
    except dns.resolver.NXDOMAIN as exc:
        # A dangling CNAME (target does not exist) still tells us the chain.
        responses: dict[dns.name.Name, dns.message.Message] = exc.responses()  # type: ignore[no-untyped-call]  # dnspython leaves it unannotated
        response = responses.get(qname)
        return "nxdomain", _records(qname, rtype, response) if response else []
    except dns.resolver.NoNameservers as exc:
        rcodes = {str(error[3]) for error in exc.kwargs.get("errors", [])}
        return ("servfail" if "SERVFAIL" in rcodes else "error"), []
    except dns.exception.Timeout:
        return "timeout", []
    except (dns.exception.DNSException, OSError, ValueError):
        return "error", []
    records = _records(qname, rtype, answer.response)
    return ("ok" if records else "nodata"), records


# When queries for one name disagree, the most telling status wins.
_PRIORITY = ("ok", "nxdomain", "servfail", "timeout", "error", "nodata")


async def resolve_one(resolver: dns.asyncresolver.Resolver, name: str, rtypes: tuple[str, ...]) -> DnsResult:
    try:
        qname = dns.name.from_text(name)
    except (dns.exception.DNSException, ValueError):  # empty label, too long...
        return DnsResult(name, "error", [])
    rtypes = tuple(dict.fromkeys(t.upper() for t in rtypes))
    first = await _query(resolver, qname, rtypes[0])
    outcomes = [first]
    # A missing or unreachable name is missing for every type: stop early.
    if first[0] not in ("nxdomain", "timeout") and len(rtypes) > 1:
        outcomes += await asyncio.gather(*(_query(resolver, qname, t) for t in rtypes[1:]))
    return merge(name, outcomes)


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


async def resolve(
    names: Iterable[str],
    options: DnsOptions,
    progress: Callable[[int, int], None] | None = None,
) -> AsyncIterator[DnsResult]:
    """Resolve each name (lowercased, no trailing dot, duplicates dropped)
    for options.rtypes; yield DnsResults as they complete."""
    for rtype in options.rtypes:  # a typo here is a caller bug: say so up front
        try:
            dns.rdatatype.from_text(rtype)
        except dns.exception.DNSException:
            raise ValueError(f"unknown DNS record type {rtype!r}") from None
    unique = list(dict.fromkeys(n for n in map(normalise, names) if n))
    if not unique or not options.rtypes:
        return
    resolver = make_resolver(options)
    paced = _paced(resolver, options) if options.rate > 0 else []
    try:
        for server in paced:
            await server.shared.started()
        async for result in bounded(
            unique, lambda name: resolve_one(resolver, name, options.rtypes), options.concurrency, progress
        ):
            yield result
    finally:
        for server in paced:
            server.pacer.close()
            server.shared.close()
