"""Banner grabbing and service names against real listeners on loopback:
scripted fake services, real redis-server processes, PostgreSQL on
127.0.0.1:5432 when it runs, TLS servers; what silent ports cost, progress
through the banner phase, hostile banners."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import struct
import subprocess
import time
import unicodedata
from collections.abc import Awaitable, Callable

import pytest
from support.loopback import HttpServer, LoopServer, TcpServer, free_port, make_cert, page

from assetmon_tui.scanners import banners
from assetmon_tui.scanners import http as http_module
from assetmon_tui.scanners import ports as ports_module
from assetmon_tui.scanners.banners import HTTP_PROBE, PG_SSL_REQUEST, grab
from assetmon_tui.scanners.ports import PortOptions, scan
from assetmon_tui.testing import wait_for

pytestmark = pytest.mark.one_store  # the store is not what this tests (bar one step test): the SQLite pass is enough

DEFAULT_BUDGET = PortOptions().banner_timeout
SURE = 1.5  # budget where a test needs the answer, not the speed: a loaded machine is slow to reply


Script = Callable[["Conn"], Awaitable[None]]


class Conn:
    """One accepted connection of a Scripted server: what it received, and helpers."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self.received = b""

    async def recv(self, timeout: float = 30.0) -> bytes:
        try:
            async with asyncio.timeout(timeout):
                data = await self.reader.read(4096)
        except (TimeoutError, ConnectionError, ssl.SSLError):
            return b""
        self.received += data
        return data

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def hold(self) -> None:
        """Read (and keep) whatever comes until the peer goes."""
        while await self.recv():
            pass


class Scripted(LoopServer):
    """A loopback TCP (or TLS) server running `script(conn)` for every
    connection, in its own thread and event loop. `conns` lists them all."""

    name = "scripted-server"

    def __init__(self, script: Script, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None):
        super().__init__(host, tls)
        self.script = script
        self.conns: list[Conn] = []

    def __enter__(self) -> Scripted:
        return super().__enter__()

    @property
    def received(self) -> list[bytes]:
        return [c.received for c in self.conns]

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = Conn(reader, writer)
        self.conns.append(conn)
        try:
            await self.script(conn)
        except (ConnectionError, ssl.SSLError, asyncio.CancelledError):
            pass
        finally:
            writer.transport.abort()


def greets(greeting: bytes, delay: float = 0.0, replies: dict[bytes, bytes] | None = None) -> Script:
    """Send `greeting` (after `delay`), then answer lines starting with a key of `replies`."""

    async def script(conn: Conn) -> None:
        if delay:
            await asyncio.sleep(delay)
        await conn.send(greeting)
        while data := await conn.recv():
            for start, reply in (replies or {}).items():
                if data.startswith(start):
                    await conn.send(reply)

    return script


def answers(replies: dict[bytes, bytes | None]) -> Script:
    """Say nothing first; answer the first bytes received by the reply of the
    key they start with (None: hang up), else hang up."""

    async def script(conn: Conn) -> None:
        while data := await conn.recv():
            for start, reply in replies.items():
                if data.startswith(start):
                    if reply is None:
                        return
                    await conn.send(reply)
                    break
            else:
                return

    return script


async def silent(conn: Conn) -> None:
    await conn.hold()


async def hangs_up(conn: Conn) -> None:
    return


def server_tls(tmp_path) -> ssl.SSLContext:
    cert, key = make_cert(tmp_path, ["odd.test"])
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


async def grab_one(port: int, budget: float = SURE) -> tuple[str, str]:
    return await grab("127.0.0.1", port, budget)


# ----------------------------------------------------------- talk-first services

MYSQL_GREETING = (
    b"d\x00\x00\x00\x0a5.5.5-10.11.6-MariaDB-0+deb12u1\x00\r\x00\x00\x00%jjVQo]b\x00\xfe\xf7-\x02\x00\xff\x81"
    + b"\x00" * 10
    + b"Vg&%'1avNc)\x00mysql_native_password\x00"
)
MYSQL_REFUSED = b"E\x00\x00\x00\xffj\x04Host '10.1.2.3' is not allowed to connect to this MariaDB server"


