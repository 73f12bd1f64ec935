"""Loopback test servers: fake DNS, scriptable HTTP(S), banner/silent TCP.

Every server binds 127.0.0.x on a free port, runs in a daemon thread (so sync
and async tests can use it alike) and is a context manager that stops it.
Nothing here ever talks to a non-loopback address.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import random
import selectors
import socket
import ssl
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from assetmon_tui.lab.zone_dns import ZoneDNS


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (also usable as a "closed" port)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------- DNS


def random_addresses(network: str = "127.77.0.0/16", seed: int = 0) -> Callable[[str, str], dict]:
    """A FakeDNS zone entry answering each A query with another address of
    `network` (a wildcard or load balancer that varies per query)."""
    rng = random.Random(seed)
    net = ipaddress.ip_network(network)

    def entry(name: str, qtype: str) -> dict:
        return {"A": [str(net[rng.randrange(1, net.num_addresses - 1)])]}

    return entry


FakeDNS = ZoneDNS  # the lab's dict-zone server (UDP, and TCP with zone transfers on the same port)


# -------------------------------------------------------------------- HTTP


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    sni: str | None = None


Handler = Callable[[Request, asyncio.StreamWriter], Awaitable[None]]


def _head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} X"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def page(
    body: str | bytes,
    status: int = 200,
    content_type: str = "text/html; charset=utf-8",
    headers: dict[str, str] | None = None,
) -> Handler:
    data = body.encode() if isinstance(body, str) else body

    async def handle(request: Request, writer: asyncio.StreamWriter) -> None:
        head = {
            "Content-Type": content_type,
            "Content-Length": str(len(data)),
            "Connection": "close",
            **(headers or {}),
        }
        writer.write(_head(status, head) + data)

    return handle


def redirect(location: str, status: int = 302) -> Handler:
    return page(b"", status=status, headers={"Location": location})


def stall(partial: bytes = b"<html><title>slow</title>", declared: int = 100_000) -> Handler:
    """Send headers and part of the body, then never finish."""

    async def handle(request: Request, writer: asyncio.StreamWriter) -> None:
        head = {"Content-Type": "text/html", "Content-Length": str(declared)}
        writer.write(_head(200, head) + partial)
        await writer.drain()
        await asyncio.sleep(3600)

    return handle


def endless(chunk: bytes = b"A" * 65536) -> Handler:
    """A body that never ends (no Content-Length), as fast as the client reads."""

    async def handle(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(_head(200, {"Content-Type": "application/octet-stream", "Connection": "close"}))
        while True:
            writer.write(chunk)
            await writer.drain()

    return handle


def make_cert(directory: Path, names: list[str]) -> tuple[Path, Path]:
    """Self-signed EC certificate for `names` (+127.0.0.1); returns (cert, key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.datetime.now(datetime.UTC)
    san = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class LoopServer:
    """A loopback asyncio server in its own thread and event loop: `_client`
    (subclasses) serves each connection; started and stopped as a context
    manager. `port` is free, chosen when it starts."""

    name = "loop-server"

    def __init__(self, host: str, tls: ssl.SSLContext | None):
        self.host = host
        self.port = 0
        self._tls = tls
        self._loop = asyncio.new_event_loop()
        self._tasks: set[asyncio.Task] = set()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=self.name)

    def __enter__(self):
        self._thread.start()
        if not self._ready.wait(5):
            raise RuntimeError(f"test {self.name} did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._shutdown)
        self._thread.join(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._serve, self.host, 0, ssl=self._tls))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        self._loop.close()

    def _shutdown(self) -> None:
        self._server.close()
        for task in self._tasks:
            task.cancel()
        self._loop.call_later(0.05, self._loop.stop)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._client(reader, writer)
        finally:
            self._tasks.discard(task)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError


class HttpServer(LoopServer):
    """HTTP/1.x server with scripted routes {path: handler}; unknown paths 404.

    tls=(cert, key) serves HTTPS and records the SNI name of each request.
    `requests` lists what was received (method, path, headers, sni).
    """

    name = "http-server"

    def __init__(self, routes: dict[str, Handler], host: str = "127.0.0.1", tls: tuple[Path, Path] | None = None):
        self.routes = routes
        self.requests: list[Request] = []
        context = None
        self._sni: dict[int, str | None] = {}  # id(SSLObject) -> name sent by the client
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            context.sni_callback = lambda obj, name, ctx: self._sni.__setitem__(id(obj), name)
        super().__init__(host, context)

    @property
    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://{self.host}:{self.port}"

    def __enter__(self) -> HttpServer:
        return super().__enter__()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            line, *rest = head.decode("latin-1").split("\r\n")
            method, path, _ = line.split(" ", 2)
            headers = {}
            for item in rest:
                if ":" in item:
                    key, _, value = item.partition(":")
                    headers[key.strip().lower()] = value.strip()
            ssl_object = writer.get_extra_info("ssl_object")
            request = Request(method, path, headers, self._sni.get(id(ssl_object)) if ssl_object else None)
            self.requests.append(request)
            handler = self.routes.get(path.split("?")[0]) or page("not found", status=404)
            await handler(request, writer)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


# --------------------------------------------------------------------- TCP


@dataclass
class TcpServer:
    """Listening socket that sends `banner` on accept (None: stays silent)
    and holds connections open until the peer closes or the server stops."""

    banner: bytes | None = None
    host: str = "127.0.0.1"
    accepted: int = 0
    port: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> TcpServer:
        self._listener = socket.create_server((self.host, 0), backlog=128)
        self._listener.setblocking(False)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True, name="tcp-server")
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(2)

    def _serve(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self._listener, selectors.EVENT_READ)
        try:
            while not self._stop.is_set():
                for key, _ in selector.select(0.05):
                    if key.fileobj is self._listener:
                        try:
                            conn, _ = self._listener.accept()
                        except BlockingIOError:
                            continue
                        self.accepted += 1
                        try:
                            if self.banner is not None:
                                conn.sendall(self.banner)
                        except OSError:  # scanners close with RST, often before this
                            conn.close()
                            continue
                        conn.setblocking(False)
                        selector.register(conn, selectors.EVENT_READ)
                    else:
                        try:
                            data = key.fileobj.recv(4096)
                        except OSError:
                            data = b""
                        if not data:
                            selector.unregister(key.fileobj)
                            key.fileobj.close()
        finally:
            for key in list(selector.get_map().values()):
                key.fileobj.close()
            selector.close()
