"""The brute force's UDP resolver (scanners/udp_resolver.py) against loopback
servers: the fake DNS server (answers as dnspython reads them), the lossy proxy
(retries), hostile servers (wrong ids, other questions, garbage, cut and huge
answers, a forger on another port), TC answers asked again over TCP, the pace
(a rate ceiling counted at the server, back-off on SERVFAIL and timeouts and
the recovery after them), and the brute force on top of it (wildcards still
fail closed on hostile answers)."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Callable

import pytest
from dnslib import QTYPE, RR, A, DNSRecord
from support.dns_reference import make_resolver, resolve_one
from support.loopback import FakeDNS
from support.lossy import LossyProxy

from assetmon_tui.core.config import SettingsError
from assetmon_tui.scanners.dns import DnsOptions
from assetmon_tui.scanners.subdomains import SubdomainOptions, discover
from assetmon_tui.scanners.udp_resolver import UdpResolver, encode_name, parse_answers

pytestmark = pytest.mark.one_store  # the store is not what this tests: the SQLite pass is enough

ZONE = {
    "www.acme.test": {"A": ["127.0.0.2", "127.0.0.3"], "AAAA": ["::1"]},
    "v6.acme.test": {"AAAA": ["::1"]},
    "alias.acme.test": {"CNAME": ["hop.acme.test"]},
    "hop.acme.test": {"CNAME": ["www.acme.test"]},
    "dangling.acme.test": {"CNAME": ["gone.acme.test"]},
    "acme.test": {"MX": ["10 mail.acme.test"], "TXT": ["v=spf1 \x1b]52;c;aGk=\x07 -all"], "NS": ["ns1.acme.test"]},
    "txtonly.acme.test": {"TXT": ["hello"]},
    "broken.acme.test": "SERVFAIL",
    "refused.acme.test": "REFUSED",
    "slow.acme.test": "DROP",
    "*.wild.acme.test": {"A": ["127.0.0.9"]},
}


async def until(condition: Callable[[], object], timeout: float = 20.0, what: str = "condition") -> None:
    """Wait for `condition()` to hold (polling the event loop), at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)


# ---- what it finds: dnspython's results ----------------------------------------------------


async def test_results_are_dnspythons():
    names = [
        "www.acme.test",
        "WWW.Acme.Test.",
        "v6.acme.test",
        "alias.acme.test",
        "dangling.acme.test",
        "acme.test",
        "txtonly.acme.test",
        "broken.acme.test",
        "refused.acme.test",
        "slow.acme.test",
        "nope.acme.test",
        "x.wild.acme.test",
        "bad..acme.test",
        "x" * 64 + ".acme.test",
    ]
    with FakeDNS(ZONE) as server:
        reference = make_resolver(DnsOptions(nameservers=[server.address], timeout=0.3, retries=0))
        async with UdpResolver([server.address], timeout=0.3, retries=0) as ours:
            for name in names:
                for rtypes in (("A", "AAAA"), ("MX", "TXT", "NS"), ("CNAME",)):
                    expected = await resolve_one(reference, name, rtypes)
                    assert await ours.resolve(name, rtypes) == expected, (name, rtypes)


async def test_one_query_for_a_missing_name_and_both_types_for_one_that_exists():
    with FakeDNS(ZONE) as server:
        async with UdpResolver([server.address], timeout=1.0, retries=0) as resolver:
            assert (await resolver.resolve("nope.acme.test", ("A", "AAAA"))).status == "nxdomain"
            result = await resolver.resolve("v6.acme.test", ("A", "AAAA"))
            assert result.status == "ok" and result.addresses == ["::1"]  # NODATA for A, then AAAA
        assert server.queries == [("nope.acme.test", "A"), ("v6.acme.test", "A"), ("v6.acme.test", "AAAA")]


async def test_query_ids_are_random_and_one_socket_is_shared():
    seen: list[tuple[int, int]] = []

    def record(data: bytes, peer: tuple, sock: socket.socket) -> list[bytes]:
        seen.append((int.from_bytes(data[:2], "big"), peer[1]))
        return [real_answer(data)]

    with HostileDNS(record) as server:
        async with UdpResolver([server.address], timeout=5.0, retries=0) as resolver:
            results = await asyncio.gather(*(resolver.resolve(f"n{i}.acme.test", ("A",)) for i in range(300)))
    assert {r.status for r in results} == {"ok"}
    ids = [qid for qid, _ in seen]
    assert len(set(ids)) > 280  # random 16-bit ids (a few may repeat once answered)
    assert sorted(ids) != ids and ids != list(range(ids[0], ids[0] + 300))
    assert len({port for _, port in seen}) == 1  # one socket for all of them