@pytest.mark.parametrize(
    ("greeting", "service", "banner"),
    [
        (b"SSH-2.0-OpenSSH_9.6p1 Debian-4\r\n", "ssh", "SSH-2.0-OpenSSH_9.6p1 Debian-4"),
        (b"220 mx.acme.test ESMTP Postfix (Debian/GNU)\r\n", "smtp", "220 mx.acme.test ESMTP Postfix (Debian/GNU)"),
        (b"220 (vsFTPd 3.0.3)\r\n", "ftp", "220 (vsFTPd 3.0.3)"),
        (MYSQL_GREETING, "mysql", "5.5.5-10.11.6-MariaDB-0+deb12u1"),
        (MYSQL_REFUSED, "mysql", "Host '10.1.2.3' is not allowed to connect to this MariaDB server"),
        (b"+OK Dovecot ready.\r\n", "pop3", "+OK Dovecot ready."),
        (b"* OK [CAPABILITY IMAP4rev1] Dovecot ready.\r\n", "imap", "* OK [CAPABILITY IMAP4rev1] Dovecot ready."),
        (b'INFO {"server_id":"NABC","version":"2.9.10"} \r\n', "nats", 'INFO {"server_id":"NABC","version":"2.9.10"}'),
        (b"RFB 003.008\n", "vnc", "RFB 003.008"),
        (b"\xff\xfd\x18\xff\xfd\x20", "telnet", ""),
    ],
)
async def test_greetings_name_the_service_on_any_port(greeting, service, banner):
    with Scripted(greets(greeting)) as server:
        assert await grab_one(server.port) == (banner, service)
    assert server.received[0] == b""  # a greeting came first: nothing was sent to it


async def test_a_late_greeting_still_names_the_service():
    """A greeting after the passive listen crosses our probe: it comes first all the same."""
    with Scripted(greets(b"SSH-2.0-OpenSSH_9.6\r\n", delay=SURE * banners.PASSIVE_SHARE + 0.2)) as server:
        assert await grab_one(server.port) == ("SSH-2.0-OpenSSH_9.6", "ssh")
    assert server.received[0].startswith(HTTP_PROBE)


@pytest.mark.parametrize(("reply", "service"), [(b"250-hello\r\n250 OK\r\n", "smtp"), (b"500 what?\r\n", "ftp")])
async def test_a_bare_220_is_told_apart_by_ehlo(reply, service):
    with Scripted(greets(b"220 ready\r\n", replies={b"EHLO": reply})) as server:
        assert await grab_one(server.port) == ("220 ready", service)
    assert server.received[0].startswith(b"EHLO ")


# ---------------------------------------------------------- client-first services


async def test_http_on_an_odd_port():
    with HttpServer({"/": page("<title>odd</title>", headers={"Server": "nginx/1.25.3"})}) as server:
        banner, service = await grab_one(server.port)
    assert service == "http"
    assert banner.startswith("HTTP/1.") and "Server: nginx/1.25.3" in banner
    assert [(r.method, r.path) for r in server.requests] == [("HEAD", "/")]


async def test_https_on_an_odd_port_uses_the_one_cached_context(tmp_path, monkeypatch):
    cert, key = make_cert(tmp_path, ["odd.test"])
    banners.tls_context()  # built once, here or by any earlier scan

    def no_new_context(*args, **kwargs):
        raise AssertionError("a TLS context was built for a probe")

    monkeypatch.setattr(ssl, "create_default_context", no_new_context)
    with HttpServer({"/": page("<title>odd</title>")}, tls=(cert, key)) as server:
        banner, service = await grab_one(server.port)
    assert service == "https"  # HTTP answered inside the TLS
    assert banner.startswith("HTTP/1.")
    assert banners.tls_context() is http_module._tls_context(False)


async def test_tls_with_a_silent_service_inside_is_ssl(tmp_path):
    with Scripted(silent, tls=server_tls(tmp_path)) as server:
        assert await grab_one(server.port, 0.6) == ("", "ssl")


