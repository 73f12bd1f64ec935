"""Optional live verification of secrets: one harmless read-only call per
provider proves a key works (verified), is refused (invalid) or cannot be
told (unknown: network error, timeout, 429, 5xx, anything unexpected).

A secret is only ever sent to its own provider's configured base URL
(`verify_<provider>_url`, default the real provider's https URL): the
request is built from that URL alone, redirects are not followed, the
environment's proxies are not used, and a request whose origin differs from
the base URL's is refused before it is sent. Reasons are fixed short texts
and status codes: never the secret, never what the provider sent back.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

VERIFIED, INVALID, UNKNOWN = "verified", "invalid", "unknown"
STATES = ("", VERIFIED, INVALID, UNKNOWN)
TIMEOUT = 5.0  # seconds per check (connect 3)
CONCURRENCY = 8  # checks in flight at most
_RANK = {VERIFIED: 3, INVALID: 2, UNKNOWN: 1}


@dataclass(frozen=True)
class Result:
    state: str  # verified | invalid | unknown
    reason: str  # short, never the secret


@dataclass(frozen=True)
class Candidate:
    """One check: a secret (and the part it needs, found in the same file)."""

    rule_id: str
    secret: str
    partner: str = ""  # Twilio: the account SID; AWS: the secret access key (secret is the key id)
    missing: str = ""  # why it cannot be checked (the partner is not in the file): unknown at once

    @property
    def key(self) -> tuple[str, str, str]:
        return self.rule_id, self.secret, self.partner


Build = Callable[[str, Candidate, datetime], httpx.Request]
Judge = Callable[[httpx.Response], Result]


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _url(base: str, path: str) -> str:
    return base.rstrip("/") + path


def _judge(response: httpx.Response) -> Result:
    """The usual answers: 2xx verified, 401/403 invalid, anything else unknown."""
    code = response.status_code
    if 200 <= code < 300:
        return Result(VERIFIED, f"HTTP {code}: the provider accepted the key")
    if code in (401, 403):
        return Result(INVALID, f"HTTP {code}: the provider refused the key")
    if 300 <= code < 400:
        return Result(UNKNOWN, f"HTTP {code}: a redirect (not followed)")
    if code == 429:
        return Result(UNKNOWN, "HTTP 429: rate limited")
    return Result(UNKNOWN, f"HTTP {code}: no answer about the key")


def _judge_stripe(response: httpx.Response) -> Result:
    if response.status_code == 403:  # a restricted key without balance access: it authenticated
        return Result(VERIFIED, "HTTP 403: the key authenticated (no balance permission)")
    return _judge(response)


_SLACK_INVALID = frozenset({"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"})


def _judge_slack(response: httpx.Response) -> Result:
    """auth.test answers 200 either way: `ok` says which."""
    if response.status_code != 200:
        return _judge(response)
    try:
        body: Any = response.json()
    except ValueError:
        return Result(UNKNOWN, "HTTP 200: not JSON")
    if not isinstance(body, dict):
        return Result(UNKNOWN, "HTTP 200: unexpected answer")
    if body.get("ok") is True:
        return Result(VERIFIED, "auth.test ok")
    error = str(body.get("error") or "")
    if error in _SLACK_INVALID:
        return Result(INVALID, f"auth.test: {error}")
    return Result(UNKNOWN, "auth.test: not ok, no answer about the key")


def _judge_aws(response: httpx.Response) -> Result:
    code = response.status_code
    if code == 200 and b"GetCallerIdentityResult" in response.content:
        return Result(VERIFIED, "GetCallerIdentity ok")
    if code in (400, 403):
        for error in (b"InvalidClientTokenId", b"SignatureDoesNotMatch", b"AccessDenied", b"ExpiredToken"):
            if error in response.content:
                return Result(INVALID, f"HTTP {code}: {error.decode()}")
        return Result(UNKNOWN, f"HTTP {code}: no answer about the key")
    return _judge(response) if code != 200 else Result(UNKNOWN, "HTTP 200: unexpected answer")


def _github(base: str, c: Candidate, now: datetime) -> httpx.Request:
    headers = {"Authorization": f"token {c.secret}", "Accept": "application/vnd.github+json"}
    return httpx.Request("GET", _url(base, "/user"), headers=headers)


def _slack(base: str, c: Candidate, now: datetime) -> httpx.Request:
    return httpx.Request("POST", _url(base, "/api/auth.test"), headers={"Authorization": f"Bearer {c.secret}"})


def _stripe(base: str, c: Candidate, now: datetime) -> httpx.Request:
    return httpx.Request("GET", _url(base, "/v1/balance"), headers={"Authorization": _basic(c.secret, "")})


def _sendgrid(base: str, c: Candidate, now: datetime) -> httpx.Request:
    return httpx.Request("GET", _url(base, "/v3/scopes"), headers={"Authorization": f"Bearer {c.secret}"})


def _mailgun(base: str, c: Candidate, now: datetime) -> httpx.Request:
    return httpx.Request("GET", _url(base, "/v3/domains"), headers={"Authorization": _basic("api", c.secret)})


def _twilio(base: str, c: Candidate, now: datetime) -> httpx.Request:
    sid = c.partner
    path = f"/2010-04-01/Accounts/{sid}.json"
    return httpx.Request("GET", _url(base, path), headers={"Authorization": _basic(sid, c.secret)})


def _openai(base: str, c: Candidate, now: datetime) -> httpx.Request:
    return httpx.Request("GET", _url(base, "/v1/models"), headers={"Authorization": f"Bearer {c.secret}"})


# -- AWS Signature Version 4 -------------------------------------------------------------

STS_BODY = "Action=GetCallerIdentity&Version=2011-06-15"
STS_REGION, STS_SERVICE = "us-east-1", "sts"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sigv4_headers(
    method: str,
    url: str,
    body: str,
    key_id: str,
    secret: str,
    now: datetime,
    region: str = STS_REGION,
    service: str = STS_SERVICE,
) -> dict[str, str]:
    """The headers of a SigV4-signed request (content type, host, date, body hash, Authorization)."""
    parts = urlsplit(url)
    host = parts.netloc.lower()
    amz_date = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    payload = hashlib.sha256(body.encode()).hexdigest()
    headers = {
        "content-type": "application/x-www-form-urlencoded; charset=utf-8",
        "host": host,
        "x-amz-content-sha256": payload,
        "x-amz-date": amz_date,
    }
    signed = ";".join(sorted(headers))
    canonical = "\n".join(
        [
            method,
            parts.path or "/",
            parts.query,  # none here (the STS call sends its parameters in the body)
            "".join(f"{k}:{headers[k].strip()}\n" for k in sorted(headers)),
            signed,
            payload,
        ]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{secret}".encode(), day), region), service), "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={key_id}/{scope}, SignedHeaders={signed}, Signature={signature}"
    )
    return headers


def _aws(base: str, c: Candidate, now: datetime) -> httpx.Request:
    url = _url(base, "/")
    headers = sigv4_headers("POST", url, STS_BODY, c.secret, c.partner, now)
    del headers["host"]  # httpx writes the same Host from the URL
    return httpx.Request("POST", url, headers=headers, content=STS_BODY.encode())


@dataclass(frozen=True)
class Provider:
    name: str
    default_url: str
    rules: tuple[str, ...]
    build: Build
    judge: Judge = _judge

    @property
    def setting(self) -> str:
        return f"verify_{self.name}_url"


PROVIDERS: tuple[Provider, ...] = (
    Provider(
        "github",
        "https://api.github.com",
        (
            "github-pat-classic",
            "github-oauth-token",
            "github-user-to-server-token",
            "github-server-to-server-token",
            "github-pat-fine-grained",
        ),
        _github,
    ),
    Provider("slack", "https://slack.com", ("slack-bot-token", "slack-user-token"), _slack, _judge_slack),
    Provider(
        "stripe", "https://api.stripe.com", ("stripe-secret-key", "stripe-restricted-key"), _stripe, _judge_stripe
    ),
    Provider("sendgrid", "https://api.sendgrid.com", ("sendgrid-api-key",), _sendgrid),
    Provider("mailgun", "https://api.mailgun.net", ("mailgun-api-key",), _mailgun),
    Provider("twilio", "https://api.twilio.com", ("twilio-auth-token",), _twilio),
    Provider("openai", "https://api.openai.com", ("openai-api-key",), _openai),
    # the key id is the finding checked; the secret access key found with it is signed with
    Provider("aws", "https://sts.amazonaws.com", ("aws-access-key-id", "aws-secret-access-key"), _aws, _judge_aws),
)
BY_RULE: dict[str, Provider] = {rule: p for p in PROVIDERS for rule in p.rules}
BY_NAME: dict[str, Provider] = {p.name: p for p in PROVIDERS}


def verifiable(rule_id: str) -> bool:
    return rule_id in BY_RULE


def base_urls(settings: Any) -> dict[str, str]:
    """provider -> base URL from a settings object (`verify_<name>_url`; empty: the default)."""
    return {p.name: str(getattr(settings, p.setting, "") or p.default_url) for p in PROVIDERS}


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not an http(s) URL")
    return scheme, parts.hostname.lower(), parts.port or (443 if scheme == "https" else 80)


async def check(
    client: httpx.AsyncClient, candidate: Candidate, urls: dict[str, str], now: datetime | None = None
) -> Result:
    """One candidate checked against its provider's base URL (and nowhere else)."""
    provider = BY_RULE.get(candidate.rule_id)
    if provider is None:
        return Result(UNKNOWN, "no check for this rule")
    if candidate.missing:
        return Result(UNKNOWN, candidate.missing)
    if candidate.rule_id == "aws-access-key-id" and not candidate.secret.startswith("AKIA"):
        return Result(UNKNOWN, "a temporary or non-user key id: needs a session token")
    base = urls.get(provider.name) or provider.default_url
    try:
        origin = _origin(base)
        request = provider.build(base, candidate, now or datetime.now(UTC))
        if _origin(str(request.url)) != origin:  # never: the builders only append a path
            return Result(UNKNOWN, f"refused: the request would leave {provider.name}'s base URL")
    except ValueError:
        return Result(UNKNOWN, f"bad {provider.setting}: not an http(s) URL")
    try:
        response = await client.send(request, follow_redirects=False)
    except httpx.TimeoutException:
        return Result(UNKNOWN, f"{provider.name}: timed out")
    except httpx.HTTPError as exc:
        return Result(UNKNOWN, f"{provider.name}: {type(exc).__name__}")
    return provider.judge(response)


