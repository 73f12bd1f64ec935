"""HTTP(S) probing of web services with httpx.

Every exchange (redirects included) is bounded by one deadline and the body by
a byte cap, so slow or endless servers cannot stall a scan. We connect to the
address our own DNS stage found while sending the real Host header and SNI,
and follow redirects only on the same host name: a scanned site must never
steer us to some other machine.

Each answer is also enriched: the TLS peer certificate (parsed with
`cryptography`), the favicon's Shodan hash (same host only, capped),
technologies (Wappalyzer-format rules, `fingerprint.py`) and CDN/WAF hints
from response headers.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import functools
import hashlib
import http.cookiejar
import ipaddress
import socket
import ssl
import zlib
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import TypedDict
from urllib.parse import urljoin, urlsplit

import httpx
import mmh3
from cryptography import x509
from cryptography.x509.oid import NameOID
from selectolax.lexbor import LexborHTMLParser

from assetmon_tui.core.sanitize import clean_text

from . import banners, fingerprint
from .host_pace import HostPace
from .pool import bounded


class CertInfo(TypedDict, total=False):
    """The fields kept of a TLS peer certificate; empty when there is none (or it does not parse)."""

    subject_cn: str
    subject: str  # RFC 4514
    issuer: str  # RFC 4514
    issuer_cn: str
    sans: list[str]  # DNS names, then IP addresses
    not_before: str  # ISO, UTC
    not_after: str
    self_signed: bool
    sha256: str  # hex of the DER
    serial: str  # hex


# The web ports are one set, shared with the banner grab (which names the services on them).
HTTP_PORTS, HTTPS_PORTS = banners.HTTP_PORTS, banners.HTTPS_PORTS
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
TITLE_LIMIT, HEADER_LIMIT, URL_LIMIT, MAX_HEADERS = 256, 512, 2048, 64
# Headers that name hosts, kept whole (up to HOSTS_LIMIT) for discovery: a CSP
# lists dozens of hosts and is often far longer than HEADER_LIMIT.
HOST_HEADERS = (
    "content-security-policy",
    "content-security-policy-report-only",
    "access-control-allow-origin",
    "link",
    "location",
    "refresh",
    "report-to",
    "reporting-endpoints",
    "nel",
    "alt-svc",
)
HOSTS_LIMIT = 65_536


@dataclass
class HttpOptions:
    concurrency: int = 50
    timeout: float = 5.0  # whole exchange per target, redirects included
    max_body: int = 1_000_000  # bytes read at most
    max_redirects: int = 5
    user_agent: str = "assetmon/0.1"
    verify_tls: bool = False
    tls_info: bool = True  # parse the peer certificate of https answers
    favicon: bool = False  # fetch the favicon (one more request, same host) and hash it
    max_favicon: int = 200_000  # bytes; a bigger icon is not hashed
    fingerprint: bool = True  # technologies and CDN hints
    per_host: int = 16  # requests to one address at once at most, cut when it pushes back (host_pace.py)
    throttle_retries: int = 3  # a 429/503 is asked again after its pause this many times
    pace: HostPace | None = None  # shared by the probes of one step (None: one per probe() call)


@dataclass
class HttpTarget:
    host: str  # name sent as Host header / SNI
    port: int
    scheme: str  # "http" | "https"
    address: str | None = None  # IP to connect to; None = resolve host normally
    path: str = "/"


@dataclass
class HttpResult:
    url: str  # scheme://host[:port]/path requested (host name, not IP)
    host: str
    port: int
    scheme: str
    status: int | None
    title: str = ""
    server: str = ""
    content_type: str = ""
    content_length: int | None = None  # Content-Length header, else bytes read
    redirects: list[str] = field(default_factory=list)  # Location URLs, in order
    final_url: str = ""  # last URL actually fetched
    response_ms: float | None = None  # until the final response's headers
    error: str = ""  # "" when we got an HTTP answer
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""  # capped; not persisted
    host_headers: str = ""  # the HOST_HEADERS' whole values, one a line; not persisted
    truncated: bool = False  # body cut by max_body or by the deadline
    # subject_cn, issuer, issuer_cn, sans, not_before, not_after (ISO, UTC),
    # self_signed, sha256 (hex of the DER), serial: for answers over TLS
    tls: CertInfo = field(default_factory=CertInfo)
    favicon_hash: int | None = None  # Shodan's: mmh3 of base64.encodebytes(icon)
    favicon_url: str = ""
    tech: list[str] = field(default_factory=list)  # technology names, sorted
    tech_versions: dict[str, str] = field(default_factory=dict)  # name -> version, when seen
    cdn: str = ""  # CDN/WAF seen in headers: "cloudflare", "cloudfront", "fastly", ...

    @property
    def definitive(self) -> bool:
        """A whole answer, or a refused connection. A timeout, a reset, a broken
        handshake (a loaded server does all three) or a redirect chain cut short
        says nothing reliable about the endpoint."""
        return self.error in ("", "refused")


def web_targets(host: str, address: str | None, open_ports: Iterable[int] | dict[int, str] | None) -> list[HttpTarget]:
    """http:80 + https:443 when ports are unknown, else the open web ports.
    `open_ports` may map port -> service name from the banner grab, so a web
    server on an odd port (which answered the grab's HTTP probe) is probed too."""
    if open_ports is None:
        return [HttpTarget(host, 80, "http", address), HttpTarget(host, 443, "https", address)]
    services = open_ports if isinstance(open_ports, dict) else dict.fromkeys(open_ports, "")
    targets = []
    for port, service in sorted(services.items()):
        if port in HTTPS_PORTS or service in ("https", "ssl"):  # TLS on an odd port is most often a web app
            targets.append(HttpTarget(host, port, "https", address))
        elif port in HTTP_PORTS or service == "http":
            targets.append(HttpTarget(host, port, "http", address))
    return targets


def _request_headers(host: str, port: int, scheme: str, options: HttpOptions) -> dict[str, str]:
    """What every request sends: identity encoding, so sizes and bodies are the host's own."""
    return {
        "Host": _authority(host, port, scheme),
        "User-Agent": options.user_agent,
        "Accept": "*/*",
        "Accept-Encoding": "identity",
    }


def _authority(host: str, port: int, scheme: str) -> str:
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    default = (scheme == "http" and port == 80) or (scheme == "https" and port == 443)
    return host if default else f"{host}:{port}"


def _path(path: str) -> str:
    return path if path.startswith("/") else "/" + path


def _reason(exc: BaseException) -> str:
    """Short, stable error text for the UI (refused, timeout, tls, dns...)."""
    if isinstance(exc, (TimeoutError, httpx.TimeoutException)):
        return "timeout"
    seen: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and len(seen) < 8:
        seen.append(cause)
        cause = cause.__cause__ or cause.__context__
    for cause in seen:
        if isinstance(cause, ssl.SSLError):
            return clean_text(f"tls: {cause.reason or cause}", 120)
        if isinstance(cause, ConnectionRefusedError):
            return "refused"
        if isinstance(cause, ConnectionResetError):
            return "reset"
        if isinstance(cause, socket.gaierror):
            return "dns"
    text = str(exc).lower()
    if "refused" in text:
        return "refused"
    if "ssl" in text or "tls" in text or "certificate" in text:
        return clean_text(f"tls: {exc}", 120)
    if isinstance(exc, httpx.RemoteProtocolError):
        return clean_text(f"protocol: {exc}", 120)
    return clean_text(f"{type(exc).__name__}: {exc}".rstrip(": "), 120)


@functools.lru_cache(maxsize=2)
def _tls_context(verify: bool) -> ssl.SSLContext:
    """One context per mode, shared: building one loads the CA store (tens of
    milliseconds of CPU), which once per handshake stalled the event loop."""
    context = ssl.create_default_context()
    if not verify:
        # Inventory, not trust: accept self-signed and legacy servers too.
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with contextlib.suppress(ValueError, ssl.SSLError):
            context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
            context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


def make_client(options: HttpOptions) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        verify=_tls_context(options.verify_tls),
        trust_env=False,  # never route scans through a proxy from the environment
        follow_redirects=False,  # done by hand, same host only
        timeout=httpx.Timeout(options.timeout),
        # No reuse: connections are keyed by IP, but SNI/Host differ per target.
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=0),
        # No cookie jar: one site's cookies must not reach another on the same IP.
        cookies=http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[])),
    )