async def test_tls_ports_are_handshaken_first(tmp_path, monkeypatch):
    with HttpServer({"/": page("<title>x</title>")}, tls=make_cert(tmp_path, ["x.test"])) as server:
        monkeypatch.setattr(banners, "TLS_PORTS", banners.TLS_PORTS | {server.port})
        monkeypatch.setattr(banners, "HTTPS_PORTS", banners.HTTPS_PORTS | {server.port})
        started = time.monotonic()
        banner, service = await grab_one(server.port)
        elapsed = time.monotonic() - started
    assert service == "https" and banner.startswith("HTTP/1.")
    assert [(r.method, r.path) for r in server.requests] == [("HEAD", "/")]
    assert elapsed < SURE  # no passive listen on a web port


def _redis(tmp_path, *args: str) -> subprocess.Popen[bytes]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not installed")
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    proc.port = port  # type: ignore[attr-defined]

    def answers() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith((b"+PONG", b"-NOAUTH"))
        except OSError:
            return False

    wait_for(answers, 10, what="redis-server")
    return proc


@pytest.mark.redis
async def test_a_real_redis_on_an_odd_port_and_its_version(tmp_path):
    proc = _redis(tmp_path)
    try:
        banner, service = await grab_one(proc.port)  # type: ignore[attr-defined]
    finally:
        proc.kill()
        proc.wait()
    assert service == "redis"
    assert banner.startswith("redis_version:") and banner.split(":")[1][:1].isdigit()


@pytest.mark.redis
async def test_a_real_redis_with_a_password(tmp_path):
    proc = _redis(tmp_path, "--requirepass", "s3cret")
    try:
        banner, service = await grab_one(proc.port)  # type: ignore[attr-defined]
    finally:
        proc.kill()
        proc.wait()
    assert service == "redis"
    assert banner.startswith(("-NOAUTH", "-ERR unknown command"))


def _postgres_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), 0.5) as sock:
            sock.settimeout(1)
            sock.sendall(PG_SSL_REQUEST)
            return sock.recv(1) in (b"S", b"N")
    except OSError:
        return False


@pytest.mark.postgres
async def test_the_real_postgresql_on_5432():
    if not _postgres_answers():
        pytest.skip("no PostgreSQL answers on 127.0.0.1:5432")
    assert await grab_one(5432) == ("", "postgresql")


async def test_postgresql_on_an_odd_port():
    """PostgreSQL closes on HTTP and on a TLS hello: its SSLRequest, answered by one byte, names it."""
    with Scripted(answers({PG_SSL_REQUEST: b"N"})) as server:
        assert await grab_one(server.port) == ("", "postgresql")
    probes = server.received
    assert probes[0] == HTTP_PROBE and probes[1][:1] == b"\x16" and probes[2] == PG_SSL_REQUEST


@pytest.mark.parametrize(
    ("probe", "reply", "service", "banner"),
    [
        (banners.MEMCACHED_PROBE, b"VERSION 1.6.21\r\n", "memcached", "VERSION 1.6.21"),
        (banners.EPMD_NAMES, b"\x00\x00\x11\x11name rabbit at port 25672\n", "epmd", "name rabbit at port 25672"),
        (
            banners.MONGO_PROBE,
            struct.pack("<iiii", 36, 7, 0x41534D, 1) + b"\x00" * 20,
            "mongodb",
            "",
        ),
    ],
)
async def test_port_probes(monkeypatch, probe, reply, service, banner):
    with Scripted(answers({probe: reply})) as server:
        monkeypatch.setitem(banners.PROBES, server.port, probe)
        assert await grab_one(server.port) == (banner, service)
    assert server.received == [probe]


# ------------------------------------------------------------ what silence costs


async def test_a_silent_port_costs_one_short_budget():
    """A passive listen, one probe, and nothing more: no TLS handshake, no second connection."""
    with Scripted(silent) as server:
        started = time.monotonic()
        assert await grab_one(server.port, DEFAULT_BUDGET) == ("", "")
        elapsed = time.monotonic() - started
    assert DEFAULT_BUDGET * 0.9 <= elapsed < 1.0
    assert server.received == [HTTP_PROBE]