def test_names_that_cannot_be_asked():
    assert encode_name("www.acme.test") == b"\x03www\x04acme\x04test\x00"
    assert encode_name("WWW.acme.test") == b"\x03www\x04acme\x04test\x00"
    for bad in ("", "a..b", "x" * 64 + ".test", "a b.test", "a\\.b.test", "é.test", ".".join(["abcdefg"] * 40)):
        assert encode_name(bad) is None, bad


# ---- retries through a lossy resolver ----------------------------------------------------------


async def test_lost_queries_are_asked_again_within_the_retries():
    zone = {f"h{i}.lossy.test": {"A": [f"127.0.0.{i + 1}"]} for i in range(20)}
    names = [f"h{i}.lossy.test" for i in range(20)] + [f"none{i}.lossy.test" for i in range(20)]
    seen: set[str] = set()

    def first_time(name: str) -> bool:  # each name's first query is lost
        fresh = name not in seen
        seen.add(name)
        return fresh

    with FakeDNS(zone) as server, LossyProxy(server.address, share=1.0, only=first_time) as proxy:
        async with UdpResolver([proxy.address], timeout=0.3, retries=1) as resolver:
            results = await asyncio.gather(*(resolver.resolve(n, ("A",)) for n in names))
            stats = resolver.stats()[0]
    assert [r.status for r in results] == ["ok"] * 20 + ["nxdomain"] * 20
    assert proxy.dropped == 40 and proxy.forwarded == 40  # each name asked twice: lost, then answered
    assert stats.sent == 80 and stats.timeouts == 40 and stats.answered == 40


async def test_a_lost_query_is_asked_again_after_a_round_trip_not_the_timeout():
    """Once round trips are measured (loopback: well under a millisecond), a
    query not answered within the RTO (0.1 s at least) is sent again while the
    first stays open: 100 lookups whose first query is lost take a fraction of
    the 2 s timeout, not the timeout each."""
    zone = {f"w{i}.rto.test": {"A": ["127.0.0.2"]} for i in range(20)}
    seen: set[str] = set()

    def first_time(name: str) -> bool:
        fresh = name.startswith("lost") and name not in seen
        seen.add(name)
        return fresh

    with FakeDNS(zone) as server, LossyProxy(server.address, share=1.0, only=first_time) as proxy:
        async with UdpResolver([proxy.address], timeout=2.0, retries=2) as resolver:
            for i in range(20):  # round trips to learn from
                assert (await resolver.resolve(f"w{i}.rto.test", ("A",))).status == "ok"
            assert resolver.stats()[0].rto < 0.5
            started = time.monotonic()
            results = await asyncio.gather(*(resolver.resolve(f"lost{i}.rto.test", ("A",)) for i in range(100)))
            elapsed = time.monotonic() - started
            stats = resolver.stats()[0]
    assert [r.status for r in results] == ["nxdomain"] * 100
    assert proxy.dropped == 100 and stats.resent == 100, stats
    assert elapsed < 1.0, elapsed  # each waited the RTO, then the second attempt's round trip


async def test_an_answer_to_an_earlier_attempt_still_wins():
    """A server that answers a name's first query late (0.6 s, past the RTO)
    and never its repeats: the late answer is taken, the first query's id was
    kept open while the repeats went out."""
    asked: dict[bytes, int] = {}

    def late_once(query: bytes, peer: tuple, sock: socket.socket) -> list[bytes]:
        question = query[12:]
        asked[question] = asked.get(question, 0) + 1
        if b"warm" in question:
            return [real_answer(query)]
        if asked[question] == 1:
            threading.Timer(0.6, sock.sendto, (real_answer(query, "127.0.0.8"), peer)).start()
        return []

    with HostileDNS(late_once) as server:
        async with UdpResolver([server.address], timeout=2.0, retries=2) as resolver:
            for i in range(10):
                await resolver.resolve(f"warm{i}.late.test", ("A",))
            started = time.monotonic()
            result = await resolver.resolve("slow.late.test", ("A",))
            elapsed = time.monotonic() - started
            stats = resolver.stats()[0]
    assert result.status == "ok" and [r.value for r in result.records] == ["127.0.0.8"]
    assert max(asked.values()) >= 2 and stats.resent >= 1  # repeats went out before the answer came
    assert 0.55 < elapsed < 1.5, elapsed


