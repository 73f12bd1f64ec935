"""HTTP scanner against loopback HTTP/HTTPS servers."""

from __future__ import annotations

import asyncio
import gzip
import socket
import time

import pytest
from support.loopback import HttpServer, TcpServer, endless, free_port, make_cert, page, redirect, stall

from assetmon_tui.scanners.http import HttpOptions, HttpResult, HttpTarget, probe, web_targets

pytestmark = pytest.mark.one_store  # the store is not what this tests: the SQLite pass is enough

HOST = "www.acme.test"
HOSTILE = "<title>\x1b]52;c;ZXZpbA==\x07[bold red]owned\x1b[2J\x9b31m\u202e</title>"
ROUTES = {
    "/": page("<html><head><title>\n  Acme &amp; Co &#8211; Home\n</title></head></html>"),
    "/hostile": page(HOSTILE, headers={"Server": "nginx\x1b[31m/1.25"}),
    "/notitle": page("<p>no title here</p>"),
    "/json": page('{"title": "<title>no</title>"}', content_type="application/json"),
    "/r1": redirect("/r2", 301),
    "/r2": redirect("/r3?x=1", 302),
    "/r3": page("<title>landed</title>"),
    "/loop": redirect("/loop"),
    "/stall": stall(b"<html><title>partial</title>"),
    "/huge": endless(),
    "/bomb": page(gzip.compress(b"\0" * 20_000_000), headers={"Content-Encoding": "gzip"}),
}


@pytest.fixture(scope="module")
def web():
    with HttpServer(ROUTES) as server:
        yield server


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    cert = make_cert(tmp_path_factory.mktemp("tls"), [HOST])
    with HttpServer(ROUTES, tls=cert) as server:
        yield server


def target(server: HttpServer, path: str = "/", scheme: str = "http") -> HttpTarget:
    return HttpTarget(HOST, server.port, scheme, address="127.0.0.1", path=path)


async def fetch(tgt: HttpTarget, **kw) -> HttpResult:
    kw.setdefault("timeout", 2.0)
    results = [r async for r in probe([tgt], HttpOptions(**kw))]
    assert len(results) == 1
    return results[0]


def printable(text: str) -> bool:
    return all(ch.isprintable() for ch in text)


async def test_title_and_host_header(web):
    result = await fetch(target(web))
    assert result.error == ""
    assert result.status == 200
    assert result.title == "Acme & Co – Home"
    assert result.url == f"http://{HOST}:{web.port}/"
    assert result.final_url == result.url
    assert result.content_type.startswith("text/html")
    assert result.content_length == len(result.body) > 0
    assert result.response_ms is not None and result.response_ms >= 0
    assert web.requests[-1].headers["host"] == f"{HOST}:{web.port}"
    assert web.requests[-1].headers["user-agent"] == "assetmon/0.1"


async def test_hostile_title_and_headers_are_cleaned(web):
    result = await fetch(target(web, "/hostile"))
    assert "owned" in result.title
    for text in (result.title, result.server, *result.headers.values()):
        assert printable(text), repr(text)
    assert "\x1b" not in result.title and "\x07" not in result.title
    assert result.server == "nginx/1.25"


@pytest.mark.parametrize("path", ["/notitle", "/json"])
async def test_missing_title(web, path):
    result = await fetch(target(web, path))
    assert result.status == 200 and result.title == ""


async def test_same_host_redirect_chain_is_followed(web):
    result = await fetch(target(web, "/r1"))
    base = f"http://{HOST}:{web.port}"
    assert result.redirects == [f"{base}/r2", f"{base}/r3?x=1"]
    assert result.status == 200
    assert result.title == "landed"
    assert result.final_url == f"{base}/r3?x=1"
    assert [r.path for r in web.requests[-3:]] == ["/r1", "/r2", "/r3?x=1"]


@pytest.mark.parametrize(
    "location",
    [
        "http://evil.example:{port}/steal",
        "http://127.0.0.1:{port}/by-ip",
        "https://evil.example/",
        "//evil.example:{port}/x",
        "ftp://{host}:{port}/",
    ],
)
async def test_off_host_redirect_is_recorded_not_followed(web, location, monkeypatch):
    def no_lookups(*args, **kwargs):
        raise AssertionError(f"DNS lookup attempted: {args}")

    monkeypatch.setattr(socket, "getaddrinfo", no_lookups)
    location = location.format(port=web.port, host=HOST)
    web.routes["/off"] = redirect(location)
    seen = len(web.requests)
    result = await fetch(target(web, "/off"))
    assert result.status == 302
    assert result.redirects == [location if not location.startswith("//") else "http:" + location]
    assert result.final_url == f"http://{HOST}:{web.port}/off"
    assert result.error == ""
    # Same port on 127.0.0.1: had we followed, this server would have seen it.
    assert len(web.requests) == seen + 1


