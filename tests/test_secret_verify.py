"""Live verification of secrets (secrets/verify.py) against the fake providers
(lab/verify_fakes.py): each provider live, invalid and unknown; the SigV4
request checked by the fake; a secret never goes anywhere but its own
provider's base URL (nor follows a redirect); a thread scan of a loopback page
with planted secrets stores the states, a revoked key raises secret_revoked,
and with verification off (the default) no provider hears a thing."""

from __future__ import annotations

import asyncio
import random
import re
from datetime import UTC, datetime

import httpx
import pytest
from support.loopback import FakeDNS, HttpServer, page
from support.scenario import run_to_end

from assetmon_tui.core import project_settings as registry
from assetmon_tui.core.config import get_settings
from assetmon_tui.lab.verify_fakes import FakeProviders
from assetmon_tui.secrets import verify
from assetmon_tui.secrets.engine import scan_text
from assetmon_tui.secrets.samples import sample

RNG = random.Random(14)


def token(rule: str) -> str:
    return sample(rule, RNG)[1]


SINGLE = {  # provider -> a rule it checks
    "github": "github-pat-classic",
    "slack": "slack-bot-token",
    "stripe": "stripe-secret-key",
    "sendgrid": "sendgrid-api-key",
    "mailgun": "mailgun-api-key",
    "openai": "openai-api-key",
}
SID = "AC" + "0123456789abcdef" * 2
AWS_ID, AWS_SECRET = "AKIA" + "ABCDEFGHIJKLMNOP", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKY"


def run(coro):
    return asyncio.run(coro)


def urls_to(base: str) -> dict[str, str]:
    return {p.name: base for p in verify.PROVIDERS}


def every_candidate() -> dict[str, verify.Candidate]:
    out = {name: verify.Candidate(rule, token(rule)) for name, rule in SINGLE.items()}
    out["twilio"] = verify.Candidate("twilio-auth-token", "f" * 31 + "1", SID)
    out["aws"] = verify.Candidate("aws-access-key-id", AWS_ID, AWS_SECRET)
    return out


def secret_of(c: verify.Candidate) -> str:
    return c.secret


@pytest.mark.parametrize("how,state", [("live", "verified"), ("revoked", "invalid"), ("flaky", "unknown")])
def test_each_provider_live_invalid_and_unknown_against_the_fake(how, state):
    candidates = every_candidate()
    with FakeProviders(aws_secrets={AWS_ID: AWS_SECRET}) as fake:
        for c in candidates.values():
            getattr(fake, how).add(secret_of(c))
        results = run(verify.verify_all(candidates.values(), urls_to(fake.url)))
        assert {p: results[c.key].state for p, c in candidates.items()} == dict.fromkeys(candidates, state)
        assert len(fake.requests) == len(candidates)  # one call each
        for r in results.values():
            assert r.reason and all(
                c.secret not in r.reason and (not c.partner or c.partner not in r.reason) for c in candidates.values()
            )


def test_sigv4_request_shape_is_checked_by_the_fake():
    c = verify.Candidate("aws-access-key-id", AWS_ID, AWS_SECRET)
    with FakeProviders(live={AWS_ID}, aws_secrets={AWS_ID: AWS_SECRET}) as fake:
        assert run(verify.verify_all([c], urls_to(fake.url)))[c.key].state == "verified"
        seen = fake.requests[0]
        assert seen.method == "POST" and seen.path == "/" and seen.body == verify.STS_BODY.encode()
        auth = seen.headers["authorization"]
        assert re.fullmatch(
            rf"AWS4-HMAC-SHA256 Credential={AWS_ID}/\d{{8}}/us-east-1/sts/aws4_request, "
            r"SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date, Signature=[0-9a-f]{64}",
            auth,
        ), auth
        assert AWS_SECRET not in fake.seen_text()  # the secret signs; it is never sent
        # the wrong secret: the fake's own signature check refuses it
        wrong = verify.Candidate("aws-access-key-id", AWS_ID, AWS_SECRET[::-1])
        assert run(verify.verify_all([wrong], urls_to(fake.url)))[wrong.key].state == "invalid"
    # a known answer: the signature is a pure function of its inputs
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    a = verify.sigv4_headers("POST", "https://sts.amazonaws.com/", verify.STS_BODY, AWS_ID, AWS_SECRET, when)
    b = verify.sigv4_headers("POST", "https://sts.amazonaws.com/", verify.STS_BODY, AWS_ID, AWS_SECRET, when)
    assert a == b and a["x-amz-date"] == "20260102T030405Z" and a["host"] == "sts.amazonaws.com"


