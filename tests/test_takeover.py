"""Subdomain takeover checks: the lab's dangling CNAME, CDN CNAMEs that are
fine, body signatures served from loopback, and the pure decision table."""

from __future__ import annotations

import pytest
from support.loopback import FakeDNS, HttpServer, page

from assetmon_tui.lab import Lab
from assetmon_tui.scanners.dns import DnsOptions, DnsRecord, DnsResult
from assetmon_tui.scanners.takeover import TakeoverFinding, check, check_many, classify, tables

pytestmark = pytest.mark.one_store  # the store is not what this tests: the SQLite pass is enough


def result(name: str, status: str, *chain: str, address: str | None = None) -> DnsResult:
    records, current = [], name
    for target in chain:
        records.append(DnsRecord(current, "CNAME", target))
        current = target
    if address:
        records.append(DnsRecord(current, "A", address))
    return DnsResult(name, status, records)


async def collect(*args, **kw) -> list[TakeoverFinding]:
    return [f async for f in check_many(*args, **kw)]


# ---- the tables ----------------------------------------------------------------------


def test_tables_cover_the_usual_services():
    t = tables()
    assert len(t.providers) >= 30
    patterns = {p for provider in t.providers for p in provider.cname}
    for pattern in (
        "*.herokuapp.com",
        "*.s3.amazonaws.com",
        "*.github.io",
        "*.azurewebsites.net",
        "*.cloudapp.net",
        "*.trafficmanager.net",
        "*.blob.core.windows.net",
        "*.myshopify.com",
        "*.ghost.io",
        "*.pantheonsite.io",
        "*.zendesk.com",
        "*.readme.io",
        "*.surge.sh",
        "*.bitbucket.io",
        "*.netlify.app",
        "*.fly.dev",
        "*.webflow.io",
        "*.helpscoutdocs.com",
    ):
        assert pattern in patterns
    assert all(p.fingerprints or p.nxdomain for p in t.providers)  # every entry can be proven somehow
    cdn_patterns = {p for cdn in t.cdns for p in cdn.cname}
    for pattern in (
        "*.cloudfront.net",
        "*.fastly.net",
        "*.akamaiedge.net",
        "*.edgekey.net",
        "*.cloudflare.net",
        "*.azureedge.net",
    ):
        assert pattern in cdn_patterns
    assert classify("d111.cloudfront.net") == ("cdn", "cloudfront")
    assert classify("x.herokuapp.com") == ("provider", "heroku")
    assert classify("bucket.s3-website-eu-west-1.amazonaws.com") == ("provider", "aws-s3")
    assert classify("example.com") is None
    assert classify("herokuapp.com.evil.test") is None


# ---- the pure decision -----------------------------------------------------------------

GITHUB_404 = b"<html><title>Site not found</title><p>There isn't a GitHub Pages site here.</p></html>"


@pytest.mark.parametrize(
    "dns_result,bodies,expected",
    [
        (result("promo.a.test", "nxdomain", "old.herokuapp.com"), None, ("heroku", "nxdomain", "old.herokuapp.com")),
        (result("cdn.a.test", "nxdomain", "a1.azureedge.net"), None, ("azure-cdn", "nxdomain", "a1.azureedge.net")),
        (
            result("tm.a.test", "nxdomain", "x.trafficmanager.net", "y.cloudapp.net"),
            None,
            ("azure-traffic-manager", "nxdomain", "x.trafficmanager.net"),
        ),
        (
            result("docs.a.test", "ok", "acme.github.io", address="185.199.108.153"),
            {"http://docs.a.test/": GITHUB_404},
            ("github-pages", "http-body", "acme.github.io"),
        ),
        (
            result("files.a.test", "ok", "b.s3.amazonaws.com", address="52.0.0.1"),
            {"https://files.a.test/": b"<Error><Code>NoSuchBucket</Code></Error>"},
            ("aws-s3", "http-body", "b.s3.amazonaws.com"),
        ),
    ],
)
def test_findings(dns_result, bodies, expected):
    finding = check(dns_result.name, dns_result, bodies)
    assert finding is not None
    assert (finding.provider, finding.evidence, finding.cname) == expected
    assert finding.severity in ("high", "medium") and finding.confidence in ("high", "medium")
    assert finding.name == dns_result.name