class _Decoder:
    """gzip/deflate decoding that never inflates past the byte cap (we ask
    for identity, but a hostile server may send a compression bomb anyway)."""

    def __init__(self, encoding: str):
        compressed = encoding.strip().lower() in ("gzip", "x-gzip", "deflate")
        # wbits 32+: accept both gzip and zlib headers.
        self._zlib = zlib.decompressobj(32 + zlib.MAX_WBITS) if compressed else None

    def __call__(self, data: bytes, room: int) -> bytes:
        if self._zlib is None:
            return data[:room]
        try:
            return self._zlib.decompress(data, room)
        except zlib.error:
            self._zlib = None  # not what it claimed: keep the raw bytes
            return data[:room]


async def _read_body(response: httpx.Response, limit: int, deadline: float) -> tuple[bytes, bool]:
    """Read at most `limit` bytes before `deadline`; returns (body, truncated)."""
    decode = _Decoder(response.headers.get("content-encoding", ""))
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout_at(deadline):
            async for raw in response.aiter_raw():
                chunk = decode(raw, limit - size)
                chunks.append(chunk)
                size += len(chunk)
                if size >= limit:
                    return b"".join(chunks), True
    except (TimeoutError, httpx.HTTPError, OSError):  # keep what arrived
        return b"".join(chunks), True
    return b"".join(chunks), False