async def test_a_port_that_hangs_up_at_once_costs_nothing_more():
    with Scripted(hangs_up) as server:
        started = time.monotonic()
        assert await grab_one(server.port, DEFAULT_BUDGET) == ("", "")
        elapsed = time.monotonic() - started
    assert elapsed < DEFAULT_BUDGET and server.received == [b""]


async def test_silent_ports_in_a_scan_cost_under_a_second_each(monkeypatch):
    """Grabs one at a time: the scan's length is what the silent ports cost, in all."""
    monkeypatch.setattr(ports_module, "BANNER_CONCURRENCY", 1)
    servers = [Scripted(silent) for _ in range(5)]
    for server in servers:
        server.__enter__()
    try:
        started = time.monotonic()
        results = [r async for r in scan(["127.0.0.1"], [s.port for s in servers], PortOptions())]
        elapsed = time.monotonic() - started
    finally:
        for server in servers:
            server.__exit__()
    assert sorted(r.port for r in results) == sorted(s.port for s in servers)
    assert elapsed < len(servers) * 1.0
    # The connect scan's connection (closed at once) and the grab's: two each, no TLS probe.
    assert all(s.received == [b"", HTTP_PROBE] for s in servers)


async def test_many_silent_ports_grabbed_together():
    servers = [Scripted(silent) for _ in range(30)]
    for server in servers:
        server.__enter__()
    try:
        started = time.monotonic()
        results = [r async for r in scan(["127.0.0.1"], [s.port for s in servers], PortOptions())]
        elapsed = time.monotonic() - started
    finally:
        for server in servers:
            server.__exit__()
    assert len(results) == len(servers)
    assert elapsed < 5 * DEFAULT_BUDGET + 1  # in parallel: ~one budget


async def test_a_stalled_handshake_on_a_tls_port_is_bounded(monkeypatch):
    """A TLS port whose handshake never ends (nor anything else): one budget
    for the handshake, one for the plain exchange, never past the hard cap."""
    with Scripted(silent) as server:
        monkeypatch.setattr(banners, "TLS_PORTS", banners.TLS_PORTS | {server.port})
        started = time.monotonic()
        assert await grab_one(server.port, 0.3) == ("", "")
        elapsed = time.monotonic() - started
    assert 0.3 * 2 * 0.9 <= elapsed < 0.3 * banners.HARD_CAP + 0.5
    assert server.received[0][:1] == b"\x16" and server.received[1] == HTTP_PROBE  # a hello, then plain text


async def test_a_slow_web_app_on_an_odd_port():
    async def slow(conn: Conn) -> None:
        if await conn.recv():
            await asyncio.sleep(0.3)
            await conn.send(b"HTTP/1.1 200 OK\r\nServer: slowapp\r\nContent-Length: 0\r\n\r\n")
            await conn.hold()

    with Scripted(slow) as server:
        assert await grab_one(server.port) == ("HTTP/1.1 200 OK Server: slowapp", "http")


# ---------------------------------------------------------------------- progress


async def test_progress_counts_the_banner_phase_and_repeats_while_it_waits():
    calls: list[tuple[int, int]] = []
    grabs: list[tuple[int, int]] = []
    closed = free_port()
    with Scripted(silent) as quiet, Scripted(greets(b"SSH-2.0-x\r\n")) as ssh:
        ports = [quiet.port, ssh.port, closed]
        options = PortOptions(banner_timeout=1.2)

        def on_grabs(done: int, total: int) -> None:
            grabs.append((done, total))

        found = [
            r
            async for r in scan(
                ["127.0.0.1"],
                ports,
                options,
                lambda d, t: calls.append((d, t)),
                None,
                lambda d, t: grabs.append((d, t)),
            )
        ]
    assert len(found) == 2
    assert calls[-1] == (3 + 2, 3 + 2)  # three probes and two banner grabs
    assert grabs[-1] == (2, 2)
    # While the silent port's grab runs, the same counts come again (a throttled reporter catches up).
    assert calls.count((3 + 1, 3 + 2)) >= 2
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


