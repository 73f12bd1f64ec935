"""HTTP probe extras: TLS certificate fields, favicon hash, technologies, CDN hints."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from importlib import resources

import mmh3
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from support.loopback import HttpServer, make_cert, page

from assetmon_tui.lab import Lab
from assetmon_tui.lab.estate import LEGACY_ADDRESS
from assetmon_tui.scanners import fingerprint
from assetmon_tui.scanners.http import HttpOptions, HttpResult, HttpTarget, cdn_hint, fetch_certificate, probe

pytestmark = pytest.mark.one_store  # the store is not what this tests: the SQLite pass is enough

HOST = "www.acme.test"


@pytest.fixture(scope="module")
def lab():
    with Lab(standard_ports=False) as running:
        yield running


async def fetch(target: HttpTarget, **kw) -> HttpResult:
    kw.setdefault("timeout", 3.0)
    [result] = [r async for r in probe([target], HttpOptions(**kw))]
    return result


def lab_target(lab: Lab, name: str, scheme: str = "https") -> HttpTarget:
    port = lab.info["https_port" if scheme == "https" else "http_port"]
    return HttpTarget(name, port, scheme, address=lab.info["addresses"][name])


def shodan_hash(data: bytes) -> int:
    """Written out by hand: base64 in lines of 76 characters, each ending in \\n."""
    encoded = base64.b64encode(data)
    lines = b"".join(encoded[i : i + 76] + b"\n" for i in range(0, len(encoded), 76))
    return mmh3.hash(lines)


# ---- TLS ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory):
    cert_path, key_path = make_cert(tmp_path_factory.mktemp("tls"), [HOST, "alt.acme.test"])
    with HttpServer({"/": page("<title>tls</title>")}, tls=(cert_path, key_path)) as server:
        yield server, x509.load_pem_x509_certificate(cert_path.read_bytes())


async def test_tls_fields_of_self_signed_cert(self_signed):
    server, cert = self_signed
    result = await fetch(HttpTarget(HOST, server.port, "https", address="127.0.0.1"))
    assert result.status == 200 and result.title == "tls"
    tls = result.tls
    assert tls["subject_cn"] == HOST
    assert tls["issuer"] == f"CN={HOST}" and tls["issuer_cn"] == HOST
    assert tls["sans"] == [HOST, "alt.acme.test", "127.0.0.1"]
    assert tls["self_signed"] is True
    der = cert.public_bytes(serialization.Encoding.DER)
    assert tls["sha256"] == hashlib.sha256(der).hexdigest()
    assert tls["serial"] == format(cert.serial_number, "x")
    assert tls["not_before"] == cert.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    not_after = dt.datetime.fromisoformat(tls["not_after"].rstrip("Z"))
    assert dt.timedelta(days=29) < not_after - dt.datetime.now(dt.UTC).replace(tzinfo=None) < dt.timedelta(days=31)
    # The same fields from a bare handshake (used by subdomain discovery).
    assert await fetch_certificate("127.0.0.1", server.port, HOST, 2.0) == tls


async def test_plain_http_has_no_tls(lab):
    result = await fetch(lab_target(lab, "api.acme.test", "http"))
    assert result.status == 200 and result.tls == {}


async def test_lab_ca_signed_and_legacy_certs(lab):
    shared = await fetch(lab_target(lab, HOST))
    assert shared.tls["self_signed"] is False
    assert shared.tls["issuer_cn"] == "Acme Lab Root CA"
    assert "*.acme.test" in shared.tls["sans"]
    legacy = await fetch(HttpTarget("legacy.acme.test", lab.info["https_port"], "https", address=LEGACY_ADDRESS))
    assert legacy.tls["self_signed"] is True
    assert set(lab.estate.san_names) <= set(legacy.tls["sans"])


async def test_tls_info_can_be_turned_off(lab):
    result = await fetch(lab_target(lab, HOST), tls_info=False)
    assert result.status == 200 and result.tls == {}


async def test_handshake_failures_give_nothing():
    from support.loopback import TcpServer, free_port

    assert await fetch_certificate("127.0.0.1", free_port(), HOST, 1.0) == {}
    with TcpServer(banner=b"SSH-2.0-OpenSSH_9.6\r\n") as server:
        assert await fetch_certificate("127.0.0.1", server.port, HOST, 1.0) == {}


# ---- favicon ------------------------------------------------------------------------------


async def test_favicon_hash_of_lab_host(lab):
    vhost = lab.estate.vhosts[HOST]
    icon = vhost.files["/favicon.ico"][1]
    result = await fetch(lab_target(lab, HOST), favicon=True)
    assert result.favicon_hash == shodan_hash(icon)
    assert result.favicon_url == f"https://{HOST}:{lab.info['https_port']}/favicon.ico"
    # Different products, different icons.
    jenkins = await fetch(lab_target(lab, "jenkins.acme.test", "http"), favicon=True)
    assert jenkins.favicon_hash == shodan_hash(lab.estate.vhosts["jenkins.acme.test"].files["/favicon.ico"][1])
    assert jenkins.favicon_hash != result.favicon_hash


async def test_favicon_off_by_default(lab):
    result = await fetch(lab_target(lab, HOST))
    assert result.favicon_hash is None


ICON = bytes(range(256)) * 3


@pytest.fixture(scope="module")
def icons():
    routes = {
        "/linked": page('<html><head><link rel="shortcut icon" href="/static/i.png?v=2"></head></html>'),
        "/static/i.png": page(ICON, content_type="image/png"),
        "/offhost": page('<html><link rel="icon" href="http://evil.example/x.ico"></html>'),
        "/favicon.ico": page(ICON[::-1], content_type="image/x-icon"),
        "/big": page('<html><link rel="icon" href="/bigicon"></html>'),
        "/bigicon": page(b"\0" * 300_000, content_type="image/x-icon"),
        "/soft404": page('<html><link rel="icon" href="/missing"></html>'),
        "/missing": page("<html>not here</html>"),
    }
    with HttpServer(routes) as server:
        yield server


@pytest.mark.parametrize(
    "path,expected",
    [
        ("/linked", shodan_hash(ICON)),
        ("/offhost", shodan_hash(ICON[::-1])),
        ("/big", None),
        ("/soft404", None),
    ],
)
async def test_favicon_sources(icons, path, expected):
    result = await fetch(HttpTarget(HOST, icons.port, "http", address="127.0.0.1", path=path), favicon=True)
    assert result.favicon_hash == expected
    assert all(r.headers["host"] == f"{HOST}:{icons.port}" for r in icons.requests)  # never off host
    if path == "/linked":
        assert icons.requests[-1].path == "/static/i.png?v=2"


# ---- technologies and CDNs --------------------------------------------------------------


@pytest.mark.parametrize(
    "name,scheme,expected",
    [
        ("www.acme.test", "https", {"WordPress", "PHP", "Apache", "jQuery", "MySQL"}),
        ("shop.acme.test", "https", {"Laravel", "PHP", "Nginx", "jQuery"}),
        ("jenkins.acme.test", "http", {"Jenkins", "Jetty", "Java"}),
        ("owa.acme.test", "http", {"IIS", "Microsoft ASP.NET", "Windows Server"}),
        ("api.acme.test", "http", {"Express", "Node.js", "Nginx"}),
        ("git.acme.test", "https", {"GitLab", "Ruby on Rails"}),
        ("status.acme.test", "http", {"Bootstrap", "jQuery", "Nginx"}),
    ],
)
async def test_tech_of_lab_hosts(lab, name, scheme, expected):
    result = await fetch(lab_target(lab, name, scheme))
    assert result.status == 200
    assert expected <= set(result.tech), result.tech
    assert result.tech == sorted(result.tech, key=str.lower)


async def test_tech_versions(lab):
    result = await fetch(lab_target(lab, HOST))
    assert result.tech_versions["WordPress"] == "6.4.2"
    assert result.tech_versions["PHP"] == "8.2.12"
    assert result.tech_versions["Apache"] == "2.4.58"


async def test_cdn_hint_of_lab_host(lab):
    assets = await fetch(lab_target(lab, "assets.acme.test", "http"))
    assert assets.cdn == "cloudfront"
    assert "Amazon Cloudfront" in assets.tech
    www = await fetch(lab_target(lab, HOST))
    assert www.cdn == ""


@pytest.mark.parametrize(
    "headers,expected",
    [
        ({"cf-ray": "7d1-FRA", "server": "cloudflare"}, "cloudflare"),
        ({"server": "cloudflare"}, "cloudflare"),
        ({"x-amz-cf-id": "abc"}, "cloudfront"),
        ({"via": "1.1 abc.cloudfront.net (CloudFront)"}, "cloudfront"),
        ({"x-served-by": "cache-fra-1234-FRA", "via": "1.1 varnish"}, "fastly"),
        ({"x-akamai-transformed": "9 - 0 pmb=mRUM,1"}, "akamai"),
        ({"server": "AkamaiGHost"}, "akamai"),
        ({"x-sucuri-id": "12008"}, "sucuri"),
        ({"x-iinfo": "12-345-0 0CNN RT(1) q(0 -1 -1 0) r(0 -1)"}, "imperva"),
        ({"x-cdn": "Incapsula"}, "imperva"),
        ({"x-azure-ref": "0abc"}, "azure-front-door"),
        ({"via": "1.1 varnish"}, ""),
        ({"server": "nginx"}, ""),
        ({}, ""),
    ],
)
def test_cdn_hint(headers, expected):
    assert cdn_hint(headers) == expected


# ---- the fingerprint engine and its data ---------------------------------------------------


def test_technology_data_is_wappalyzer_format():
    data = json.loads(resources.files("assetmon_tui").joinpath("data", "technologies.json").read_text("utf-8"))
    assert data["source"]["license"] == "MIT"
    techs = data["technologies"]
    assert len(techs) >= 150
    assert techs["Nginx"]["headers"]["Server"].startswith("nginx")
    assert "WordPress" in techs and "generator" in techs["WordPress"]["meta"]
    rules = fingerprint.rules()
    assert rules.count == len(techs)
    assert rules.skipped < 20  # only the few patterns RE2 cannot express


def test_fingerprint_rules_on_synthetic_responses():
    html = (
        '<html><head><meta name="generator" content="Drupal 10 (https://www.drupal.org)">'
        '<script src="/core/misc/drupal.js?v=10.1"></script>'
        '<script src="https://cdn.example/vue@3.3.4/dist/vue.global.prod.js"></script></head></html>'
    )
    techs = {
        t.name: t
        for t in fingerprint.detect(
            {"server": "nginx/1.25.3", "x-powered-by": "PHP/8.3.0"}, html.encode(), "https://x.test/", "text/html"
        )
    }
    assert {"Drupal", "PHP", "Nginx"} <= set(techs)
    assert techs["Nginx"].version == "1.25.3" and techs["PHP"].version == "8.3.0"
    assert "CMS" in techs["Drupal"].categories
    # Headers alone, no body.
    assert "Microsoft ASP.NET" in {t.name for t in fingerprint.detect({"x-aspnet-version": "4.0.30319"})}
    # Cookies come from Set-Cookie names.
    cookies = fingerprint.detect({"set-cookie": "PHPSESSID=abc; path=/, laravel_session=x; HttpOnly"})
    assert {"PHP", "Laravel"} <= {t.name for t in cookies}
    assert fingerprint.detect({}, b"") == []


def test_fingerprint_is_linear_on_hostile_bodies():
    import time

    hostile = ("<" + "a" * 50 + " " + "data-react" * 0) * 20_000 + "<script src='" + "/" * 200_000
    started = time.monotonic()
    fingerprint.detect({"server": "x" * 5000}, hostile.encode(), "https://x.test/" + "a" * 5000, "text/html")
    assert time.monotonic() - started < 2.0
