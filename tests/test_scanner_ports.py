"""Port scanner against listening sockets on 127.0.0.x, and parse_ports."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time

import pytest
from support.loopback import TcpServer, free_port

from assetmon_tui.scanners import ports as ports_module
from assetmon_tui.scanners.banners import guess_service
from assetmon_tui.scanners.ports import TOP_100, TOP_1000, PortOptions, PortResult, parse_ports, scan
from assetmon_tui.testing import machine_listeners, wait_for

pytestmark = pytest.mark.one_store  # the store is not what this tests: the SQLite pass is enough

SSH = b"SSH-2.0-OpenSSH_9.6\r\n"
# Wide scans target an otherwise unused loopback address, so they do not
# poke whatever services the machine runs on 127.0.0.1.
WIDE = "127.0.0.5"


def every_port() -> list[int]:
    """1-65535 but the machine's wildcard listeners."""
    skip = machine_listeners()
    return [p for p in range(1, 65536) if p not in skip]


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def scanner_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "assetmon-portscan"]


async def collect(addresses, ports, **kw) -> dict[tuple[str, int], PortResult]:
    kw.setdefault("banner_timeout", 0.3)
    kw.setdefault("timeout", 0.5)
    return {(r.address, r.port): r async for r in scan(addresses, ports, PortOptions(**kw))}


# ----------------------------------------------------------------- parse_ports


def test_top_lists():
    assert len(TOP_100) == len(set(TOP_100)) == 100
    assert len(TOP_1000) == len(set(TOP_1000)) == 1000
    assert TOP_1000[:100] == TOP_100
    assert TOP_1000[:5] == [80, 23, 443, 21, 22]  # nmap's frequency order
    assert {22, 3389, 8080, 5900} <= set(TOP_100)


@pytest.mark.parametrize("spec", ["", "  ", "top100", "TOP100"])
def test_default_is_top100(spec):
    assert parse_ports(spec) == TOP_100


