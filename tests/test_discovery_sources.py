"""Discovery sources beyond brute force and CT (scanners/sources.py), each
against loopback DNS servers: zone records (MX, NS, SRV, SPF followed in
scope, DMARC), zone transfers, reverse DNS and permutations; names out of
scope are never kept nor asked about, and an excluded zone gets no query."""

from __future__ import annotations

import pytest
from support.loopback import FakeDNS

from assetmon_tui.core.targets import Scope, parse_target
from assetmon_tui.scanners import sources
from assetmon_tui.scanners.dns import DnsOptions
from assetmon_tui.scanners.subdomains import Found, SubdomainOptions, discover

pytestmark = pytest.mark.one_store

ZONE = {
    "acme.test": {
        "A": ["127.0.0.10"],
        "MX": ["10 mail.acme.test", "20 mx.partner.example"],
        "NS": ["ns1.acme.test", "ns.provider.example"],
        "TXT": ['"v=spf1 include:_spf.acme.test a:relay.acme.test mx:mx2.acme.test include:_spf.google.com -all"'],
    },
    "_spf.acme.test": {"TXT": ['"v=spf1 a:outbound.acme.test include:acme.test redirect=_spf2.acme.test"']},
    "_spf2.acme.test": {"TXT": ['"v=spf1 a:deep.acme.test ~all"']},
    "_dmarc.acme.test": {"TXT": ['"v=DMARC1; p=none; rua=mailto:d@reports.acme.test; ruf=mailto:x@evil.example"']},
    "_sip._tcp.acme.test": {"SRV": ["10 5 5060 sip.acme.test"]},
    "_autodiscover._tcp.acme.test": {"SRV": ["0 0 443 autodiscover.secret.acme.test"]},
    "api.acme.test": {"A": ["127.0.0.11"]},
    "dev.acme.test": {"A": ["127.0.0.12"]},
    "api-dev.acme.test": {"A": ["127.0.0.13"]},
    "api2.acme.test": {"A": ["127.0.0.14"]},
    "*.dyn.acme.test": {"A": ["127.0.0.99"]},
    "www.dyn.acme.test": {"A": ["127.0.0.99"]},
    "10.0.0.127.in-addr.arpa": {"PTR": ["legacy-box.acme.test"]},
    "11.0.0.127.in-addr.arpa": {"PTR": ["api.acme.test"]},
    "20.0.0.127.in-addr.arpa": {"PTR": ["host.other.example"]},
}
for host in ("mail", "relay", "mx2", "outbound", "deep", "reports", "sip", "legacy-box", "ns1", "axfr-only"):
    ZONE.setdefault(f"{host}.acme.test", {"A": ["127.0.0.20"]})


def scope() -> Scope:
    return Scope([parse_target("acme.test"), parse_target("!*.secret.acme.test")])


def opts(dns: FakeDNS, **kw) -> SubdomainOptions:
    kw.setdefault("tools", ())
    kw.setdefault("ct", False)
    kw.setdefault("brute", False)
    kw.setdefault("san", False)
    dns_options = DnsOptions(nameservers=[dns.address], rtypes=("A", "AAAA"), concurrency=50, timeout=1.0, retries=1)
    return SubdomainOptions(dns=dns_options, axfr_timeout=2.0, **kw)


async def collect(options: SubdomainOptions, **kw) -> dict[str, set[str]]:
    s = scope()
    found: list[Found] = [
        f async for f in discover(["acme.test"], options, s.__contains__, excludes_below=s.excludes_below, **kw)
    ]
    out: dict[str, set[str]] = {}
    for f in found:
        out.setdefault(f.source, set()).add(f.name)
    return out


def test_spf_terms_and_permutations_are_pure_and_bounded():
    text = "v=spf1 ip4:10.0.0.0/8 include:_spf.acme.test a:relay.acme.test exists:%{i}.x.acme.test -all"
    assert sources.spf_names(text) == [("include", "_spf.acme.test"), ("a", "relay.acme.test")]
    assert sources.spf_names("not spf include:x.acme.test") == []
    assert sources.txt_text('"v=spf1 " "a:x.acme.test"') == "v=spf1 a:x.acme.test"
    made = sources.permutations({"api.acme.test", "dev.acme.test", "shop.eu.acme.test"}, "acme.test", 40)
    assert len(made) == 40 and "api2.acme.test" in made and "api.acme.test" not in made
    assert "api-dev.acme.test" in sources.permutations({"api.acme.test", "dev.acme.test"}, "acme.test", 500)
    assert all(n.endswith(".acme.test") for n in made)


async def test_zone_records_give_their_names_in_scope_and_follow_spf_in_scope_only(record_property):
    with FakeDNS(ZONE) as dns:
        found = await collect(opts(dns, records=True))
        asked = {name for name, _ in dns.queries}
    assert found["mx"] == {"mail.acme.test"}  # mx.partner.example is another company's
    assert found["ns"] == {"ns1.acme.test"}
    assert found["srv"] == {"sip.acme.test"}  # the excluded zone's name is dropped
    assert found["spf"] >= {
        "relay.acme.test",
        "mx2.acme.test",
        "outbound.acme.test",
        "deep.acme.test",
    }
    assert found["dmarc"] == {"reports.acme.test"}
    assert not [n for n in asked if not (n == "acme.test" or n.endswith(".acme.test"))], asked  # no query outside
    assert not [n for n in asked if n.endswith("secret.acme.test")], asked  # nor into the excluded zone
    assert ("_spf2.acme.test", "TXT") in dns.queries  # redirect= followed, two deep
    assert sum(1 for q in dns.queries if q == ("_spf.acme.test", "TXT")) == 1  # the include loop ends


async def test_a_zone_transfer_gives_the_zone_and_a_refusal_is_quiet():
    outcomes: list[tuple[str, str, str]] = []
    with FakeDNS(ZONE, axfr={"acme.test": ["axfr-only.acme.test", "x.other.example"]}) as dns:
        found = await collect(opts(dns, axfr=True, report=lambda *o: outcomes.append(o)))
    assert dns.transfers >= 1 and found["axfr"] == {"acme.test", "axfr-only.acme.test"}
    with FakeDNS(ZONE, axfr={"acme.test": None}) as dns:
        outcomes.clear()
        found = await collect(opts(dns, axfr=True, report=lambda *o: outcomes.append(o)))
    assert dns.transfers >= 1 and "axfr" not in found
    assert ("axfr acme.test", "ok", "") in outcomes


async def test_reverse_dns_of_addresses_keeps_names_in_scope():
    with FakeDNS(ZONE) as dns:
        found = await collect(opts(dns, ptr=True), addresses=["127.0.0.10", "127.0.0.11", "127.0.0.20"])
    assert found["ptr"] == {"legacy-box.acme.test", "api.acme.test"}  # host.other.example is out of scope


async def test_permutations_find_variants_and_nothing_from_a_wildcard():
    with FakeDNS(ZONE) as dns:
        found = await collect(
            opts(dns, permutations=300), seeds=["api.acme.test", "dev.acme.test", "www.dyn.acme.test"]
        )
        asked = [n for n, _ in dns.queries]
    assert {"api-dev.acme.test", "api2.acme.test"} <= found["permutation"]
    assert not [n for n in found["permutation"] if n.endswith(".dyn.acme.test")]
    assert len([n for n in asked if n.endswith(".acme.test")]) < 2000  # bounded per zone