def _title(body: bytes, content_type: str, charset: str | None) -> str:
    if "html" not in content_type.lower() and body.lstrip()[:1] != b"<":
        return ""
    try:
        text = body.decode(charset or "utf-8", "replace")
    except (LookupError, ValueError):  # unknown or unusable charset name
        text = body.decode("utf-8", "replace")
    node = LexborHTMLParser(text).css_first("title")
    return clean_text(node.text(), TITLE_LIMIT) if node is not None else ""


def _host_headers(response: httpx.Response) -> str:
    values = [v for k, v in response.headers.multi_items() if k.lower() in HOST_HEADERS]
    return clean_text(" ".join(values), HOSTS_LIMIT) if values else ""


def _headers(response: httpx.Response) -> dict[str, str]:
    headers: dict[str, str] = {}
    for key, value in response.headers.multi_items():
        key = clean_text(key.lower(), 64)
        if key in headers:
            headers[key] = clean_text(f"{headers[key]}, {value}", HEADER_LIMIT)
        elif len(headers) < MAX_HEADERS:
            headers[key] = clean_text(value, HEADER_LIMIT)
    return headers


def target_url(target: HttpTarget) -> str:
    """The URL a target is probed at (and its result's `url`)."""
    host = target.host.strip().lower().rstrip(".")
    scheme = target.scheme.lower()
    return f"{scheme}://{_authority(host, target.port, scheme)}{_path(target.path)}"


async def probe_one(client: httpx.AsyncClient, target: HttpTarget, options: HttpOptions) -> HttpResult:
    """Fetch one target, following same-host redirects; never raises."""
    host = target.host.strip().lower().rstrip(".")
    scheme, port, path = target.scheme.lower(), target.port, _path(target.path)
    url = target_url(target)
    result = HttpResult(url=url, host=host, port=port, scheme=scheme, status=None)
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + options.timeout
    for hop in range(options.max_redirects + 1):
        connect_host = target.address or host
        headers = _request_headers(host, port, scheme, options)
        sni = scheme == "https" and target.address and not _is_ip(host)
        extensions = {"sni_hostname": host} if sni else {}
        try:
            request = client.build_request(
                "GET",
                f"{scheme}://{_authority(connect_host, port, scheme)}{path}",
                headers=headers,
                extensions=extensions,
            )
            async with asyncio.timeout_at(deadline):
                response = await client.send(request, stream=True)
        except Exception as exc:
            result.error = _reason(exc)  # after a redirect: the answer we had, and why it is not the final one
            return result
        try:
            if scheme == "https" and options.tls_info:
                result.tls = _peer_tls(response) or result.tls
            result.status = response.status_code
            result.response_ms = round((loop.time() - started) * 1000, 1)
            result.final_url = clean_text(url, URL_LIMIT)
            result.headers = _headers(response)
            hosts = _host_headers(response)  # every hop's: a redirect's CSP names hosts too
            if hosts:
                result.host_headers = f"{result.host_headers} {hosts}".strip()[:HOSTS_LIMIT]
            result.server = result.headers.get("server", "")
            result.content_type = clean_text(response.headers.get("content-type", ""), 128)
            location = response.headers.get("location") if response.status_code in REDIRECT_CODES else None
            if location:
                next_url = urljoin(url, location.strip())
                result.redirects.append(clean_text(next_url, URL_LIMIT))
                parts = _same_host(next_url, host)
                if parts and hop < options.max_redirects and next_url != url:
                    scheme, port, path = parts
                    url = f"{scheme}://{_authority(host, port, scheme)}{path}"
                    continue
            result.body, result.truncated = await _read_body(response, options.max_body, deadline)
            declared = response.headers.get("content-length", "")
            result.content_length = int(declared) if declared.isdigit() else len(result.body)
            result.title = _title(result.body, result.content_type, response.charset_encoding)
        finally:
            await response.aclose()
        break
    await _enrich(client, target, result, options, host, deadline)
    return result