async def test_retries_are_bounded_and_a_timeout_is_quick():
    with FakeDNS(ZONE) as server:
        async with UdpResolver([server.address], timeout=0.2, retries=2) as resolver:
            started = time.monotonic()
            result = await resolver.resolve("slow.acme.test", ("A", "AAAA"))
            elapsed = time.monotonic() - started
    assert result.status == "timeout" and result.records == []
    assert server.queries == [("slow.acme.test", "A")] * 3  # three tries, and no AAAA for a name that never answers
    assert 0.55 < elapsed < 3.0


async def test_servfail_goes_to_the_next_nameserver():
    with FakeDNS({"www.two.test": "SERVFAIL"}) as bad, FakeDNS({"www.two.test": {"A": ["127.0.0.5"]}}) as good:
        async with UdpResolver([bad.address, good.address], timeout=1.0, retries=1) as resolver:
            results = [await resolver.resolve("www.two.test", ("A",)) for _ in range(4)]
    assert {r.status for r in results} == {"ok"}  # whichever it asked first
    assert len(bad.queries) + len(good.queries) <= 6


async def test_after_a_failing_answer_the_next_nameserver_is_asked_at_once():
    """A silent server, then one that fails, then one that answers: the third is
    asked as soon as the second fails, not when the first times out; without
    the third, the failure said is the answer's (SERVFAIL), not the silence."""
    zone_bad, zone_ok = {"www.three.test": "SERVFAIL"}, {"www.three.test": {"A": ["127.0.0.5"]}}
    with FakeDNS({"www.three.test": "DROP"}) as silent, FakeDNS(zone_bad) as bad, FakeDNS(zone_ok) as good:
        async with UdpResolver([silent.address, bad.address, good.address], timeout=3.0, retries=2) as resolver:
            started = time.monotonic()
            result = await resolver.resolve("www.three.test", ("A",))
            elapsed = time.monotonic() - started
        assert result.status == "ok" and elapsed < 2.5, (result, elapsed)  # the first RTO is 1 s
        async with UdpResolver([silent.address, bad.address], timeout=1.0, retries=2) as resolver:
            assert (await resolver.resolve("www.three.test", ("A",))).status == "servfail"


async def test_a_failing_zone_costs_one_query_a_name():
    """One nameserver, SERVFAIL: asking it again would get its cached failure,
    and the other types would fail alike (before: 3 types x 3 attempts each)."""
    with FakeDNS({"www.broken.test": "SERVFAIL"}) as server:
        async with UdpResolver([server.address], timeout=1.0, retries=2) as resolver:
            result = await resolver.resolve("www.broken.test", ("A", "AAAA", "CNAME"))
    assert result.status == "servfail" and result.records == []
    assert server.queries == [("www.broken.test", "A")]


# ---- hostile servers ---------------------------------------------------------------------


Behaviour = Callable[[bytes, tuple, socket.socket], list[bytes]]


class HostileDNS:
    """A UDP DNS server whose `behaviour(query, peer, sock)` gives the datagrams
    to send back, in order (nothing: no answer). Loopback only. A TCP listener
    on the same port answers with `tcp(query)` when given."""

    def __init__(self, behaviour: Behaviour, tcp: Callable[[bytes], bytes] | None = None):
        self.behaviour = behaviour
        self.tcp_answer = tcp
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)  # room for a burst of queries
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.listener: socket.socket | None = None
        if tcp is not None:
            self.listener = socket.create_server(("127.0.0.1", self.port))
            self.listener.settimeout(0.05)
        self.received = 0
        self.tcp_queries = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._serve, daemon=True)]
        if self.listener is not None:
            self._threads.append(threading.Thread(target=self._serve_tcp, daemon=True))

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> HostileDNS:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(2)
        self.sock.close()
        if self.listener is not None:
            self.listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            self.received += 1
            for reply in self.behaviour(data, peer, self.sock):
                self.sock.sendto(reply, peer)

    def _serve_tcp(self) -> None:
        assert self.listener is not None and self.tcp_answer is not None
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                conn.settimeout(2)
                try:
                    size = int.from_bytes(conn.recv(2), "big")
                    data = b""
                    while len(data) < size:
                        data += conn.recv(size - len(data))
                    self.tcp_queries += 1
                    reply = self.tcp_answer(data)
                    conn.sendall(len(reply).to_bytes(2, "big") + reply)
                except OSError:
                    pass