def test_a_temporary_key_or_a_missing_partner_is_unknown_without_a_request():
    cases = [
        verify.Candidate("aws-access-key-id", "ASIA" + "A" * 16, AWS_SECRET),
        verify.Candidate("twilio-auth-token", "a" * 32, missing="no account SID in the same file"),
    ]
    with FakeProviders() as fake:
        results = run(verify.verify_all(cases, urls_to(fake.url)))
        assert [results[c.key].state for c in cases] == ["unknown", "unknown"]
        assert fake.requests == []


def test_pairs_are_made_within_one_file():
    twilio_snippet, _ = sample("twilio-auth-token", RNG)
    aws_snippet, aws_secret = sample("aws-secret-access-key", RNG)
    sid = re.search("AC[0-9a-f]{32}", twilio_snippet).group()
    aws_id = re.search("AKIA[A-Z2-7]{16}", aws_snippet).group()
    text = f"const a = {twilio_snippet};\nconst b = {aws_snippet};\n"
    found = scan_text(text, "x.js")
    by_rule = {f.rule_id: f for f in found}
    assert {"twilio-auth-token", "aws-access-key-id", "aws-secret-access-key"} <= set(by_rule), by_rule
    checks = verify.candidates_of(found, text)
    twilio = checks[by_rule["twilio-auth-token"].fingerprint]
    assert [(c.partner, c.missing) for c in twilio] == [(sid, "")]
    key_id = checks[by_rule["aws-access-key-id"].fingerprint][0]
    secret = checks[by_rule["aws-secret-access-key"].fingerprint][0]
    assert key_id.key == secret.key == ("aws-access-key-id", aws_id, aws_secret)  # one request for both
    alone = verify.candidates_of([by_rule["twilio-auth-token"]], "no sid here")
    assert alone[by_rule["twilio-auth-token"].fingerprint][0].missing


def test_a_secret_goes_only_to_its_own_providers_url_and_redirects_are_not_followed():
    candidates = every_candidate()
    with FakeProviders() as github, FakeProviders() as others:
        for c in candidates.values():
            github.live.add(c.secret)
            others.live.add(c.secret)
        urls = {**urls_to(others.url), "github": github.url}
        run(verify.verify_all(candidates.values(), urls))
        mine = candidates["github"].secret
        assert [r.path for r in github.requests] == ["/user"]
        assert mine in github.seen_text()
        assert mine not in others.seen_text()
        for name, c in candidates.items():
            if name != "github":
                assert c.secret not in github.seen_text(), name
        assert len(others.requests) == len(candidates) - 1

    # a provider answering with a redirect elsewhere: not followed, unknown
    with FakeProviders() as elsewhere:
        with HttpServer({"/user": page("", status=302, headers={"Location": f"{elsewhere.url}/user"})}) as redirector:
            c = candidates["github"]
            result = run(verify.verify_all([c], {"github": redirector.url}))[c.key]
            assert result.state == "unknown" and "redirect" in result.reason
        assert elsewhere.requests == []


def test_a_bad_base_url_is_unknown_and_defaults_are_the_real_providers(monkeypatch):
    c = every_candidate()["github"]
    assert run(verify.verify_all([c], {"github": "ftp://127.0.0.1/"}))[c.key].state == "unknown"
    defaults = verify.base_urls(get_settings())
    assert defaults["github"] == "https://api.github.com" and defaults["aws"] == "https://sts.amazonaws.com"
    assert all(url.startswith("https://") for url in defaults.values())
    monkeypatch.setenv("ASSETMON_VERIFY_SLACK_URL", "http://127.0.0.1:9/")
    monkeypatch.setenv("ASSETMON_VERIFY_SECRETS", "on")
    get_settings.cache_clear()
    assert verify.base_urls(get_settings())["slack"] == "http://127.0.0.1:9/" and get_settings().verify_secrets
    assert get_settings.cache_clear() is None


def test_the_project_setting():
    assert registry.check("verify_secrets", "on") is True and registry.check("verify_secrets", False) is False
    assert registry.show("verify_secrets", True) == "on" and registry.check("verify_secrets", "") is None
    with pytest.raises(ValueError, match="verify_secrets"):
        registry.check("verify_secrets", "maybe")
    assert "verify_secrets" in registry.SCAN_OPTIONS and "verify_secrets" in registry.PROFILE_KEYS
    assert get_settings().verify_secrets is False  # off by default


# -- a scan, end to end -------------------------------------------------------------------

WEB = "127.0.0.7"


@pytest.fixture
def planted():
    github, stripe = token("github-pat-classic"), token("stripe-secret-key")
    js = f'const gh = "{github}";\nconst stripe = "{stripe}";\n'
    routes = {
        "/": page('<html><title>shop</title><script src="/app.js"></script></html>'),
        "/app.js": page(js, content_type="application/javascript"),
    }
    with HttpServer(routes, host=WEB) as web, FakeDNS({"shop.verify.test": {"A": [WEB]}}) as dns:
        yield web, dns, github, stripe