async def test_without_banners_progress_is_connects_only():
    calls: list[tuple[int, int]] = []
    with TcpServer(banner=None) as server:
        found = [
            r
            async for r in scan(
                ["127.0.0.1"], [server.port], PortOptions(banners=False), lambda d, t: calls.append((d, t))
            )
        ]
    assert [r.port for r in found] == [server.port] and calls[-1] == (1, 1)


async def test_the_ports_step_reports_banners_until_done(monkeypatch):
    """Through the pipeline's own throttled reporter: the bar counts the probes
    (a chunk's total is fixed when the step is cut) and the line tells the
    banner phase that follows them."""
    from support.scenario import make_project

    from assetmon_tui.core.config import get_settings
    from assetmon_tui.pipeline.run import Run
    from assetmon_tui.pipeline.steps import Ports
    from assetmon_tui.store import leases, repo

    scan_row = repo.create_scan(make_project(), ["ports"], {})
    assert leases.claim(scan_row.id, "thread", "test:1", 60, 3)
    ctx = Run(scan_row.id, lambda progress: None, get_settings(), "thread", "test:1").ctx
    with Scripted(silent) as quiet, Scripted(greets(b"SSH-2.0-x\r\n")) as ssh:
        ctx.options["ports"] = f"{quiet.port},{ssh.port}"
        ctx.options["port_timeout"] = 2.0  # a banner budget of 1 s: time for several reports
        ctx.found.direct = {"127.0.0.1"}
        seen: list[tuple[int, int, str]] = []
        reporter = ctx.ticker("ports")

        def tick(done: int, total: int) -> None:
            reporter(done, total)
            mod = ctx.progress.modules["ports"]
            seen.append((mod.done, mod.total, ctx.progress.message))

        monkeypatch.setattr(Ports, "tick", lambda self: tick)
        await Ports(ctx).run()
    mod = ctx.progress.modules["ports"]
    assert (mod.done, mod.total) == (2, 2)  # two probes
    assert ctx.progress.message == "ports: banners 2/2"
    assert ("ports: banners 1/2" in {m for _, _, m in seen}) and seen[-1][:2] == (2, 2)
    assert ctx.found.open_ports["127.0.0.1"] == {quiet.port: "", ssh.port: "ssh"}


# ------------------------------------------------------------------- hostile text


def assert_clean(banner: str) -> None:
    """One bounded line: no control characters (escapes, newlines), no bidi overrides."""
    assert len(banner) <= banners.BANNER_LIMIT
    assert not [c for c in banner if unicodedata.category(c) == "Cc" or "\u202a" <= c <= "\u202e"], banner


@pytest.mark.parametrize(
    "reply",
    [
        b"HTTP/1.1 200 OK\r\nServer: \x1b]52;c;ZXZpbA==\x07evil\x1b[2J" + b"A" * 5000 + b"\r\n\r\n",
        b"SSH-2.0-\x00\x1b[31mred\x1b[0m\x9b6n" + b"\xff" * 3000 + b"\r\n",
        b"220 " + "\u202egnp.exe\u200b".encode() + b"\x1b[1;1H" + b"\n" * 500 + b"x" * 3000,
        b"-ERR unknown command '\x1b]0;owned\x07'\r\n",
    ],
    ids=["http-osc52", "ssh-csi", "smtp-bidi-newlines", "redis-osc"],
)
async def test_hostile_banners_are_cleaned_and_bounded(reply):
    with Scripted(greets(reply) if not reply.startswith((b"HTTP", b"-ERR")) else answers({b"": reply})) as server:
        banner, service = await grab_one(server.port)
    assert service
    assert_clean(banner)


async def test_a_hostile_banner_inside_tls_is_cleaned(tmp_path):
    reply = b"HTTP/1.0 200 OK\r\nServer: \x1b[2Jx\x07" + b"B" * 4000 + b"\r\n\r\n"
    with Scripted(answers({b"HEAD": reply}), tls=server_tls(tmp_path)) as server:
        banner, service = await grab_one(server.port)
    assert service == "https"
    assert banner.startswith("HTTP/1.0 200 OK Server: x")
    assert_clean(banner)
