"""Fake provider endpoints for offline tests of secret verification
(secrets/verify.py): one loopback HTTP server answering every provider's
check path, with a behaviour per secret: live (the provider's success),
revoked (401, or Slack's `invalid_auth`, or STS's InvalidClientTokenId),
flaky (503). A secret it does not know is refused like a revoked one.
Every request is recorded (method, path, headers, body) so tests can say
which secret went where.

AWS: the fake checks the SigV4 request itself (the Authorization header's
shape, the signed headers, and the signature recomputed from the secret
access key it was told), so a badly signed request is SignatureDoesNotMatch.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_SIGV4 = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[A-Z0-9]{20})/(?P<day>\d{8})/(?P<region>[a-z0-9-]+)/(?P<service>[a-z]+)"
    r"/aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<sig>[0-9a-f]{64})$"
)
_TWILIO_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>AC[0-9a-f]{32})\.json$")


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeProviders:
    """Use as `with FakeProviders() as fake:`; `fake.url` is every provider's base URL."""

    live: set[str] = field(default_factory=set)
    revoked: set[str] = field(default_factory=set)
    flaky: set[str] = field(default_factory=set)
    aws_secrets: dict[str, str] = field(default_factory=dict)  # access key id -> secret access key
    requests: list[Seen] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}"

    def revoke(self, secret: str) -> None:
        with self._lock:
            self.live.discard(secret)
            self.flaky.discard(secret)
            self.revoked.add(secret)

    def behaviour(self, secret: str) -> str:
        with self._lock:
            if secret in self.flaky:
                return "flaky"
            return "live" if secret in self.live else "revoked"

    def seen_text(self) -> str:
        """Everything received, as one text (to look for a secret in)."""
        with self._lock:
            return "\n".join(
                f"{r.method} {r.path} {json.dumps(r.headers)} {r.body.decode('latin-1')}" for r in self.requests
            )

    def __enter__(self) -> FakeProviders:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                seen = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with fake._lock:
                    fake.requests.append(seen)
                code, content_type, payload = fake.answer(seen)
                data = payload.encode()
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # -- the providers ---------------------------------------------------------------------

    def answer(self, r: Seen) -> tuple[int, str, str]:
        auth = r.headers.get("authorization", "")
        path = r.path.split("?", 1)[0]
        if r.method == "GET" and path == "/user" and auth.startswith("token "):
            return self._plain(auth[6:], {"login": "octocat"})
        if r.method == "POST" and path == "/api/auth.test" and auth.startswith("Bearer "):
            how = self.behaviour(auth[7:])
            if how == "flaky":
                return 503, "text/plain", "unavailable"
            ok = how == "live"
            return 200, "application/json", json.dumps({"ok": True} if ok else {"ok": False, "error": "invalid_auth"})
        if r.method == "GET" and path in ("/v3/scopes", "/v1/models") and auth.startswith("Bearer "):
            return self._plain(auth[7:], {"scopes": []} if path == "/v3/scopes" else {"data": []})
        user, password = _basic(auth)
        if r.method == "GET" and path == "/v1/balance" and user is not None and password == "":
            return self._plain(user, {"object": "balance"})
        if r.method == "GET" and path == "/v3/domains" and user == "api" and password:
            return self._plain(password, {"items": []})
        twilio = _TWILIO_PATH.match(path)
        if r.method == "GET" and twilio and user == twilio["sid"] and password:
            return self._plain(password, {"sid": twilio["sid"]})
        if r.method == "POST" and path == "/" and auth.startswith("AWS4-HMAC-SHA256"):
            return self._sts(r)
        return 404, "text/plain", "no such check"

    def _plain(self, secret: str, ok: dict[str, Any]) -> tuple[int, str, str]:
        how = self.behaviour(secret)
        if how == "flaky":
            return 503, "text/plain", "unavailable"
        if how == "live":
            return 200, "application/json", json.dumps(ok)
        return 401, "application/json", json.dumps({"message": "Bad credentials"})

    def _sts(self, r: Seen) -> tuple[int, str, str]:
        m = _SIGV4.match(r.headers.get("authorization", ""))
        signed = m["signed"].split(";") if m else []
        if (
            m is None
            or r.body != b"Action=GetCallerIdentity&Version=2011-06-15"
            or not {"host", "x-amz-date"} <= set(signed)
            or signed != sorted(signed)
            or any(h not in r.headers for h in signed)
            or not r.headers.get("x-amz-date", "").startswith(m["day"])
            or (m["region"], m["service"]) != ("us-east-1", "sts")
        ):
            return 400, "text/xml", _sts_error("IncompleteSignature")
        key_id = m["key"]
        how = self.behaviour(key_id)
        if how == "flaky":
            return 503, "text/plain", "unavailable"
        if how != "live":
            return 403, "text/xml", _sts_error("InvalidClientTokenId")
        secret = self.aws_secrets.get(key_id, "")
        if not hmac.compare_digest(_signature(r, m, secret), m["sig"]):
            return 403, "text/xml", _sts_error("SignatureDoesNotMatch")
        return (
            200,
            "text/xml",
            "<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/lab</Arn>"
            "</GetCallerIdentityResult></GetCallerIdentityResponse>",
        )


def _basic(auth: str) -> tuple[str | None, str | None]:
    if not auth.startswith("Basic "):
        return None, None
    try:
        user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
    except ValueError:
        return None, None
    return user, password


def _sts_error(code: str) -> str:
    return f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code></Error></ErrorResponse>"


def _signature(r: Seen, m: re.Match[str], secret: str) -> str:
    """SigV4 recomputed from what was received (written apart from secrets/verify.py on purpose)."""
    signed = m["signed"].split(";")
    canonical_headers = "".join(f"{h}:{' '.join(r.headers[h].split())}\n" for h in signed)
    path, _, query = r.path.partition("?")
    canonical = "\n".join([r.method, path, query, canonical_headers, m["signed"], hashlib.sha256(r.body).hexdigest()])
    scope = f"{m['day']}/{m['region']}/{m['service']}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", r.headers["x-amz-date"], scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = ("AWS4" + secret).encode()
    for part in (m["day"], m["region"], m["service"], "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