@pytest.mark.parametrize("spec", ["all", "-", "1-65535", " ALL "])
def test_all_ports(spec):
    assert parse_ports(spec) == list(range(1, 65536))


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("22,80,8000-8003", [22, 80, 8000, 8001, 8002, 8003]),
        (" 443 , 22 ", [443, 22]),
        ("80,80,79-81", [80, 79, 81]),
        ("-3", [1, 2, 3]),
        ("65533-", [65533, 65534, 65535]),
        ("7-7", [7]),
        ("top3,22,80", [80, 23, 443, 22]),
        ("top1000", TOP_1000),
    ],
)
def test_port_lists(spec, expected):
    assert parse_ports(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("0", "out of range"),
        ("65536", "out of range"),
        ("1-70000", "out of range"),
        ("http", "bad port"),
        ("22;80", "bad port"),
        ("1.5", "bad port"),
        ("\u0663", "bad port"),  # an Arabic-Indic digit is not a port
        ("10-5", "start is after end"),
        ("22,,80", "empty entry"),
        ("22,", "empty entry"),
        ("top0", "top lists"),
        ("top5000", "top lists"),
        ("1-2-3", "bad port"),
    ],
)
def test_bad_specs(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_ports(spec)


# ------------------------------------------------------------------------ scan


async def test_open_closed_and_banners():
    closed = free_port()
    with TcpServer(banner=SSH) as ssh, TcpServer(banner=None) as silent:
        started = time.monotonic()
        found = await collect(["127.0.0.1"], [ssh.port, silent.port, closed])
        elapsed = time.monotonic() - started
    assert set(found) == {("127.0.0.1", ssh.port), ("127.0.0.1", silent.port)}
    assert found["127.0.0.1", ssh.port].banner == "SSH-2.0-OpenSSH_9.6"
    assert found["127.0.0.1", ssh.port].service == "ssh"
    assert found["127.0.0.1", silent.port].banner == ""
    assert elapsed < 1.5  # the silent port costs one banner_timeout, not more


async def test_hostile_banner_is_cleaned():
    hostile = b"220 \x1b]52;c;ZXZpbA==\x07mail.acme.test ESMTP \x1b[2J" + b"x" * 2000 + b"\r\n"
    with TcpServer(banner=hostile) as server:
        found = await collect(["127.0.0.1"], [server.port])
    result = found["127.0.0.1", server.port]
    assert result.banner.startswith("220 mail.acme.test ESMTP")
    assert result.banner.isprintable() and len(result.banner) <= 256
    assert result.service == "smtp"


async def test_without_banners_names_come_from_the_port():
    with TcpServer(banner=SSH) as server:
        found = await collect(["127.0.0.1"], [server.port], banners=False)
        # The kernel completes a connect before the server thread accepts it:
        # on a loaded machine the count lags behind the scan, so wait for it.
        await asyncio.to_thread(wait_for, lambda: server.accepted >= 1, 10, 0.01, "the server to accept")
    assert found["127.0.0.1", server.port].banner == ""
    assert server.accepted == 1  # the connect scan only, no banner connection


async def test_several_addresses():
    with TcpServer(banner=SSH, host="127.0.0.2") as server:
        found = await collect(["127.0.0.1", "127.0.0.2", "127.0.0.2"], [server.port])
    assert list(found) == [("127.0.0.2", server.port)]


async def test_unanswered_syn_times_out_as_not_open():
    # A listener whose accept queue is full drops new SYNs: the connect
    # never completes, which is what a filtered port looks like.
    listener = socket.create_server(("127.0.0.1", 0), backlog=0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        fillers.append(sock)
    await asyncio.sleep(0.1)
    try:
        started = time.monotonic()
        found = await collect(["127.0.0.1"], [port], timeout=0.3, banners=False)
        assert found == {}
        assert 0.25 < time.monotonic() - started < 1.0
    finally:
        for sock in fillers + [listener]:
            sock.close()


async def test_progress_reports_reach_total():
    calls = []
    with TcpServer(banner=None, host=WIDE) as server:
        ports = list(range(20000, 22000)) + [server.port]
        results = [r async for r in scan([WIDE], ports, PortOptions(banners=False), lambda d, t: calls.append((d, t)))]
    assert server.port in {r.port for r in results}
    assert calls[-1] == (len(set(ports)), len(set(ports)))
    assert all(t == calls[-1][1] for _, t in calls)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


async def test_rate_limit_paces_connections():
    started = time.monotonic()
    await collect([WIDE], list(range(30000, 30060)), rate=100, banners=False)
    assert time.monotonic() - started > 0.5  # 60 connections at 100/s


async def test_full_range_is_fast():
    with TcpServer(banner=None, host=WIDE) as server:
        started = time.monotonic()
        found = await collect([WIDE], every_port(), banners=False)
        elapsed = time.monotonic() - started
    assert (WIDE, server.port) in found
    assert elapsed < 5  # ~0.7 s here; one coroutine per port took ~14 s


async def test_early_exit_closes_everything():
    fds = open_fds()
    with TcpServer(banner=None, host=WIDE) as server:
        ports = [server.port] + every_port()
        gen = scan([WIDE], ports, PortOptions(banners=False))
        first = await anext(gen)
        await gen.aclose()
    assert first.port == server.port
    assert not scanner_threads()
    assert open_fds() <= fds


async def test_cancellation_stops_the_worker():
    fds = open_fds()
    with TcpServer(banner=None, host=WIDE) as server:

        async def consume():
            async for _ in scan([WIDE], [server.port] + every_port(), PortOptions(banner_timeout=30)):
                pass

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.2)  # banner grab of the silent port is pending now
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - started < 0.5
    assert not scanner_threads()
    assert open_fds() <= fds


async def test_bad_input():
    with pytest.raises(ValueError, match="not an IP address"):
        await collect(["www.acme.test"], [80])
    with pytest.raises(ValueError, match="out of range"):
        await collect(["127.0.0.1"], [0])
    assert await collect([], [80]) == {}
    assert await collect(["127.0.0.1"], []) == {}


def test_fd_cap_respects_ulimit(monkeypatch):
    monkeypatch.setattr(ports_module.resource, "getrlimit", lambda _: (1024, 4096))
    assert ports_module._fd_cap(2048) == 1024 - 256
    assert ports_module._fd_cap(100) == 100


@pytest.mark.parametrize(
    ("port", "reply", "service"),
    [
        (2222, b"SSH-2.0-dropbear\r\n", "ssh"),
        (21, b"220 ProFTPD Server ready\r\n", "ftp"),
        (2525, b"220 mx.acme.test ESMTP Postfix\r\n", "smtp"),
        (6379, b"+PONG\r\n", "redis"),
        (16379, b"-NOAUTH Authentication required.\r\n", "redis"),
        (8081, b"HTTP/1.0 200 OK\r\nServer: x\r\n", "http"),
        (110, b"+OK POP3 ready\r\n", "pop3"),
        (143, b"* OK IMAP4rev1\r\n", "imap"),
        (5901, b"RFB 003.008\n", "vnc"),
        (3306, b"J\x00\x00\x00\x0a8.0.36\x00", "mysql"),
        (8443, b"\x15\x03\x01\x00\x02\x02\x46", "https"),
        (443, b"", "https"),
        (6379, b"", "redis"),
        (40000, b"", ""),
    ],
)
def test_guess_service(port, reply, service):
    assert guess_service(port, reply) == service


async def test_banner_grabs_are_bounded(monkeypatch):
    active, peak = 0, 0

    async def fake_grab(address, port, timeout):
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.05)
        active -= 1
        return f"banner {port}", "x"

    monkeypatch.setattr(ports_module, "BANNER_CONCURRENCY", 3)
    monkeypatch.setattr(ports_module, "grab", fake_grab)
    servers = [TcpServer(banner=None) for _ in range(10)]
    for server in servers:
        server.__enter__()
    try:
        found = await collect(["127.0.0.1"], [s.port for s in servers])
    finally:
        for server in servers:
            server.__exit__()
    assert {p for _, p in found} == {s.port for s in servers}
    assert all(r.banner == f"banner {p}" for (_, p), r in found.items())
    assert peak == 3


async def test_a_silent_tls_service_on_an_odd_port_is_named(tmp_path):
    """A TLS server closes on the grab's plain-text probe without a byte: the
    port must still be recognised, so the HTTP module probes it over https."""
    from support.loopback import HttpServer, make_cert, page

    from assetmon_tui.scanners.ports import PortOptions, scan

    cert, key = make_cert(tmp_path, ["odd.test"])
    with HttpServer({"/": page("<title>odd</title>")}, tls=(cert, key)) as server:
        results = [r async for r in scan(["127.0.0.1"], [server.port], PortOptions(banner_timeout=1.0))]
    assert [(r.port, r.service) for r in results] == [(server.port, "https")]  # HTTP answered inside TLS


async def test_sockets_reused_after_a_refusal_find_every_open_port():
    """Refused sockets are reconnected to the next target: open ports between
    refused ones (and the sockets' count) must come out the same."""
    fds = open_fds()
    servers = [TcpServer(banner=None, host=WIDE) for _ in range(12)]
    for server in servers:
        server.__enter__()
    try:
        open_ports = {s.port for s in servers}
        low = min(open_ports)
        ports = sorted(set(range(max(1, low - 500), low + 1500)) | open_ports)
        found = await collect([WIDE], ports, banners=False)
    finally:
        for server in servers:
            server.__exit__()
    assert {p for _, p in found} == open_ports
    assert open_fds() <= fds
