"""Fake passive APIs (SecurityTrails, VirusTotal, Shodan, Censys, Chaos) on one
loopback port, in the request and answer shapes of the real ones, so the
passive sources of scanners/passive.py are tested offline.

Each provider lives under its own path prefix (`urls()` gives the base URL
to configure for each). For any domain asked about, a provider answers the
names planted for it (`PLANTED`: a few every provider knows, one or more
only it knows) under that domain, mixed with names a scan must drop: below
`internal.<domain>` (a sub-zone a test scope excludes), under other domains
(`www.evil.example`, `<domain>.evil.example`) and names no host can have.

Keys (`KEYS`, per provider): "valid" always works, "invalid" is refused
(401, or SecurityTrails' 403), "limited" works `limit` times and then hits
its quota (429; Chaos answers 403 with a quota message, VirusTotal a 429
with `QuotaExceededError`). VirusTotal pages by 40 names with a `meta.cursor`
and a `links.next` that points at a host that is no loopback (a client must
read its cursor, never fetch it); Censys pages by `hits_per_page` hits.
`hostile[provider]` turns its answers bad: "huge" (more bytes than a client
should read), "malformed" (cut JSON), "binary", "deep" (nesting that breaks
a recursive parser), "shape" (JSON of another shape).

`requests` records every request as (provider, domain, key) with the key
as received, so a test can check which keys were used and that nothing went
elsewhere; the server binds 127.0.0.1 and never connects anywhere.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote

from .web_server import Request, Response, ThreadedServer

PROVIDERS = ("securitytrails", "virustotal", "shodan", "censys", "chaos")
COMMON = ("www", "api", "mail")
PLANTED: dict[str, tuple[str, ...]] = {
    "securitytrails": (*COMMON, "st-history"),
    "virustotal": (*COMMON, "vt-only", *(f"vt-page-{i:02d}" for i in range(1, 81))),  # three pages
    "shodan": (*COMMON, "shodan-scan", "edge.shodan-zone"),
    "censys": (*COMMON, "censys-cert"),
    "chaos": (*COMMON, "chaos-bounty"),
}
EXCLUDED_LABELS = ("db.internal", "vpn.internal")  # below internal.<domain>
OUTSIDE = ("www.evil.example", "{domain}.evil.example", "evil.example")  # full-name APIs only
BAD_LABELS = ("bad_name!", "-lead", "x" * 70, "ünicode")


def _key(provider: str, kind: str) -> str:
    digest = hashlib.sha256(f"lab-passive:{provider}:{kind}".encode()).hexdigest()
    if provider == "censys":
        return f"{digest[:8]}-{digest[8:12]}:{digest[12:44]}"  # API_ID:SECRET
    return digest[:32]


KEYS: dict[str, dict[str, str]] = {p: {k: _key(p, k) for k in ("valid", "invalid", "limited")} for p in PROVIDERS}


@dataclass(frozen=True)
class Seen:
    provider: str
    domain: str
    key: str  # as received ("" when none was sent)
    query: str


def _json(status: int, doc: object) -> Response:
    return Response(status, {"Content-Type": "application/json"}, json.dumps(doc).encode())


class PassiveFakes:
    """The five fake APIs on one loopback port, in a thread of their own
    (usable from sync and async tests alike); a context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, limit: int = 1, hits_per_page: int = 2):
        self.host = host
        self.limit = limit
        self.hits_per_page = hits_per_page
        self.hostile: dict[str, str] = {}
        self.requests: list[Seen] = []
        self.used: Counter[tuple[str, str]] = Counter()  # (provider, key) -> requests
        self._server = ThreadedServer(self.handle, host, port, "passive-fakes")
        self.port = self._server.port

    # -- lifecycle
    def urls(self) -> dict[str, str]:
        return {p: f"http://{self.host}:{self.port}/{p}" for p in PROVIDERS}

    def __enter__(self) -> PassiveFakes:
        self._server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.__exit__(*exc)

    # -- answers
    def names(self, provider: str, domain: str) -> set[str]:
        """The in-scope names `provider` knows under `domain` (outside the excluded sub-zone)."""
        return {f"{label}.{domain}" for label in PLANTED[provider]}

    def _labels(self, provider: str) -> list[str]:
        return [*PLANTED[provider], *EXCLUDED_LABELS, *BAD_LABELS]

    def _full(self, provider: str, domain: str) -> list[str]:
        return [f"{label}.{domain}" for label in self._labels(provider)] + [o.format(domain=domain) for o in OUTSIDE]

    def _auth(self, provider: str, req: Request, params: dict[str, str]) -> str:
        if provider == "securitytrails":
            return req.headers.get("apikey", "")
        if provider == "virustotal":
            return req.headers.get("x-apikey", "")
        if provider == "shodan":
            return params.get("key", "")
        if provider == "chaos":
            return req.headers.get("authorization", "")
        auth = req.headers.get("authorization", "")
        if auth.startswith("Basic "):
            try:
                return base64.b64decode(auth[6:]).decode()
            except ValueError:
                return ""
        return ""

    def _refused(self, provider: str, key: str) -> Response | None:
        keys = KEYS[provider]
        self.used[provider, key] += 1
        if key == keys["valid"] or (key == keys["limited"] and self.used[provider, key] <= self.limit):
            return None
        if key == keys["limited"]:
            if provider == "virustotal":
                error = {"code": "QuotaExceededError", "message": "Quota exceeded"}
                return _json(429, {"error": error})
            if provider == "chaos":
                return _json(403, {"error": "monthly quota exceeded for this key"})
            return _json(429, {"message": "You've exceeded the usage limits for your account."})
        if provider == "securitytrails":
            return _json(403, {"message": "Invalid authentication credentials"})
        if provider == "virustotal":
            return _json(401, {"error": {"code": "WrongCredentialsError", "message": "Wrong API key"}})
        return _json(401, {"error": "Invalid API key"})

    def _hostile(self, mode: str) -> Response:
        if mode == "huge":
            body = b'{"subdomains": ["' + b"a" * 3_000_000 + b'"]}'
        elif mode == "malformed":
            body = b'{"subdomains": ["www", "api", '
        elif mode == "binary":
            body = bytes(range(256)) * 64
        elif mode == "deep":
            body = b"[" * 200_000 + b"]" * 200_000
        else:  # "shape"
            body = b'{"unexpected": true, "items": 42}'
        return Response(200, {"Content-Type": "application/json"}, body)

    def handle(self, req: Request) -> Response:
        params = {k: v[-1] for k, v in parse_qs(req.query).items()}
        parts = [unquote(p) for p in req.path.strip("/").split("/")]
        provider = parts[0] if parts else ""
        route = {
            "securitytrails": (["v1", "domain", "*", "subdomains"], 3),
            "virustotal": (["api", "v3", "domains", "*", "subdomains"], 4),
            "shodan": (["dns", "domain", "*"], 3),
            "censys": (["v2", "certificates", "search"], 0),  # its base URL stands for .../api
            "chaos": (["dns", "*", "subdomains"], 2),
        }.get(provider)
        if route is None:
            return _json(404, {"error": "not found"})
        shape, at = route
        rest = parts[1:]
        if len(rest) != len(shape) or any(s not in ("*", r) for s, r in zip(shape, rest, strict=True)):
            return _json(404, {"error": "not found"})
        domain = (params.get("q", "") if provider == "censys" else rest[at - 1]).lower()
        key = self._auth(provider, req, params)
        self.requests.append(Seen(provider, domain, key, req.query))
        refused = self._refused(provider, key)
        if refused is not None:
            return refused
        if provider in self.hostile:
            return self._hostile(self.hostile[provider])
        if provider in ("securitytrails", "chaos"):
            labels = self._labels(provider)
            if provider == "securitytrails":
                return _json(200, {"endpoint": req.path, "meta": {"limit_reached": False}, "subdomains": labels})
            return _json(200, {"domain": domain, "subdomains": labels, "count": len(labels)})
        if provider == "shodan":
            labels = self._labels(provider)
            data = [{"subdomain": label, "type": "A", "value": "127.0.0.1"} for label in labels[:3]]
            return _json(200, {"domain": domain, "tags": [], "data": data, "subdomains": labels, "more": False})
        names = self._full(provider, domain)
        start = int(params.get("cursor", "0") or 0) if params.get("cursor", "0").isdigit() else 0
        if provider == "virustotal":
            size = min(40, int(params.get("limit", "10") or 10))
            page = names[start : start + size]
            doc: dict[str, object] = {"data": [{"id": n, "type": "domain"} for n in page]}
            if start + size < len(names):
                following = str(start + size)
                doc["meta"] = {"cursor": following, "count": len(names)}
                doc["links"] = {"next": f"https://evil.example/api/v3/domains/{domain}/subdomains?cursor={following}"}
            return _json(200, doc)
        # censys: hits of a few names each, `hits_per_page` a page
        hits = [{"names": names[i : i + 3], "fingerprint_sha256": f"{i:064x}"} for i in range(0, len(names), 3)]
        page_hits = hits[start : start + self.hits_per_page]
        more = start + self.hits_per_page < len(hits)
        links = {"next": str(start + self.hits_per_page) if more else "", "prev": ""}
        result = {"total": len(hits), "hits": page_hits, "links": links}
        return _json(200, {"code": 200, "status": "OK", "result": result})