def real_answer(query: bytes, address: str = "127.0.0.7") -> bytes:
    request = DNSRecord.parse(query)
    reply = request.reply()
    if QTYPE[request.q.qtype] == "A":
        reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(address), ttl=60))
    return bytes(reply.pack())


def _with_id(packet: bytes, qid: int) -> bytes:
    return qid.to_bytes(2, "big") + packet[2:]


def hostile_answers(query: bytes) -> list[bytes]:
    """Every way an answer can be wrong, each for this very query's id."""
    real = real_answer(query)
    qid = int.from_bytes(query[:2], "big")
    request = DNSRecord.parse(query)
    other = DNSRecord.question("other.acme.test", "A")
    other.header.id = qid
    other_reply = other.reply()
    other_reply.add_answer(RR("other.acme.test", QTYPE.A, rdata=A("127.0.0.66"), ttl=60))
    aaaa = DNSRecord.question(str(request.q.qname), "AAAA")
    aaaa.header.id = qid
    question_end = 12 + len(encode_name(str(request.q.qname).rstrip(".")) or b"") + 4
    header = bytearray(real[:12])
    header[6:8] = b"\x00\x01"  # one answer...
    loop = bytes(header) + real[12:question_end] + b"\xc0" + bytes([question_end]) + b"\x00\x01\x00\x01" + b"\x00" * 6
    huge = bytearray(real[:question_end])
    huge[6:8] = b"\xff\xff"
    huge += os.urandom(65000 - len(huge))
    wrong_size = bytearray(real)
    wrong_size[-6:-4] = b"\x00\x05"  # A rdata of 5 bytes: past the end
    return [
        b"",  # empty
        b"\x12\x34\x81",  # shorter than a header
        os.urandom(300),  # garbage (its id is random too)
        _with_id(real, qid ^ 0x5A5A),  # another id
        bytes(other_reply.pack()),  # our id, another name
        bytes(aaaa.reply().pack()),  # our id and name, another type
        query,  # not a response (QR clear)
        _with_id(bytes(DNSRecord.question("a.b", "A").reply().pack()), qid)[:12] + b"\x00" * 5,  # question cut
        real[:-3],  # answer cut in its data
        real[: question_end + 5],  # answer cut in its header
        loop,  # a compression pointer pointing at itself
        bytes(huge),  # 65,000 bytes claiming 65,535 answers
        bytes(wrong_size),
    ]


async def test_hostile_answers_never_crash_nor_answer():
    """Nothing but wrong answers: every lookup times out, none gives a name."""

    def behaviour(data: bytes, peer: tuple, sock: socket.socket) -> list[bytes]:
        return hostile_answers(data)

    with HostileDNS(behaviour) as server:
        async with UdpResolver([server.address], timeout=0.5, retries=1) as resolver:
            results = await asyncio.gather(*(resolver.resolve(f"w{i}.acme.test", ("A", "AAAA")) for i in range(20)))
            stats = resolver.stats()[0]
    assert {(r.status, len(r.records)) for r in results} == {("timeout", 0)}
    assert stats.sent == 40 and stats.timeouts == 40 and stats.answered == 0
    assert stats.ignored >= 40 * 11  # (the empty datagrams may not even arrive as such)


async def test_the_true_answer_still_wins_after_hostile_ones():
    def behaviour(data: bytes, peer: tuple, sock: socket.socket) -> list[bytes]:
        return [*hostile_answers(data), real_answer(data)]

    with HostileDNS(behaviour) as server:
        async with UdpResolver([server.address], timeout=5.0, retries=0) as resolver:
            results = await asyncio.gather(*(resolver.resolve(f"w{i}.acme.test", ("A",)) for i in range(20)))
    assert {(r.status, tuple(r.addresses)) for r in results} == {("ok", ("127.0.0.7",))}


async def test_a_forger_on_another_port_is_not_heard():
    """An off-path forger who knows the id and the question but answers from
    another address: the connected socket never delivers it."""
    forger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    forger.bind(("127.0.0.1", 0))
    forged = threading.Event()

    def behaviour(data: bytes, peer: tuple, sock: socket.socket) -> list[bytes]:
        forger.sendto(real_answer(data, "127.0.0.66"), peer)  # first, with the right id and question
        forged.set()
        return [real_answer(data)]

    try:
        with HostileDNS(behaviour) as server:
            async with UdpResolver([server.address], timeout=2.0, retries=0) as resolver:
                result = await resolver.resolve("www.acme.test", ("A",))
    finally:
        forger.close()
    assert forged.is_set() and result.addresses == ["127.0.0.7"]


