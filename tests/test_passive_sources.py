"""Passive API sources that take keys (scanners/passive.py) against the lab's
fake APIs (lab/passive_fakes.py) on loopback: each provider's names found and
nothing out of scope, keys rotated past invalid and exhausted ones with the
per-key counters in the outcome and no key shown anywhere, no keys -> skipped
and said, hostile answers -> failed in one line, configuration errors in one
line, and no request to any address but loopback."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from assetmon_tui.core.config import SettingsError
from assetmon_tui.core.targets import Scope, parse_target
from assetmon_tui.lab.passive_fakes import KEYS, PLANTED, PROVIDERS, PassiveFakes
from assetmon_tui.scanners import passive
from assetmon_tui.scanners.dns import DnsOptions
from assetmon_tui.scanners.passive import KeyPool, PassiveSource, configured, mask
from assetmon_tui.scanners.subdomains import SOURCES, Resume, SubdomainOptions, discover

pytestmark = pytest.mark.one_store

ROOTS = ["acme.test", "beta.test", "gamma.test"]


class Outcomes:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    def __call__(self, source: str, status: str, reason: str) -> None:
        assert source not in self.by_source(), f"{source} reported twice"
        assert status in ("ok", "failed", "skipped") and "\n" not in reason
        self.calls.append((source, status, reason))

    def by_source(self) -> dict[str, tuple[str, str]]:
        return {source: (status, reason) for source, status, reason in self.calls}

    def text(self) -> str:
        return "\n".join(" ".join(call) for call in self.calls)


@pytest.fixture
def sent(monkeypatch) -> list[httpx.URL]:
    """Every request any httpx client sends; the test checks they all went to loopback."""
    urls: list[httpx.URL] = []
    real = httpx.AsyncClient.send

    async def send(self, request, **kw):
        urls.append(request.url)
        if not ipaddress.ip_address(request.url.host).is_loopback:
            raise httpx.ConnectError("the test allows loopback only")
        return await real(self, request, **kw)

    monkeypatch.setattr(httpx.AsyncClient, "send", send)
    yield urls
    assert all(ipaddress.ip_address(u.host).is_loopback for u in urls), urls


@pytest.fixture
def fakes():
    with PassiveFakes() as server:
        yield server


def scope() -> Scope:
    return Scope([*(parse_target(r) for r in ROOTS), parse_target("!*.internal.acme.test")])


def sources(fakes: PassiveFakes, tmp_path: Path, keys: dict[str, list[str]], **limits) -> tuple[PassiveSource, ...]:
    """The providers as configured through the environment: base URLs at the fakes, no pace."""
    env = {}
    for name, url in fakes.urls().items():
        env[f"ASSETMON_PASSIVE_{name.upper()}_URL"] = url
        env[f"ASSETMON_PASSIVE_{name.upper()}_RATE"] = "0"
        if name in keys:
            env[f"ASSETMON_PASSIVE_{name.upper()}_KEYS"] = ",".join(keys[name])
    return tuple(replace(s, **limits) for s in configured(tmp_path / "absent.toml", env))


async def run(configured_sources, roots=("acme.test",), resume=None) -> tuple[dict[str, set[str]], Outcomes]:
    outcomes = Outcomes()
    options = SubdomainOptions(
        ct=False,
        brute=False,
        san=False,
        tools=(),
        passive=configured_sources,
        resume=resume or Resume(),
        report=outcomes,
        dns=DnsOptions(nameservers=["127.0.0.1:9"], timeout=0.2, retries=0),  # never asked: no brute force
    )
    s = scope()
    found: dict[str, set[str]] = {}
    async for f in discover(list(roots), options, s.__contains__, excludes_below=s.excludes_below):
        found.setdefault(f.source, set()).add(f.name)
    return found, outcomes


def valid(*providers: str) -> dict[str, list[str]]:
    return {p: [KEYS[p]["valid"]] for p in providers or PROVIDERS}


async def test_each_provider_finds_its_names_and_nothing_out_of_scope(fakes, sent, tmp_path, record_property):
    found, outcomes = await run(sources(fakes, tmp_path, valid()))
    assert set(PROVIDERS) <= set(SOURCES)
    for provider in PROVIDERS:
        # every planted name, and nothing else: not below the excluded internal.acme.test, not
        # under evil.example, no name the grammar refuses
        assert found[provider] == fakes.names(provider, "acme.test"), provider
        assert outcomes.by_source()[f"{provider} acme.test"] == ("ok", "")
    record_property("recall", {p: len(found[p]) for p in PROVIDERS})
    only = {"st-history": "securitytrails", "vt-only": "virustotal", "shodan-scan": "shodan"}
    only |= {"censys-cert": "censys", "chaos-bounty": "chaos", "vt-page-80": "virustotal"}
    for label, provider in only.items():
        assert {p for p, names in found.items() if f"{label}.acme.test" in names} == {provider}
    names = set().union(*found.values())
    assert not [n for n in names if n.endswith(("internal.acme.test", "evil.example"))]
    pages = {p: sum(1 for r in fakes.requests if r.provider == p) for p in PROVIDERS}
    assert pages["virustotal"] == 3 and pages["censys"] == 3  # paged by cursor (VT's links.next never fetched)
    assert pages["securitytrails"] == pages["shodan"] == pages["chaos"] == 1
    assert len(sent) == len(fakes.requests) and {u.port for u in sent} == {fakes.port}
    assert "edge.shodan-zone.acme.test" in found["shodan"]


async def test_keys_rotate_past_an_invalid_and_an_exhausted_key_and_are_never_shown(fakes, sent, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    keys = {p: [KEYS[p]["invalid"], KEYS[p]["limited"], KEYS[p]["valid"]] for p in PROVIDERS}
    configured_sources = sources(fakes, tmp_path, keys)
    found, outcomes = await run(configured_sources, ROOTS)
    by = outcomes.by_source()
    for provider in PROVIDERS:
        for root in ROOTS:
            assert by[f"{provider} {root}"] == ("ok", ""), (provider, root)
            assert fakes.names(provider, root) <= found[provider]  # nothing lost to the bad keys
        status, reason = by[f"{provider} keys"]
        assert status == "failed" and reason.startswith("2 of 3 keys unusable: ")
        used = [r.key for r in fakes.requests if r.provider == provider]
        bad, limited, good = (re.escape(mask(k)) for k in keys[provider])
        # (several roots ask at once: a key may be in flight again before its first refusal is back)
        counts = [used.count(k) for k in keys[provider]]
        assert re.search(rf"key 1 {bad} invalid: {counts[0]} req, 0 ok, {counts[0]} err \(HTTP 40[13]\)", reason)
        errors = counts[1] - fakes.limit
        assert re.search(rf"key 2 {limited} exhausted: {counts[1]} req, 1 ok, {errors} err \(HTTP (429|403)\)", reason)
        assert re.search(rf"key 3 {good}: {counts[2]} req, {counts[2]} ok(;|$)", reason)
        assert counts[0] <= 3 and counts[1] >= 2, counts  # the invalid key is dropped at once; the limited one lasts
    # no key in full, nor any long piece of one, in the outcomes, the log (httpx's request lines
    # carry Shodan's key in the query) or a source's repr
    shown = outcomes.text() + "\n" + caplog.text + "\n" + repr(configured_sources)
    assert "HTTP Request" in caplog.text  # httpx did log: its lines were scrubbed
    for kinds in KEYS.values():
        for key in kinds.values():
            for piece in (key, key[:8], key[-8:], key.split(":")[-1][:8]):
                assert piece not in shown, (piece, [line for line in shown.splitlines() if piece in line][:2])


async def test_when_every_key_fails_the_search_fails_with_the_per_key_summary(fakes, sent, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    keys = {p: [KEYS[p]["invalid"]] for p in PROVIDERS}
    found, outcomes = await run(sources(fakes, tmp_path, keys))
    assert not found
    for provider in PROVIDERS:
        status, reason = outcomes.by_source()[f"{provider} acme.test"]
        assert status == "failed"
        code = 403 if provider == "securitytrails" else 401
        assert reason == f"every key failed: key 1 {mask(keys[provider][0])} invalid: 1 req, 0 ok, 1 err (HTTP {code})"
        assert f"{provider} keys" not in outcomes.by_source()  # said by each root already
    assert all(key not in outcomes.text() + caplog.text for k in KEYS.values() for key in k.values())


async def test_without_keys_each_provider_is_skipped_and_says_so(fakes, sent, tmp_path):
    found, outcomes = await run(sources(fakes, tmp_path, {}), ROOTS)
    assert not found and not fakes.requests and not sent
    for provider in PROVIDERS:
        for root in ROOTS:
            status, reason = outcomes.by_source()[f"{provider} {root}"]
            assert status == "skipped" and reason.startswith("no key configured")
            assert f"ASSETMON_PASSIVE_{provider.upper()}_KEYS" in reason
    nothing, quiet = await run(())  # no passive sources (the default): nothing asked, nothing reported
    assert nothing == {} and quiet.calls == []


async def test_a_resumed_run_asks_again_only_the_searches_that_had_failed(fakes, sent, tmp_path):
    """An interrupted scan resumed: the searches that ended well are not asked
    again (a key's quota, a provider's rate limit); a failed one is."""
    keys = {"securitytrails": [KEYS["securitytrails"]["valid"]], "virustotal": [KEYS["virustotal"]["invalid"]]}
    resume = Resume()
    first, outcomes = await run(sources(fakes, tmp_path, keys), ROOTS, resume)
    assert first["securitytrails"] and all(outcomes.by_source()[f"securitytrails {r}"] == ("ok", "") for r in ROOTS)
    assert all(outcomes.by_source()[f"virustotal {r}"][0] == "failed" for r in ROOTS)
    assert resume.passive == {f"securitytrails {r}" for r in ROOTS}
    asked = len(fakes.requests)
    again, outcomes = await run(sources(fakes, tmp_path, keys), ROOTS, resume)
    later = fakes.requests[asked:]
    assert later and {r.provider for r in later} == {"virustotal"}  # only the failed searches
    assert "securitytrails" not in again  # its names are the first run's (the step keeps them)
    assert all(outcomes.by_source()[f"securitytrails {r}"] == ("ok", "") for r in ROOTS)


async def test_an_excluded_root_is_not_asked(fakes, sent, tmp_path):
    outcomes = Outcomes()
    options = SubdomainOptions(
        ct=False, brute=False, san=False, tools=(), passive=sources(fakes, tmp_path, valid()), report=outcomes
    )
    s = Scope([parse_target("acme.test"), parse_target("!*.internal.acme.test"), parse_target("!internal.acme.test")])
    found = [
        f async for f in discover(["internal.acme.test"], options, s.__contains__, excludes_below=s.excludes_below)
    ]
    assert not found and not fakes.requests
    assert {o[1:] for o in outcomes.calls} == {("skipped", "excluded by scope")}


@pytest.mark.parametrize("mode", ["huge", "malformed", "binary", "deep", "shape"])
@pytest.mark.parametrize("provider", ["securitytrails", "virustotal", "censys"])
async def test_a_hostile_answer_fails_in_one_line_without_a_crash(fakes, sent, tmp_path, provider, mode):
    fakes.hostile[provider] = mode
    configured_sources = sources(fakes, tmp_path, valid(provider), max_bytes=1_000_000)
    started = time.monotonic()
    found, outcomes = await run(configured_sources)
    assert time.monotonic() - started < 10
    status, reason = outcomes.by_source()[f"{provider} acme.test"]
    expected = {
        "huge": "answer over 1000000 bytes, cut",
        "shape": "answer is not in the expected shape",
    }.get(mode, "answer is not JSON")
    assert status == "failed" and reason.startswith(expected) and "\n" not in reason, reason
    assert not found


async def test_a_link_to_another_host_is_read_for_its_cursor_never_fetched(fakes, sent, tmp_path):
    await run(sources(fakes, tmp_path, valid("virustotal")))
    assert len(sent) == 3 and all(u.host == "127.0.0.1" for u in sent)
    assert [r.query for r in fakes.requests] == ["limit=40", "limit=40&cursor=40", "limit=40&cursor=80"]


async def test_a_key_pool_goes_round_robin_and_keeps_its_pace():
    pool = KeyPool(["k" * 20 + "0001", "k" * 20 + "0002", "k" * 20 + "0003"], rate=20)
    picks = [await pool.take() for _ in range(4)]
    assert picks == [0, 1, 2, 0]
    pool.failed(1, "HTTP 401", "invalid")
    started = asyncio.get_running_loop().time()
    assert [await pool.take() for _ in range(3)] == [2, 0, 2]
    assert asyncio.get_running_loop().time() - started >= 0.04  # 20 a second per key
    assert "key 2 …0002 invalid: 1 req, 0 ok, 1 err (HTTP 401)" in pool.summary()
    assert mask("abcdefghijklmnopqrst") == "…qrst" and mask("short123") == "…23" and mask("tiny") == "…"


def test_configuration_from_the_file_and_the_environment(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(
        '[passive.shodan]\nkeys = ["aaaaaaaaaaaaaaaa1111", "bbbbbbbbbbbbbbbb2222"]\nurl = "http://127.0.0.1:9/shodan/"\n'
        '[passive.censys]\nkeys = ["my-id:my-secret-value"]\nrate = 0\n'
    )
    got = {
        s.name: s for s in configured(config, {"ASSETMON_PASSIVE_CHAOS_KEYS": " c1c1c1c1c1c1c1c1 , ,c2c2c2c2c2c2c2c2"})
    }
    assert set(got) == set(PROVIDERS) == set(passive.PROVIDERS) and set(PLANTED) == set(PROVIDERS)
    assert got["shodan"].keys == ("aaaaaaaaaaaaaaaa1111", "bbbbbbbbbbbbbbbb2222")
    assert got["shodan"].url == "http://127.0.0.1:9/shodan"
    assert got["censys"].rate == 0 and got["censys"].keys == ("my-id:my-secret-value",)
    assert got["chaos"].keys == ("c1c1c1c1c1c1c1c1", "c2c2c2c2c2c2c2c2")
    assert got["virustotal"].keys == () and got["virustotal"].url == "https://www.virustotal.com"
    assert "aaaa" not in repr(got["shodan"])
    env = {"ASSETMON_PASSIVE_SHODAN_KEYS": "zzzzzzzzzzzzzzzz9999", "ASSETMON_PASSIVE_SHODAN_URL": "http://127.0.0.2:8"}
    over = {s.name: s for s in configured(config, env)}["shodan"]
    assert over.keys == ("zzzzzzzzzzzzzzzz9999",) and over.url == "http://127.0.0.2:8"  # the environment wins


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ('[passive.shodan]\nkeys = "abc"\n', {}, "passive.shodan.keys in "),
        ("[passive.shodan]\nkeys = [1, 2]\n", {}, "passive.shodan.keys in "),
        ('[passive.nope]\nkeys = ["x"]\n', {}, "[passive.nope] in "),
        ('[passive.shodan]\nurl = "ftp://x"\n', {}, "passive.shodan.url in "),
        ('[passive.shodan]\nurl = "https://x/?key=1"\n', {}, "passive.shodan.url in "),
        ('[passive.shodan]\nkey = ["x"]\n', {}, "passive.shodan.key in "),
        ('[passive.censys]\nkeys = ["secretwithoutcolon123"]\n', {}, "is not API_ID:SECRET"),
        ('[passive.shodan]\nrate = "fast"\n', {}, "passive.shodan.rate in "),
        ("passive = 3\n", {}, "passive in "),
        ("", {"ASSETMON_PASSIVE_VIRUSTOTAL_KEYS": "has space inside9999"}, "$ASSETMON_PASSIVE_VIRUSTOTAL_KEYS"),
        ("", {"ASSETMON_PASSIVE_CHAOS_URL": "dns.projectdiscovery.io"}, "$ASSETMON_PASSIVE_CHAOS_URL"),
        ("[passive\n", {}, "is not valid TOML"),
    ],
)
def test_a_malformed_entry_is_one_line_naming_what_to_fix(tmp_path, text, env, message):
    config = tmp_path / "config.toml"
    config.write_text(text)
    with pytest.raises(SettingsError) as caught:
        configured(config, env)
    said = str(caught.value)
    assert message in said and "\n" not in said, said
    assert "secretwithoutcolon" not in said and "space inside" not in said


class _Ctx:
    """What Subdomains.options() reads of a scan context."""

    def __init__(self) -> None:
        from assetmon_tui.core.config import Settings

        self.settings = Settings()
        self.nameservers = ["127.0.0.1:9"]
        self.backend = "thread"
        self.scope = scope()
        self.outcomes: list[tuple[str, str, str, str]] = []

    def setting(self, name: str):
        return getattr(self.settings, name)

    def outcome(self, step: str, source: str, status: str, reason: str = "") -> None:
        self.outcomes.append((step, source, status, reason))


async def test_the_step_asks_the_configured_providers_once_and_its_chunks_none(monkeypatch, tmp_path):
    from assetmon_tui.pipeline.steps import subdomains as step

    monkeypatch.setenv("ASSETMON_HOME", str(tmp_path))
    monkeypatch.setenv("ASSETMON_PASSIVE_SHODAN_KEYS", "s" * 16 + "1234")
    ctx = _Ctx()
    options = step.Subdomains(ctx).options()  # type: ignore[arg-type]
    by = {s.name: s for s in options.passive}
    assert set(by) == {"shodan"} and by["shodan"].keys == ("s" * 16 + "1234",)  # only the keyed ones are asked
    (note,) = ctx.outcomes  # the others are said once, as a note, not a warning of every scan
    assert note[:3] == ("subdomains", "passive sources", "ok") and "chaos" in note[3] and "shodan" not in note[3]
    ctx.outcomes.clear()
    seen: list[SubdomainOptions] = []

    async def fake_discover(roots, options, *args, **kw):
        seen.append(options)
        return
        yield

    monkeypatch.setattr(step, "discover", fake_discover)
    chunk = step.Subdomains(ctx)  # type: ignore[arg-type]
    monkeypatch.setattr(chunk, "tick", lambda: None)
    monkeypatch.setattr(type(chunk), "found", property(lambda self: type("F", (), {"roots": ["acme.test"]})()))

    async def take(found, resume):
        async for _ in found:
            pass

    monkeypatch.setattr(chunk, "take", take)
    await chunk.work(["www"])
    assert seen and seen[0].passive == ()  # the brute-force chunks ask no API
    monkeypatch.setenv("ASSETMON_PASSIVE_SHODAN_KEYS", "bad key with spaces")
    assert step.Subdomains(ctx).options().passive == ()  # type: ignore[arg-type]
    said = ctx.outcomes[-1]
    assert said[:3] == ("subdomains", "passive sources", "failed") and "$ASSETMON_PASSIVE_SHODAN_KEYS" in said[3]
    assert "bad key" not in said[3]


async def test_a_stalling_api_fails_within_its_time(tmp_path, sent):
    from support.loopback import HttpServer, stall

    with HttpServer({"/v1/domain/acme.test/subdomains": stall()}) as server:
        source = PassiveSource("securitytrails", server.url, ("t" * 16 + "0042",), rate=0, timeout=0.5)
        source = replace(source, request_timeout=0.3)
        started = time.monotonic()
        found, outcomes = await run((source,))
    assert time.monotonic() - started < 3 and not found
    status, reason = outcomes.by_source()["securitytrails acme.test"]
    assert (status, reason) == ("failed", "timed out after 0.5 s")


def test_passive_tables_in_the_config_file_leave_the_other_settings_readable(monkeypatch, tmp_path):
    from assetmon_tui.core.config import get_settings
    from assetmon_tui.scanners.passive import config_file, configured

    monkeypatch.setenv("ASSETMON_HOME", str(tmp_path))
    get_settings.cache_clear()
    path = config_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('http_timeout = 7\n[passive.shodan]\nkeys = ["' + "k" * 16 + '9876"]\n')
    get_settings.cache_clear()
    assert get_settings().http_timeout == 7  # the table is not an unknown setting
    by = {s.name: s for s in configured()}
    assert by["shodan"].keys == ("k" * 16 + "9876",)
    get_settings.cache_clear()
