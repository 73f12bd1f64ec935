"""Tokens in the places real code puts them: URL paths and queries, string
concatenation, template literals, escaped JSON, minified code, HTML, and
right before the delimiters that follow them there. Every rule of the
registry is placed in every context that fits its shape; the same contexts
with near-miss strings, random blobs, hashes and UUIDs stay quiet.

    .venv/bin/python -m tests.test_secrets_contexts   # prints the context x rule matrix
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import string
import sys
import uuid
from collections.abc import Callable

import pytest

from assetmon_tui.secrets import RULES, scan_text
from assetmon_tui.secrets.samples import SAMPLES, rand

pytestmark = pytest.mark.one_store  # no store involved

# --- contexts ------------------------------------------------------------------
# Each takes the exact secret text and returns JavaScript/HTML carrying it.

TOKEN_CONTEXTS: dict[str, Callable[[str], str]] = {
    "bare": lambda t: f'var a="{t}";',
    "single-quoted": lambda t: f"var a='{t}';",
    "path-bot": lambda t: f'fetch("https://api.telegram.org/bot{t}/sendMessage")',
    "path-segment": lambda t: f'fetch("https://api.example.com/v1/{t}/status")',
    "query": lambda t: f'fetch("https://api.example.com/x?key={t}&x=1")',
    "fragment": lambda t: f'location.href="https://app.example.com/cb#access_token={t}&expires_in=3600"',
    "concat": lambda t: f'h.Authorization="Bearer "+"{t}";',
    "concat-url": lambda t: f'u=base+"/bot{t}"+"/getMe";',
    "template": lambda t: f"fetch(`${{base}}/x?token={t}`)",
    "template-path": lambda t: f"fetch(`${{base}}/bot{t}/${{method}}`)",
    "json-escaped": lambda t: f'JSON.parse("{{\\"key\\":\\"{t}\\"}}")',
    "json-u0022": lambda t: f'JSON.parse("{{\\u0022key\\u0022:\\u0022{t}\\u0022}}")',
    "json-x22": lambda t: f'JSON.parse("{{\\x22key\\x22:\\x22{t}\\x22}}")',
    "minified": lambda t: f'var a="{t}",b=1,c=a.length;',
    "html-attr": lambda t: f'<button data-id="{t}" class="x"></button>',
    "html-href": lambda t: f'<a href="https://x.example.com/?k={t}&amp;y=1">go</a>',
    "after-escaped-newline": lambda t: f'var a="line\\n{t}";',
    "url-encoded-quotes": lambda t: f'"https://x.example.com/?q=%22{t}%22"',
    "url-encoded-slash": lambda t: f'"https://x.example.com/?next=%2Fapi%2F{t}%2Fx"',
    "then-slash": lambda t: f'"{t}/"',
    "then-amp": lambda t: f'"{t}&"',
    "then-backslash": lambda t: f'"{t}\\\\"',
    "then-%22": lambda t: f'"{t}%22"',
    "then-quote": lambda t: f"x='{t}'",
    "then-paren": lambda t: f"f({t})",
}

# Whole-URL secrets (webhooks): the places a URL can stand.
URL_CONTEXTS: dict[str, Callable[[str], str]] = {
    "bare": lambda u: f'var a="{u}";',
    "single-quoted": lambda u: f"var a='{u}';",
    "concat": lambda u: f'post("{u}"+"?wait=true")',
    "template": lambda u: f"fetch(`{u}?thread_id=${{id}}`)",
    "json-escaped": lambda u: f'JSON.parse("{{\\"hook\\":\\"{u}\\"}}")',
    "json-escaped-slashes": lambda u: 'var d={"hook":"' + u.replace("/", "\\/") + '"};',  # PHP json_encode
    "json-u0022": lambda u: f'JSON.parse("{{\\u0022hook\\u0022:\\u0022{u}\\u0022}}")',
    "minified": lambda u: f'var a="{u}",b=1;',
    "html-attr": lambda u: f'<form action="{u}" method="post">',
    "then-slash": lambda u: f'"{u}/"',
    "then-query": lambda u: f'"{u}?wait=true&x=1"',
    "then-backslash": lambda u: f'"{u}\\\\"',
    "then-%22": lambda u: f'"{u}%22"',
    "then-quote": lambda u: f"x='{u}'",
    "then-paren": lambda u: f"f({u})",
}

# Keyword rules: (name, value) pairs in the assignment styles of real code.
ASSIGN_CONTEXTS: dict[str, Callable[[str, str], str]] = {
    "object": lambda n, v: f'var c={{{n}:"{v}"}};',
    "json": lambda n, v: f'var c={{"{n}":"{v}"}};',
    "assign-single": lambda n, v: f"{n}='{v}';",
    "assign-template": lambda n, v: f"{n}=`{v}`;",
    "minified": lambda n, v: f'var a=1,{n}="{v}",b=2;',
    "json-escaped": lambda n, v: f'JSON.parse("{{\\"{n}\\":\\"{v}\\"}}")',
    "json-u0022": lambda n, v: f'JSON.parse("{{\\u0022{n}\\u0022:\\u0022{v}\\u0022}}")',
    "json-x22": lambda n, v: f'JSON.parse("{{\\x22{n}\\x22:\\x22{v}\\x22}}")',
    "html-entities": lambda n, v: f'<div data-config="{{&quot;{n}&quot;:&quot;{v}&quot;}}"></div>',
}

URL_RULES = ("slack-webhook", "discord-webhook", "microsoft-teams-webhook")


def _sample(rule_id: str, seed: int = 0) -> tuple[str, str]:
    return SAMPLES[rule_id](random.Random(f"{rule_id}/{seed}"))


def token_rules() -> list[str]:
    """Rules whose sample is the bare secret in a string: a token on its own."""
    out = []
    for r in RULES:
        snippet, secret = _sample(r.id)
        if snippet == f'"{secret}"' and r.id not in URL_RULES and not r.id.startswith("private-key-"):
            out.append(r.id)
    return out


def _rng_hex(rng: random.Random, n: int) -> str:
    return rand(rng, n, "0123456789abcdef")


def _twilio_sid(rng: random.Random) -> str:
    return "AC" + _rng_hex(rng, 32)


# rule -> (name, value maker, text that must be near it)
KEYWORD_CASES: dict[str, tuple[str, Callable[[random.Random], str], str]] = {
    "heroku-api-key": ("herokuApiKey", lambda r: str(uuid.UUID(int=r.getrandbits(128))), ""),
    "paypal-client-secret": (
        "paypalClientSecret",
        lambda r: "E" + rand(r, 79, string.ascii_letters + "0123456789_-"),
        "",
    ),
    "twilio-auth-token": ("twilioAuthToken", lambda r: _rng_hex(r, 32), ""),
    "generic-api-key": ("apiKey", lambda r: rand(r, 32), ""),
    "generic-password": ("db_password", lambda r: rand(r, 6, string.ascii_letters) + rand(r, 6, "0123456789!@#%"), ""),
    "aws-secret-access-key": (
        "secretAccessKey",
        lambda r: rand(r, 40, string.ascii_letters + "0123456789/+"),
        "AKIA" + "QX7DN4LBJ2EWTRY5ZK3M",
    ),
}


def found(text: str, rule_id: str, secret: str) -> bool:
    return any(f.rule_id == rule_id and f.secret == secret for f in scan_text(text, "c.js", context_lines=0))


# --- the matrix ----------------------------------------------------------------


def matrix() -> dict[str, dict[str, bool]]:
    """{group/context: {rule: found}} for every rule in every context of its shape."""
    out: dict[str, dict[str, bool]] = {}
    for rid in token_rules():
        _, tok = _sample(rid)
        for ctx, make in TOKEN_CONTEXTS.items():
            out.setdefault(f"token/{ctx}", {})[rid] = found(make(tok), rid, tok)
    for rid in URL_RULES:
        _, url = _sample(rid)
        for ctx, make in URL_CONTEXTS.items():
            expect = url.replace("/", "\\/") if ctx == "json-escaped-slashes" else url
            out.setdefault(f"url/{ctx}", {})[rid] = found(make(url), rid, expect)
    for rid, (name, value, near) in KEYWORD_CASES.items():
        val = value(random.Random(rid))
        for ctx, make in ASSIGN_CONTEXTS.items():
            text = make(name, val) + (f'var id="{near}";' if near else "")
            out.setdefault(f"keyword/{ctx}", {})[rid] = found(text, rid, val)
    return out


TOKEN_CASES = [(rid, ctx) for rid in token_rules() for ctx in TOKEN_CONTEXTS]
URL_CASES = [(rid, ctx) for rid in URL_RULES for ctx in URL_CONTEXTS]
KW_CASES = [(rid, ctx) for rid in KEYWORD_CASES for ctx in ASSIGN_CONTEXTS]

# Deliberate gaps: a word character glued in front of a token whose prefix is
# short or common would also match inside identifiers and base64/hex runs
# (see test_weak_prefixes_keep_a_word_boundary); these keep a boundary.
GLUED_CONTEXTS = ("path-bot", "concat-url", "template-path")
KEEP_BOUNDARY = frozenset(
    {
        "alibaba-access-key-id",
        "artifactory-api-key",
        "aws-access-key-id",
        "azure-ad-client-secret",
        "bitbucket-app-password",
        "crates-io-token",
        "databricks-token",
        "discord-bot-token",
        "easypost-api-key",
        "facebook-access-token",
        "gcp-api-key",
        "huggingface-token",
        "mailchimp-api-key",
        "mailgun-api-key",
        "notion-token",
        "nuget-api-key",
        "pulumi-token",
        "replicate-api-token",
        "square-access-token",
        "stripe-restricted-key",
        "stripe-secret-key",
        "terraform-cloud-token",
        "twilio-api-key",
    }
)
# A Twitter bearer token carries URL-encoded characters (%2B, %2F, %3D), so
# one followed by an encoded `/` cannot be told from one that goes on.
AMBIGUOUS = frozenset({("twitter-bearer-token", "url-encoded-slash")})


def _expected(rid: str, ctx: str) -> bool:
    return not (ctx in GLUED_CONTEXTS and rid in KEEP_BOUNDARY) and (rid, ctx) not in AMBIGUOUS


@pytest.mark.parametrize(("rule_id", "ctx"), TOKEN_CASES)
def test_token_in_context(rule_id, ctx):
    for seed in range(3):
        _, tok = _sample(rule_id, seed)
        text = TOKEN_CONTEXTS[ctx](tok)
        assert found(text, rule_id, tok) == _expected(rule_id, ctx), (rule_id, ctx, text[:160])


@pytest.mark.parametrize(("rule_id", "ctx"), URL_CASES)
def test_webhook_url_in_context(rule_id, ctx):
    for seed in range(3):
        _, url = _sample(rule_id, seed)
        expect = url.replace("/", "\\/") if ctx == "json-escaped-slashes" else url
        text = URL_CONTEXTS[ctx](url)
        assert found(text, rule_id, expect), (rule_id, ctx, text[:160])


@pytest.mark.parametrize(("rule_id", "ctx"), KW_CASES)
def test_keyword_secret_in_context(rule_id, ctx):
    name, value, near = KEYWORD_CASES[rule_id]
    for seed in range(3):
        val = value(random.Random(f"{rule_id}/{seed}"))
        text = ASSIGN_CONTEXTS[ctx](name, val) + (f'var id="{near}";' if near else "")
        assert found(text, rule_id, val), (rule_id, ctx, text[:160])


def test_telegram_bot_url():
    tok = "7981254603:AAHk3Jq9_x-ZpQ2mV8cL5rT1yW4nB6dE0fG"
    for text in (
        f"https://api.telegram.org/bot{tok}/sendMessage?chat_id=1",
        f'fetch("https://api.telegram.org/bot"+"{tok}"+"/getMe")',
        f"`https://api.telegram.org/bot{tok}/${{m}}`",
        f'"https:\\/\\/api.telegram.org\\/bot{tok}\\/sendMessage"',
    ):
        assert found(text, "telegram-bot-token", tok), text
    # URL-encoded in a query string: the colon is %3A
    enc = tok.replace(":", "%3A")
    assert found(f'"https://x.example.com/?token={enc}&a=1"', "telegram-bot-token", enc)
    # part of a longer number is not a bot id; one character short is not a token
    assert not found(
        f'"12345678901234:{tok.split(":")[1]}"', "telegram-bot-token", "12345678901234:" + tok.split(":")[1]
    )
    assert [f.rule_id for f in scan_text(f'"/bot{tok[:-1]}/x"', "t.js")] == []


def test_url_encoded_bearer_token_stops_at_an_encoded_quote():
    _, tok = _sample("twitter-bearer-token")
    tok = tok[:-4] + "%3D"  # bearer tokens carry URL-encoded padding
    assert found(f'"q=%22{tok}%22"', "twitter-bearer-token", tok)


def test_azure_sas_signature_stops_at_an_encoded_quote():
    snippet, sig = _sample("azure-sas-token")
    url = snippet.strip('"')
    assert found(f'"%22{url}%22"', "azure-sas-token", sig)


# --- negatives -----------------------------------------------------------------


def _near_misses(rng: random.Random) -> list[str]:
    b64 = base64.b64encode(rng.randbytes(600)).decode()
    b64url = base64.urlsafe_b64encode(rng.randbytes(600)).decode().rstrip("=")
    return [
        b64,
        b64url,
        hashlib.sha1(rng.randbytes(8)).hexdigest(),
        hashlib.sha256(rng.randbytes(8)).hexdigest(),
        hashlib.md5(rng.randbytes(8)).hexdigest(),
        str(uuid.UUID(int=rng.getrandbits(128))),
        str(uuid.UUID(int=rng.getrandbits(128))).upper(),
        rand(rng, 40),
        rand(rng, 64, "0123456789abcdef"),
        "monkey-" + hashlib.md5(rng.randbytes(8)).hexdigest(),  # not a Mailgun key
        "cachekey-" + hashlib.md5(rng.randbytes(8)).hexdigest(),
        "ASK" + hashlib.md5(rng.randbytes(8)).hexdigest(),  # not a Twilio key
        "task_live_updateScheduledItemsNow2",  # not a Stripe key
        "precio" + rand(rng, 32),  # not a crates.io token
        "12345678901234:AA" + rand(rng, 33, string.ascii_letters + "0123456789_-"),  # too long for a bot id
        "123456789:BB" + rand(rng, 33),  # not a bot token's shape
        "1234567:AA" + rand(rng, 33),  # id too short
        "ghp_" + rand(rng, 36),  # bad checksum
        "npm_" + rand(rng, 36),
        "eyJ" + rand(rng, 40) + ".eyJ" + rand(rng, 30) + "." + rand(rng, 30),  # not JSON inside
        "AIza" + rand(rng, 20),  # too short
        "xoxb-123-456-" + rand(rng, 24),
        "sk_live_short",
        "SG." + rand(rng, 10) + "." + rand(rng, 10),
    ]


@pytest.mark.parametrize("seed", range(4))
def test_near_misses_in_every_context_are_quiet(seed):
    rng = random.Random(seed)
    for value in _near_misses(rng):
        for ctx, make in TOKEN_CONTEXTS.items():
            text = make(value)
            hits = [(f.rule_id, f.secret) for f in scan_text(text, "n.js", context_lines=0)]
            assert hits == [], (ctx, value[:60], hits)


def test_blobs_in_query_and_fragment_are_quiet():
    rng = random.Random(5)
    for _ in range(50):
        blob = base64.b64encode(rng.randbytes(rng.randrange(20, 400))).decode()
        for text in (
            f'"https://x.example.com/img?d={blob}&x=1"',
            f'"data:image/png;base64,{blob}"',
            f'"https://x.example.com/#state={blob}"',
            f'"%22{blob}%22"',
            f'"\\n{blob}\\n"',
            f'"\\u0022{blob}\\u0022"',
        ):
            assert scan_text(text, "b.js", context_lines=0) == [], text[:120]


def test_keyword_contexts_keep_their_judgement():
    # escaped JSON and HTML entities do not make a word a secret
    for make in ASSIGN_CONTEXTS.values():
        for name, value in (
            ("apiKey", "getAccessToken"),
            ("tokenType", "Bearer"),
            ("className", rand(random.Random(1), 32)),
            ("password", "password"),
            ("apiKey", "your_api_key_here"),
        ):
            text = make(name, value)
            assert scan_text(text, "k.js", context_lines=0) == [], text


def test_weak_prefixes_keep_a_word_boundary():
    # identifiers and hex/base64 runs that merely contain a short prefix
    for text in (
        '"monkey-0123456789abcdef0123456789abcdef"',
        '"TASK0123456789abcdef0123456789abcdef"',
        '"Xcio' + "aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dE" + '"',
    ):
        assert scan_text(text, "w.js", context_lines=0) == [], text


# --- printing the matrix -------------------------------------------------------


def _print_matrix() -> None:
    m = matrix()
    groups: dict[str, list[str]] = {}
    for key in m:
        groups.setdefault(key.split("/", 1)[0], []).append(key)
    total = missed = 0
    for keys in groups.values():
        for key in keys:
            row = m[key]
            miss = sorted(r for r, ok in row.items() if not ok)
            total += len(row)
            missed += len(miss)
            print(f"{key:34} {len(row) - len(miss):3}/{len(row):3}  " + (" ".join(miss) if miss else ""))
    print(f"TOTAL found {total - missed}/{total}")
    per_rule: dict[str, int] = {}
    for row in m.values():
        for r, ok in row.items():
            if not ok:
                per_rule[r] = per_rule.get(r, 0) + 1
    print("missed contexts per rule:", json.dumps(dict(sorted(per_rule.items())), indent=None))


if __name__ == "__main__":
    _print_matrix()
    sys.exit(0)