async def test_truncated_answers_are_asked_again_over_tcp():
    def udp(data: bytes, peer: tuple, sock: socket.socket) -> list[bytes]:
        reply = DNSRecord.parse(data).reply()
        reply.header.tc = 1
        return [bytes(reply.pack())]

    def tcp(data: bytes) -> bytes:
        request = DNSRecord.parse(data)
        reply = request.reply()
        for i in range(60):  # too many for 512 bytes
            reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(f"127.0.1.{i + 1}"), ttl=60))
        return bytes(reply.pack())

    with HostileDNS(udp, tcp) as server:
        async with UdpResolver([server.address], timeout=2.0, retries=0) as resolver:
            result = await resolver.resolve("big.acme.test", ("A",))
            stats = resolver.stats()[0]
    assert result.status == "ok" and len(result.addresses) == 60
    assert server.tcp_queries == 1 and stats.truncated == 1


def test_parse_answers_bounds():
    query = DNSRecord.question("www.acme.test", "A")
    wire = bytes(query.reply().pack())
    assert parse_answers(wire, len(wire), 0) == []
    for count in (1, 1000, 65535):
        with pytest.raises(Exception, match="cut|past the end"):
            parse_answers(wire, len(wire), count)


# ---- the pace -------------------------------------------------------------------------------


def most_in_a_second(times: list[float]) -> int:
    """The most queries the server received within any one second."""
    ordered = sorted(times)
    most, start = 0, 0
    for end, t in enumerate(ordered):
        while t - ordered[start] >= 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


async def test_the_rate_ceiling_holds_at_each_server():
    """40 queries a second to each of two servers: 160 lookups take about two
    seconds (the two are paced apart), never faster, and no second of either
    server's log holds many more than 40."""
    with FakeDNS({}) as one, FakeDNS({}) as two:
        async with UdpResolver([one.address, two.address], timeout=2.0, retries=0, rate=40) as resolver:
            started = time.monotonic()
            results = await asyncio.gather(*(resolver.resolve(f"n{i}.rate.test", ("A",)) for i in range(160)))
            elapsed = time.monotonic() - started
            stats = resolver.stats()
    assert {r.status for r in results} == {"nxdomain"}
    assert len(one.queries) == len(two.queries) == 80
    assert elapsed > 1.9  # 80 queries at 40 a second, at each server at once
    # (a server thread that stalls on a loaded machine logs a few late ones together)
    assert max(most_in_a_second(one.times), most_in_a_second(two.times)) <= 40 * 1.5
    assert [s.ceiling for s in stats] == [40, 40] and all(s.limit == 40 for s in stats)


async def drive(resolver: UdpResolver, names: Callable[[int], str], workers: int, stop: asyncio.Event) -> None:
    """Lookups without end (until `stop`), `workers` at a time."""
    counter = iter(range(10**9))

    async def worker() -> None:
        while not stop.is_set():
            await resolver.resolve(names(next(counter)), ("A",))

    await asyncio.gather(*(worker() for _ in range(workers)))


@pytest.mark.parametrize("failure", ["SERVFAIL", "DROP"])
async def test_back_off_on_failures_and_recovery(failure):
    """A server that fails (SERVFAIL, or no answer) while it is overloaded:
    the pace drops below the ceiling soon after the failures start, the server
    sees fewer queries, and the pace climbs back to the ceiling once they stop."""
    state = {"failing": False}

    def entry(name: str, qtype: str) -> str | None:
        return failure if state["failing"] else "NXDOMAIN"

    ceiling = 400
    with FakeDNS({"*.pace.test": entry}) as server:
        async with UdpResolver([server.address], timeout=0.25, retries=0, rate=ceiling) as resolver:
            resolver.servers()  # (made by the first query otherwise)
            stop = asyncio.Event()
            task = asyncio.create_task(drive(resolver, lambda i: f"n{i}.pace.test", 40, stop))
            try:
                await until(lambda: resolver.stats()[0].answered > 300, what="a healthy start")
                assert resolver.stats()[0].backoffs == 0 and resolver.stats()[0].limit == ceiling
                state["failing"] = True
                await until(lambda: resolver.stats()[0].backoffs >= 2, what="back-off")
                stats = resolver.stats()[0]
                assert stats.limit is not None and stats.limit <= ceiling / 4 and stats.lowest == stats.limit
                # At the lowered pace, the server sees far fewer queries than the ceiling.
                mark = len(server.times)
                await until(lambda: len(server.times) >= mark + 10, what="queries at the lower pace")
                start = time.monotonic()
                await until(lambda: time.monotonic() - start > 1.0, what="a second at the lower pace")
                recent = [t for t in server.times[mark:] if t >= start]
                assert len(recent) < ceiling / 2, len(recent)
                state["failing"] = False
                await until(lambda: resolver.stats()[0].limit == ceiling, timeout=30, what="recovery to the ceiling")
            finally:
                stop.set()
                await task
            stats = resolver.stats()[0]
    assert stats.backoffs >= 2 and stats.lowest is not None and stats.lowest < ceiling


