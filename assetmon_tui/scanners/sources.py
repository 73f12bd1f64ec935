"""Discovery sources beyond brute force and CT, each a source of names with
its own outcome, fed back into discovery (`subdomains._Run` calls them).

- **Zone records** of every zone discovery knows (roots and zones found on
  the way): MX exchanges, NS hosts, SRV targets of common service labels, and
  names in TXT: SPF `include:`/`a:`/`mx:`/`redirect=`/`exists:` (followed
  while in scope, `spf_depth` deep, each domain once), DMARC `rua`/`ruf`.
- **Zone transfer**: AXFR from each of the zone's name servers (and the
  configured nameservers); a refusal is normal and quiet.
- **Reverse DNS**: the PTR of addresses discovery meets.
- **Permutations** of names found, once the other sources are quiet
  (`permutations` candidates per zone at most, checked against wildcards
  like brute-force names).

Sources only propose names: the caller keeps those under a root and in
scope, and never sends a query about a name out of scope, so an SPF
include of a provider's domain is kept as a record, not followed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from collections.abc import Awaitable, Callable, Iterable

from .dns import DnsRecord

Lookup = Callable[[str, str], Awaitable[tuple[str, list[DnsRecord]]]]  # (name, rtype) -> (status, records)
Propose = Callable[[str, str], None]  # (name, source)

SRV_LABELS = (
    "_sip._tcp",
    "_sip._udp",
    "_sips._tcp",
    "_xmpp-client._tcp",
    "_xmpp-server._tcp",
    "_jabber._tcp",
    "_ldap._tcp",
    "_kerberos._tcp",
    "_kerberos._udp",
    "_autodiscover._tcp",
    "_caldav._tcp",
    "_caldavs._tcp",
    "_carddav._tcp",
    "_carddavs._tcp",
    "_imap._tcp",
    "_imaps._tcp",
    "_pop3s._tcp",
    "_submission._tcp",
    "_matrix._tcp",
    "_mta-sts._tcp",
    "_gc._tcp",
    "_vlmcs._tcp",
    "_h323cs._tcp",
    "_minecraft._tcp",
    "_ts3._udp",
)
_SPF_TERM = re.compile(r"(?:^|\s)[+\-~?]?(include:|a:|mx:|exists:|redirect=|ptr:)([^\s/]+)", re.IGNORECASE)
_MAILTO = re.compile(r"mailto:[^@\s,;!]+@([A-Za-z0-9.-]+)", re.IGNORECASE)
# Environment and numbering variants that permutations try around a label.
ENVIRONMENTS = ("dev", "test", "stage", "staging", "qa", "uat", "prod", "int", "beta", "old", "new", "internal")


def _host(value: str) -> str:
    """A record's host value ("10 mx.acme.test." -> "mx.acme.test")."""
    return value.split()[-1].rstrip(".").lower() if value.strip() else ""


def txt_text(value: str) -> str:
    """A TXT record as one string (its quoted chunks joined)."""
    parts = re.findall(r'"((?:[^"\\]|\\.)*)"', value)
    return "".join(parts) if parts else value


def spf_names(text: str) -> list[tuple[str, str]]:
    """(mechanism, domain) of an SPF record's terms that name hosts or domains."""
    if not text.lower().startswith("v=spf1"):
        return []
    out = []
    for mech, domain in _SPF_TERM.findall(text):
        domain = domain.rstrip(".").lower()
        if "%" in domain:  # macros name no host
            continue
        out.append((mech.lower().rstrip(":="), domain))
    return out


async def zone_records(
    zone: str, lookup: Lookup, propose: Propose, in_scope: Callable[[str], bool], spf_depth: int = 3
) -> str:
    """Names in the zone's MX, NS, SRV, TXT (SPF) and DMARC records. Returns
    "" when every query got a definitive answer, else why not."""
    unsure: list[str] = []

    async def ask(name: str, rtype: str) -> list[DnsRecord]:
        status, records = await lookup(name, rtype)
        if status in ("timeout", "servfail", "error"):
            unsure.append(f"{rtype} {name}: {status}")
        return [r for r in records if r.rtype == rtype]

    mx, ns, txt, dmarc, *srv = await asyncio.gather(
        ask(zone, "MX"),
        ask(zone, "NS"),
        ask(zone, "TXT"),
        ask(f"_dmarc.{zone}", "TXT"),
        *(ask(f"{label}.{zone}", "SRV") for label in SRV_LABELS),
    )
    for record in mx:
        propose(_host(record.value), "mx")
    for record in ns:
        propose(_host(record.value), "ns")
    for records in srv:
        for record in records:
            propose(_host(record.value), "srv")
    for record in dmarc:
        for domain in _MAILTO.findall(txt_text(record.value)):
            propose(domain.lower(), "dmarc")
    await _spf(zone, [txt_text(r.value) for r in txt], ask, propose, in_scope, spf_depth, {zone})
    return "; ".join(unsure[:3])


