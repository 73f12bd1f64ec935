"""Banner grabbing and service naming for open TCP ports.

Cheap by design (nmap -sV is the thorough tool), yet naming the common
services as well as `nmap -sV --version-light` does. Every exchange is
read-only and tiny:

- talk-first services on their usual ports (SSH, SMTP, FTP, MySQL, ...): listen;
- client-first services on their usual ports: their own harmless probe at
  once (Redis `INFO server`, the PostgreSQL SSLRequest, memcached `version`,
  MongoDB `isMaster`, epmd's names request, HTTP `HEAD`); TLS ports: a
  handshake, then the same conversation inside;
- any other port: a short passive listen, then one `HEAD / HTTP/1.0`, which
  HTTP servers answer and most other services answer with an error that
  names them (Redis, NATS, AMQP, MySQL...).

A port that closes on the plain-text probe without a byte gets a TLS
handshake (TLS servers do that), then the PostgreSQL SSLRequest (PostgreSQL
does that too). A port silent to both the listen and the probe costs one
`budget` and nothing more: a TLS server never stays silent on plain text (the
bytes are no TLS record), so it is not handshaken.

Whatever a host sends is hostile: banners are cleaned (`clean_text`) and
bounded (BANNER_LIMIT characters of at most _READ bytes read per reply).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import ssl
import struct
import threading
from dataclasses import dataclass

from assetmon_tui.core.portspec import TOP_PORTS
from assetmon_tui.core.sanitize import clean_text

BANNER_LIMIT = 256
_READ = 1024  # bytes read per reply, at most
PASSIVE_SHARE = 0.25  # of the budget: the passive listen on a port of no known service
HARD_CAP = 4.0  # budgets: the most one grab may take, whatever a host does

# The one set of web ports (scanners.http probes these too).
HTTP_PORTS = frozenset(
    {
        80,
        81,
        591,
        2082,
        2086,
        2095,
        3000,
        4200,
        5000,
        5601,
        7001,
        8000,
        8008,
        8080,
        8081,
        8082,
        8088,
        8090,
        8180,
        8280,
        8800,
        8880,
        8888,
        9000,
        9090,
        9200,
        10000,
    }
)
HTTPS_PORTS = frozenset({443, 2083, 2087, 2096, 4443, 5443, 6443, 7443, 8443, 8834, 9443, 10443})
WEB_PORTS = HTTP_PORTS | HTTPS_PORTS
# Handshake first: TLS web ports and the TLS flavours of mail, LDAP, FTP, IRC, MQTT, AMQP.
TLS_PORTS = HTTPS_PORTS | {465, 636, 990, 992, 993, 995, 5671, 6697, 8883}

# Services that speak first: listen (a whole budget), send nothing unless they stay silent.
GREETING_PORTS = frozenset({21, 22, 23, 25, 110, 143, 587, 2222, 2525, 3306, 4222, 5900})

HTTP_PROBE = b"HEAD / HTTP/1.0\r\n\r\n"
REDIS_PROBE = b"INFO server\r\n"  # read-only; "-NOAUTH ..." when a password is set
PG_SSL_REQUEST = struct.pack("!II", 8, 80877103)  # answered with one byte, S or N
MEMCACHED_PROBE = b"version\r\n"
EPMD_NAMES = b"\x00\x01n"  # NAMES_REQ: the Erlang nodes on this host and their ports
EHLO = b"EHLO assetmon.invalid\r\n"  # only to tell SMTP from FTP behind a bare "220" greeting


def _mongo_is_master() -> bytes:
    """OP_QUERY {isMaster: 1} on admin.$cmd: the handshake every driver sends (read-only)."""
    doc = b"\x10isMaster\x00" + struct.pack("<i", 1) + b"\x00"
    doc = struct.pack("<i", len(doc) + 4) + doc
    body = struct.pack("<i", 0) + b"admin.$cmd\x00" + struct.pack("<ii", 0, -1) + doc
    return struct.pack("<iiii", 16 + len(body), 0x41534D, 0, 2004) + body


MONGO_PROBE = _mongo_is_master()

# Client-first services on their usual ports: the probe to send at once.
PROBES: dict[int, bytes] = {
    **dict.fromkeys((6379, 6380, 16379, 26379), REDIS_PROBE),
    **dict.fromkeys((5432, 5433), PG_SSL_REQUEST),
    11211: MEMCACHED_PROBE,
    **dict.fromkeys((27017, 27018, 27019), MONGO_PROBE),
    4369: EPMD_NAMES,
    **dict.fromkeys(HTTP_PORTS, HTTP_PROBE),
}

# Well-known services nmap's top 1000 lacks (names used when nothing answers).
_EXTRA_NAMES = {
    1883: "mqtt",
    2375: "docker",
    2376: "docker",
    2379: "etcd",
    4222: "nats",
    4369: "epmd",
    5671: "amqps",
    5672: "amqp",
    6379: "redis",
    6443: "kubernetes",
    8883: "mqtts",
    9092: "kafka",
    11211: "memcached",
    15672: "rabbitmq",
    25672: "erlang-dist",  # RabbitMQ's inter-node port, not AMQP
    26379: "redis-sentinel",
    27017: "mongodb",
}

PORT_NAMES = {port: name for port, name in TOP_PORTS.items() if name} | _EXTRA_NAMES

# Inside TLS: the service's TLS name (an HTTP answer over TLS is https).
_TLS_NAMES = {"http": "https", "imap": "imaps", "pop3": "pop3s", "smtp": "smtps", "ftp": "ftps"}
_REDIS_REPLIES = (
    b"+PONG",
    b"-NOAUTH",
    b"-DENIED",
    b"-WRONGPASS",
    b"-ERR wrong number of arguments",
    b"-ERR unknown command",
    b"-ERR unknown subcommand",
)
_REDIS_LOCKED = (b"-NOAUTH", b"-DENIED", b"-WRONGPASS")  # INFO would get the same answer


def _is_tls_record(data: bytes) -> bool:
    return data[:1] in (b"\x15", b"\x16") and data[1:2] == b"\x03"


def _is_mysql(data: bytes) -> bool:
    """A MySQL/MariaDB packet with sequence 0: the v10 handshake or an error (host not allowed...)."""
    if len(data) < 8 or data[3] != 0:
        return False
    length = int.from_bytes(data[:3], "little")
    return 4 <= length <= 1024 and (data[4] == 10 or data[4] == 0xFF)


def _smtp_or_ftp(port: int, low: bytes) -> str:
    if b"ftp" in low:
        return "ftp"
    if b"smtp" in low or b"mail" in low or port in (25, 465, 587, 2525):
        return "smtp"
    return "ftp" if port in (21, 990) else ""


def identify(port: int, data: bytes) -> str:
    """The service a first reply names, or "" when it names none."""
    head = data[:64]
    low = data[:256].lower()
    if head.startswith(b"SSH-"):
        return "ssh"
    if head.startswith(b"HTTP/"):
        return "http"
    if head.startswith(_REDIS_REPLIES) or (head[:1] == b"$" and b"redis_version:" in data):
        return "redis"
    if head.startswith(b"220"):
        return _smtp_or_ftp(port, low) or "ftp"
    if head.startswith(b"+OK"):
        return "pop3"
    if head.startswith((b"* OK", b"* PREAUTH")):
        return "imap"
    if head.startswith(b"RFB "):
        return "vnc"
    if head.startswith(b"VERSION "):
        return "memcached"
    if head.startswith(b"AMQP"):
        return "amqp"
    if head.startswith(b"INFO {") and b'"server_id"' in data:
        return "nats"
    if head[:1] == b"\xff" and head[1:2] in (b"\xfb", b"\xfc", b"\xfd", b"\xfe"):  # IAC WILL/WONT/DO/DONT
        return "telnet"
    if head[:1] == b"E" and b"SFATAL" in head:  # a PostgreSQL ErrorResponse
        return "postgresql"
    if _is_mysql(head):
        return "mysql"
    if _is_tls_record(head):
        return "https" if port in WEB_PORTS else "ssl"
    return ""


def guess_service(port: int, data: bytes) -> str:
    """Name the service from its first reply, else from the port number."""
    return identify(port, data) or PORT_NAMES.get(port, "")


def _reply_name(port: int, probe: bytes | None, data: bytes) -> str:
    """`identify`, knowing which probe the reply answers (some replies only mean something then)."""
    if probe == PG_SSL_REQUEST and data in (b"S", b"N"):
        return "postgresql"
    if probe == MONGO_PROBE and len(data) >= 16:
        length, _, reply_to, opcode = struct.unpack("<iiii", data[:16])
        if reply_to == 0x41534D and opcode in (1, 2013) and 16 < length < 50_000_000:
            return "mongodb"
    if probe == EPMD_NAMES and len(data) >= 4 and data[:2] == b"\x00\x00" and data[4:9] in (b"", b"name "):
        return "epmd"
    return identify(port, data)


_TELNET_IAC = re.compile(rb"\xff[\xfb-\xfe].|\xff[\xf0-\xfa\xff]", re.DOTALL)


def banner_text(data: bytes, service: str = "") -> str:
    """Printable banner, or "" for replies that are binary noise (TLS alerts)."""
    if _is_tls_record(data) or (service in ("postgresql", "mongodb") and not data.startswith(b"E")):
        return ""
    if _is_mysql(data):  # keep the version (or the error's text)
        data = data[5:].split(b"\x00", 1)[0] if data[4] == 10 else data[7:]
    elif service == "epmd":
        data = data[4:]
    elif service == "telnet":  # the option negotiation is no text
        data = _TELNET_IAC.sub(b"", data)
    elif data.startswith(b"HTTP/"):  # the status line and the server, not the date and the cookies
        lines = data.split(b"\r\n\r\n", 1)[0].split(b"\n")
        server = [line for line in lines[1:] if line.lower().startswith(b"server:")]
        data = b" ".join([lines[0], *server[:1]])
    elif data[:1] == b"$" and b"redis_version:" in data:  # INFO: the version, not the whole report
        data = b"redis_version:" + data.split(b"redis_version:", 1)[1].split(b"\n", 1)[0]
    return clean_text(data, BANNER_LIMIT)


_context_lock = threading.Lock()
_contexts: list[ssl.SSLContext] = []  # the one context, once made


def tls_context() -> ssl.SSLContext:
    """The HTTP scanner's cached no-verify context: one for the whole process
    (building one loads the CA store: ~35 ms of CPU)."""
    with _context_lock:
        if not _contexts:
            from .http import _tls_context  # http imports this module: import it lazily

            _contexts.append(_tls_context(False))
        return _contexts[0]


async def _shared_context() -> ssl.SSLContext:
    """tls_context() without stalling the event loop the first time (an import, a CA store)."""
    return _contexts[0] if _contexts else await asyncio.to_thread(tls_context)


# -- the conversation -----------------------------------------------------------------

_CLOSED = (OSError, EOFError, ssl.SSLError)  # resets, aborts, broken TLS: the peer is gone


@dataclass
class _Talk:
    data: bytes = b""
    ended: str = "silent"  # "data" | "closed" (after our probe) | "hung_up" (before it) | "silent"
    probed: bool = False  # the probe went out before the data came


async def _read(reader: asyncio.StreamReader, wait: float) -> bytes | None:
    """Up to _READ bytes; b"" when the peer closed; None when it said nothing in time."""
    try:
        async with asyncio.timeout(max(0.0, wait)):
            return await reader.read(_READ)
    except TimeoutError:
        return None
    except _CLOSED:
        return b""


async def _talk(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, passive: float, probe: bytes | None, active: float
) -> _Talk:
    if passive > 0:
        data = await _read(reader, passive)
        if data:
            return _Talk(data, "data")
        if data == b"":
            return _Talk(ended="hung_up")
    if probe is None:
        return _Talk()
    try:
        writer.write(probe)
    except _CLOSED:
        return _Talk(ended="closed", probed=True)
    data = await _read(reader, active)
    if data is None:
        return _Talk(probed=True)
    return _Talk(data, "data" if data else "closed", probed=True)


def _close(writer: asyncio.StreamWriter) -> None:
    """Close at once with a reset: no TLS goodbye to wait for, no TIME_WAIT left behind."""
    with contextlib.suppress(OSError):
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


# What a web server says when it gets plain HTTP on a TLS port (nginx, Go, Apache).
_TLS_HINTS = (b"sent to https port", b"to an https server", b"ssl-enabled server port")


class _Grab:
    """One port's banner and service, filled in as the exchanges go (a grab cut
    short by its hard cap keeps what it learnt)."""

    def __init__(self, address: str, port: int, budget: float):
        self.address, self.port, self.budget = address, port, budget
        self.banner = ""
        self.service = ""

    async def run(self) -> None:
        port, budget = self.port, self.budget
        if port in TLS_PORTS and await self.tls():
            return
        probe = PROBES.get(port)
        if probe is not None:  # a client-first service: ask at once
            passive, active = 0.0, budget
        elif port in GREETING_PORTS:
            passive, active, probe = budget, budget / 2, HTTP_PROBE
        else:
            passive, active, probe = budget * PASSIVE_SHARE, budget * (1 - PASSIVE_SHARE), HTTP_PROBE
        async with asyncio.timeout(budget):
            reader, writer = await asyncio.open_connection(self.address, port)
        try:
            talk = await _talk(reader, writer, passive, probe, active)
            if talk.data:
                answered = probe if talk.probed else None
                self.service = _reply_name(port, answered, talk.data) or PORT_NAMES.get(port, "")
                self.banner = banner_text(talk.data, self.service)
                await self.follow_up(reader, writer, talk, answered)
        finally:
            _close(writer)
        if talk.ended == "data":
            low = talk.data[:_READ].lower()
            if (_is_tls_record(talk.data) or any(hint in low for hint in _TLS_HINTS)) and port not in TLS_PORTS:
                await self.tls()
        elif talk.ended == "closed" and (port in TLS_PORTS or not await self.tls()) and probe != PG_SSL_REQUEST:
            await self.postgres()  # closed on our plain text and no TLS: PostgreSQL does that

    async def follow_up(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, talk: _Talk, answered: bytes | None
    ) -> None:
        """One more question on the same connection, when it tells more for little."""
        if self.service == "redis" and answered != REDIS_PROBE and not talk.data.startswith(_REDIS_LOCKED):
            ask = REDIS_PROBE  # the version (still read-only)
        elif talk.data.startswith(b"220") and answered is None and not _smtp_or_ftp(0, talk.data[:256].lower()):
            ask = EHLO  # a bare "220": SMTP answers 250, FTP an error
        else:
            return
        try:
            writer.write(ask)
        except _CLOSED:
            return
        reply = await _read(reader, self.budget / 2)
        if not reply:
            return
        if ask == REDIS_PROBE and b"redis_version:" in reply:
            self.banner = banner_text(reply, "redis")
        elif ask == EHLO and reply[:1] in (b"2", b"5"):
            self.service = "smtp" if reply.startswith(b"250") else "ftp"

    async def tls(self) -> bool:
        """A TLS handshake (the shared context: certificates are not checked, we
        only ask), then the same conversation inside it."""
        budget, port = self.budget, self.port
        context = await _shared_context()  # the first one may take longer than a budget: not the host's doing
        try:
            async with asyncio.timeout(budget):
                reader, writer = await asyncio.open_connection(
                    self.address, port, ssl=context, server_hostname="", ssl_handshake_timeout=budget
                )
        except (*_CLOSED, TimeoutError, ValueError):
            return False
        try:
            passive = 0.0 if port in HTTPS_PORTS else budget * PASSIVE_SHARE
            talk = await _talk(reader, writer, passive, HTTP_PROBE, budget - passive)
        finally:
            _close(writer)
        inner = _reply_name(port, HTTP_PROBE if talk.probed else None, talk.data) if talk.data else ""
        if inner and not _is_tls_record(talk.data):
            self.service = _TLS_NAMES.get(inner, inner)
        elif port in HTTPS_PORTS:
            self.service = "https"
        else:
            self.service = PORT_NAMES.get(port, "ssl") if port in TLS_PORTS else "ssl"
        self.banner = banner_text(talk.data, inner)
        return True

    async def postgres(self) -> None:
        """PostgreSQL closes on anything but its own startup: the SSLRequest it answers with one byte."""
        try:
            async with asyncio.timeout(self.budget):
                reader, writer = await asyncio.open_connection(self.address, self.port)
        except (*_CLOSED, TimeoutError):
            return
        try:
            talk = await _talk(reader, writer, 0.0, PG_SSL_REQUEST, self.budget / 2)
        finally:
            _close(writer)
        if _reply_name(self.port, PG_SSL_REQUEST, talk.data) == "postgresql":
            self.service, self.banner = "postgresql", ""


async def grab(address: str, port: int, timeout: float) -> tuple[str, str]:
    """Return (banner, service) for an open port; never raises (except cancel).
    `timeout` is the budget of a silent port: what one that never answers
    costs in all (1.5x on a talk-first service's port); nothing costs more
    than HARD_CAP budgets."""
    budget = max(0.01, timeout)
    state = _Grab(address, port, budget)
    with contextlib.suppress(*_CLOSED, TimeoutError, ValueError):
        async with asyncio.timeout(budget * HARD_CAP):
            await state.run()
    return state.banner, state.service or PORT_NAMES.get(port, "")