async def test_no_ceiling_backs_off_and_returns_to_no_limit():
    state = {"failing": False}

    def entry(name: str, qtype: str) -> str:
        return "SERVFAIL" if state["failing"] else "NXDOMAIN"

    with FakeDNS({"*.pace.test": entry}) as server:
        async with UdpResolver([server.address], timeout=0.5, retries=0) as resolver:
            resolver.servers()  # (made by the first query otherwise)
            stop = asyncio.Event()
            task = asyncio.create_task(drive(resolver, lambda i: f"n{i}.pace.test", 20, stop))
            try:
                await until(lambda: resolver.stats()[0].answered > 200, what="a healthy start")
                assert resolver.stats()[0].limit is None
                state["failing"] = True
                await until(lambda: resolver.stats()[0].limit is not None, what="back-off")
                state["failing"] = False
                await until(lambda: resolver.stats()[0].limit is None, timeout=40, what="no limit again")
            finally:
                stop.set()
                await task
    assert resolver.stats() == []  # closed


async def test_losses_that_do_not_follow_the_pace_do_not_slow_it():
    """A line that loses 30 % of queries whatever is sent: the cut they cause
    changes nothing, so the pace goes back and the share is the line's noise;
    retries get the names through at speed (paced down, 2,000 lookups and
    their retries would take minutes at the floor of 20 a second). Losses are
    known a timeout after the answers: a burst is judged with both."""
    with FakeDNS({}) as server, LossyProxy(server.address, share=0.3, seed=7) as proxy:
        async with UdpResolver([proxy.address], timeout=1.0, retries=3) as resolver:
            slots = asyncio.Semaphore(200)

            async def one(name: str):
                async with slots:
                    return await resolver.resolve(name, ("A",))

            results = await asyncio.gather(*(one(f"n{i}.noisy.test") for i in range(2000)))
            stats = resolver.stats()[0]
    assert sum(r.status == "nxdomain" for r in results) >= 1900  # (0.3 ** 4 of them are lost four times)
    assert proxy.dropped > 500
    assert 0.15 < stats.noise < 0.45, stats
    assert stats.backoffs <= 2 and stats.average > 150, stats  # paced down, 6 cuts and 110 a second


async def test_a_few_failures_do_not_slow_it():
    """One SERVFAIL name in fifty is the zone's, not the server's load: no back-off."""
    zone = {f"bad{i}.few.test": "SERVFAIL" for i in range(0, 400, 50)}
    with FakeDNS(zone) as server:
        async with UdpResolver([server.address], timeout=1.0, retries=0) as resolver:
            names = [f"bad{i}.few.test" if i % 50 == 0 else f"n{i}.few.test" for i in range(400)]
            results = [await resolver.resolve(n, ("A",)) for n in names]
            stats = resolver.stats()[0]
    assert sum(r.status == "servfail" for r in results) == 8
    assert stats.backoffs == 0 and stats.limit is None


async def test_refusals_are_not_load():
    """REFUSED is a server's policy for a zone it does not serve (reverse
    lookups asked of an authoritative server): a burst of them is no reason to
    slow the brute force down, as a burst of SERVFAIL is."""
    zone = {f"r{i}.ref.test": "REFUSED" for i in range(200)}
    with FakeDNS(zone) as server:
        async with UdpResolver([server.address], timeout=1.0, retries=0) as resolver:
            names = [f"r{i}.ref.test" for i in range(200)] + [f"n{i}.ref.test" for i in range(200)]
            results = await asyncio.gather(*(resolver.resolve(n, ("A",)) for n in names))
            stats = resolver.stats()[0]
    assert [r.status for r in results] == ["error"] * 200 + ["nxdomain"] * 200
    assert stats.servfails == 200 and stats.backoffs == 0 and stats.limit is None, stats