def client(timeout: float = TIMEOUT) -> httpx.AsyncClient:
    """No proxies from the environment (a proxy is another host), no redirects, short timeouts."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0)),
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": "assetmon-verify"},
    )


async def verify_all(
    candidates: Iterable[Candidate],
    urls: dict[str, str],
    *,
    timeout: float = TIMEOUT,
    concurrency: int = CONCURRENCY,
) -> dict[tuple[str, str, str], Result]:
    """Each distinct candidate checked once, `concurrency` at a time."""
    unique = {c.key: c for c in candidates}
    limit = asyncio.Semaphore(max(1, concurrency))
    async with client(timeout) as http:

        async def one(c: Candidate) -> tuple[tuple[str, str, str], Result]:
            async with limit:
                return c.key, await check(http, c, urls)

        return dict(await asyncio.gather(*(one(c) for c in unique.values())))


def best(results: Iterable[Result]) -> Result:
    """Of several checks of one finding (an AWS secret paired with two key ids): the most telling."""
    return max(results, key=lambda r: _RANK.get(r.state, 0), default=Result(UNKNOWN, "not checked"))


# -- pairing in one file -----------------------------------------------------------------

_TWILIO_SID = "(?<![0-9A-Za-z])AC[0-9a-f]{32}(?![0-9a-f])"


@dataclass(frozen=True)
class _Sid:
    value: str
    line: int
    column: int


def candidates_of(secrets: Iterable[Any], text: str = "") -> dict[str, list[Candidate]]:
    """Finding fingerprint -> its checks, for the verifiable secrets of one file
    (`secrets`: SecretFinding-like, with rule_id, secret, line, column, fingerprint;
    `text`: the file, for Twilio account SIDs). Pairs are only ever made within the file."""
    found = [s for s in secrets if verifiable(s.rule_id)]
    out: dict[str, list[Candidate]] = {}

    def near(s: Any, others: list[Any]) -> Any:
        return min(others, key=lambda o: (abs(o.line - s.line), abs(o.column - s.column)))

    key_ids = [s for s in found if s.rule_id == "aws-access-key-id"]
    aws_secrets = [s for s in found if s.rule_id == "aws-secret-access-key"]
    sids: list[_Sid] = []
    if any(s.rule_id == "twilio-auth-token" for s in found):
        for m in re.finditer(_TWILIO_SID, text):
            start = text.rfind("\n", 0, m.start())
            sids.append(_Sid(m.group(), text.count("\n", 0, m.start()) + 1, m.start() - start))
    for s in found:
        if s.rule_id == "aws-access-key-id":
            partner = near(s, aws_secrets).secret if aws_secrets else ""
            missing = "" if partner else "no secret access key in the same file"
            out.setdefault(s.fingerprint, []).append(Candidate(s.rule_id, s.secret, partner, missing))
        elif s.rule_id == "aws-secret-access-key":
            if not key_ids:
                out.setdefault(s.fingerprint, []).append(
                    Candidate(s.rule_id, s.secret, missing="no access key id in the same file")
                )
                continue
            key_id = near(s, key_ids)  # checked as the key id's pair: the same request
            out.setdefault(s.fingerprint, []).append(Candidate("aws-access-key-id", key_id.secret, s.secret))
        elif s.rule_id == "twilio-auth-token":
            partner = near(s, sids).value if sids else ""
            missing = "" if partner else "no account SID in the same file"
            out.setdefault(s.fingerprint, []).append(Candidate(s.rule_id, s.secret, partner, missing))
        else:
            out.setdefault(s.fingerprint, []).append(Candidate(s.rule_id, s.secret))
    return out
