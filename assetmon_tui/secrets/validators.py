"""Checks that turn a regex hit into a finding, or drop it.

Every function here looks at one candidate value (plus, for a few, a bounded
window of the surrounding bytes) and never at the whole file, so the engine
stays linear in the input size.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections import Counter
from urllib.parse import unquote

import re2

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

# Published documentation values: never real, always noise.
DOC_EXAMPLES = frozenset(
    {
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "AKIAI44QH8DHBEXAMPLE",
        "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
    }
)

# Lower-cased substrings that mark a value as a placeholder or a sample.
_PLACEHOLDER_PARTS = (
    "xxxx",
    "****",
    "....",
    "<",
    ">",
    "${",
    "{{",
    "%s",
    "your_",
    "your-",
    "yourapi",
    "example",
    "sample",
    "dummy",
    "placeholder",
    "changeme",
    "change_me",
    "redacted",
    "insert",
    "replace",
    "fake",
    "notreal",
    "not_real",
    "secret_here",
    "token_here",
    "key_here",
    "here_",
    "lorem",
    "0000000",
    "1234567",
    "abcdefg",
    "qwerty",
)
_PLACEHOLDER_PARTS_LONG = ("xxxxx", "<", "${", "{{", "example", "placeholder", "your_", "redacted")
# Test-mode keys are not production secrets (Stripe and friends).
_TEST_PREFIXES = ("sk_test_", "rk_test_", "pk_test_", "whsec_test", "flwseck_test")


def entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    if not value:
        return 0.0
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values())


def has_run(value: str, n: int) -> bool:
    """True when some character repeats n times in a row (C-speed searches)."""
    return any(ch * n in value for ch in set(value))


def is_placeholder(value: str) -> bool:
    """True for documentation values, templates, masks and test-mode keys."""
    if value in DOC_EXAMPLES or value.endswith("EXAMPLE") or value.endswith("EXAMPLEKEY"):
        return True
    low = value.lower()
    if low.startswith(_TEST_PREFIXES):
        return True
    # Short words turn up by chance in long random values: check fewer there.
    parts = _PLACEHOLDER_PARTS if len(value) <= 64 else _PLACEHOLDER_PARTS_LONG
    if any(part in low for part in parts):
        return True
    if has_run(value, 6):
        return True
    distinct = len(set(value))
    return distinct <= 3 or (len(value) >= 16 and distinct < 6)


def char_classes(value: str) -> int:
    return sum(
        (
            any(c.islower() for c in value),
            any(c.isupper() for c in value),
            any(c.isdigit() for c in value),
        )
    )


def b62_checksum(payload: str) -> str:
    """GitHub/npm token checksum: CRC32 of the random part, base62, 6 chars."""
    n = binascii.crc32(payload.encode("ascii"))
    out = ""
    while n:
        n, r = divmod(n, 62)
        out = BASE62[r] + out
    return out.rjust(6, "0")


def crc32_token(value: str, prefix_len: int = 4) -> bool:
    """`ghp_`/`gho_`/…/`npm_` tokens: 30 random chars then their checksum."""
    body = value[prefix_len:]
    return b62_checksum(body[:-6]) == body[-6:]


def b64decode_loose(value: str) -> bytes | None:
    """Decode base64 or base64url with or without padding; None if invalid."""
    v = value.strip().replace("-", "+").replace("_", "/")
    v += "=" * (-len(v) % 4)
    try:
        return base64.b64decode(v, validate=True)
    except (binascii.Error, ValueError):
        return None


def json_object(value: str) -> dict[str, object] | None:
    raw = b64decode_loose(value)
    if raw is None:
        return None
    try:
        obj = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def jwt(value: str) -> bool:
    """Header must decode to JSON with "alg"; payload must be a JSON object."""
    parts = value.split(".")
    if len(parts) != 3 or len(value) > 16_384:
        return False
    header = json_object(parts[0])
    return bool(header and "alg" in header and json_object(parts[1]) is not None)


def pypi_macaroon(value: str) -> bool:
    """`pypi-` + base64url of a v2 binary macaroon (location field first)."""
    raw = b64decode_loose(value[len("pypi-") :])
    return bool(raw and raw[:2] == b"\x02\x01" and b"pypi.org" in raw[:40])


def discord_bot(value: str) -> bool:
    """First segment is the bot's user id (a snowflake) in base64."""
    raw = b64decode_loose(value.split(".", 1)[0])
    return bool(raw and raw.isdigit() and 15 <= len(raw) <= 21)


_PASSWORD_WORDS = frozenset(
    [
        "password",
        "pass",
        "passwd",
        "pwd",
        "pw",
        "secret",
        "token",
        "user",
        "username",
        "login",
        "changeme",
        "foo",
        "bar",
        "baz",
        "test",
        "demo",
        "guest",
        "anonymous",
    ]
)


def url_password(value: str) -> bool:
    """The password part of scheme://user:password@host, when not a stand-in."""
    return value.lower().strip("*") not in _PASSWORD_WORDS and "$" not in value


def basic_auth(value: str) -> bool:
    raw = b64decode_loose(value)
    if not raw:
        return False
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    user, sep, password = text.partition(":")
    return bool(sep and user and password and text.isprintable() and not is_placeholder(password))


def azure_account_key(value: str) -> bool:
    raw = b64decode_loose(value)
    return raw is not None and len(raw) == 64


def azure_sas_sig(value: str) -> bool:
    raw = b64decode_loose(unquote(value))
    return raw is not None and len(raw) == 32


def mapbox_secret(value: str) -> bool:
    return json_object(value.split(".")[1]) is not None


def twitter_bearer(value: str) -> bool:
    tail = unquote(value).lstrip("A")
    return 40 <= len(tail) <= 120 and entropy(tail) >= 4.0


_PEM_HEADER = re2.compile(rb"[A-Za-z][A-Za-z\-]{1,30}: [^\n\\]{1,200}")
_B64_BYTES = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
# besides base64: line breaks (real or escaped), and the quotes and `+` of a
# key split over concatenated string literals
_PEM_ALLOWED = _B64_BYTES + b" \t\r\n\\\"'`"


def pem_body(data: bytes, start: int, limit: int) -> int | None:
    """Where the body of a PEM block whose BEGIN line ends at `start` stops
    (at the next "-----"), if it is a plausible key: headers aside, only
    base64 and at least 64 characters of it. Looks only at bytes up to the
    next "-----", so consecutive blocks never rescan each other."""
    end = data.find(b"-----", start, limit)
    if end < 0:
        return None
    body = data[start:end]
    if b": " in body:  # Proc-Type/DEK-Info, PGP Version/Comment lines
        body = _PEM_HEADER.sub(b"", body)
    body = body.replace(b"\\n", b"").replace(b"\\r", b"")
    if body.translate(None, _PEM_ALLOWED):
        return None
    b64 = body.translate(None, b" \t\r\n\\\"'`")
    return end if len(b64) >= 64 and entropy(b64[:4096].decode()) >= 4.5 else None
