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
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from dnslib import AAAA, CNAME, MX, NS, PTR, QTYPE, RCODE, RR, SOA, SRV, TXT, A, DNSRecord


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (also usable as a "closed" port)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------- DNS

_RDATA = {"A": A, "AAAA": AAAA, "CNAME": CNAME, "NS": NS, "TXT": TXT}


def random_addresses(network: str = "127.77.0.0/16", seed: int = 0) -> Callable[[str, str], dict]:
    """A FakeDNS zone entry answering each A query with another address of
    `network` (a wildcard or load balancer that varies per query)."""
    rng = random.Random(seed)
    net = ipaddress.ip_network(network)

    def entry(name: str, qtype: str) -> dict:
        return {"A": [str(net[rng.randrange(1, net.num_addresses - 1)])]}

    return entry


class FakeDNS:
    """UDP DNS server answering from a dict zone.

    zone = {"www.acme.test": {"A": ["127.0.0.2"], "AAAA": ["::1"]},
            "alias.acme.test": {"CNAME": ["www.acme.test"]},
            "acme.test": {"MX": ["10 mail.acme.test"], "TXT": ["v=spf1 -all"]},
            "broken.acme.test": "SERVFAIL",   # or "REFUSED"
            "slow.acme.test": "DROP",         # never answered
            "*.dyn.acme.test": {"A": ["127.0.0.9"]},   # a wildcard: any name below dyn.acme.test
            "*.dead.acme.test": "DROP",       # a zone whose queries all go unanswered
            "*.lb.acme.test": random_addresses(),      # callable(name, qtype) -> entry, per query
           }
    Names not in the zone (nor below a `*.` entry) get NXDOMAIN; CNAMEs are
    chased inside the zone like a recursive resolver would (NXDOMAIN + chain
    for a dangling one). `queries` logs every (name, type) received, in order.
    """

    def __init__(self, zone: dict, host: str = "127.0.0.1", ttl: int = 300, port: int = 0):
        self.zone = {k.lower().rstrip("."): v for k, v in zone.items()}
        self.ttl = ttl
        self.queries: list[tuple[str, str]] = []  # (name, type) as received
        self.times: list[float] = []  # time.monotonic() of each query
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((host, port))
        self._sock.settimeout(0.05)
        self.host, self.port = self._sock.getsockname()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name="fake-dns")

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def __enter__(self) -> FakeDNS:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()

    def queried_under(self, zone: str) -> list[tuple[str, str]]:
        """The queries received for `zone` or any name below it."""
        zone = zone.lower().rstrip(".")
        return [(n, t) for n, t in list(self.queries) if n == zone or n.endswith("." + zone)]

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self._sock.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            try:
                request = DNSRecord.parse(data)
            except Exception:  # dnslib raises several types on garbage: ignore the packet
                continue
            reply = self._answer(request)
            if reply is not None:
                self._sock.sendto(reply.pack(), peer)

    def _entry(self, name: str, qtype: str):
        """The zone's entry for `name`: its own, else the closest `*.` entry above it."""
        entry = self.zone.get(name)
        if entry is None:
            labels = name.split(".")
            for i in range(1, len(labels)):
                entry = self.zone.get("*." + ".".join(labels[i:]))
                if entry is not None:
                    break
        return entry(name, qtype) if callable(entry) else entry

    def _answer(self, request: DNSRecord) -> DNSRecord | None:
        qname = str(request.q.qname).rstrip(".").lower()
        qtype = QTYPE[request.q.qtype]
        self.queries.append((qname, qtype))
        self.times.append(time.monotonic())
        reply = request.reply()
        name = qname
        for _ in range(10):
            entry = self._entry(name, qtype)
            if entry is None:
                reply.header.rcode = RCODE.NXDOMAIN
            elif entry == "DROP":
                return None
            elif isinstance(entry, str):
                reply.header.rcode = getattr(RCODE, entry)
            elif "CNAME" in entry and qtype != "CNAME":
                target = entry["CNAME"][0]
                reply.add_answer(RR(name, QTYPE.CNAME, rdata=CNAME(target), ttl=self.ttl))
                name = target.lower().rstrip(".")
                continue
            else:
                for value in entry.get(qtype, []):
                    rdata = _rdata(qtype, value)
                    reply.add_answer(RR(name, getattr(QTYPE, qtype), rdata=rdata, ttl=self.ttl))
            return reply
        return reply


def _rdata(qtype: str, value: str):
    if qtype == "MX":
        preference, _, exchange = value.partition(" ")
        return MX(exchange, int(preference))
    if qtype == "SRV":  # "priority weight port target"
        priority, weight, port, target = value.split()
        return SRV(int(priority), int(weight), int(port), target)
    if qtype == "PTR":
        return PTR(value)
    return _RDATA[qtype](value)


def dns_with_axfr(zone: dict, apex: str, names: list[str] | None) -> tuple[FakeDNS, FakeAXFR]:
    """A FakeDNS and a FakeAXFR on one port number (UDP and TCP, as a real
    server): the TCP port is taken first, then the same number for UDP."""
    for _ in range(50):
        xfr = FakeAXFR(apex, names)
        try:
            return FakeDNS(zone, port=xfr.port), xfr
        except OSError:  # that UDP port is someone else's: another pair
            xfr._sock.close()
    raise RuntimeError("no port free for both UDP and TCP")


class FakeAXFR:
    """A TCP DNS server that answers AXFR of `zone` with `names` (an A record
    each), or REFUSED when `names` is None. `asked` counts transfer requests."""

    def __init__(self, zone: str, names: list[str] | None, host: str = "127.0.0.1", port: int = 0):
        self.zone, self.names, self.asked = zone, names, 0
        self._sock = socket.create_server((host, port))  # a FakeDNS's port: TCP beside its UDP
        self._sock.settimeout(0.05)
        self.host, self.port = self._sock.getsockname()[:2]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name="fake-axfr")

    def __enter__(self) -> FakeAXFR:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                conn.settimeout(2)
                try:
                    size = int.from_bytes(conn.recv(2), "big")
                    request = DNSRecord.parse(conn.recv(size))
                except Exception:
                    continue
                self.asked += 1
                reply = request.reply()
                if self.names is None:
                    reply.header.rcode = RCODE.REFUSED
                else:
                    soa = RR(
                        self.zone, QTYPE.SOA, rdata=SOA(f"ns1.{self.zone}", f"admin.{self.zone}", (1, 60, 60, 60, 60))
                    )
                    reply.add_answer(soa)
                    for name in self.names:
                        reply.add_answer(RR(name, QTYPE.A, rdata=A("127.0.0.1"), ttl=60))
                    reply.add_answer(soa)
                data = reply.pack()
                conn.sendall(len(data).to_bytes(2, "big") + data)


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
