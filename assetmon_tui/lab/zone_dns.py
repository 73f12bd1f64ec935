"""A DNS server answering from a plain dict zone, on one port for UDP and
TCP (queries, and zone transfers when `axfr` allows them): the breadth
estate's server, and the tests' scripted one.

    zone = {"www.acme.test": {"A": ["127.0.0.2"], "AAAA": ["::1"]},
            "alias.acme.test": {"CNAME": ["www.acme.test"]},
            "acme.test": {"MX": ["10 mail.acme.test"], "TXT": ['"v=spf1 -all"']},
            "_sip._tcp.acme.test": {"SRV": ["10 5 5060 sip.acme.test"]},
            "1.0.0.127.in-addr.arpa": {"PTR": ["host.acme.test"]},
            "broken.acme.test": "SERVFAIL",   # or "REFUSED"
            "slow.acme.test": "DROP",         # never answered
            "*.dyn.acme.test": {"A": ["127.0.0.9"]},   # any name below dyn.acme.test
            "*.lb.acme.test": callable,       # (name, qtype) -> entry, per query
           }

Names not in the zone (nor below a `*.` entry) get NXDOMAIN; CNAMEs are
chased inside the zone like a recursive resolver would. `queries` logs every
(name, type) received, in order; `transfers` counts AXFR requests.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any

from dnslib import AAAA, CNAME, MX, NS, PTR, QTYPE, RCODE, RR, SOA, SRV, TXT, A, DNSRecord

_RDATA = {"A": A, "AAAA": AAAA, "CNAME": CNAME, "NS": NS, "TXT": TXT, "PTR": PTR}


def _rdata(qtype: str, value: str) -> Any:
    if qtype == "MX":
        preference, _, exchange = value.partition(" ")
        return MX(exchange, int(preference))
    if qtype == "SRV":  # "priority weight port target"
        priority, weight, port, target = value.split()
        return SRV(int(priority), int(weight), int(port), target)
    return _RDATA[qtype](value)


class ZoneDNS:
    def __init__(
        self,
        zone: dict[str, Any],
        host: str = "127.0.0.1",
        ttl: int = 300,
        port: int = 0,
        axfr: dict[str, list[str] | None] | None = None,
    ) -> None:
        """`axfr`: zone -> the names a transfer gives (None: refused); zones
        not in it are refused too."""
        self.zone = {k.lower().rstrip("."): v for k, v in zone.items()}
        self.ttl = ttl
        self.axfr = {k.lower().rstrip("."): v for k, v in (axfr or {}).items()}
        self.queries: list[tuple[str, str]] = []  # (name, type) as received
        self.times: list[float] = []  # time.monotonic() of each query
        self.transfers = 0
        self._udp, self._tcp = self._bind(host, port)
        self.host, self.port = self._udp.getsockname()[:2]
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._serve_udp, daemon=True, name="zone-dns-udp"),
            threading.Thread(target=self._serve_tcp, daemon=True, name="zone-dns-tcp"),
        ]

    @staticmethod
    def _bind(host: str, port: int) -> tuple[socket.socket, socket.socket]:
        """UDP and TCP on one port number (as a real server): the TCP port is
        taken first, then the same number for UDP."""
        for _ in range(50):
            tcp = socket.create_server((host, port))
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                udp.bind((host, tcp.getsockname()[1]))
            except OSError:  # that UDP port is someone else's: another pair
                tcp.close()
                udp.close()
                if port:
                    raise
                continue
            for sock in (tcp, udp):
                sock.settimeout(0.05)
            with contextlib.suppress(OSError):  # a brute force's burst waits, as at a real server
                udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
            return udp, tcp
        raise OSError("no port free for both UDP and TCP")

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def __enter__(self) -> ZoneDNS:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(2)
        self._udp.close()
        self._tcp.close()

    def queried_under(self, zone: str) -> list[tuple[str, str]]:
        """The queries received for `zone` or any name below it."""
        zone = zone.lower().rstrip(".")
        return [(n, t) for n, t in list(self.queries) if n == zone or n.endswith("." + zone)]

    def _serve_udp(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self._udp.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            try:
                request = DNSRecord.parse(data)
            except Exception:  # dnslib raises several types on garbage: ignore the packet
                continue
            reply = self._answer(request)
            if reply is not None:
                self._udp.sendto(reply.pack(), peer)

    def _serve_tcp(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._tcp.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                conn.settimeout(2)
                try:
                    size = int.from_bytes(conn.recv(2), "big")
                    request = DNSRecord.parse(conn.recv(size))
                except Exception:
                    continue
                reply = self._transfer(request) if QTYPE[request.q.qtype] == "AXFR" else self._answer(request)
                if reply is not None:
                    data = reply.pack()
                    conn.sendall(len(data).to_bytes(2, "big") + data)

    def _transfer(self, request: DNSRecord) -> DNSRecord:
        apex = str(request.q.qname).rstrip(".").lower()
        self.transfers += 1
        self.queries.append((apex, "AXFR"))
        reply = request.reply()
        names = self.axfr.get(apex)
        if names is None:
            reply.header.rcode = RCODE.REFUSED
            return reply
        soa = RR(apex, QTYPE.SOA, rdata=SOA(f"ns1.{apex}", f"admin.{apex}", (1, 60, 60, 60, 60)), ttl=60)
        reply.add_answer(soa)
        for name in names:
            reply.add_answer(RR(name, QTYPE.A, rdata=A("127.0.0.1"), ttl=60))
        reply.add_answer(soa)
        return reply

    def _entry(self, name: str, qtype: str) -> Any:
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
                    reply.add_answer(RR(name, getattr(QTYPE, qtype), rdata=_rdata(qtype, value), ttl=self.ttl))
            return reply
        return reply
