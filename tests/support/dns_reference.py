"""dnspython's own resolver, asked plainly: the reference our resolver
(scanners/udp_resolver.py) must agree with, word for word. Until 2026-12-06
it was the dns step's resolver; the product no longer uses it."""

from __future__ import annotations

import asyncio

import dns.asyncresolver
import dns.exception
import dns.message
import dns.name
import dns.nameserver
import dns.rdataclass
import dns.rdatatype
import dns.resolver

from assetmon_tui.core.sanitize import clean_text
from assetmon_tui.scanners.dns import VALUE_LIMIT, DnsOptions, DnsRecord, DnsResult, _value, host_port, merge, normalise

_CHAIN_LIMIT = 16  # CNAME hops followed inside one response


def make_resolver(options: DnsOptions) -> dns.asyncresolver.Resolver:
    if options.nameservers:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(*host_port(s)) for s in options.nameservers]
    else:
        resolver = dns.asyncresolver.Resolver()
    resolver.timeout = options.timeout
    # dnspython retries until `lifetime` runs out, sleeping 0.1, 0.2, ... s
    # between rounds; budget one attempt per retry plus those pauses.
    retries = max(0, options.retries)
    backoff = sum(min(0.1 * 2**i, 2.0) for i in range(retries))
    resolver.lifetime = options.timeout * (retries + 1) + backoff
    return resolver


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
