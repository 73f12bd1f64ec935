"""Per-rule detection: positives for every rule, and the negatives that must stay quiet."""

from __future__ import annotations

import base64
import binascii
import json
import random
import string

import pytest

from assetmon_tui.secrets import RULES, scan_text
from assetmon_tui.secrets.rules import CONFIDENCES, SEVERITIES
from assetmon_tui.secrets.samples import SAMPLES

pytestmark = pytest.mark.one_store  # the store is not what this tests: the SQLite pass is enough

B62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


def crc_b62(payload: str) -> str:
    """Independent GitHub/npm checksum: base62 (0-9A-Za-z) CRC32, 6 chars."""
    n, out = binascii.crc32(payload.encode()), ""
    while n:
        n, r = divmod(n, 62)
        out = B62[r] + out
    return out.rjust(6, "0")


def rand(rng: random.Random, n: int, alphabet: str = B62) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def rules_found(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in scan_text(text, "t.js"):
        out.setdefault(f.rule_id, []).append(f.secret)
    return out


def test_rule_catalogue():
    assert len(RULES) >= 60
    ids = [r.id for r in RULES]
    assert len(ids) == len(set(ids))
    for r in RULES:
        assert r.title and r.severity in SEVERITIES and r.confidence in CONFIDENCES
    assert set(SAMPLES) == set(ids), "every rule needs a sample generator"


@pytest.mark.parametrize("rule_id", sorted(SAMPLES))
def test_every_rule_detects_its_sample(rule_id):
    rng = random.Random(rule_id)
    for _ in range(5):
        snippet, secret = SAMPLES[rule_id](rng)
        text = f"!function(){{var a=1;var x={snippet};return a}}();"
        assert secret in rules_found(text).get(rule_id, []), (rule_id, snippet[:120])


# --- checksummed tokens ------------------------------------------------------


@pytest.mark.parametrize(
    "prefix,rule_id",
    [
        ("ghp_", "github-pat-classic"),
        ("gho_", "github-oauth-token"),
        ("ghu_", "github-user-to-server-token"),
        ("ghs_", "github-server-to-server-token"),
        ("ghr_", "github-refresh-token"),
        ("npm_", "npm-access-token"),
    ],
)
def test_checksum_tokens(prefix, rule_id):
    rng = random.Random(prefix)
    body = rand(rng, 30)
    good = prefix + body + crc_b62(body)
    assert rules_found(f'x="{good}"') == {rule_id: [good]}
    wrong = good[:-1] + ("A" if good[-1] != "A" else "B")
    # a token with a bad checksum is nothing: not this rule, not a generic hit
    assert rules_found(f'x="{wrong}";token:"{wrong}"') == {}


def test_published_github_token_checksum():
    # the example GitHub publishes in its token-format write-up is not valid
    assert rules_found('t="gho_16C7e42F292c6912E7710c838347Ae178B4a"') == {}


# --- structured formats ----------------------------------------------------------


def b64url(obj) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


def test_jwt_requires_json_header_with_alg():
    sig = "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
    good = f"{b64url({'alg': 'HS256', 'typ': 'JWT'})}.{b64url({'sub': '42'})}.{sig}"
    assert rules_found(f'a="{good}"') == {"jwt": [good]}
    no_alg = f"{b64url({'typ': 'JWT'})}.{b64url({'sub': '42'})}.{sig}"
    not_json = f"eyJub3QganNvbiBhdCBhbGw.{b64url({'sub': '42'})}.{sig}"
    assert "jwt" not in rules_found(f'a="{no_alg}";b="{not_json}"')


def test_pypi_token_must_be_a_macaroon():
    rng = random.Random(7)
    raw = b"\x02\x01\x08pypi.org\x02\x25\x01\x02" + rng.randbytes(80)
    good = "pypi-" + base64.urlsafe_b64encode(raw).decode().rstrip("=")
    assert rules_found(f'"{good}"') == {"pypi-upload-token": [good]}
    bad = "pypi-AgE" + rand(rng, 70)  # right prefix, body is not a macaroon
    assert "pypi-upload-token" not in rules_found(f'"{bad}"')


def test_private_key_needs_body_and_end():
    rng = random.Random(9)
    body = base64.b64encode(rng.randbytes(400)).decode()
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    block = f"-----BEGIN EC PRIVATE KEY-----\n{lines}\n-----END EC PRIVATE KEY-----"
    assert rules_found(f"const k = `{block}`;") == {"private-key-ec": [block]}
    no_end = f"-----BEGIN EC PRIVATE KEY-----\n{lines}\n"
    placeholder = "-----BEGIN RSA PRIVATE KEY-----\\n...\\n-----END RSA PRIVATE KEY-----"
    code = 'if(s.indexOf("-----BEGIN RSA PRIVATE KEY-----")>=0)parse(s,"-----END RSA PRIVATE KEY-----")'
    assert rules_found(f"`{no_end}`;\n'{placeholder}';{code}") == {}


def test_slack_webhook_shape():
    rng = random.Random(11)
    good = (
        f"https://hooks.slack.com/services/T{rand(rng, 10, string.ascii_uppercase)}/"
        f"B{rand(rng, 10, string.ascii_uppercase)}/{rand(rng, 24)}"
    )
    assert rules_found(f'u="{good}"') == {"slack-webhook": [good]}
    assert rules_found('u="https://hooks.slack.com/services/T000/B000/XXXXXXXX"') == {}


def test_aws_pair_and_documentation_examples():
    rng = random.Random(13)
    key_id = "AKIA" + rand(rng, 16, string.ascii_uppercase + "234567")
    secret = rand(rng, 40, B62 + "/+")
    found = rules_found(f'{{accessKeyId:"{key_id}",secretAccessKey:"{secret}"}}')
    assert found == {"aws-access-key-id": [key_id], "aws-secret-access-key": [secret]}
    docs = '{accessKeyId:"AKIAIOSFODNN7EXAMPLE",secretAccessKey:"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}'
    assert rules_found(docs) == {}
    # a random 40-char string with no AWS context is not an AWS secret
    assert "aws-secret-access-key" not in rules_found(f'x="{secret}";ASIA')


# --- suppression -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        'stripe.key = "sk_test_' + "4eC39HqLyjWDarjtT1zdp7dc" + '"',
        'const apiKey = "your_api_key_here"',
        'apiKey: "xxxxxxxxxxxxxxxxxxxxxxxxxxxx"',
        'secret: "aaaaaaaaaaaaaaaaaaaaaaaaa"',
        'token: "abcdefghijklmnopqrstuvwxyz012345"',
        'password: "password"',
        'password: "${DB_PASSWORD}"',
        'api_key = "<YOUR-API-KEY>"',
        'token: "1111111111111111111111111"',
        'accessToken: "getAccessToken"',
        'tokenType: "Bearer"',
        'secretKey: "application.secret.key"',
        'url = "postgres://user:password@localhost/db"',
        'url = "https://user:${PASS}@host.example.org/"',
        'Authorization: "Bearer " + token',
        'aws_secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"',
    ],
)
def test_placeholders_and_test_keys_are_suppressed(text):
    assert rules_found(text) == {}


def test_generic_needs_secret_name_and_entropy():
    rng = random.Random(17)
    value = rand(rng, 32)
    assert rules_found(f'const clientSecret = "{value}";') == {"generic-api-key": [value]}
    assert rules_found(f'const className = "{value}";') == {}  # name carries no meaning
    low = "aaaabbbbccccdddd1111"
    assert rules_found(f'const clientSecret = "{low}";') == {}


def test_env_file_assignment():
    rng = random.Random(19)
    value = rand(rng, 30) + "9"
    text = f"# settings\nDEBUG=true\nSTRIPE_SECRET={value}\nNAME=shop\n"
    assert rules_found(text) == {"generic-env-secret": [value]}