async def _spf(
    domain: str,
    texts: Iterable[str],
    ask: Callable[[str, str], Awaitable[list[DnsRecord]]],
    propose: Propose,
    in_scope: Callable[[str], bool],
    depth: int,
    seen: set[str],
) -> None:
    follow = []
    for text in texts:
        for mech, name in spf_names(text):
            propose(name, "spf")
            if mech in ("include", "redirect") and name not in seen and depth > 1 and in_scope(name):
                seen.add(name)  # each domain once: SPF loops end here
                follow.append(name)
    for name in follow:
        records = await ask(name, "TXT")
        await _spf(name, [txt_text(r.value) for r in records], ask, propose, in_scope, depth - 1, seen)


def reverse_name(address: str) -> str:
    return ipaddress.ip_address(address).reverse_pointer


async def ptr_names(address: str, lookup: Lookup) -> tuple[list[str], str]:
    """The names an address's PTR records give, and "" or why there was no answer."""
    status, records = await lookup(reverse_name(address), "PTR")
    names = [_host(r.value) for r in records if r.rtype == "PTR"]
    return names, status if status in ("timeout", "servfail", "error") else ""


async def axfr(zone: str, server: str, port: int, timeout: float) -> tuple[list[str], str]:
    """The names of a zone transfer from `server`, and "" or why there was
    none ("refused" is the usual answer, and not a failure)."""
    import dns.exception
    import dns.name
    import dns.query
    import dns.xfr
    import dns.zone

    def transfer() -> list[str]:
        z = dns.zone.Zone(dns.name.from_text(zone), relativize=False)
        dns.query.inbound_xfr(server, z, port=port, timeout=timeout, lifetime=timeout)
        return sorted({str(name).rstrip(".").lower() for name in z.nodes})

    try:
        return await asyncio.to_thread(transfer), ""
    except (dns.xfr.TransferError, dns.exception.FormError) as exc:
        return [], f"refused ({exc})"[:200]
    except (OSError, EOFError, ValueError, dns.exception.DNSException) as exc:  # a hostile server's answer
        return [], f"{type(exc).__name__}: {exc}"[:200]


def permutations(names: Iterable[str], zone: str, budget: int, zones: Iterable[str] = ()) -> list[str]:
    """Candidate names in `zone` made from the labels of names found there:
    joined pairs (`api-dev`, `dev-api`), numbers (`api2`, `api-01`),
    environments (`api-stage`, `stage-api`, and `api.dev` where `dev.<zone>`
    is one of `zones`), at most `budget`, those found excluded; in a stable
    order (the nearest variants first)."""
    known_zones = set(zones)
    labels = []
    for name in sorted(names):
        if name.endswith("." + zone):
            first = name[: -len(zone) - 1].split(".")[0]
            if first and first not in labels:
                labels.append(first)
    known = set(names)
    out: dict[str, None] = {}

    def add(label: str, under: str = zone) -> None:
        if len(out) < budget and 0 < len(label) <= 63 and label[0] != "-" and label[-1] != "-":
            candidate = f"{label}.{under}"
            if candidate not in known:
                out.setdefault(candidate, None)

    base = [re.sub(r"[-]?\d+$", "", label) or label for label in labels]
    for label in dict.fromkeys(base):
        for n in ("1", "2", "3", "-1", "-2", "01", "02"):
            add(label + n)
    for label in dict.fromkeys(base):
        for env in ENVIRONMENTS:
            if env != label:
                add(f"{label}-{env}")
                add(f"{env}-{label}")
                if f"{env}.{zone}" in known_zones:  # an environment zone that exists, not a guess
                    add(label, f"{env}.{zone}")
    for a in labels:
        for b in labels:
            if a != b:
                add(f"{a}-{b}")
    return list(out)