async def test_servfail_for_reverse_lookups_is_not_load():
    """A recursive resolver answers SERVFAIL for a reverse zone whose
    delegation is broken (common on the internet): a burst of PTR lookups
    failing so is no reason to slow the brute force, as a burst of SERVFAIL
    for forward names is (test_back_off_on_failures_and_recovery)."""
    zone = {f"{i}.2.0.192.in-addr.arpa": "SERVFAIL" for i in range(200)}
    with FakeDNS(zone) as server:
        async with UdpResolver([server.address], timeout=1.0, retries=0) as resolver:
            ptrs = [resolver.query(f"{i}.2.0.192.in-addr.arpa", "PTR") for i in range(200)]
            names = [resolver.query(f"n{i}.rev.test", "A") for i in range(200)]
            results = await asyncio.gather(*ptrs, *names)
            stats = resolver.stats()[0]
    assert [status for status, _ in results] == ["servfail"] * 200 + ["nxdomain"] * 200
    assert stats.servfails == 200 and stats.backoffs == 0 and stats.limit is None, stats


async def test_answers_that_came_while_the_process_was_busy_are_not_timeouts():
    """A worker's loop held up by its own work (parsing, a slow callback)
    longer than the timeout: the answers wait in the socket's queue, and are
    all read before any query is called timed out (else our own load would
    look like the server's, and cut the pace). More than one read's worth
    (512) wait."""
    with FakeDNS({}) as server:
        async with UdpResolver([server.address], timeout=0.5, retries=0) as resolver:
            tasks = [asyncio.create_task(resolver.resolve(f"b{i}.busy.test", ("A",))) for i in range(900)]
            while not (resolver.stats() and resolver.stats()[0].sent == 900):
                await asyncio.sleep(0)  # each lookup's first step sends its query (no pace to wait for)
            time.sleep(1.0)  # the loop is blocked: nothing read, no timer run
            results = await asyncio.gather(*tasks)
            stats = resolver.stats()[0]
    assert len(server.queries) >= 880  # (the lab's server may drop a few of a burst)
    assert sum(r.status == "nxdomain" for r in results) == len(server.queries), stats
    assert stats.timeouts == 900 - len(server.queries), stats


async def test_cancelled_lookups_leave_nothing_behind():
    with FakeDNS(ZONE) as server:
        resolver = UdpResolver([server.address], timeout=5.0, retries=3)
        tasks = [asyncio.create_task(resolver.resolve("slow.acme.test", ("A",))) for _ in range(20)]
        await until(lambda: len(server.queries) >= 20, what="the queries")
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(r, asyncio.CancelledError) for r in results)
        assert all(not s.pending for s in resolver.servers())
        resolver.close()
        assert resolver.stats() == []


async def test_cancelled_lookups_are_no_losses():
    """Lookups given up (a cancelled scan, a caller's own deadline) were not
    lost by the server: their attempts are no timeouts and cut no pace."""
    with FakeDNS({f"n{i}.slow.acme.test": "DROP" for i in range(100)}) as server:
        async with UdpResolver([server.address], timeout=0.3, retries=0) as resolver:
            tasks = [asyncio.create_task(resolver.resolve(f"n{i}.slow.acme.test", ("A",))) for i in range(100)]
            await until(lambda: resolver.stats() and resolver.stats()[0].sent == 100, what="the queries")
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            (state,) = resolver.servers()
            await until(lambda: not state.deadlines, what="the attempts' deadlines to pass")
            stats = resolver.stats()[0]
    assert stats.timeouts == 0 and stats.backoffs == 0 and stats.limit is None, stats


# ---- the brute force on it ----------------------------------------------------------------


def wordlist(tmp_path, words: list[str]) -> str:
    path = tmp_path / "words.txt"
    path.write_text("\n".join(words) + "\n")
    return str(path)