async def _enrich(
    client: httpx.AsyncClient, target: HttpTarget, result: HttpResult, options: HttpOptions, host: str, deadline: float
) -> None:
    """Favicon hash, technologies and CDN hints for an answered target."""
    if result.status is None:
        return
    if options.fingerprint:
        result.cdn = cdn_hint(result.headers)
        try:
            techs = fingerprint.detect(
                result.headers,
                result.body,
                result.final_url or result.url,
                result.content_type,
                result.tls.get("issuer", ""),
            )
        except Exception:  # a rule bug must not cost the probe
            techs = []
        result.tech = [clean_text(t.name, 64) for t in techs]
        result.tech_versions = {clean_text(t.name, 64): clean_text(t.version, 40) for t in techs if t.version}
    if options.favicon and options.max_favicon > 0:
        icon_url = _favicon_url(result, host)
        if icon_url:
            # The icon gets its own short budget: the page used up its own.
            loop = asyncio.get_running_loop()
            icon_deadline = max(deadline, loop.time() + min(options.timeout, 3.0))
            data = await _fetch_small(client, target, icon_url, host, options, icon_deadline)
            if data:
                result.favicon_url = clean_text(icon_url, URL_LIMIT)
                result.favicon_hash = favicon_hash(data)


def favicon_hash(data: bytes) -> int:
    """Shodan's favicon hash: MurmurHash3 (32-bit, signed) of the base64 text
    with a newline every 76 characters, as `base64.encodebytes` writes it."""
    return mmh3.hash(base64.encodebytes(data))


def _favicon_url(result: HttpResult, host: str) -> str:
    """The page's `<link rel=icon>` when it stays on the host, else /favicon.ico."""
    base = result.final_url or result.url
    default = urljoin(base, "/favicon.ico")
    if not result.body or ("html" not in result.content_type.lower() and result.body.lstrip()[:1] != b"<"):
        return default if result.status is not None else ""
    try:
        tree = LexborHTMLParser(result.body[:256_000].decode("utf-8", "replace"))
        for node in tree.css("link[rel][href]")[:50]:
            rel = (node.attributes.get("rel") or "").lower().split()
            href = (node.attributes.get("href") or "").strip()
            if "icon" in rel and href and not href.startswith("data:"):
                candidate = urljoin(base, href)
                if _same_host(candidate, host):
                    return candidate
                break  # an off-host icon: fall back to the conventional path
    except Exception:
        pass
    return default


