"""Subdomain discovery against the lab (CT, brute force, wildcards, SANs,
recursion) and hostile loopback servers (CT answers that never end, garbage,
50 MB); external tools through a fake `subfinder` on PATH."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import time
from pathlib import Path

import pytest
from support.loopback import FakeDNS, HttpServer, endless, free_port, page, random_addresses, stall
from support.lossy import LossyProxy

from assetmon_tui.core.targets import Scope, parse_target
from assetmon_tui.lab import Lab
from assetmon_tui.lab.estate import LEGACY_ADDRESS
from assetmon_tui.scanners.dns import DnsOptions
from assetmon_tui.scanners.http import HttpOptions, HttpTarget, probe
from assetmon_tui.scanners.subdomains import (
    Found,
    Resume,
    SubdomainOptions,
    cert_names,
    ct_fetch,
    ct_search,
    discover,
    harvest_http,
    harvest_names,
    load_wordlist,
    valid_name,
)

pytestmark = pytest.mark.one_store  # the store is not what this tests: the SQLite pass is enough

DOMAIN = "acme.test"


@pytest.fixture(scope="module")
def lab():
    with Lab(standard_ports=False) as running:
        yield running


@pytest.fixture(scope="module")
def head_words(tmp_path_factory) -> Path:
    """The head of the bundled wordlist: enough for the lab, quick to run."""
    path = tmp_path_factory.mktemp("words") / "head.txt"
    path.write_text("\n".join(load_wordlist()[:300]) + "\n")
    return path


def in_scope(name: str) -> bool:
    return name == DOMAIN or name.endswith("." + DOMAIN)


def options(lab: Lab, **kw) -> SubdomainOptions:
    kw.setdefault("tools", ())
    kw.setdefault("tls_ports", (lab.info["https_port"],))
    kw.setdefault(
        "dns",
        DnsOptions(nameservers=[lab.info["nameserver"]], rtypes=("A", "AAAA"), concurrency=100, timeout=1.0, retries=2),
    )
    return SubdomainOptions(ct_url=lab.info["ct_url"], **kw)


async def collect(domains, opts, scope=in_scope, **kw) -> list[Found]:
    return [f async for f in discover(domains, opts, scope, **kw)]


def by_source(found: list[Found]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for f in found:
        out.setdefault(f.source, set()).add(f.name)
    return out


class Outcomes:
    """`SubdomainOptions.report`: records (source, status, reason), and fails
    the test if a source is reported twice."""

    def __init__(self):
        self.calls: list[tuple[str, str, str]] = []

    def __call__(self, source: str, status: str, reason: str) -> None:
        assert source not in self.by_source(), f"{source} reported twice"
        assert status in ("ok", "failed", "skipped") and "\n" not in reason
        assert (status == "ok") == (reason == ""), (source, status, reason)
        self.calls.append((source, status, reason))

    def by_source(self) -> dict[str, tuple[str, str]]:
        return {source: (status, reason) for source, status, reason in self.calls}

    def statuses(self) -> dict[str, str]:
        return {source: status for source, status, _ in self.calls}


def wordlist(directory: Path, words: str) -> str:
    path = directory / "words.txt"
    path.write_text("\n".join(words.split()) + "\n")
    return str(path)


def fast_dns(server: str, **kw) -> DnsOptions:
    """One try per query: a query the test drops costs one timeout (all in
    parallel), and one that is answered is never asked twice."""
    return DnsOptions(nameservers=[server], rtypes=("A", "AAAA"), **{"timeout": 1.0, "retries": 0, **kw})


# ---- the bundled wordlist --------------------------------------------------------


def test_bundled_wordlist():
    words = load_wordlist()
    assert len(words) >= 5000
    assert len(set(words)) == len(words)
    for word in (
        "www",
        "mail",
        "autodiscover",
        "jenkins",
        "gitlab",
        "grafana",
        "kibana",
        "vpn",
        "sso",
        "dev",
        "stg",
        "uat",
        "prod",
        "dev-api",
        "api-stg",
        "eu-west-1",
        "web01",
        "mx2",
    ):
        assert word in words
    assert all(w == w.lower() and " " not in w for w in words)
    # The most common names come first (recursion uses the head of the list).
    assert words.index("www") < 5 and words.index("mail") < 5


# ---- certificate transparency ------------------------------------------------------


async def test_ct_names_found(lab):
    est = lab.estate
    found = await collect([DOMAIN], options(lab, brute=False, san=False))
    ct = by_source(found)["ct"]
    assert set(est.only_from("ct")) <= ct  # names nothing else reveals
    assert set(est.names_from("ct")) <= ct
    assert "dyn.acme.test" in ct  # from *.dyn.acme.test, without the "*."
    assert not any(n.startswith("*") for n in ct)
    assert all(in_scope(n) for n in ct)


async def test_scope_filter_and_progress(lab):
    calls = []
    found = await collect(
        [DOMAIN],
        options(lab, brute=False, san=False),
        scope=lambda n: n.startswith("www.") or n.startswith("api."),
        progress=lambda d, t: calls.append((d, t)),
    )
    assert {f.name for f in found} == {"www.acme.test", "api.acme.test"}
    assert calls and calls[-1][0] == calls[-1][1]
    assert all(d <= t for d, t in calls)


def _ct_rows(n: int, start: int = 0) -> bytes:
    rows = [
        {"issuer_ca_id": 1, "name_value": f"h{i}.{DOMAIN}\n*.w{i}.{DOMAIN}", "common_name": f"h{i}.{DOMAIN}", "id": i}
        for i in range(start, start + n)
    ]
    return json.dumps(rows).encode()


@pytest.fixture(scope="module")
def hostile_ct():
    big_rows = _ct_rows(2000)[1:-1] + b","  # rows to repeat: ~100 bytes each
    fifty_mb = b"[" + big_rows * (50_000_000 // len(big_rows)) + b"{}]"
    routes = {
        "/forever": endless(b"[" + big_rows),  # the same rows, for ever
        "/stall": stall(b'[{"name_value": "early.acme.test"}, {"name_val', declared=10_000_000),
        "/garbage": page(b'\x00\xff<html>not json{{{"name_value": 12, ]]', content_type="application/json"),
        "/fifty": page(fifty_mb, content_type="application/json"),
        "/escaped": page(
            json.dumps(
                [
                    {"name_value": "a.acme.test\nB.ACME.TEST\n*.c.acme.test"},
                    {"name_value": "x\u001b[2J.acme.test\nevil.example"},
                ]
            ).encode()
        ),
        "/error": page(b"busy", status=503),
        # JSON escapes for lone surrogates, a raw one (invalid UTF-8), and a dotted capital I
        "/surrogate": page(
            b'[{"name_value":"\\ud800.acme.test"},{"name_value":"ok.acme.test"},'
            b'{"common_name":"x\\udfff.acme.test","name_value":"\xed\xa0\x80.acme.test"},'
            b'{"name_value":"\\u0130.acme.test\\nfine.acme.test"}]',
            content_type="application/json",
        ),
    }
    with HttpServer(routes) as server:
        yield server


@pytest.mark.parametrize("route,limit", [("/forever", 2.0), ("/stall", 1.6), ("/fifty", 2.5)])
async def test_hostile_ct_is_capped(hostile_ct, route, limit):
    opts = SubdomainOptions(ct_url=hostile_ct.url + route, ct_timeout=1.0, ct_max_bytes=5_000_000)
    started = time.monotonic()
    names = await ct_search(DOMAIN, opts)
    assert time.monotonic() - started < limit
    assert names  # what arrived before the cap is kept
    if route == "/stall":
        assert names == ["early.acme.test"]
    else:
        assert "h1.acme.test" in names


async def test_ct_default_cap_on_50_mb(hostile_ct):
    opts = SubdomainOptions(ct_url=hostile_ct.url + "/fifty", ct_timeout=10.0)
    started = time.monotonic()
    names = await ct_search(DOMAIN, opts)
    assert time.monotonic() - started < 8
    assert len(names) > 1000 and "*.w7.acme.test" in names


@pytest.mark.parametrize("route", ["/garbage", "/error"])
async def test_garbage_ct_gives_nothing(hostile_ct, route):
    opts = SubdomainOptions(ct_url=hostile_ct.url + route, ct_timeout=2.0)
    started = time.monotonic()
    assert await ct_search(DOMAIN, opts) == []
    assert time.monotonic() - started < 2


async def test_ct_names_are_cleaned(hostile_ct):
    opts = SubdomainOptions(ct_url=hostile_ct.url + "/escaped", brute=False, san=False, tools=())
    found = await collect([DOMAIN], opts)
    assert {f.name for f in found} == {"a.acme.test", "b.acme.test", "c.acme.test"}
    request = hostile_ct.requests[-1]
    assert request.path == "/escaped?q=%25.acme.test&output=json"


async def test_unreachable_ct_is_skipped():
    opts = SubdomainOptions(ct_url="http://127.0.0.1:9/", ct_timeout=1.0, brute=False, san=False, tools=())
    assert await collect([DOMAIN], opts) == []


async def test_ct_down_reports_failed():
    outcomes = Outcomes()
    url = f"http://127.0.0.1:{free_port()}/"  # nobody listens there
    opts = SubdomainOptions(ct_url=url, ct_timeout=1.0, brute=False, san=False, tools=(), report=outcomes)
    resume = opts.resume
    started = time.monotonic()
    assert await collect([DOMAIN], opts) == []
    assert time.monotonic() - started < 1.5
    status, reason = outcomes.by_source()[f"ct {DOMAIN}"]
    assert status == "failed" and reason.startswith("request failed (ConnectError"), reason
    assert outcomes.statuses() == {f"ct {DOMAIN}": "failed"}  # one source ran: one report
    assert resume.ct == set()  # a resumed run asks again


@pytest.mark.parametrize(
    "route,status,reason,names",
    [
        ("/escaped", "ok", "", {"a.acme.test", "b.acme.test", "c.acme.test"}),
        ("/surrogate", "ok", "", {"ok.acme.test", "fine.acme.test"}),  # complete: the bad names are dropped
        ("/error", "failed", "HTTP 503 from http://", set()),
        ("/garbage", "failed", "answer is not a complete JSON array", set()),
        ("/stall", "failed", "timed out after 1 s; 1 name salvaged", {"early.acme.test"}),
        ("/forever", "failed", "answer over 300000 bytes, cut; ", None),  # None: many
    ],
)
async def test_ct_outcomes(hostile_ct, route, status, reason, names):
    outcomes = Outcomes()
    opts = SubdomainOptions(
        ct_url=hostile_ct.url + route, ct_timeout=1.0, ct_max_bytes=300_000, brute=False, san=False, tools=()
    )
    opts.report = outcomes
    found = {f.name for f in await collect([DOMAIN], opts)}
    got_status, got_reason = outcomes.by_source()[f"ct {DOMAIN}"]
    assert got_status == status and got_reason.startswith(reason), got_reason
    if names is None:
        assert len(found) > 1000 and "names salvaged" in got_reason  # what arrived before the cap is kept
    else:
        assert found == names
    assert (DOMAIN in opts.resume.ct) == (status == "ok")
    # the outcome travels with the names, for callers of ct_fetch too
    raw, outcome = await ct_fetch(DOMAIN, opts)
    assert outcome.status == status


async def test_names_that_are_not_host_names_never_fail_a_scan(hostile_ct, tmp_path, monkeypatch):
    """A lone surrogate (JSON `\\ud800`) or other non-ASCII text in any
    source is dropped with its item; the scan goes on."""
    assert not valid_name("\ud800.acme.test") and not valid_name("\u0130.acme.test") and valid_name("ok.acme.test")
    bad = ["\ud800.acme.test", "x\udfff.acme.test", "\u0130.acme.test", "*.\ud800.acme.test"]
    assert cert_names({"subject_cn": "\ud800", "sans": [*bad, "ok.acme.test"]}, [DOMAIN]) == {"ok.acme.test"}
    # (text around a root is cut at the first character no host name has: the root itself is mentioned)
    assert harvest_names(" ".join([*bad, "ok.acme.test"]), [DOMAIN, "\ud800.test"]) == {"ok.acme.test", DOMAIN}
    assert load_wordlist(wordlist(tmp_path, "www \u0130 ok")) == ["www", "ok"]
    # A tool printing a raw surrogate (invalid UTF-8) and non-ASCII names: dropped whole, not cut down.
    _fake_tool(
        tmp_path,
        "subfinder",
        "printf '\\355\\240\\200.dev.acme.test\\n\\304\\260.acme.test\\ntool.acme.test (FQDN) --> a\\n'\n",
    )
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")
    outcomes = Outcomes()
    opts = SubdomainOptions(
        ct_url=hostile_ct.url + "/surrogate", brute=False, san=False, tools=("subfinder",), report=outcomes
    )
    found = await collect([DOMAIN], opts, seeds=bad)
    assert {(f.name, f.source) for f in found} == {
        ("ok.acme.test", "ct"),
        ("fine.acme.test", "ct"),
        ("tool.acme.test", "subfinder"),
    }
    assert outcomes.statuses() == {f"ct {DOMAIN}": "ok", f"subfinder {DOMAIN}": "ok"}


# ---- DNS brute force, wildcards, recursion --------------------------------------


async def test_brute_force_finds_wordlist_names(lab, head_words):
    est = lab.estate
    found = await collect([DOMAIN], options(lab, ct=False, san=False, wordlist_path=str(head_words), recursive_depth=0))
    words = by_source(found)["wordlist"]
    assert set(est.names_from("wordlist")) <= words
    assert words <= set(est.hosts)  # nothing invented
    promo = next(f for f in found if f.name == "promo.acme.test")
    assert promo.dns is not None and promo.dns.cnames == [est.dangling[0]["target"]]  # dangling, still found


async def test_wildcard_subzone_does_not_flood(lab, head_words):
    outcomes = Outcomes()
    opts = options(lab, san=False, wordlist_path=str(head_words), recursive_words=120, report=outcomes)
    found = await collect([DOMAIN], opts)
    assert outcomes.by_source()["wordlist dyn.acme.test"] == ("ok", "")  # a stable wildcard: brute forced
    assert outcomes.by_source()[f"ct {DOMAIN}"] == ("ok", "")
    under_dyn = {f.name for f in found if f.name.endswith(".dyn.acme.test")}
    assert len(under_dyn) <= 2, under_dyn  # 120 words were tried under dyn.acme.test
    wildcard = [f for f in found if f.source == "wildcard"]
    assert [f.name for f in wildcard] == ["dyn.acme.test"]
    assert wildcard[0].dns.addresses == [lab.estate.wildcards["dyn.acme.test"]]
    names = {f.name for f in found}
    assert set(lab.estate.names_from("wordlist")) <= names


async def test_recursion_into_subzones_with_wildcards(tmp_path):
    zone = {
        "example.test": {"A": ["127.0.0.10"]},
        "www.example.test": {"A": ["127.0.0.10"]},
        "dev.example.test": {"A": ["127.0.0.11"]},  # "dev" looks like a zone
        "api.dev.example.test": {"A": ["127.0.0.12"]},
        "*.corp.example.test": {"A": ["127.0.0.13"]},  # a wildcard sub-zone...
        "vpn.corp.example.test": {"A": ["127.0.0.14"]},  # ...with one real name in it
        "x.y.deep.example.test": {"A": ["127.0.0.15"]},
        "api.example.test": {"CNAME": ["gone.herokuapp.com"]},  # dangling
        "corp.example.test": {"TXT": ["sub-zone"]},
    }
    words = wordlist(tmp_path, "www api vpn mail corp dev admin portal deep y api.corp vpn.corp")
    outcomes = Outcomes()
    with FakeDNS(zone) as server:
        opts = SubdomainOptions(
            ct=False,
            san=False,
            tools=(),
            wordlist_path=words,
            recursive_depth=1,
            dns=DnsOptions(nameservers=[server.address], rtypes=("A", "AAAA"), timeout=0.5, retries=1),
            report=outcomes,
        )
        found = await collect(["example.test"], opts, scope=lambda n: n.endswith("example.test"))
        queried = {q for q, _ in server.queries}
    names = {f.name for f in found}
    assert {
        "www.example.test",
        "dev.example.test",
        "api.dev.example.test",
        "vpn.corp.example.test",
        "api.example.test",
        "corp.example.test",
    } <= names
    assert not any(n.endswith(".corp.example.test") and n != "vpn.corp.example.test" for n in names)
    assert {f.name for f in found if f.source == "wildcard"} == {"corp.example.test"}
    assert "x.y.deep.example.test" not in names  # two levels down: beyond recursive_depth=1
    assert "mail.www.example.test" not in queried  # a plain host is not a zone
    # Wildcard probes ran before the brute force of the zone itself
    # (api.corp and vpn.corp came earlier: dotted words of the root's list).
    corp = [q for q, _ in server.queries if q.endswith(".corp.example.test")]
    first_probe = next(i for i, q in enumerate(corp) if len(q.split(".")[0]) == 14)
    assert first_probe < corp.index("www.corp.example.test")
    assert "api.corp.example.test" in corp[:first_probe]
    # A stable wildcard is brute forced (its answers dropped): every zone ended well.
    assert outcomes.statuses() == {
        "wordlist example.test": "ok",
        "wordlist corp.example.test": "ok",
        "wordlist dev.example.test": "ok",
    }


async def test_wildcard_answering_random_addresses_yields_no_brute_forced_names(tmp_path):
    zone = {
        "example.test": {"A": ["127.0.0.10"]},
        "www.example.test": {"A": ["127.0.0.10"]},
        "dyn.example.test": {"A": ["127.0.0.11"]},  # "dyn" names a zone: brute forced one level down
        "*.dyn.example.test": random_addresses(seed=7),  # another address for every query
        "www.dyn.example.test": {"A": ["127.0.0.12"]},  # real, but nothing tells it from the wildcard
    }
    words = ["www", "api", "dyn", "mail", "vpn", "admin"]
    outcomes = Outcomes()
    with FakeDNS(zone) as server:
        opts = SubdomainOptions(
            ct=False,
            san=False,
            tools=(),
            wordlist_path=wordlist(tmp_path, " ".join(words)),
            dns=fast_dns(server.address),
            report=outcomes,
        )
        found = await collect(["example.test"], opts, scope=lambda n: True)
        below = server.queried_under("dyn.example.test")
    assert by_source(found)["wordlist"] == {"www.example.test", "dyn.example.test"}
    assert {f.name for f in found if f.source == "wildcard"} == {"dyn.example.test"}
    assert outcomes.by_source() == {
        "wordlist example.test": ("ok", ""),
        "wordlist dyn.example.test": ("skipped", "wildcard answering varying addresses"),
    }
    # Only the random probes went below the zone: not one of the words.
    probes = {n for n, _ in below if n != "dyn.example.test"}
    assert len(probes) == 5 and not any(n.split(".")[0] in words for n in probes)


async def test_wildcard_whose_probes_time_out_is_not_brute_forced(tmp_path):
    """A loaded resolver: the wildcard's answers to the random probes never
    come back (the words would get the wildcard's address). The zone is not
    brute forced, and says so."""
    words = ["www", "api", "mail", "vpn", "admin", "portal"]

    def loaded(name, qtype):
        return {"A": ["127.0.0.13"]} if name.split(".")[0] in words else "DROP"

    outcomes = Outcomes()
    with FakeDNS({"wild.test": {"A": ["127.0.0.13"]}, "*.wild.test": loaded}) as server:
        opts = SubdomainOptions(
            ct=False,
            san=False,
            tools=(),
            wordlist_path=wordlist(tmp_path, " ".join(words)),
            dns=fast_dns(server.address, timeout=0.3),
            wildcard_probes=4,
            wildcard_rounds=3,
            report=outcomes,
        )
        started = time.monotonic()
        found = await collect(["wild.test"], opts, scope=lambda n: True)
        elapsed = time.monotonic() - started
        asked = [n for n, _ in server.queries]
    assert found == []
    status, reason = outcomes.by_source()["wordlist wild.test"]
    assert status == "skipped" and reason == "wildcard status unknown: 4 of 4 probes unanswered (timeout) after 3 tries"
    assert len(set(asked)) == 4 and all(asked.count(n) == 3 for n in asked)  # each probe asked 3 times, then given up
    assert not any(n.split(".")[0] in words for n in asked)  # and no word at all
    assert elapsed < 3.0  # three rounds of 0.3 s


async def test_a_probe_that_times_out_once_is_asked_again(tmp_path):
    seen: set[str] = set()

    def first_query_lost(name, qtype):  # every random label's first query gets no answer
        if name.split(".")[0] != "www" and name not in seen:
            seen.add(name)
            return "DROP"
        return "NXDOMAIN"

    zone = {
        "retry.test": {"A": ["127.0.0.14"]},
        "www.retry.test": {"A": ["127.0.0.14"]},
        "*.retry.test": first_query_lost,
    }
    outcomes = Outcomes()
    with FakeDNS(zone) as server:
        opts = SubdomainOptions(
            ct=False,
            san=False,
            tools=(),
            wordlist_path=wordlist(tmp_path, "www"),
            dns=fast_dns(server.address, timeout=0.5),
            report=outcomes,
        )
        found = await collect(["retry.test"], opts, scope=lambda n: True)
    assert [(f.name, f.source) for f in found] == [("www.retry.test", "wordlist")]
    assert outcomes.statuses() == {"wordlist retry.test": "ok"}
    assert len(seen) == 5  # the probes, each answered (NXDOMAIN) the second time


async def test_cname_wildcard_drops_names_pointing_at_its_target(tmp_path):
    zone = {
        "example.test": {"A": ["127.0.0.10"]},
        "apps.example.test": {"A": ["127.0.0.10"]},  # "apps" names a zone
        "*.apps.example.test": {"CNAME": ["edge.provider.test"]},
        "edge.provider.test": random_addresses(seed=3),  # the addresses behind the CNAME rotate
        "shop.apps.example.test": {"CNAME": ["shops.provider.test"]},  # a CNAME of its own
        "shops.provider.test": {"A": ["127.0.0.21"]},
        "www.apps.example.test": {"A": ["127.0.0.22"]},
    }
    outcomes = Outcomes()
    with FakeDNS(zone) as server:
        opts = SubdomainOptions(
            ct=False,
            san=False,
            tools=(),
            wordlist_path=wordlist(tmp_path, "www shop img api apps"),
            dns=fast_dns(server.address),
            report=outcomes,
        )
        found = await collect(["example.test"], opts, scope=lambda n: n.endswith("example.test"))
    under = {f.name for f in found if f.source == "wordlist" and f.name.endswith(".apps.example.test")}
    assert under == {"shop.apps.example.test", "www.apps.example.test"}
    assert outcomes.statuses() == {"wordlist example.test": "ok", "wordlist apps.example.test": "ok"}


LOSSY_WORDS = [f"w{i:02d}" for i in range(50)]  # ten of them exist


@pytest.mark.parametrize(
    "loss,status",
    [(dict(share=0.25, seed=1), "failed"), (dict(every=60), "ok")],  # a quarter lost; one lookup in 50 (2 %)
    ids=["quarter", "one"],
)
async def test_brute_force_through_a_lossy_resolver(tmp_path, loss, status):
    zone = {"lossy.test": {"A": ["127.0.0.30"]}}
    real = {f"{w}.lossy.test" for w in LOSSY_WORDS[::5]}
    zone.update({name: {"A": ["127.0.0.31"]} for name in real})
    outcomes = Outcomes()
    with (
        FakeDNS(zone) as server,
        LossyProxy(server.address, only=lambda name: name.split(".")[0] in LOSSY_WORDS, **loss) as proxy,
    ):
        opts = SubdomainOptions(
            ct=False,
            san=False,
            tools=(),
            wordlist_path=wordlist(tmp_path, " ".join(LOSSY_WORDS)),
            dns=fast_dns(proxy.address),
            report=outcomes,
        )
        found = await collect(["lossy.test"], opts, scope=lambda n: True)
    lost = {name for name, qtype in proxy.dropped_queries if qtype == "A"}  # a lost A query: no answer
    assert proxy.dropped == (1 if "every" in loss else len(proxy.dropped_queries)) and proxy.dropped > 0
    assert {f.name for f in found} == real - lost  # what answered is found, nothing invented
    got_status, reason = outcomes.by_source()["wordlist lossy.test"]
    assert got_status == status
    if status == "failed":
        assert reason == f"{len(lost)} of 50 lookups unanswered (timeout/SERVFAIL)"


def test_scope_excludes_below():
    scope = Scope(
        [parse_target(t) for t in ["acme.test", "!*.dev.acme.test", "!corp.acme.test", "!https://shop.acme.test/"]]
    )
    assert scope.excludes_below("dev.acme.test") and scope.excludes_below("x.dev.acme.test")
    assert scope.excludes_below("corp.acme.test") and scope.excludes_below("vpn.corp.acme.test")
    assert scope.excludes_below("shop.acme.test")
    assert not scope.excludes_below("acme.test") and not scope.excludes_below("www.acme.test")
    assert not scope.excludes_below("acme.testing") and not scope.excludes_below("xdev.acme.test")
    assert "dev.acme.test" in scope  # `*.dev` excludes below the name, not the name
    assert Scope([parse_target("acme.test"), parse_target("!*.acme.test")]).excludes_below("ACME.test.")
    assert not Scope([parse_target("acme.test"), parse_target("!10.0.0.0/8")]).excludes_below("acme.test")


def _ct_page(names: list[str]) -> bytes:
    return json.dumps([{"name_value": "\n".join(names), "common_name": names[0]}]).encode()


@pytest.mark.parametrize("rule", ["!*.dev.example.test", "!dev.example.test"])
@pytest.mark.parametrize("given", [True, False], ids=["excludes_below", "in_scope_only"])
async def test_an_excluded_zone_receives_no_query(tmp_path, rule, given):
    """Whatever points at the zone (a CT name, a wildcard certificate, a
    dotted word, a zone word, a seed), nothing below it is asked for."""
    scope = Scope([parse_target(t) for t in ["example.test", rule]])
    zone = {
        "example.test": {"A": ["127.0.0.10"]},
        "www.example.test": {"A": ["127.0.0.10"]},
        "dev.example.test": {"A": ["127.0.0.11"]},
        "*.dev.example.test": {"A": ["127.0.0.12"]},
    }
    ct_names = ["www.example.test", "*.dev.example.test", "ct.dev.example.test"]
    outcomes = Outcomes()
    with HttpServer({"/": page(_ct_page(ct_names), content_type="application/json")}) as ct, FakeDNS(zone) as server:
        opts = SubdomainOptions(
            ct_url=ct.url + "/",
            tools=(),
            tls_ports=(free_port(),),  # handshakes are tried (and refused): only in-scope names
            tls_timeout=0.5,
            wordlist_path=wordlist(tmp_path, "www dev api api.dev www.dev"),
            dns=fast_dns(server.address),
            report=outcomes,
        )
        found = await collect(
            ["example.test"],
            opts,
            scope=scope.__contains__,
            seeds=["seed.dev.example.test"],
            excludes_below=scope.excludes_below if given else None,
        )
        below = server.queried_under("dev.example.test")
        asked = {n for n, _ in server.queries}
    allowed = {"dev.example.test"} if rule.startswith("!*.") else set()  # `*.dev`: the name itself is in scope
    assert {n for n, _ in below} <= allowed
    assert {"www.example.test", "api.dev.example.test"} - asked == {"api.dev.example.test"}
    names = {f.name for f in found}
    assert "www.example.test" in names and all(n in scope for n in names)
    status, reason = outcomes.by_source()["wordlist dev.example.test"]
    assert status == "skipped"
    if given:
        assert reason == "excluded by scope"
    else:  # the scanner cannot know it; the probes it would send are out of scope, so it sends none
        assert reason == "wildcard probes would leave the scope"
    assert outcomes.by_source()["wordlist example.test"] == ("ok", "")


async def test_an_excluded_root_is_neither_searched_nor_brute_forced(tmp_path, monkeypatch):
    _fake_tool(tmp_path, "subfinder", 'echo "www.example.test"\n')
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")
    scope = Scope([parse_target(t) for t in ["example.test", "!*.example.test"]])
    outcomes = Outcomes()
    with HttpServer({"/": page(_ct_page(["www.example.test"]))}) as ct, FakeDNS({}) as server:
        opts = SubdomainOptions(
            ct_url=ct.url + "/",
            tools=("subfinder",),
            wordlist_path=wordlist(tmp_path, "www api"),
            dns=fast_dns(server.address),
            report=outcomes,
        )
        found = await collect(["example.test"], opts, scope.__contains__, excludes_below=scope.excludes_below)
        assert server.queries == [] and ct.requests == []
    assert found == []
    assert outcomes.calls == [
        ("ct example.test", "skipped", "excluded by scope"),
        ("subfinder example.test", "skipped", "excluded by scope"),
        ("wordlist example.test", "skipped", "excluded by scope"),
    ]


async def test_lab_dns_server_logs_the_queries_it_receives():

    from assetmon_tui.lab import dns_server
    from assetmon_tui.lab.estate import Estate
    from assetmon_tui.lab.runtime import bind_dns
    from assetmon_tui.scanners.udp_resolver import UdpResolver

    estate = Estate(DOMAIN, 1, 20, 0)
    log = dns_server.QueryLog(limit=3)
    udp, tcp = bind_dns("127.0.0.1", 0)  # a free port for both (another test may hold its TCP twin)
    transport, server = await dns_server.serve(lambda: estate, udp, tcp, log=log)
    try:
        address = f"127.0.0.1:{udp.getsockname()[1]}"
        async with UdpResolver([address], timeout=5.0, retries=0) as resolver:  # each asked once
            assert (await resolver.resolve(f"www.{DOMAIN}", ("A",))).status == "ok"
            assert log.entries() == [(f"www.{DOMAIN}", "A")]
            for label in ("a", "b", "c"):
                await resolver.resolve(f"{label}.dev.{DOMAIN}", ("AAAA",))
        assert log.entries() == [(f"{x}.dev.{DOMAIN}", "AAAA") for x in "abc"]  # bounded: the last three
        assert log.total == 4 and len(log.under(f"dev.{DOMAIN}")) == 3 and log.under("other.test") == []
    finally:
        transport.close()
        server.close()
        await server.wait_closed()


async def test_seeds_are_followed_not_repeated(tmp_path):
    zone = {
        "example.test": {"A": ["127.0.0.10"]},
        "web.svc7.example.test": {"A": ["127.0.0.11"]},  # harvested from a page, say
        "admin.svc7.example.test": {"A": ["127.0.0.12"]},
    }
    words = tmp_path / "w.txt"
    words.write_text("admin\nwww\n")
    with FakeDNS(zone) as server:
        opts = SubdomainOptions(
            ct=False,
            san=False,
            tools=(),
            wordlist_path=str(words),
            dns=DnsOptions(nameservers=[server.address], timeout=0.5, retries=1),
        )
        found = await collect(["example.test"], opts, scope=lambda n: True, seeds=["web.svc7.example.test"])
    assert [(f.name, f.source) for f in found] == [("admin.svc7.example.test", "wordlist")]


async def test_max_names(lab, head_words):
    found = await collect([DOMAIN], options(lab, wordlist_path=str(head_words), max_names=10))
    assert len({f.name for f in found}) == 10


# ---- SANs, HTML and JS -------------------------------------------------------------


async def test_san_only_names_from_https_probe_of_legacy(lab):
    est = lab.estate
    target = HttpTarget("legacy.acme.test", lab.info["https_port"], "https", address=LEGACY_ADDRESS)
    [result] = [r async for r in probe([target], HttpOptions(timeout=3.0))]
    assert result.status == 200 and result.tls
    names = cert_names(result.tls, [DOMAIN])
    assert set(est.san_names) <= names
    assert set(est.only_from("san")) <= names
    assert {f.name for f in harvest_http(result, [DOMAIN]) if f.source == "san"} >= set(est.only_from("san"))


async def test_discover_reads_sans_of_resolved_names(lab, tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("www\nlegacy\napi\nnothing-here\n")
    found = await collect([DOMAIN], options(lab, ct=False, wordlist_path=str(words), recursive_depth=0))
    assert set(lab.estate.only_from("san")) <= by_source(found)["san"]


async def test_html_and_js_names_harvested(lab):
    est = lab.estate
    html_only, js_only = est.only_from("html"), est.only_from("js")
    assert html_only and js_only
    www = est.vhosts["www.acme.test"]
    assert set(html_only) <= harvest_names(www.files["/"][1].decode(), [DOMAIN])
    app = est.vhosts["app.acme.test"]
    js = "\n".join(body.decode() for ctype, body in app.files.values() if "javascript" in ctype)
    assert set(js_only) <= harvest_names(js, [DOMAIN])
    # Through a real probe: www's page lists partner sites.
    target = HttpTarget("www.acme.test", lab.info["https_port"], "https", address=est.hosts["www.acme.test"].a[0])
    [result] = [r async for r in probe([target], HttpOptions(timeout=3.0))]
    harvested = {f.name: f.source for f in harvest_http(result, [DOMAIN])}
    assert all(harvested.get(n) == "html" for n in html_only)


def test_harvest_names_edge_cases():
    text = (
        'a href="https://API.acme.test/x" \\u002f\\u002fcdn.acme.test/y "\\/\\/img.acme.test" '
        "%2F%2Fenc.acme.test mail: ops@acme.test *.wild.acme.test www.acme.test. "
        "evilacme.test x.acme.test.evil.com acme.testing -dash-.acme.test a..b.acme.test "
        "under_score.acme.test " + "a" * 70 + ".acme.test deep.er.acme.test https://other.example/acme.test"
    )
    names = harvest_names(text, ["acme.test", "ACME.test."])
    assert names == {
        "api.acme.test",
        "cdn.acme.test",
        "img.acme.test",
        "enc.acme.test",
        "acme.test",
        "wild.acme.test",
        "www.acme.test",
        "deep.er.acme.test",
    }
    assert harvest_names("", ["acme.test"]) == set()
    assert harvest_names("www.acme.test", []) == set()


def test_harvest_names_is_linear_time():
    hostile = ("a." * 2_000_000) + "acme.tes" + ("-" * 1_000_000) + ("x.acme.test" * 50_000)
    started = time.monotonic()
    names = harvest_names(hostile, ["acme.test"])
    assert time.monotonic() - started < 2.0
    assert len(names) <= 2


def test_cert_names():
    info = {
        "subject_cn": "*.Acme.test",
        "sans": [
            "*.acme.test",
            "acme.test",
            "legacy.acme.test",
            "127.0.0.1",
            "*.dyn.acme.test",
            "other.example",
            "bad name.acme.test",
        ],
    }
    assert cert_names(info) == {"acme.test", "legacy.acme.test", "dyn.acme.test", "other.example"}
    assert cert_names(info, ["acme.test"]) == {"acme.test", "legacy.acme.test", "dyn.acme.test"}
    assert cert_names({}) == set() and cert_names(None) == set()


# ---- external tools ----------------------------------------------------------------


def _fake_tool(directory: Path, name: str, script: str) -> Path:
    path = directory / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


async def test_subfinder_on_path_is_used(tmp_path, monkeypatch):
    args_file = tmp_path / "args"
    _fake_tool(
        tmp_path,
        "subfinder",
        f'echo "$@" > {args_file}\n'
        'echo "fake-one.acme.test"\necho "FAKE-TWO.acme.test."\necho "not a name"\n'
        'echo "outside.example.com"\necho "\033[31mansi.acme.test"\n',
    )
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")
    outcomes = Outcomes()
    opts = SubdomainOptions(ct=False, brute=False, san=False, tools=("subfinder",), report=outcomes)
    found = await collect([DOMAIN], opts)
    assert {(f.name, f.source) for f in found} == {
        ("fake-one.acme.test", "subfinder"),
        ("fake-two.acme.test", "subfinder"),
        ("ansi.acme.test", "subfinder"),
    }
    assert args_file.read_text().split() == ["-d", DOMAIN, "-silent"]
    assert outcomes.calls == [(f"subfinder {DOMAIN}", "ok", "")]


async def test_failing_tool_reports_failed_and_keeps_its_names(tmp_path, monkeypatch):
    _fake_tool(tmp_path, "subfinder", 'echo "partial.acme.test"\nexit 3\n')
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")
    outcomes = Outcomes()
    opts = SubdomainOptions(ct=False, brute=False, san=False, tools=("subfinder", "amass"), report=outcomes)
    found = await collect([DOMAIN], opts)
    assert [f.name for f in found] == ["partial.acme.test"]
    assert outcomes.calls == [(f"subfinder {DOMAIN}", "failed", "exit status 3; 1 name salvaged")]  # amass: not on PATH


async def test_missing_tool_is_skipped(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    outcomes = Outcomes()
    opts = SubdomainOptions(ct=False, brute=False, san=False, tools=("subfinder", "amass"), report=outcomes)
    assert await collect([DOMAIN], opts) == []
    assert outcomes.calls == []  # not installed: no source of this run


async def test_hanging_tool_times_out(tmp_path, monkeypatch):
    _fake_tool(tmp_path, "subfinder", 'echo "early.acme.test"\nsleep 30\necho "late.acme.test"\n')
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")
    outcomes = Outcomes()
    opts = SubdomainOptions(ct=False, brute=False, san=False, tools=("subfinder",), tool_timeout=1.0, report=outcomes)
    started = time.monotonic()
    found = await collect([DOMAIN], opts)
    assert time.monotonic() - started < 3
    assert [f.name for f in found] == ["early.acme.test"]
    assert outcomes.calls == [(f"subfinder {DOMAIN}", "failed", "timed out after 1 s; 1 name salvaged")]


# ---- cancellation ------------------------------------------------------------------------


async def test_cancellation_is_prompt(lab, hostile_ct):
    opts = options(lab, san=False, ct_timeout=30)
    opts.ct_url = hostile_ct.url + "/stall"

    async def run():
        return await collect([DOMAIN], opts)

    task = asyncio.create_task(run())
    await asyncio.sleep(0.5)
    before = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - before < 1.0


# ---- resume -----------------------------------------------------------------------


async def test_an_interrupted_run_resumes_after_the_words_it_tried(lab, head_words):
    """The brute force records, per zone, how many words from the start are all
    tried; a run given that mark and the CT roots done skips them and finds the
    rest. Together the two runs find what one whole run finds."""
    whole = by_source(await collect([DOMAIN], options(lab, wordlist_path=str(head_words), san=False)))
    words = load_wordlist(str(head_words))
    where = sorted(words.index(n.removesuffix("." + DOMAIN)) for n in whole["wordlist"] if n.count(".") == 2)
    mark = where[len(where) // 2]  # interrupted with half of the lab's names found
    resume = Resume(brute={DOMAIN: mark}, ct={DOMAIN})
    outcomes = Outcomes()
    opts = options(lab, wordlist_path=str(head_words), san=False, resume=resume, report=outcomes)
    rest = by_source(await collect([DOMAIN], opts))
    assert "ct" not in rest  # the CT search had ended: not asked again
    reported = outcomes.by_source()
    assert reported[f"ct {DOMAIN}"] == ("ok", "")  # (ended well before: a failed one would be asked again)
    assert reported[f"wordlist {DOMAIN}"] == ("ok", "")
    assert resume.unanswered[DOMAIN] == 0
    late = {f"{w}.{DOMAIN}" for w in words[mark:]} & whole["wordlist"]
    assert late and rest["wordlist"] == late  # only the words after the mark
    assert resume.brute[DOMAIN] == len(words)  # the mark moved to the end
    assert resume.pending == late  # found, and not yet taken by a caller (the test takes none)


@pytest.mark.parametrize(
    "tally,reported", [({"resume.test": 1}, ("failed", "1 of 2 lookups unanswered (timeout/SERVFAIL)")), ({}, None)]
)
async def test_a_resumed_zone_whose_words_were_all_tried(tmp_path, tally, reported):
    """Reported again only from its tally of unanswered lookups; without
    one, not at all (the caller keeps what was reported before)."""
    outcomes = Outcomes()
    with FakeDNS({"resume.test": {"A": ["127.0.0.40"]}}) as server:
        opts = SubdomainOptions(
            ct=False,
            san=False,
            tools=(),
            wordlist_path=wordlist(tmp_path, "www api"),
            dns=fast_dns(server.address),
            resume=Resume(brute={"resume.test": 2}, unanswered=dict(tally)),
            report=outcomes,
        )
        assert await collect(["resume.test"], opts, scope=lambda n: True) == []
        assert not {"www.resume.test", "api.resume.test"} & {n for n, _ in server.queries}  # no word asked again
    assert outcomes.by_source().get("wordlist resume.test") == reported


async def test_a_resumed_run_does_not_contact_names_it_already_followed(lab, head_words, monkeypatch):
    from assetmon_tui.scanners import subdomains as module

    calls: list[str] = []
    real = module.fetch_certificate

    async def counted(address, port, name, timeout):
        calls.append(name)
        return await real(address, port, name, timeout)

    monkeypatch.setattr(module, "fetch_certificate", counted)
    first = Resume()
    quick = dict(wordlist_path=str(head_words), max_tls_hosts=5)  # a few certificates are enough to tell
    found = await collect([DOMAIN], options(lab, resume=first, **quick))
    assert calls and set(calls) <= first.followed  # every name whose certificate was read is recorded
    calls.clear()
    again = Resume(brute=dict(first.brute), ct=set(first.ct), followed=set(first.followed))
    names = sorted({f.name for f in found})
    rest = await collect([DOMAIN], options(lab, resume=again, **quick), seeds=names)
    assert {f.source for f in rest} <= {"wildcard"}  # nothing new (a zone's wildcard is reported again)
    assert calls == []  # and no certificate read twice
