"""The lab's DNS server (UDP and TCP, dnslib for the wire format).

It answers authoritatively for every name the estate knows, including the
"provider" names outside the zone (CDN edges), and NXDOMAIN for everything
else, so a dangling CNAME really dangles. CNAME chains are followed inside the
answer the way a recursive resolver would return them. Zone transfers are
refused.

`serve(..., log=QueryLog())` records the (name, type) of every query
received, so a test can tell what a scanner asked (nothing under an excluded
zone, say); no log is kept unless one is given, and it is bounded.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from dnslib import AAAA, CNAME, EDNS0, MX, NS, QTYPE, RCODE, RR, SOA, TXT, A, DNSRecord

if TYPE_CHECKING:
    from .estate import Estate, Record

_RDATA = {"A": A, "AAAA": AAAA, "CNAME": CNAME, "NS": NS, "TXT": TXT}
_MAX_CHAIN = 8
_EDNS_SIZE = 1232


class QueryLog:
    """The (name, type) of the queries a server received, oldest first: the
    last `limit` of them (older ones are forgotten, `total` still counts
    them). Written by the server's loop thread, read from any thread."""

    def __init__(self, limit: int = 100_000) -> None:
        self._entries: deque[tuple[str, str]] = deque(maxlen=max(1, limit))
        self._lock = threading.Lock()
        self.total = 0

    def add(self, name: str, qtype: str) -> None:
        with self._lock:
            self._entries.append((name, qtype))
            self.total += 1

    def entries(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._entries)

    def under(self, zone: str) -> list[tuple[str, str]]:
        """The logged queries for `zone` or a name below it."""
        zone = zone.lower().rstrip(".")
        return [(n, t) for n, t in self.entries() if n == zone or n.endswith("." + zone)]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.total = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


def _rr(owner: str, rec: Record) -> RR:
    if rec.rtype == "MX":
        rdata = MX(rec.value[1], rec.value[0])
    elif rec.rtype == "SOA":
        rdata = SOA(*rec.value)
    else:
        rdata = _RDATA[rec.rtype](rec.value)
    return RR(owner, getattr(QTYPE, rec.rtype), rdata=rdata, ttl=rec.ttl)


def resolve(estate: Estate, request: DNSRecord) -> DNSRecord:
    reply = request.reply()
    qtype = QTYPE.get(request.q.qtype)
    if qtype in ("AXFR", "IXFR"):
        reply.header.rcode = RCODE.REFUSED
        return reply
    soa = [r for r in estate.records[estate.domain] if r.rtype == "SOA"][0]
    name = str(request.q.qname).rstrip(".").lower()
    for _ in range(_MAX_CHAIN):
        records = estate.lookup(name)
        if records is None:
            reply.header.rcode = RCODE.NXDOMAIN
        else:
            cname = next((r for r in records if r.rtype == "CNAME"), None)
            if cname is not None and qtype != "CNAME":
                reply.add_answer(_rr(name, cname))
                name = cname.text.lower()
                continue
            for rec in records:
                if qtype == "ANY" or rec.rtype == qtype:
                    reply.add_answer(_rr(name, rec))
        if (records is None or not reply.rr) and estate.in_zone(name):
            reply.add_auth(_rr(estate.domain, soa))  # negative answers carry the SOA (RFC 2308)
        break
    return reply


def answer(get_estate: Callable[[], Estate], data: bytes, udp: bool, log: QueryLog | None = None) -> bytes | None:
    """Wire in, wire out; None for packets we cannot parse."""
    try:
        request = DNSRecord.parse(data)
    except Exception:  # dnslib raises several types on garbage
        return None
    if request.header.qr or not request.questions:
        return None
    if log is not None:
        log.add(str(request.q.qname).rstrip(".").lower(), str(QTYPE.get(request.q.qtype)))
    reply = resolve(get_estate(), request)
    edns = next((r for r in request.ar if r.rtype == QTYPE.OPT), None)
    if edns is not None:
        reply.add_ar(EDNS0(udp_len=_EDNS_SIZE))
    wire: bytes = reply.pack()
    limit = max(512, min(edns.rclass, _EDNS_SIZE)) if edns is not None else 512
    if udp and len(wire) > limit:  # tell the client to retry over TCP
        reply.rr, reply.auth, reply.header.tc = [], [], 1
        wire = reply.pack()
    return wire


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, get_estate: Callable[[], Estate], log: QueryLog | None = None, latency: float = 0.0) -> None:
        self.get_estate = get_estate
        self.log = log
        self.latency = latency
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # a datagram endpoint's

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        wire = answer(self.get_estate, data, udp=True, log=self.log)
        if wire is not None and self.transport is not None:  # connection_made came first
            if self.latency:  # the answer leaves `latency` seconds later, like over a network
                asyncio.get_running_loop().call_later(self.latency, self._send, wire, addr)
            else:
                self.transport.sendto(wire, addr)

    def _send(self, wire: bytes, addr: tuple[str | Any, int]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(wire, addr)


async def _tcp_connection(
    get_estate: Callable[[], Estate],
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    log: QueryLog | None = None,
    latency: float = 0.0,
) -> None:
    try:
        while True:
            (length,) = struct.unpack(">H", await asyncio.wait_for(reader.readexactly(2), 30))
            wire = answer(get_estate, await reader.readexactly(length), udp=False, log=log)
            if wire is None:
                break
            if latency:
                await asyncio.sleep(latency)
            writer.write(struct.pack(">H", len(wire)) + wire)
            await writer.drain()
    except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def serve(
    get_estate: Callable[[], Estate],
    udp_sock: socket.socket,
    tcp_sock: socket.socket,
    log: QueryLog | None = None,
    latency: float = 0.0,
) -> tuple[asyncio.DatagramTransport, asyncio.Server]:
    """Start UDP and TCP on pre-bound sockets; returns (udp transport, tcp
    server). Queries over both are recorded in `log` when one is given; every
    answer is sent `latency` seconds after its query came (0: at once)."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: _UdpProtocol(get_estate, log, latency), sock=udp_sock)
    server = await asyncio.start_server(lambda r, w: _tcp_connection(get_estate, r, w, log, latency), sock=tcp_sock)
    return transport, server
