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
from support.loopback import FakeDNS, HttpServer, endless, page, stall

from assetmon_tui.lab import Lab
from assetmon_tui.lab.estate import LEGACY_ADDRESS
from assetmon_tui.scanners.dns import DnsOptions
from assetmon_tui.scanners.http import HttpOptions, HttpTarget, probe
from assetmon_tui.scanners.subdomains import (
    Found,
    Resume,
    SubdomainOptions,
    cert_names,
    ct_search,
    discover,
    harvest_http,
    harvest_names,
    load_wordlist,
)

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
    found = await collect([DOMAIN], options(lab, san=False, wordlist_path=str(head_words), recursive_words=120))
    under_dyn = {f.name for f in found if f.name.endswith(".dyn.acme.test")}
    assert len(under_dyn) <= 2, under_dyn  # 120 words were tried under dyn.acme.test
    wildcard = [f for f in found if f.source == "wildcard"]
    assert [f.name for f in wildcard] == ["dyn.acme.test"]
    assert wildcard[0].dns.addresses == [lab.estate.wildcards["dyn.acme.test"]]
    names = {f.name for f in found}
    assert set(lab.estate.names_from("wordlist")) <= names


class _WildZone(dict):
    """A FakeDNS zone with `*.` entries."""

    def get(self, key, default=None):
        if key in self:
            return self[key]
        parts = key.split(".")
        for i in range(1, len(parts)):
            wild = "*." + ".".join(parts[i:])
            if wild in self:
                return self[wild]
        return default


async def test_recursion_into_subzones_with_wildcards():
    zone = {
        "example.test": {"A": ["127.0.0.10"]},
        "www.example.test": {"A": ["127.0.0.10"]},
        "dev.example.test": {"A": ["127.0.0.11"]},  # "dev" looks like a zone
        "api.dev.example.test": {"A": ["127.0.0.12"]},
        "*.corp.example.test": {"A": ["127.0.0.13"]},  # a wildcard sub-zone...
        "vpn.corp.example.test": {"A": ["127.0.0.14"]},  # ...with one real name in it
        "x.y.deep.example.test": {"A": ["127.0.0.15"]},
        "api.example.test": {"CNAME": ["gone.herokuapp.com"]},  # dangling
    }
    words = "www\napi\nvpn\nmail\ncorp\ndev\nadmin\nportal\ndeep\ny\napi.corp\nvpn.corp\n"
    with FakeDNS(zone) as server:
        server.zone = _WildZone(server.zone)
        server.zone["corp.example.test"] = {"TXT": ["sub-zone"]}
        import tempfile

        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as fh:
            fh.write(words)
        try:
            opts = SubdomainOptions(
                ct=False,
                san=False,
                tools=(),
                wordlist_path=fh.name,
                recursive_depth=1,
                dns=DnsOptions(nameservers=[server.address], rtypes=("A", "AAAA"), timeout=0.5, retries=1),
            )
            found = await collect(["example.test"], opts, scope=lambda n: n.endswith("example.test"))
        finally:
            os.unlink(fh.name)
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
    opts = SubdomainOptions(ct=False, brute=False, san=False, tools=("subfinder",))
    found = await collect([DOMAIN], opts)
    assert {(f.name, f.source) for f in found} == {
        ("fake-one.acme.test", "subfinder"),
        ("fake-two.acme.test", "subfinder"),
        ("ansi.acme.test", "subfinder"),
    }
    assert args_file.read_text().split() == ["-d", DOMAIN, "-silent"]


async def test_missing_tool_is_skipped(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    opts = SubdomainOptions(ct=False, brute=False, san=False, tools=("subfinder", "amass"))
    assert await collect([DOMAIN], opts) == []


async def test_hanging_tool_times_out(tmp_path, monkeypatch):
    _fake_tool(tmp_path, "subfinder", 'echo "early.acme.test"\nsleep 30\necho "late.acme.test"\n')
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")
    opts = SubdomainOptions(ct=False, brute=False, san=False, tools=("subfinder",), tool_timeout=1.0)
    started = time.monotonic()
    found = await collect([DOMAIN], opts)
    assert time.monotonic() - started < 3
    assert [f.name for f in found] == ["early.acme.test"]


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
    rest = by_source(await collect([DOMAIN], options(lab, wordlist_path=str(head_words), san=False, resume=resume)))
    assert "ct" not in rest  # the CT search had ended: not asked again
    late = {f"{w}.{DOMAIN}" for w in words[mark:]} & whole["wordlist"]
    assert late and rest["wordlist"] == late  # only the words after the mark
    assert resume.brute[DOMAIN] == len(words)  # the mark moved to the end
    assert resume.pending == late  # found, and not yet taken by a caller (the test takes none)


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
