"""Engine behaviour: positions, dedupe, redaction, fingerprints, bytes input, linear time."""

from __future__ import annotations

import random
import string
import time

import pytest

from assetmon_tui.secrets import scan_bytes, scan_text
from assetmon_tui.secrets.engine import redact
from assetmon_tui.secrets.samples import SAMPLES, github_like

pytestmark = pytest.mark.one_store  # the store is not what this tests: the SQLite pass is enough


def _token(seed: int = 1) -> str:
    return github_like(random.Random(seed), "ghp_")


def test_line_and_column_multiline():
    tok = _token()
    text = f"// header\nconst a = 1;\n\n    const tok = '{tok}';\nfoo();\n"
    [f] = scan_text(text, "src/app.js")
    assert (f.line, f.column) == (4, 18)
    line = text.splitlines()[f.line - 1]
    assert line[f.column - 1 :].startswith(tok)
    assert f.source == "src/app.js"


def test_line_and_column_minified_with_non_ascii():
    tok = _token(2)
    # characters outside ASCII before the match: columns count characters, not bytes
    text = "var s='héllo wörld ✓ ünïcode';" * 40 + f'var t="{tok}";' + "x();" * 10
    [f] = scan_text(text, "m.js")
    assert f.line == 1
    assert text[f.column - 1 :].startswith(tok)


def test_columns_after_many_lines_and_matches():
    rng = random.Random(3)
    toks = [github_like(rng, "ghp_") for _ in range(30)]
    lines = [f"{'ü' * (i % 5)}  x{i} = '{t}', y{i} = '{t}';" for i, t in enumerate(toks)]
    findings = scan_text("\n".join(lines), "many.js")
    assert len(findings) == 60
    for f in findings:
        assert lines[f.line - 1][f.column - 1 :].startswith(f.secret)


def test_same_secret_twice_one_fingerprint():
    tok = _token(4)
    findings = scan_text(f'a="{tok}";\nb="{tok}";', "dup.js")
    assert [(f.line, f.rule_id) for f in findings] == [(1, "github-pat-classic"), (2, "github-pat-classic")]
    assert findings[0].fingerprint == findings[1].fingerprint
    other = scan_text(f'"{_token(5)}"', "x.js")[0]
    assert other.fingerprint != findings[0].fingerprint


@pytest.mark.parametrize(
    "wrapper",
    [
        'apiKey: "{t}"',
        '"client_secret":"{t}"',
        'Authorization: "Bearer {t}"',
        'url="https://bot:{t}@api.github.com/"',
        "TOKEN={t}\n",
    ],
)
def test_one_token_one_finding(wrapper):
    # the specific rule wins over generic/keyword/URL rules matching the same text
    tok = _token(6)
    findings = scan_text(wrapper.format(t=tok), "w.js")
    assert [f.rule_id for f in findings] == ["github-pat-classic"]


def test_jwt_in_bearer_header_is_one_finding():
    snippet, jwt = SAMPLES["jwt"](random.Random(1))
    findings = scan_text(f'headers:{{Authorization:"Bearer {jwt}"}}', "h.js")
    assert [f.rule_id for f in findings] == ["jwt"]