@pytest.mark.parametrize(
    "dns_result,bodies",
    [
        (result("assets.a.test", "ok", "d1.cloudfront.net", address="13.0.0.1"), None),  # CDN that resolves
        (result("assets.a.test", "nxdomain", "d1.cloudfront.net"), None),  # not claimable by NXDOMAIN
        (result("x.a.test", "nxdomain", "gone.unknown-provider.test"), None),  # unknown provider
        (result("docs.a.test", "ok", "acme.github.io", address="185.199.108.153"), {"u": b"<title>Docs</title>"}),
        (result("docs.a.test", "nxdomain", "acme.github.io"), None),  # github.io: NXDOMAIN is not the proof
        (result("www.a.test", "ok", address="127.0.0.1"), {"u": GITHUB_404}),  # no CNAME at all
        (result("gone.a.test", "nxdomain"), None),  # the name itself does not exist
        (result("app.a.test", "ok", "old.herokuapp.com", address="54.0.0.1"), {"u": b"<h1>Welcome</h1>"}),
    ],
)
def test_not_findings(dns_result, bodies):
    assert check(dns_result.name, dns_result, bodies) is None


# ---- against the lab and loopback servers --------------------------------------------


async def test_lab_dangling_found_cdn_not_flagged():
    with Lab(standard_ports=False) as lab:
        est = lab.estate
        options = DnsOptions(nameservers=[lab.info["nameserver"]], timeout=1.0, retries=2)
        findings = await collect(
            sorted(est.hosts), options, web=(("http", lab.info["http_port"]), ("https", lab.info["https_port"]))
        )
    assert {f.name for f in findings} == {d["name"] for d in est.dangling}
    for f in findings:
        dangling = next(d for d in est.dangling if d["name"] == f.name)
        assert (f.cname, f.provider, f.evidence, f.confidence) == (
            dangling["target"],
            dangling["provider"],
            "nxdomain",
            "high",
        )
    assert not {c["name"] for c in est.cdn} & {f.name for f in findings}


async def test_body_signature_over_http():
    routes = {"/": page("<html><body><p>There isn't a GitHub Pages site here.</p></body></html>", status=404)}
    with HttpServer(routes, host="127.0.0.1") as web:
        zone = {
            "blog.example.test": {"CNAME": ["acme.github.io"]},
            "acme.github.io": {"A": ["127.0.0.1"]},
            "shop.example.test": {"CNAME": ["gone.myshopify.com"]},  # provider, nothing listening
            "gone.myshopify.com": {"A": ["127.0.0.77"]},
            "assets.example.test": {"CNAME": ["d1.cloudfront.net"]},
            "d1.cloudfront.net": {"A": ["127.0.0.1"]},  # same page, but a CDN: not fetched, not flagged
            "promo.example.test": {"CNAME": ["x.herokuapp.com"]},  # NXDOMAIN
        }
        with FakeDNS(zone) as dns:
            findings = await collect(
                sorted({n for n in zone if n.endswith("example.test")}),
                DnsOptions(nameservers=[dns.address], timeout=0.5, retries=1),
                web=(("http", web.port),),
            )
        hosts = {r.headers.get("host") for r in web.requests}
    found = {f.name: f for f in findings}
    assert set(found) == {"blog.example.test", "promo.example.test"}
    assert found["blog.example.test"].evidence == "http-body"
    assert found["blog.example.test"].provider == "github-pages"
    assert found["promo.example.test"].evidence == "nxdomain"
    assert hosts == {f"blog.example.test:{web.port}"}  # only the provider-backed name was fetched


async def test_check_many_takes_dns_results():
    results = [
        result("promo.a.test", "nxdomain", "old.herokuapp.com"),
        result("assets.a.test", "ok", "d1.cloudfront.net", address="127.0.0.9"),
    ]
    findings = await collect(results, fetch=False)
    assert [f.name for f in findings] == ["promo.a.test"]
