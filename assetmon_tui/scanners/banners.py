"""Banner grabbing and service guessing for open TCP ports.

Kept deliberately small (nmap -sV is the real thing): read the greeting of
talk-first services, send one tiny probe to the others, and name the service
from the reply or, failing that, from the port number.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl

from assetmon_tui.core.portspec import TOP_PORTS
from assetmon_tui.core.sanitize import clean_text

BANNER_LIMIT = 256
_READ = 1024

# Services that speak first: wait for their greeting, never send anything.
GREETING_PORTS = frozenset({21, 22, 23, 25, 110, 143, 587, 2222, 3306, 5900})
HTTP_PROBE = b"HEAD / HTTP/1.0\r\n\r\n"
PROBES = {6379: b"PING\r\n", 6380: b"PING\r\n", 11211: b"version\r\n"}
WEB_PORTS = frozenset(
    {
        80,
        81,
        443,
        591,
        3000,
        4443,
        5000,
        5601,
        7001,
        8000,
        8008,
        8080,
        8081,
        8088,
        8443,
        8800,
        8880,
        8888,
        9000,
        9090,
        9200,
        9443,
        10443,
    }
)
TLS_WEB_PORTS = frozenset({443, 4443, 8443, 9443, 10443})


# Well-known services nmap's top 1000 lacks (names used when nothing answers).
_EXTRA_NAMES = {
    1883: "mqtt",
    2375: "docker",
    2376: "docker",
    2379: "etcd",
    4222: "nats",
    4369: "epmd",
    5672: "amqp",
    6379: "redis",
    6443: "kubernetes",
    9092: "kafka",
    11211: "memcached",
    15672: "rabbitmq",
    25672: "amqp",
    27017: "mongodb",
}


PORT_NAMES = {port: name for port, name in TOP_PORTS.items() if name} | _EXTRA_NAMES


def guess_service(port: int, data: bytes) -> str:
    """Name the service from its first reply, else from the port number."""
    head = data[:64]
    low = data[:256].lower()
    if head.startswith(b"SSH-"):
        return "ssh"
    if head.startswith(b"HTTP/"):
        return "https" if port in TLS_WEB_PORTS else "http"
    if head.startswith((b"+PONG", b"-NOAUTH", b"-DENIED", b"-ERR wrong number")):
        return "redis"
    if head.startswith(b"220"):
        if b"ftp" in low:
            return "ftp"
        if b"smtp" in low or b"mail" in low or port in (25, 465, 587):
            return "smtp"
        return "ftp" if port == 21 else PORT_NAMES.get(port, "ftp")
    if head.startswith(b"+OK"):
        return "pop3"
    if head.startswith(b"* OK"):
        return "imap"
    if head.startswith(b"RFB "):
        return "vnc"
    if head.startswith(b"VERSION "):
        return "memcached"
    if head.startswith(b"AMQP"):
        return "amqp"
    if len(head) > 5 and head[4] == 10 and head[3] == 0:  # MySQL handshake v10
        return "mysql"
    if head[:1] in (b"\x15", b"\x16") and head[1:2] == b"\x03":  # TLS record
        return "https" if port in WEB_PORTS else "ssl"
    return PORT_NAMES.get(port, "")


def banner_text(data: bytes) -> str:
    """Printable banner, or "" for replies that are binary noise (TLS alerts)."""
    if data[:1] in (b"\x15", b"\x16") and data[1:2] == b"\x03":
        return ""
    if len(data) > 5 and data[4] == 10 and data[3] == 0:  # MySQL: keep the version
        data = data[5:].split(b"\x00", 1)[0]
    return clean_text(data, BANNER_LIMIT)


async def grab(address: str, port: int, timeout: float) -> tuple[str, str]:
    """Return (banner, service) for an open port; never raises (except cancel)."""
    data = b""
    with contextlib.suppress(OSError, TimeoutError, EOFError):
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(address, port)
            try:
                data = await _exchange(reader, writer, port, timeout)
            finally:
                writer.close()
    service = guess_service(port, data)
    if not data and port not in GREETING_PORTS and await _speaks_tls(address, port, timeout):
        service = "https" if port in WEB_PORTS else "ssl"  # a TLS server closes on plain text, silently
    return banner_text(data), service


async def _speaks_tls(address: str, port: int, timeout: float) -> bool:
    """Does a TLS handshake succeed? (certificates are not checked: we only ask)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with contextlib.suppress(OSError, TimeoutError, EOFError, ssl.SSLError):
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(address, port, ssl=context)
            writer.close()
            return True
    return False


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int, timeout: float) -> bytes:
    if port in GREETING_PORTS:
        return await reader.read(_READ)
    probe = PROBES.get(port) or (HTTP_PROBE if port in WEB_PORTS else None)
    if probe is None:
        # Unknown port: listen first; if it stays silent for half the time,
        # try the HTTP probe (many odd ports are web apps).
        try:
            async with asyncio.timeout(timeout / 2):
                return await reader.read(_READ)
        except TimeoutError:
            probe = HTTP_PROBE
    writer.write(probe)
    await writer.drain()
    return await reader.read(_READ)