def scan(dispatcher, pid, web, dns, **options):
    from assetmon_tui.store import repo
    from assetmon_tui.store.event_log import scan_events

    opts = {"nameservers": [dns.address], "ports": str(web.port), **options}
    row = dispatcher.submit(pid, ["dns", "ports", "http", "js"], opts)
    progress, _ = run_to_end(dispatcher, row.id, timeout=120)
    assert progress.state == "done", progress
    return repo.get_scan(row.id), scan_events(row.id)


def states(pid):
    from assetmon_tui.store import repo

    return {f.rule: f.verified for f, _ in repo.findings(pid) if f.kind == "secret"}


@pytest.mark.timeout(300)
def test_a_scan_stores_the_states_and_a_revoked_key_raises_secret_revoked(planted, monkeypatch):
    from assetmon_tui.dispatch import Dispatcher
    from assetmon_tui.store import repo

    web, dns, github, stripe = planted
    monkeypatch.setenv("ASSETMON_BACKEND", "thread")
    with FakeProviders(live={github, stripe}) as fake:
        for p in verify.PROVIDERS:
            monkeypatch.setenv(f"ASSETMON_VERIFY_{p.name.upper()}_URL", fake.url)
        get_settings.cache_clear()
        pid = repo.create_project("shop").id
        repo.add_targets(pid, ["shop.verify.test"])
        dispatcher = Dispatcher()

        scan(dispatcher, pid, web, dns)  # off by default: nothing goes out
        assert fake.requests == [] and set(states(pid).values()) == {""}

        _, events = scan(dispatcher, pid, web, dns, verify_secrets=True)
        assert states(pid) == {"github-pat-classic": "verified", "stripe-secret-key": "verified"}
        assert sorted(e.type for e in events if e.type.startswith("secret_")) == ["secret_live", "secret_live"]
        assert all(e.severity == "high" for e in events if e.type == "secret_live")
        assert {r.path for r in fake.requests} == {"/user", "/v1/balance"}

        _, events = scan(dispatcher, pid, web, dns, verify_secrets=True)  # still live: nothing new
        assert [e.type for e in events if e.type.startswith("secret_")] == []

        fake.flaky.add(stripe)  # inconclusive: changes nothing, alarms nothing
        fake.revoke(github)
        _, events = scan(dispatcher, pid, web, dns, verify_secrets=True)
        assert states(pid) == {"github-pat-classic": "invalid", "stripe-secret-key": "verified"}
        revoked = [e for e in events if e.type.startswith("secret_")]
        assert [(e.type, e.severity) for e in revoked] == [("secret_revoked", "info")]
        assert github not in revoked[0].summary and stripe not in revoked[0].summary
        rows = {f.rule: f for f, _ in repo.findings(pid)}
        assert rows["github-pat-classic"].verified_at and "401" in rows["github-pat-classic"].verify_reason

        # the project setting turns it on too; off in the scan's options wins over it
        repo_count = len(fake.requests)
        scan(dispatcher, pid, web, dns, verify_secrets=False)
        assert len(fake.requests) == repo_count
    get_settings.cache_clear()


def test_httpx_client_ignores_proxies_from_the_environment(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    c = every_candidate()["openai"]
    with FakeProviders(live={c.secret}) as fake:
        assert run(verify.verify_all([c], urls_to(fake.url)))[c.key].state == "verified"
    assert isinstance(verify.client(), httpx.AsyncClient)


def test_the_findings_screen_marks_the_check():
    from assetmon_tui.ui.screens.findings import check_cell

    assert [check_cell(s).plain for s in ("verified", "invalid", "unknown", "")] == ["live", "invalid", "?", ""]


def test_the_cli_verify_flag_turns_checks_on_for_that_scan(planted, monkeypatch, capsys):
    from assetmon_tui.cli import main
    from assetmon_tui.store import repo

    web, dns, github, stripe = planted
    monkeypatch.setenv("ASSETMON_BACKEND", "thread")
    with FakeProviders(live={github}) as fake:
        for p in verify.PROVIDERS:
            monkeypatch.setenv(f"ASSETMON_VERIFY_{p.name.upper()}_URL", fake.url)
        get_settings.cache_clear()
        args = ["scan", "shop.verify.test", "--project", "cli", "--modules", "dns,ports,http,js"]
        args += ["--ports", str(web.port), "--nameserver", dns.address]
        assert main(args) == 0
        assert fake.requests == []  # without --verify nothing goes out
        assert main([*args, "--verify"]) == 0
    assert {r.path for r in fake.requests} == {"/user", "/v1/balance"}
    pid = repo.get_project("cli").id
    assert states(pid) == {"github-pat-classic": "verified", "stripe-secret-key": "invalid"}
    assert github not in capsys.readouterr().out
    get_settings.cache_clear()
