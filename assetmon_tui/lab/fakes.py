"""Fake credentials in the exact shapes real secret scanners look for.

Every value is drawn from a seeded `random.Random`, so nothing secret-looking is
written literally in this repository (keeps push-protection quiet) and the lab
serves the same values on every run. None of them is valid anywhere. We avoid
AWS's documented example key (`AKIAIOSFODNN7EXAMPLE`): scanners allow-list it.
"""

from __future__ import annotations

import random
import string
import zlib

BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_BASE32 = string.ascii_uppercase + "234567"
_B64 = string.ascii_letters + string.digits + "+/"


def _pick(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def base62(n: int) -> str:
    out = ""
    while n:
        n, r = divmod(n, 62)
        out = BASE62[r] + out
    return out or "0"


def github_checksum(body: str) -> str:
    """GitHub token checksum: CRC32 of the 30 random characters, base62,
    left-padded with '0' to 6 characters (github.blog, 2021-04-05)."""
    return base62(zlib.crc32(body.encode("ascii"))).rjust(6, "0")


def github_token(rng: random.Random, prefix: str = "ghp_") -> str:
    body = _pick(rng, BASE62, 30)
    return prefix + body + github_checksum(body)


def github_token_is_valid(token: str) -> bool:
    body, check = token[4:-6], token[-6:]
    return len(token) == 40 and github_checksum(body) == check


def aws_key_pair(rng: random.Random) -> tuple[str, str]:
    return "AKIA" + _pick(rng, _BASE32, 16), _pick(rng, _B64, 40)


def stripe_live_key(rng: random.Random) -> str:
    return "sk_live_" + _pick(rng, string.ascii_letters + string.digits, 24)


def slack_bot_token(rng: random.Random) -> str:
    team = str(rng.randrange(10**10, 10**11))
    bot = str(rng.randrange(10**12, 10**13))
    return f"xoxb-{team}-{bot}-" + _pick(rng, string.ascii_letters + string.digits, 24)


def google_api_key(rng: random.Random) -> str:
    return "AIza" + _pick(rng, string.ascii_letters + string.digits + "-_", 35)


def sendgrid_key(rng: random.Random) -> str:
    alnum = string.ascii_letters + string.digits
    return "SG." + _pick(rng, alnum + "-_", 22) + "." + _pick(rng, alnum + "-_", 43)


def hexdigits(rng: random.Random, n: int) -> str:
    return _pick(rng, "0123456789abcdef", n)
