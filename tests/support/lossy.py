"""A lossy resolver for tests: a UDP DNS proxy on loopback that forwards
queries to an upstream DNS server (FakeDNS, the lab's) and drops a share of
them, the way a loaded machine or a flaky resolver does.

    with FakeDNS(zone) as upstream, LossyProxy(upstream.address, share=0.2, seed=1) as proxy:
        options = DnsOptions(nameservers=[proxy.address], ...)
        ...
        assert proxy.dropped > 0

Which queries are dropped is deterministic: the n-th query that may be
dropped (`only`, default every query) is dropped by a seeded random draw
(`share`) or when n is a multiple of `every`. A dropped query gets no answer
at all, so the client times out. The proxy speaks UDP only (DNS over TCP,
after a truncated answer, goes nowhere); it binds 127.0.0.x only and
forwards to a loopback upstream only.
"""

from __future__ import annotations

import ipaddress
import random
import selectors
import socket
import threading
import time
from collections.abc import Callable

from dnslib import QTYPE, DNSRecord

from assetmon_tui.scanners.dns import host_port

_FORWARD_TIMEOUT = 10.0  # an upstream answer later than this is not relayed


def _question(data: bytes) -> tuple[str, str]:
    try:
        request = DNSRecord.parse(data)
        return str(request.q.qname).rstrip(".").lower(), QTYPE.get(request.q.qtype)
    except Exception:  # dnslib raises several types on garbage; forwarded as it is
        return "", ""


class LossyProxy:
    """UDP DNS proxy dropping a share of the queries (see the module doc).

    share: probability that an eligible query is dropped (seeded: `seed`);
    every: drop every n-th eligible query instead (exactly, no randomness);
    only:  which queries are eligible, by name (e.g. only the brute-force
           words, not the wildcard probes); default all.
    Counters: `received`, `forwarded`, `dropped`; `dropped_queries` lists
    (name, type) of each dropped query, `queries` of each received one.
    """

    def __init__(
        self,
        upstream: str,
        share: float = 0.0,
        *,
        every: int | None = None,
        seed: int = 0,
        only: Callable[[str], bool] | None = None,
        host: str = "127.0.0.1",
    ):
        self.upstream = host_port(upstream)
        if not ipaddress.ip_address(self.upstream[0]).is_loopback or not ipaddress.ip_address(host).is_loopback:
            raise ValueError("the lossy proxy works on loopback only")
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"share must be within 0..1, not {share}")
        if every is not None and every < 1:
            raise ValueError(f"every must be at least 1, not {every}")
        self.share = share
        self.every = every
        self.only = only
        self._rng = random.Random(seed)
        self.received = 0
        self.forwarded = 0
        self.dropped = 0
        self.eligible = 0
        self.queries: list[tuple[str, str]] = []
        self.dropped_queries: list[tuple[str, str]] = []
        self._sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((host, 0))
        self._sock.setblocking(False)
        self.host, self.port = self._sock.getsockname()[:2]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name="lossy-dns")

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def __enter__(self) -> LossyProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()

    def _drop(self, name: str) -> bool:
        if self.only is not None and not self.only(name):
            return False
        self.eligible += 1
        if self.every is not None:
            return self.eligible % self.every == 0
        return self._rng.random() < self.share

    def _serve(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self._sock, selectors.EVENT_READ)
        waiting: dict[socket.socket, tuple[tuple, float]] = {}  # upstream socket -> (client, deadline)
        family = socket.AF_INET6 if ":" in self.upstream[0] else socket.AF_INET
        try:
            while not self._stop.is_set():
                for key, _ in selector.select(0.05):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    if sock is self._sock:
                        try:
                            data, client = sock.recvfrom(65535)
                        except OSError:
                            continue
                        question = _question(data)
                        self.received += 1
                        self.queries.append(question)
                        if self._drop(question[0]):
                            self.dropped += 1
                            self.dropped_queries.append(question)
                            continue
                        up = socket.socket(family, socket.SOCK_DGRAM)  # one per query: no id clashes
                        up.setblocking(False)
                        try:
                            up.sendto(data, self.upstream)
                        except OSError:
                            up.close()
                            continue
                        self.forwarded += 1
                        waiting[up] = (client, time.monotonic() + _FORWARD_TIMEOUT)
                        selector.register(up, selectors.EVENT_READ)
                    else:
                        client, _ = waiting.pop(sock)
                        selector.unregister(sock)
                        try:
                            reply = sock.recv(65535)
                            self._sock.sendto(reply, client)
                        except OSError:
                            pass
                        sock.close()
                now = time.monotonic()
                for up in [s for s, (_, deadline) in waiting.items() if deadline < now]:
                    waiting.pop(up)
                    selector.unregister(up)
                    up.close()
        finally:
            for up in waiting:
                up.close()
            selector.close()