async def _fetch_small(
    client: httpx.AsyncClient, target: HttpTarget, url: str, host: str, options: HttpOptions, deadline: float
) -> bytes:
    """GET a same-host URL (no redirects); the body when 200 and within the cap."""
    parts = _same_host(url, host)
    if parts is None:
        return b""
    scheme, port, path = parts
    connect_host = target.address or host
    headers = _request_headers(host, port, scheme, options)
    sni = scheme == "https" and target.address and not _is_ip(host)
    try:
        request = client.build_request(
            "GET",
            f"{scheme}://{_authority(connect_host, port, scheme)}{path}",
            headers=headers,
            extensions={"sni_hostname": host} if sni else {},
        )
        async with asyncio.timeout_at(deadline):
            response = await client.send(request, stream=True)
    except Exception:
        return b""
    try:
        ctype = response.headers.get("content-type", "").lower()
        if response.status_code != 200 or "html" in ctype:  # soft 404 pages are not icons
            return b""
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > options.max_favicon:
            return b""
        data, truncated = await _read_body(response, options.max_favicon + 1, deadline)
        return b"" if truncated or len(data) > options.max_favicon else data
    finally:
        await response.aclose()


# ---- TLS -----------------------------------------------------------------------


def _peer_tls(response: httpx.Response) -> CertInfo:
    stream = response.extensions.get("network_stream")
    if stream is None:
        return {}
    try:
        ssl_object = stream.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    except (ValueError, AttributeError, ssl.SSLError):
        return {}
    return cert_info(der) if der else {}


def cert_info(der: bytes) -> CertInfo:
    """The fields we keep of one DER certificate ({} when it does not parse)."""
    info = _cert_info(der)
    return {**info, "sans": list(info["sans"])} if info else {}