async def test_redirect_loops_and_limits_stop(web):
    result = await fetch(target(web, "/loop"))
    assert result.status == 302 and len(result.redirects) == 1
    limited = await fetch(target(web, "/r1"), max_redirects=1)
    assert limited.status == 302
    assert limited.final_url.endswith("/r2")
    assert len(limited.redirects) == 2  # the second Location is recorded, not followed


async def test_stalled_body_returns_within_timeout(web):
    started = time.monotonic()
    result = await fetch(target(web, "/stall"), timeout=0.5)
    assert time.monotonic() - started < 1.0
    assert result.status == 200 and result.error == ""
    assert result.truncated
    assert result.body == b"<html><title>partial</title>"
    assert result.title == "partial"


async def test_endless_body_is_capped(web):
    started = time.monotonic()
    result = await fetch(target(web, "/huge"), max_body=300_000)
    assert time.monotonic() - started < 1.5
    assert len(result.body) == 300_000 and result.truncated


async def test_compression_bomb_is_capped(web):
    result = await fetch(target(web, "/bomb"), max_body=100_000)
    assert result.status == 200
    assert len(result.body) == 100_000 and set(result.body) == {0}
    assert result.truncated


async def test_https_self_signed_with_sni(tls):
    result = await fetch(target(tls, "/r1", scheme="https"))
    assert result.error == ""
    assert result.title == "landed"
    assert result.url == f"https://{HOST}:{tls.port}/r1"
    assert {(r.sni, r.headers["host"]) for r in tls.requests[-3:]} == {(HOST, f"{HOST}:{tls.port}")}


async def test_tls_verification_failure_is_an_error(tls):
    result = await fetch(target(tls, scheme="https"), verify_tls=True)
    assert result.status is None
    assert result.error.startswith("tls")


async def test_plain_http_to_tls_port_is_an_error(tls):
    result = await fetch(target(tls, scheme="http"))
    assert result.status is None and result.error


async def test_refused_port():
    result = await fetch(HttpTarget("127.0.0.1", free_port(), "http"))
    assert result.status is None
    assert result.error == "refused"
    assert result.url.startswith("http://127.0.0.1:")


async def test_silent_server_times_out():
    with TcpServer(banner=None) as silent:
        started = time.monotonic()
        result = await fetch(HttpTarget(HOST, silent.port, "http", "127.0.0.1"), timeout=0.4)
    assert time.monotonic() - started < 1.0
    assert result.status is None and result.error == "timeout"


async def test_many_targets_progress_and_concurrency(web):
    targets = [target(web, "/stall")] * 4 + [target(web)] * 6
    calls = []
    started = time.monotonic()
    results = []
    async for result in probe(targets, HttpOptions(timeout=0.5, concurrency=4), lambda d, t: calls.append((d, t))):
        results.append((time.monotonic() - started, result))
    assert len(results) == 10
    assert calls == [(i, 10) for i in range(1, 11)]
    assert sum(r.truncated for _, r in results) == 4
    # Four workers, all stuck on stalled bodies: the quick pages wait their turn.
    assert all(at > 0.45 for at, _ in results)
    assert results[-1][0] < 1.5


async def test_cancellation_is_prompt(web):
    async def consume():
        return [r async for r in probe([target(web, "/stall")] * 3, HttpOptions(timeout=30))]

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.3)
    before = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - before < 0.5


def test_web_targets():
    default = web_targets(HOST, "127.0.0.1", None)
    assert [(t.scheme, t.port, t.address, t.host) for t in default] == [
        ("http", 80, "127.0.0.1", HOST),
        ("https", 443, "127.0.0.1", HOST),
    ]
    picked = web_targets(HOST, None, [22, 8443, 80, 3306, 8080, 443, 80])
    assert [(t.scheme, t.port) for t in picked] == [("http", 80), ("https", 443), ("http", 8080), ("https", 8443)]
    assert web_targets(HOST, None, []) == []


async def test_redirect_to_https_on_same_host_is_followed(web, tls):
    web.routes["/upgrade"] = redirect(f"https://{HOST}:{tls.port}/r3")
    result = await fetch(target(web, "/upgrade"))
    assert result.redirects == [f"https://{HOST}:{tls.port}/r3"]
    assert result.final_url == f"https://{HOST}:{tls.port}/r3"
    assert result.title == "landed"
    assert tls.requests[-1].sni == HOST  # same address, still our host name