@pytest.mark.parametrize("rule_id", sorted(SAMPLES))
def test_redaction_never_leaks(rule_id):
    snippet, secret = SAMPLES[rule_id](random.Random(rule_id))
    text = "function f(){\n  return " + snippet + ";\n}\n" + "z();" * 200
    for f in scan_text(text, "r.js"):
        assert f.secret not in f.redacted
        assert len(f.redacted.replace("…", "")) <= max(1, len(f.secret) * 3 // 8)
        assert f.secret not in repr(f)
        assert not any(f.secret in line for line in f.context)
        assert f.secret not in str(f.to_dict())
        assert f.to_dict(reveal=True)["secret"] == f.secret


def test_redact_short_values():
    assert redact("abcdefgh") == "ab…h"
    assert redact("ghp_" + "x" * 36) == "ghp_…xx"
    assert "secret" not in redact("secret")


def test_context_is_beautified_for_minified_code():
    tok = _token(7)
    minified = "function a(b){return b+1}" * 100 + f'var cfg={{token:"{tok}",debug:!1}};' + "a(1);" * 200
    [f] = scan_text(minified, "min.js")
    assert 1 < len(f.context) <= 7
    assert any("…" in line for line in f.context)
    assert all(len(line) <= 240 for line in f.context)
    [g] = scan_text(minified, "min.js", context_lines=0)
    assert g.context == ()


def test_scan_bytes_decoding_and_limits():
    tok = _token(8)
    data = b"\x80\x81 garbage \xc3\x28 " + f'x="{tok}"'.encode()
    [f] = scan_bytes(data, "bad-utf8.js")
    assert f.secret == tok
    binary = b"\x00\x01ELF\x00" * 100 + tok.encode() + b"\x00" * 10
    [g] = scan_bytes(binary, "blob.bin")
    assert g.secret == tok and g.context == ()
    utf16 = ("\ufeff" + f'let t = "{tok}";').encode("utf-16")
    assert [h.secret for h in scan_bytes(utf16, "w.js")] == [tok]
    with pytest.raises(ValueError, match="limit"):
        scan_bytes(b"a" * 101, "big.js", max_size=100)


def test_empty_and_clean_inputs():
    assert scan_text("", "e.js") == []
    assert scan_bytes(b"", "e.js") == []
    assert scan_text("function add(a,b){return a+b}", "ok.js") == []


def _adversarial(kind: str, size: int) -> str:
    rng = random.Random(kind)
    chunk = {
        "a": "a",
        "A": "A",
        "=": "=",
        "key": 'key="',
        "secret": 'apiKey:"a1',
        "b64": "".join(rng.choice(string.ascii_letters + string.digits + "+/") for _ in range(4096)),
        "begin": "-----BEGIN RSA PRIVATE KEY-----\\nMIIE",
        "eyJ": "eyJhbGciOi.",
        "url": "https://u:p",
        "ghp": "ghp_aB3",
        "AKIA": "AKIA2345",
        "digits": "1234567890:AA",
        "bearer": "Bearer abcdefghij",
        "quote": '"',
        "pem-ish": "-----BEGIN PRIVATE KEY-----\\n" + "QUJD" * 9,
    }[kind]
    return (chunk * (size // len(chunk) + 1))[:size]


@pytest.mark.parametrize(
    "kind",
    [
        "a",
        "A",
        "=",
        "key",
        "secret",
        "b64",
        "begin",
        "eyJ",
        "url",
        "ghp",
        "AKIA",
        "digits",
        "bearer",
        "quote",
        "pem-ish",
    ],
)
def test_linear_time_on_adversarial_single_line(kind):
    small, big = _adversarial(kind, 1_000_000), _adversarial(kind, 10_000_000)

    def timed(text: str) -> float:
        start = time.thread_time()
        scan_text(text, "adv.js")
        return time.thread_time() - start

    timed(small)  # warm-up: lazily built DFA states (times are CPU time: other processes do not count)
    # Linear with slack; the constant covers 10 MB no longer fitting in CPU
    # caches, which for runs of a few milliseconds outweighs everything else.
    # Quadratic behaviour would be ~100x, far outside. A busy machine can
    # spoil one measurement, never three in a row.
    attempts = []
    for _ in range(3):
        t1 = min(timed(small) for _ in range(4))
        t10 = min(timed(big) for _ in range(2))
        attempts.append((round(t1, 4), round(t10, 4)))
        if t10 <= 15 * t1 + 0.05:
            return
    pytest.fail(f"{kind}: not linear, (1 MB s, 10 MB s) = {attempts}")


def test_linear_time_with_many_findings():
    rng = random.Random(5)
    unit = "".join(f'"{github_like(rng, "ghp_")}",' for _ in range(50))
    small, big = unit * 40, unit * 400  # 2,000 and 20,000 findings

    def timed(text: str) -> tuple[float, int]:
        start = time.thread_time()
        n = len(scan_text(text, "many.js"))
        return time.thread_time() - start, n

    timed(small)
    for _ in range(3):  # see above: tolerate one noisy measurement
        (t1, n1), (t10, n10) = timed(small), timed(big)
        assert (n1, n10) == (2000, 20000)
        if t10 <= 15 * t1:
            return
    pytest.fail(f"not linear: {t1:.3f}s for 2,000 findings, {t10:.3f}s for 20,000")