def _utc(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def _cn(name: x509.Name) -> str:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return clean_text(attrs[0].value, 256) if attrs else ""


@functools.lru_cache(maxsize=1024)
def _cert_info(der: bytes) -> CertInfo:
    """Cached: virtual hosts on one listener usually share a certificate."""
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return {}
    sans: list[str] = []
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        sans = [clean_text(n, 256) for n in ext.get_values_for_type(x509.DNSName)][:1000]
        sans += [str(ip) for ip in ext.get_values_for_type(x509.IPAddress)][:100]
    except (x509.ExtensionNotFound, ValueError):
        pass
    self_signed = False
    if cert.issuer == cert.subject:
        try:
            cert.verify_directly_issued_by(cert)
            self_signed = True
        except Exception:  # wrong signature, unsupported key type...
            self_signed = False
    try:
        issuer = clean_text(cert.issuer.rfc4514_string(), 512)
        subject = clean_text(cert.subject.rfc4514_string(), 512)
    except ValueError:
        issuer = subject = ""
    return {
        "subject_cn": _cn(cert.subject),
        "subject": subject,
        "issuer": issuer,
        "issuer_cn": _cn(cert.issuer),
        "sans": sans,
        "not_before": _utc(cert.not_valid_before_utc),
        "not_after": _utc(cert.not_valid_after_utc),
        "self_signed": self_signed,
        "sha256": hashlib.sha256(der).hexdigest(),
        "serial": format(cert.serial_number, "x"),
    }


async def fetch_certificate(address: str, port: int, server_name: str | None, timeout: float = 5.0) -> CertInfo:
    """TLS handshake only (no HTTP): the peer certificate's `cert_info`, or {}.
    Used by subdomain discovery to read SANs of endpoints it has not probed."""
    context = _tls_context(False)
    sni = server_name if server_name and not _is_ip(server_name) else None
    writer = None
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(
                address, port, ssl=context, server_hostname=sni or "", ssl_handshake_timeout=timeout
            )
            ssl_object = writer.get_extra_info("ssl_object")
            der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    except (OSError, TimeoutError, ssl.SSLError, ValueError):
        return {}
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(0.5):
                    await writer.wait_closed()
    return cert_info(der) if der else {}


# ---- CDN / WAF hints ------------------------------------------------------------

# (header, substring of its lower-cased value or "" for presence, CDN name); first match wins.
_CDN_HEADERS = (
    ("cf-ray", "", "cloudflare"),
    ("cf-cache-status", "", "cloudflare"),
    ("server", "cloudflare", "cloudflare"),
    ("x-amz-cf-id", "", "cloudfront"),
    ("x-amz-cf-pop", "", "cloudfront"),
    ("via", "cloudfront", "cloudfront"),
    ("x-cache", "cloudfront", "cloudfront"),
    ("x-fastly-request-id", "", "fastly"),
    ("fastly-debug-digest", "", "fastly"),
    ("x-served-by", "cache-", "fastly"),
    ("via", "varnish", "fastly?"),
    ("x-akamai-transformed", "", "akamai"),
    ("x-akamai-request-id", "", "akamai"),
    ("akamai-grn", "", "akamai"),
    ("x-akamai-staging", "", "akamai"),
    ("server", "akamaighost", "akamai"),
    ("server", "akamainetstorage", "akamai"),
    ("x-sucuri-id", "", "sucuri"),
    ("x-sucuri-cache", "", "sucuri"),
    ("server", "sucuri", "sucuri"),
    ("x-iinfo", "", "imperva"),
    ("x-cdn", "incapsula", "imperva"),
    ("x-cdn", "imperva", "imperva"),
    ("x-azure-ref", "", "azure-front-door"),
    ("x-msedge-ref", "", "azure-cdn"),
    ("x-ec-custom-error", "", "edgecast"),
    ("server", "ecacc", "edgecast"),
    ("server", "ecs (", "edgecast"),
    ("x-vercel-id", "", "vercel"),
    ("x-nf-request-id", "", "netlify"),
    ("server", "netlify", "netlify"),
    ("server", "bunnycdn", "bunnycdn"),
    ("cdn-pullzone", "", "bunnycdn"),
    ("x-77-nzt", "", "cdn77"),
    ("server", "cdn77", "cdn77"),
    ("x-hw", "", "stackpath"),
    ("x-sp-url", "", "stackpath"),
    ("server", "keycdn", "keycdn"),
    ("x-edge-location", "", "keycdn"),
    ("x-cdn", "stackpath", "stackpath"),
    ("x-goog-generation", "", "google-cloud-storage"),
    ("server", "google frontend", "google"),
    ("x-github-request-id", "", "github-pages"),
    ("server", "github.com", "github-pages"),
    ("x-cache", "varnish", "varnish"),
    ("server", "ddos-guard", "ddos-guard"),
    ("server", "qrator", "qrator"),
    ("x-cdn-provider", "", "?"),
    ("server", "yunjiasu", "baidu-yunjiasu"),
    ("x-swift-cachetime", "", "alibaba-cdn"),
    ("eagleid", "", "alibaba-cdn"),
    ("x-tencent-cdn", "", "tencent-cdn"),
    ("x-bdcdn-cache-status", "", "baidu-cdn"),
)


def cdn_hint(headers: dict[str, str]) -> str:
    """Which CDN or WAF the response headers point to ("" when none)."""
    lowered = {k.lower(): v.lower() for k, v in headers.items()}
    for name, needle, cdn in _CDN_HEADERS:
        value = lowered.get(name)
        if value is None or not cdn or (needle and needle not in value):
            continue
        if cdn == "?":
            return clean_text(value, 40)
        if cdn == "fastly?":
            if "x-served-by" in lowered or "x-fastly-request-id" in lowered:
                return "fastly"
            continue
        return cdn
    return ""


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _same_host(url: str, host: str) -> tuple[str, int, str] | None:
    """(scheme, port, path) when `url` stays on `host` over http(s), else None."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:  # bad port in Location
        return None
    if parts.scheme not in ("http", "https") or (parts.hostname or "").rstrip(".") != host:
        return None
    path = _path(parts.path) + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, port, path


async def probe(
    targets: Iterable[HttpTarget],
    options: HttpOptions,
    progress: Callable[[int, int], None] | None = None,
) -> AsyncIterator[HttpResult]:
    """Probe targets with bounded concurrency, each address paced by how it
    answers (`host_pace`); yield results as they complete."""
    pace = options.pace or HostPace(options.per_host)

    async def paced(client: httpx.AsyncClient, target: HttpTarget) -> HttpResult:
        key = target.address or target.host
        for attempt in range(options.throttle_retries + 1):
            async with pace.slot(key):
                result = await probe_one(client, target, options)
            pause = await pace.answered(key, result.status, result.error, result.headers.get("retry-after", ""))
            if not pause or attempt == options.throttle_retries:
                return result
        return result

    async with make_client(options) as client:
        async for result in bounded(targets, lambda t: paced(client, t), options.concurrency, progress):
            yield result