async def test_a_wildcard_hidden_behind_hostile_answers_fails_closed(tmp_path):
    """The zone answers every name (a wildcard) but the random probes get only
    hostile datagrams: the wildcard is unknown, so no word is even asked."""
    words = ["www", "api", "mail", "vpn"]
    asked: list[str] = []

    def behaviour(data: bytes, peer: tuple, sock: socket.socket) -> list[bytes]:
        name = str(DNSRecord.parse(data).q.qname).rstrip(".")
        asked.append(name)
        if name == "hostile.test" or name.split(".")[0] in words:
            return [real_answer(data)]
        return hostile_answers(data)

    reports: list[tuple[str, str, str]] = []
    with HostileDNS(behaviour) as server:
        options = SubdomainOptions(
            ct=False,
            san=False,
            tools=(),
            wordlist_path=wordlist(tmp_path, words),
            dns=DnsOptions(nameservers=[server.address], rtypes=("A", "AAAA"), timeout=0.3, retries=0),
            report=lambda *r: reports.append(r),
        )
        found = [f async for f in discover(["hostile.test"], options, lambda n: True)]
    assert found == []
    reason = "wildcard status unknown: 5 of 5 probes unanswered (timeout) after 3 tries"
    assert reports == [("wordlist hostile.test", "skipped", reason)]
    assert not any(n.split(".")[0] in words for n in asked)


async def test_brute_force_reports_its_pace(tmp_path):
    zone = {"pace.test": {"A": ["127.0.0.10"]}, "www.pace.test": {"A": ["127.0.0.11"]}}
    paces = []
    with FakeDNS(zone) as server:
        options = SubdomainOptions(
            ct=False,
            san=False,
            tools=(),
            wordlist_path=wordlist(tmp_path, ["www", "api", "mail"]),
            dns=DnsOptions(nameservers=[server.address], rtypes=("A", "AAAA"), timeout=1.0, retries=0),
            dns_rate=500,
            dns_pace=paces.append,
        )
        found = [f async for f in discover(["pace.test"], options, lambda n: True)]
        queries = len(server.queries)
    assert {(f.name, f.source) for f in found} == {("www.pace.test", "wordlist")}
    [last] = paces[-1]  # one nameserver; the last call comes when the run ends
    assert last.address == server.address and last.sent == queries and last.ceiling == 500 and last.limit == 500


async def test_brute_force_is_fast_on_loopback(tmp_path):
    """2,000 words against the fake server: the lookups are not what takes
    time (dnspython's resolver took ~0.7 ms of CPU per query)."""
    words = [f"w{i}" for i in range(2000)]
    zone = {f"w{i}.fast.test": {"A": ["127.0.0.11"]} for i in range(0, 2000, 100)}
    with FakeDNS(zone) as server:
        options = SubdomainOptions(
            ct=False,
            san=False,
            tools=(),
            recursive_depth=0,
            wordlist_path=wordlist(tmp_path, words),
            dns=DnsOptions(nameservers=[server.address], rtypes=("A", "AAAA"), timeout=2.0, retries=2),
        )
        cpu = time.thread_time()  # this thread's: the event loop's, not the fake server's
        found = [f async for f in discover(["fast.test"], options, lambda n: True)]
        cpu = time.thread_time() - cpu
    assert {f.name for f in found} == {f"w{i}.fast.test" for i in range(0, 2000, 100)}
    assert cpu / 2000 < 0.00035, cpu  # per lookup (ours: ~0.03 ms; with dnspython: ~0.7 ms)


async def test_a_nameserver_that_cannot_be_used_is_left_out():
    with FakeDNS(ZONE) as server:
        async with UdpResolver(["[::1]:bad", server.address], timeout=1.0, retries=0) as resolver:
            assert (await resolver.resolve("www.acme.test", ("A",))).status == "ok"
            assert [s.address for s in resolver.stats()] == [server.address]
    async with UdpResolver(["[::1]:bad", "\x1b[31m:53"], timeout=1.0, retries=0) as resolver:
        with pytest.raises(SettingsError, match=r"no nameserver can be asked: \[::1\]:bad \(") as raised:
            await resolver.resolve("www.acme.test", ("A",))  # none at all: a setting to fix, said once
        assert "\x1b" not in str(raised.value)
        assert (await resolver.resolve("www.acme.test", ("A",))).status == "error"  # (the others: unanswered)


@pytest.mark.parametrize(
    "content", [None, "# nothing\n", "nameserver dns.example\n", "search bad..name\nnameserver 127.0.0.1\n"]
)
def test_a_resolv_conf_that_cannot_be_used_is_a_setting_error(tmp_path, monkeypatch, content):
    """Missing, without nameservers, with a line dnspython refuses: one line saying what to set."""
    from assetmon_tui.scanners import udp_resolver

    path = tmp_path / "resolv.conf"
    if content is not None:
        path.write_text(content)
    monkeypatch.setattr(udp_resolver, "RESOLV_CONF", str(path))
    with pytest.raises(SettingsError, match=f"^no nameserver to ask: {path}: .*set ASSETMON_NAMESERVERS"):
        udp_resolver.system_nameservers()
