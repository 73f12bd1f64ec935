"""Fast DNS over UDP: the resolver of the subdomain brute force and of the dns step.

dnspython's resolver opens a socket, builds a `Message` and parses a whole
answer per query: about 0.7 ms of CPU, so a brute force of 10,000 words costs
seconds whatever the server, and it waits the whole timeout for each lost
query. Here every nameserver has one shared, connected, non-blocking UDP
socket; a query is 12 header bytes and the question, built by hand; answers
are matched by query id *and* question (name, type, class: an answer for
another question is dropped), and parsed only as far as the question needs
(rcode, TC, the answer section's CNAME chain and the records at its end:
addresses by hand, other types by dnspython's rdata). Timeouts are swept
from one deadline queue, RTOs (below) from one heap, per nameserver (no
timer per query: a timer handle per lookup cost a fifth of the brute
force's CPU).

Untrusted input: an answer that is short, garbage, truncated in the middle of
a record, huge (64 KiB), not a response, for another id or another question
is counted and ignored, so the query waits on for its true answer and times
out without one; nothing but a well-formed answer to the very question asked
produces a result. Compression pointers must point backwards (no loops), and
every count and length is bounded by the datagram. A truncated answer (TC) is
asked again over TCP, as dnspython does, with the same checks.

Results are dnspython's, word for word (`DnsResult`, statuses "ok",
"nxdomain", "nodata", "servfail", "timeout", "error", "partial"; the CNAME
chain hop by hop, then the records of the type asked at its end), so callers
can switch without changing what they find.

Retries: an attempt that is not answered within the server's RTO (its
measured round trip plus four times the variation, RFC 6298's rule, at least
0.1 s; 1 s, or the timeout if shorter, until a round trip is measured) is
sent again to the next nameserver, with the RTO doubled for each attempt; the earlier ones stay
open until their own timeout and whichever answers first wins. So a lost
query costs a round trip or two, not the timeout, and a slow answer is not
thrown away. Only a real timeout counts against the pace.

Rate: each nameserver has a pace, at most `rate` queries a second (0: no
ceiling), adapted AIMD-style: when more than 5 % of the queries sent at the
current pace time out or get SERVFAIL (not for PTR: a broken reverse zone is
common, and not load) or TC, the pace drops at once
to what got through (at most half the rate it was sending at, at least a
tenth; half a second between two cuts at least); while they stay under 1 %
(judged by windows of queries sent at one pace, once every query of a window
came back or timed out), it rises again: doubling while under half the rate that failed (a burst's cut
is undone in a second or two), then by a tenth of it (or of the ceiling),
back to the ceiling, or to no limit once the limit is twice what is being
sent. Loss that does not follow the pace is not ours: when a cut leaves the
share of losses about where it was (and under half), the link or the server
loses that share whatever we send, so the pace goes back to where it was and
that share becomes the line's noise, which later judgements allow for (with
more samples); retries, not a slower pace, get through such a line.
`stats()` tells the rate in use.

Shared: with a Redis URL (`share_url`), the ceiling is this process's part
of `rate` among all processes asking that nameserver (shared_rate.py), so
workers running one scan's chunks send `rate` between them; the pace adapts
below it as above.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import heapq
import itertools
import os
import re
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass

import dns.exception
import dns.ipv4
import dns.ipv6
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.resolver

from assetmon_tui.core.config import SettingsError
from assetmon_tui.core.sanitize import clean_text

from .dns import VALUE_LIMIT, DnsRecord, DnsResult, _value, host_port, merge, normalise
from .shared_rate import SharedRate

_A, _CNAME, _PTR, _AAAA = 1, 5, 12, 28
_TYPE_TEXT = {_A: "A", _CNAME: "CNAME", _AAAA: "AAAA"}
_CHAIN_LIMIT = 16  # CNAME hops followed inside one answer (dns.py's too)
_POINTERS = 64  # compression pointers followed in one name, at most
_ESCAPED = frozenset(b'"().;\\@$')  # dnspython's: label bytes written as \c
_UNSAFE = re.compile(r'[^\x21-\x7e]|["();\\@$]')  # in a name to ask for: not sent (dnspython would read escapes)
_HEADER_TAIL = b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"  # RD, one question
_RECV = 65535
_DRAIN = 512  # datagrams read per wake-up, at most (others get their turn)
# AIMD
_WINDOW = 0.25  # seconds a window of queries is sent for, at least (then it closes, to be judged)
_LOSS = 0.05  # share of bad outcomes that cuts the pace
_CLEAN = 0.01  # share under which the pace rises
_MIN_BAD = 3  # bad outcomes before a cut (one lost query is noise)
_SAMPLES = 8  # outcomes a window needs before it is judged
_SPACING = 0.5  # seconds between two cuts at least (the server's own limit needs a moment to recover too)
_NOISY_SAMPLES = 40  # outcomes a window needs on a line with noise (a share judged on 8 would be chance)
_NOISE_MAX = 0.5  # a line that loses this share or more at any pace is failing: it is paced down all the same
_RTO_MIN = 0.1  # seconds: the shortest wait before an attempt is sent again (a spurious one costs a query)
_RTO_FIRST = 1.0  # seconds: the RTO before a round trip is measured (RFC 6298, 2.1)


class _Malformed(Exception):
    pass


# ---- wire format ------------------------------------------------------------------------


def encode_name(name: str) -> bytes | None:
    """`www.example.com` -> wire labels, lower-case; None if no valid DNS name."""
    if not name or not name.isascii():
        return None
    if _UNSAFE.search(name):
        return None
    out = bytearray()
    for label in name.lower().split("."):
        if not 0 < len(label) < 64:
            return None
        out.append(len(label))
        out += label.encode()
    out.append(0)
    return bytes(out) if len(out) <= 255 else None


def _text(labels: list[bytes]) -> str:
    """Label bytes as dnspython writes them (escapes included), lower-case, no final dot."""
    parts = []
    for label in labels:
        if all(0x20 < c < 0x7F and c not in _ESCAPED for c in label):
            parts.append(label.decode("ascii"))
        else:
            parts.append(
                "".join("\\" + chr(c) if c in _ESCAPED else chr(c) if 0x20 < c < 0x7F else f"\\{c:03d}" for c in label)
            )
    return ".".join(parts).lower()


def _read_name(msg: bytes, at: int) -> tuple[list[bytes], int]:
    """The name at `at` (labels) and the offset after it. Pointers point backwards only."""
    labels: list[bytes] = []
    end = -1
    size = 0
    jumps = 0
    size_msg = len(msg)
    while True:
        if at >= size_msg:
            raise _Malformed("name runs past the end")
        length = msg[at]
        if length == 0:
            at += 1
            break
        if length & 0xC0 == 0xC0:
            if at + 1 >= size_msg:
                raise _Malformed("pointer runs past the end")
            target = ((length & 0x3F) << 8) | msg[at + 1]
            if target >= at or jumps >= _POINTERS:
                raise _Malformed("compression loop")
            jumps += 1
            if end < 0:
                end = at + 2
            at = target
            continue
        if length & 0xC0:
            raise _Malformed("unknown label type")
        at += 1
        if at + length > size_msg:
            raise _Malformed("label runs past the end")
        size += length + 1
        if size > 255:
            raise _Malformed("name over 255 bytes")
        labels.append(msg[at : at + length])
        at += length
    return labels, (end if end >= 0 else at)


# An answer record: (owner text, type, class, ttl, rdata offset, rdata length)
_Record = tuple[str, int, int, int, int, int]


def parse_answers(msg: bytes, at: int, count: int) -> list[_Record]:
    """The answer section's records (owner lower-case text); _Malformed on anything cut or broken."""
    records: list[_Record] = []
    size = len(msg)
    for _ in range(count):
        labels, at = _read_name(msg, at)
        if at + 10 > size:
            raise _Malformed("record header cut")
        rtype, rclass, ttl, rdlen = struct.unpack_from(">HHIH", msg, at)
        at += 10
        if at + rdlen > size:
            raise _Malformed("record data cut")
        records.append((_text(labels), rtype, rclass, ttl, at, rdlen))
        at += rdlen
    return records


def _rdata_text(msg: bytes, rtype: int, at: int, length: int) -> str:
    """One record's value as dns.py's `_value` writes it."""
    if rtype == _A:
        if length != 4:
            raise _Malformed("A record of the wrong size")
        return dns.ipv4.inet_ntoa(msg[at : at + 4])
    if rtype == _AAAA:
        if length != 16:
            raise _Malformed("AAAA record of the wrong size")
        return dns.ipv6.inet_ntoa(msg[at : at + 16])
    if rtype == _CNAME:
        labels, end = _read_name(msg, at)
        if end != at + length:
            raise _Malformed("CNAME of the wrong size")
        return clean_text(_text(labels), VALUE_LIMIT)
    try:  # anything else (a caller asking for MX, TXT...): dnspython reads it
        rdata = dns.rdata.from_wire(dns.rdataclass.IN, dns.rdatatype.RdataType.make(rtype), msg, at, length)
    except Exception as exc:  # dnspython raises many kinds on broken rdata
        raise _Malformed("bad record data") from exc
    return _value(rdata)


def chain(qname: str, rtype: int, msg: bytes, records: list[_Record]) -> list[DnsRecord]:
    """dns.py's `_records` on raw records: CNAME hops from qname, then the rtype records at the end."""
    type_text = _TYPE_TEXT.get(rtype) or dns.rdatatype.to_text(dns.rdatatype.RdataType.make(rtype))
    out: list[DnsRecord] = []
    current = qname
    for _ in range(_CHAIN_LIMIT):
        if rtype == _CNAME:
            break
        cname = next((r for r in records if r[0] == current and r[1] == _CNAME and r[2] == 1), None)
        if cname is None:
            break
        ttl = min(r[3] for r in records if r[0] == current and r[1] == _CNAME and r[2] == 1)
        target = _rdata_text(msg, _CNAME, cname[4], cname[5])
        out.append(DnsRecord(clean_text(current, VALUE_LIMIT), "CNAME", target, ttl))
        current = target
    final = [r for r in records if r[0] == current and r[1] == rtype and r[2] == 1]
    if final:
        ttl = min(r[3] for r in final)
        values = dict.fromkeys(_rdata_text(msg, rtype, r[4], r[5]) for r in final)  # an rrset: no duplicates
        out += [DnsRecord(clean_text(current, VALUE_LIMIT), type_text, v, ttl) for v in values]
    return out


# ---- pace: per-nameserver rate, adapted -------------------------------------------------


@dataclass(frozen=True)
class ServerStats:
    """One nameserver's counters; `rate` is queries a second over the last second,
    `limit` the pace in force (None: no limit), `lowest` the lowest this run."""

    address: str
    sent: int
    answered: int
    timeouts: int
    servfails: int  # SERVFAIL, REFUSED and other failing rcodes
    truncated: int  # TC answers (asked again over TCP)
    ignored: int  # datagrams that answered nothing we asked (wrong id, other question, garbage)
    rate: float
    average: float  # queries a second from the first query sent to the last
    limit: float | None
    lowest: float | None
    ceiling: float | None
    backoffs: int
    noise: float = 0.0  # the share of queries the line loses at any pace (not paced down for)
    resent: int = 0  # attempts sent before the one before had timed out (its RTO had passed)
    rto: float = 0.0  # seconds an attempt is awaited before the next is sent, now
    refused: int = 0  # REFUSED answers (of `servfails`): a server that does not resolve those names for us


class _Window:
    """Queries sent in one stretch at one pace, and how many came back well or badly."""

    __slots__ = ("bad", "generation", "good", "judged", "sent", "start")

    def __init__(self, start: float, generation: int) -> None:
        self.start, self.generation = start, generation
        self.sent = self.good = self.bad = 0
        self.judged = False


class _Pace:
    """AIMD pacing of one nameserver (see the module doc)."""

    def __init__(self, ceiling: float, now: float, shared: SharedRate | None = None) -> None:
        self.shared = shared  # the ceiling follows its share
        self.ceiling = ceiling if ceiling > 0 else None
        self.limit: float | None = self.ceiling
        self.lowest: float | None = self.ceiling
        self.floor = max(1.0, min(self.ceiling or 80.0, 80.0) / 4)
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._pacer: asyncio.Task[None] | None = None
        self._credit = 1.0  # queries that may go now
        self._released = now
        self.generation = 0  # the pace's changes: windows sent before the last one do not judge it
        self.window = _Window(now, 0)  # the queries being sent now
        self.peak = 0.0
        self.backoffs = 0
        self.cut_at = -1e9
        self.noise = 0.0  # the share of losses the line has at any pace (not caused by our rate)
        self._cut_share = 0.0  # the share of losses that made the last cut
        self._before_cut: float | None = None  # the limit before it
        self._buckets: collections.deque[list[float]] = collections.deque()  # [start, sends] per 0.1 s

    async def wait(self, loop: asyncio.AbstractEventLoop) -> None:
        """Until this query may be sent: at once without a limit, else in
        turn (first come, first served) at the limit in force when its turn
        comes, so a change of pace applies to every query still waiting."""
        if self.shared is not None:
            if not self.shared.ready.is_set():
                await self.shared.started()
            self._follow()
        if self.limit is None and not self._waiters:
            return
        turn: asyncio.Future[None] = loop.create_future()
        self._waiters.append(turn)
        if self._pacer is None or self._pacer.done():
            self._pacer = loop.create_task(self._release(loop))
        await turn

    async def _release(self, loop: asyncio.AbstractEventLoop) -> None:
        waiters = self._waiters
        while waiters:
            now = loop.time()
            self._follow()
            limit = self.limit
            if limit is None:
                self._credit = float(len(waiters))
            else:  # what the time since the last release allows, a couple of milliseconds' worth at most
                self._credit = min(self._credit + (now - self._released) * limit, max(1.0, limit * 0.002))
            self._released = now
            while self._credit >= 1.0 and waiters:
                turn = waiters.popleft()
                if not turn.done():
                    turn.set_result(None)
                    self._credit -= 1.0
            if waiters and limit is not None:
                await asyncio.sleep(max(0.001, (1.0 - self._credit) / limit))
        self._credit = min(self._credit, 1.0)

    def _follow(self) -> None:
        """The shared ceiling, as it is now: an unreduced pace follows it, a reduced one stays under it."""
        if self.shared is None or self.shared.share == self.ceiling:
            return
        share = self.shared.share
        if self.limit == self.ceiling or (self.limit is not None and self.limit > share):
            self.limit = share
            self.lowest = share if self.lowest is None else min(self.lowest, share)
        self.ceiling = share

    def close(self) -> None:
        if self.shared is not None:
            self.shared.close()
        if self._pacer is not None:
            self._pacer.cancel()
        while self._waiters:
            turn = self._waiters.popleft()
            if not turn.done():
                turn.set_result(None)

    def sent(self, now: float) -> _Window:
        """One query sent now: the window it is judged in."""
        self._count(now)
        window = self.window
        if window.sent >= self._samples() and now - window.start >= _WINDOW:
            closed, window = window, _Window(now, self.generation)
            self.window = window
            if closed.good + closed.bad >= closed.sent:  # all back before it closed: judged now
                self._complete(closed, now)
        window.sent += 1
        return window

    def _samples(self) -> int:
        """Outcomes a window needs: more on a noisy line, and to tell noise from our own load after a cut."""
        return _NOISY_SAMPLES if self.noise or self._cut_share else _SAMPLES

    def _count(self, now: float) -> None:
        buckets = self._buckets
        if buckets and now - buckets[-1][0] < 0.1:
            buckets[-1][1] += 1
        else:
            buckets.append([now, 1])
            while now - buckets[0][0] > 1.0:
                buckets.popleft()

    def rate(self, now: float) -> float:
        """Queries sent a second, over the last second."""
        buckets = self._buckets
        while buckets and now - buckets[0][0] > 1.0:
            buckets.popleft()
        if not buckets:
            return 0.0
        return sum(b[1] for b in buckets) / max(0.1, now - buckets[0][0])

    def outcome(self, window: _Window, good: bool, now: float) -> None:
        """Judge the pace by windows of queries sent at it: too many losses cut
        it at once; a window whose every query came back (answered or timed
        out) all but clean raises it. (Losses are known a timeout after the
        answers: judging what came back in a stretch of time would count a
        burst's answers in one window and its losses in the next.)"""
        if window.generation != self.generation or window.judged:
            return
        if good:
            window.good += 1
        else:
            window.bad += 1
        back = window.good + window.bad
        samples = self._samples()
        threshold = _LOSS + 1.5 * self.noise
        if self._cut_share:  # the first window after a cut: did the losses follow the pace?
            if window.bad > _NOISE_MAX * max(window.sent, samples) and now - self.cut_at >= _SPACING:
                self._cut(now, window.bad / back)  # failing at any pace: down again, without waiting
                return
        elif window.bad >= _MIN_BAD and window.bad > threshold * max(window.sent, samples):
            if now - self.cut_at >= _SPACING:
                self._cut(now, window.bad / back)
            return
        if back >= window.sent and window is not self.window:  # (the current one is judged once it closes)
            self._complete(window, now)

    def withdrawn(self, window: _Window, now: float) -> None:
        """A query sent in `window` was given up before its outcome: the window is judged without it."""
        if window.generation != self.generation or window.judged:
            return
        window.sent -= 1
        if window.good + window.bad >= window.sent and window is not self.window:
            self._complete(window, now)

    def _complete(self, window: _Window, now: float) -> None:
        """Every query of a closed window is back: judge the pace by all of them."""
        if window.judged or window.generation != self.generation or window.sent < self._samples():
            return
        window.judged = True
        share = window.bad / window.sent
        if share <= _CLEAN + self.noise:
            self._cut_share = 0.0
            if share < self.noise / 2:
                self.noise = (self.noise + share) / 2  # the line got better (halfway: one window may be luck)
            self._raise(now)
        elif share <= _LOSS + 1.5 * self.noise:
            self._cut_share = 0.0  # not clean, not bad: the pace stays
        elif self._cut_share and self._cut_share / 2 <= share < _NOISE_MAX:
            self._noisy(now, share)  # the cut changed nothing: the line's losses
        elif now - self.cut_at >= _SPACING:
            self._cut(now, share)

    def _changed(self, now: float) -> None:
        """A new pace: what was sent before it judges it no more."""
        self.generation += 1
        self.window = _Window(now, self.generation)

    def _noisy(self, now: float, share: float) -> None:
        """The cut did not lower the losses: the line's, not ours; back to the pace before it."""
        self.noise = max(self.noise, share)
        self.limit = self._before_cut
        self._cut_share = 0.0
        self._changed(now)

    def _cut(self, now: float, share: float) -> None:
        self._cut_share, self._before_cut = share, self.limit
        sending = self.rate(now)
        base = min(self.limit, sending) if self.limit is not None else sending
        base = max(base, self.floor)
        # The rate that proved too much: the first cut's, until the pace is back where it was.
        self.peak = base if self.limit == self.ceiling else max(self.peak, base)
        # What got through, at most half, at least a tenth (a burst of losses is not the whole story).
        self.limit = max(self.floor, base * min(0.5, max(0.1, 1.0 - share)))
        if self.ceiling is not None:
            self.limit = min(self.limit, self.ceiling)  # a shared ceiling may be under the floor
        self.lowest = self.limit if self.lowest is None else min(self.lowest, self.limit)
        self.backoffs += 1
        self.cut_at = now
        self._changed(now)

    def _raise(self, now: float) -> None:
        if self.limit is None:
            return
        before = self.limit
        if self.limit < self.peak / 2:  # far under what failed: a burst's cut, undone quickly
            self.limit *= 2
        elif self.ceiling is not None:
            self.limit += max(self.floor, self.ceiling / 10)
        elif self.limit > 2 * self.rate(now):
            self.limit = None  # not what holds it back any more: no limit, as set (cut again if it hurts)
        else:
            self.limit += max(self.floor, self.peak / 10)
        if self.ceiling is not None and self.limit is not None:
            self.limit = min(self.ceiling, self.limit)
        if self.limit != before:
            self._changed(now)


# ---- one nameserver ---------------------------------------------------------------------


# An attempt's outcome: (header flags, records) or None (no answer in time).
_Answer = tuple[int, list[DnsRecord]] | None


class _Lookup:
    """One question's attempts, as they come back: answers (None: an attempt
    timed out) are queued, and the lookup woken, by whoever settles them."""

    __slots__ = ("answers", "due", "inflight", "loop", "waiter")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.answers: collections.deque[tuple[_Server, _Answer]] = collections.deque()
        self.inflight: list[tuple[_Server, _Query]] = []
        self.due = False  # the last attempt's RTO passed: the next may go
        self.waiter: asyncio.Future[None] | None = None

    def settle(self, server: _Server, answer: _Answer) -> None:
        self.answers.append((server, answer))
        self.wake()

    def rto_passed(self) -> None:
        self.due = True
        self.wake()

    def wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def news(self) -> None:
        """Until an answer is queued or the RTO passes."""
        if not self.answers and not self.due:
            self.waiter = self.loop.create_future()
            await self.waiter


class _Query:
    __slots__ = ("done", "kind", "lookup", "name", "qid", "qname", "sent_at", "tail", "window")

    def __init__(
        self,
        lookup: _Lookup,
        qid: int,
        qname: str,
        kind: int,
        name: bytes,
        tail: bytes,
        window: _Window,
        sent_at: float,
    ):
        self.lookup = lookup
        self.done = False  # answered or timed out
        self.qid = qid
        self.qname = qname  # text, lower-case
        self.kind = kind
        self.name = name  # the question's name, wire form, lower-case
        self.tail = tail  # type and class
        self.window = window  # where its outcome judges the pace
        self.sent_at = sent_at  # loop time (its answer's delay is a round-trip sample)


def _ids() -> Iterator[int]:
    """Random query ids, from the OS's random source (8 KiB at a time)."""
    while True:
        yield from memoryview(os.urandom(8192)).cast("H")


class _Server:
    def __init__(
        self, loop: asyncio.AbstractEventLoop, host: str, port: int, timeout: float, rate: float, share_url: str = ""
    ) -> None:
        self.loop = loop
        self.host, self.port = host, port
        self.address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.timeout = timeout
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self.sock.setblocking(False)
            for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                with contextlib.suppress(OSError):  # a bigger queue for bursts, where allowed
                    self.sock.setsockopt(socket.SOL_SOCKET, option, 1 << 20)
            self.sock.connect((host, port))  # the kernel drops datagrams from anyone else
        except OSError:
            self.sock.close()
            raise
        self.pending: dict[int, _Query] = {}
        self.deadlines: collections.deque[tuple[float, int, _Query]] = collections.deque()
        self.timer: asyncio.TimerHandle | None = None
        self.rto_due: list[tuple[float, int, _Query]] = []  # a heap: when each attempt's RTO passes
        self.rto_timer: asyncio.TimerHandle | None = None
        self.rto_order = itertools.count()  # (ties in the heap)
        self.backlog: collections.deque[bytes] = collections.deque()
        self.ids = _ids()
        shared = SharedRate(self.address, rate, share_url).start() if rate > 0 and share_url else None
        self.pace = _Pace(rate, loop.time(), shared)
        self.sent = self.answered = self.timeouts = self.servfails = self.truncated = self.ignored = 0
        self.resent = 0  # attempts sent while an earlier one was still awaited (its RTO had passed)
        self.refused = 0
        self.srtt: float | None = None  # smoothed round-trip time and its variation (RFC 6298)
        self.rttvar = 0.0
        self.first = self.last = 0.0  # loop times of the first and the last query sent
        loop.add_reader(self.sock.fileno(), self._readable)

    def close(self) -> None:
        self.pace.close()
        self.loop.remove_reader(self.sock.fileno())
        if self.backlog:
            self.loop.remove_writer(self.sock.fileno())
        for timer in (self.timer, self.rto_timer):
            if timer is not None:
                timer.cancel()
        for query in self.pending.values():
            self._settle(query, None)
        self.pending.clear()
        self.sock.close()

    def stats(self) -> ServerStats:
        pace = self.pace
        return ServerStats(
            self.address,
            self.sent,
            self.answered,
            self.timeouts,
            self.servfails,
            self.truncated,
            self.ignored,
            pace.rate(self.loop.time()),
            self.sent / (self.last - self.first) if self.last > self.first else float(self.sent),
            pace.limit,
            pace.lowest,
            pace.ceiling,
            pace.backoffs,
            pace.noise,
            self.resent,
            self.rto(),
            self.refused,
        )

    def rto(self) -> float:
        """How long an attempt is awaited before the next is sent (the first
        stays open until `timeout`): the round trip plus four times its
        variation, once measured; until then 1 s (RFC 6298), or the timeout if
        shorter: a first burst must not wait the whole timeout for each loss."""
        if self.srtt is None:
            return min(self.timeout, _RTO_FIRST)
        return min(self.timeout, max(_RTO_MIN, self.srtt + 4 * self.rttvar))

    async def send(self, lookup: _Lookup, qname: str, kind: int, name: bytes, tail: bytes, rto: float | None) -> None:
        """One attempt of `lookup`, sent in its turn of the pace; it settles
        with (the answer's header flags, its records), or None at its timeout.
        If still unsettled `rto` seconds after it is sent, the lookup is told."""
        await self.pace.wait(self.loop)
        pending = self.pending
        qid = next(self.ids)
        while qid in pending:
            qid = next(self.ids)
        now = self.loop.time()
        query = pending[qid] = _Query(lookup, qid, qname, kind, name, tail, self.pace.sent(now), now)
        lookup.inflight.append((self, query))
        self.deadlines.append((now + self.timeout, qid, query))
        if self.timer is None:
            self.timer = self.loop.call_at(self.deadlines[0][0], self._sweep)
        if rto is not None:
            when = now + rto
            heapq.heappush(self.rto_due, (when, next(self.rto_order), query))
            if self.rto_timer is None or when < self.rto_timer.when():
                if self.rto_timer is not None:
                    self.rto_timer.cancel()
                self.rto_timer = self.loop.call_at(when, self._rto_sweep)
        self._send(qid.to_bytes(2, "big") + _HEADER_TAIL + name + tail)
        if not self.sent:
            self.first = now
        self.sent += 1
        self.last = now

    def _settle(self, query: _Query, answer: _Answer) -> None:
        if not query.done:
            query.done = True
            query.lookup.inflight.remove((self, query))
            query.lookup.settle(self, answer)

    def forget(self, query: _Query) -> None:
        """A lookup given up (cancelled): its attempt is awaited no more, and
        is no loss (the sweep would have called it a timeout, and cut the pace)."""
        if self.pending.get(query.qid) is query:
            del self.pending[query.qid]
        if not query.done:
            query.done = True
            self.pace.withdrawn(query.window, self.loop.time())

    def judge(self, window: _Window, good: bool) -> None:
        self.pace.outcome(window, good, self.loop.time())

    def _sample(self, rtt: float) -> None:
        if self.srtt is None:
            self.srtt, self.rttvar = rtt, rtt / 2
        else:
            self.rttvar += (abs(self.srtt - rtt) - self.rttvar) / 4
            self.srtt += (rtt - self.srtt) / 8

    def _send(self, packet: bytes) -> None:
        if self.backlog:
            self.backlog.append(packet)
            return
        for _ in range(2):  # a pending ICMP error fails one send: once more
            try:
                self.sock.send(packet)
                return
            except (BlockingIOError, InterruptedError):
                self.backlog.append(packet)
                self.loop.add_writer(self.sock.fileno(), self._writable)
                return
            except OSError:
                continue  # unsent: the query times out

    def _writable(self) -> None:
        while self.backlog:
            try:
                self.sock.send(self.backlog[0])
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                pass
            self.backlog.popleft()
        self.loop.remove_writer(self.sock.fileno())

    def _sweep(self) -> None:
        self.timer = None
        # Answers that came while this process was busy are in the socket's
        # queue: read them all first, or our own load would look like loss.
        self._readable(len(self.pending) + _DRAIN)
        now = self.loop.time()
        deadlines = self.deadlines
        while deadlines and (deadlines[0][0] <= now or deadlines[0][2].done):
            _, qid, query = deadlines.popleft()
            if not query.done:
                if self.pending.get(qid) is query:
                    del self.pending[qid]
                self.timeouts += 1
                self.judge(query.window, False)
                self._settle(query, None)
        if deadlines:
            self.timer = self.loop.call_at(deadlines[0][0], self._sweep)

    def _rto_sweep(self) -> None:
        self.rto_timer = None
        self._readable(len(self.pending) + _DRAIN)  # (as in _sweep)
        now = self.loop.time()
        due = self.rto_due
        while due and (due[0][0] <= now or due[0][2].done):
            query = heapq.heappop(due)[2]
            if not query.done:
                query.lookup.rto_passed()
        if due:  # (a few milliseconds' slack: one wake-up for a bunch)
            self.rto_timer = self.loop.call_at(max(due[0][0], now + 0.005), self._rto_sweep)

    def _readable(self, most: int = _DRAIN) -> None:
        sock = self.sock
        for _ in range(most):
            try:
                data = sock.recv(_RECV)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # an ICMP error (port unreachable): the queries time out
                continue
            self._received(data)

    def _received(self, data: bytes) -> None:
        if len(data) < 12:
            self.ignored += 1
            return
        qid = (data[0] << 8) | data[1]
        query = self.pending.get(qid)
        flags = (data[2] << 8) | data[3]
        if query is None or not flags & 0x8000 or flags & 0x7800 or data[4] != 0 or data[5] != 1:
            self.ignored += 1  # no such query, not a response, not a plain query, not one question
            return
        name, tail = query.name, query.tail
        end = 12 + len(name)
        if data[12:end].lower() != name or data[end : end + 4] != tail:
            self.ignored += 1  # an answer to another question: never ours
            return
        records: list[DnsRecord] = []
        count = (data[6] << 8) | data[7]
        if count and flags & 0x000F in (0, 3) and not flags & 0x0200:  # NOERROR, NXDOMAIN, whole
            try:
                records = chain(query.qname, query.kind, data, parse_answers(data, end + 4, count))
            except _Malformed:
                self.ignored += 1  # broken: the true answer may still come
                return
        del self.pending[qid]
        # Judged here, not by the lookup: an attempt answered after the next
        # was sent still tells how the server copes, and its round trip.
        self._sample(self.loop.time() - query.sent_at)
        if flags & 0x0200:
            self.truncated += 1
            self.judge(query.window, False)  # a server sheds load so (asked again over TCP)
        else:
            self.answered += 1
            rcode = flags & 0x000F
            self.servfails += rcode not in (0, 3)  # not NOERROR, NXDOMAIN
            self.refused += rcode == 5
            # SERVFAIL is how a loaded resolver sheds queries, except for PTR, where
            # it is mostly the reverse zone's broken delegation; REFUSED (a zone
            # it does not serve) and the rest are its policy: none of them load.
            self.judge(query.window, rcode != 2 or query.kind == _PTR)
        self._settle(query, (flags, records))


# ---- the resolver -----------------------------------------------------------------------


RESOLV_CONF = "/etc/resolv.conf"  # where the system's nameservers are read


def system_nameservers() -> list[str]:
    """The system resolver's nameservers (RESOLV_CONF), as host:port specs; a
    SettingsError when it lists none (a container, a broken systemd-resolved)."""
    try:
        resolver = dns.resolver.Resolver(RESOLV_CONF)
    except (dns.exception.DNSException, ValueError, OSError) as exc:  # none listed, unreadable, a bad line
        raise SettingsError(
            f"no nameserver to ask: {RESOLV_CONF}: {exc}; set ASSETMON_NAMESERVERS"
            " (host[:port], comma separated) or the project's nameservers"
        ) from None
    out = []
    for server in resolver.nameservers:
        host = str(server)
        out.append(f"[{host}]:{resolver.port}" if ":" in host else f"{host}:{resolver.port}")
    return out


class UdpResolver:
    """Existence checks for many names: `await resolve(name, ("A", "AAAA"))`.

    nameservers: "host", "host:port" or "[v6]:port" (empty: the system's);
    timeout: seconds per attempt; retries: attempts after the first (timeouts
    and failing rcodes; each attempt goes to the next nameserver); rate: the
    most queries a second sent to each nameserver (0: no ceiling), adapted
    down on losses and back up (see the module doc); share_url: a Redis URL
    through which that rate is shared with every process asking the same
    nameserver ("": this process alone). Use inside one event
    loop; `close()` when done (or `async with`)."""

    def __init__(
        self, nameservers: list[str], timeout: float = 2.0, retries: int = 2, rate: float = 0.0, share_url: str = ""
    ) -> None:
        self.timeout = max(0.01, timeout)
        self.attempts = 1 + max(0, retries)
        self.rate = max(0.0, rate)
        self.share_url = share_url
        self.specs = [s for s in nameservers if s.strip()] or system_nameservers()
        self._servers: list[_Server] = []
        self._tried = False
        self._turn = 0
        self._started = time.monotonic()
        self._questions: dict[tuple[str, int], bytes | None] = {}

    async def __aenter__(self) -> UdpResolver:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def servers(self) -> list[_Server]:
        """The nameservers' sockets, made at the first query (one that cannot be
        made, say an IPv6 address without a route, is left out; none at all is a
        SettingsError naming them, raised to that first query)."""
        if not self._servers and not self._tried:
            self._tried = True
            loop = asyncio.get_running_loop()
            failed = []
            for spec in self.specs:
                try:
                    host, port = host_port(spec)
                    self._servers.append(_Server(loop, host, port, self.timeout, self.rate, self.share_url))
                except (OSError, ValueError) as exc:
                    failed.append(f"{clean_text(spec, 80)} ({exc})")
            if not self._servers:
                raise SettingsError(f"no nameserver can be asked: {', '.join(failed)}; fix the nameservers setting")
        return self._servers

    def close(self) -> None:
        for server in self._servers:
            server.close()
        self._servers = []
        self._tried = True  # closed for good

    def stats(self) -> list[ServerStats]:
        return [s.stats() for s in self._servers]

    async def query(self, name: str, rtype: str | int) -> tuple[str, list[DnsRecord]]:
        """One type of one name: (status, records), as dns.py's `_query`."""
        kind = rtype if isinstance(rtype, int) else int(dns.rdatatype.from_text(rtype))
        qname = normalise(name)
        wire = encode_name(qname)
        if wire is None:
            return "error", []
        tail = struct.pack(">HH", kind, 1)
        servers = self.servers()
        count = len(servers)
        if not count:  # no nameserver could be reached at all
            return "error", []
        start = self._turn
        self._turn = (start + 1) % count
        # Each attempt goes to the next nameserver. The next is sent when one
        # fails or when the last one's RTO passes, but earlier attempts stay
        # open until their own timeout: whichever answers first wins, so a
        # lost query costs a round trip or two, not the whole timeout.
        # A failing answer (SERVFAIL...) is asked again of another nameserver only:
        # the same one would answer from its cache of failures (dnspython's way too).
        status = "timeout"
        loop = asyncio.get_running_loop()
        lookup = _Lookup(loop)
        sent, attempts = 0, self.attempts
        try:
            while True:
                if sent < attempts and (not lookup.inflight or lookup.due):
                    server = servers[(start + sent) % count]
                    if lookup.inflight:
                        server.resent += 1
                    # The RTO, backed off for each attempt (none for the last).
                    rto = min(self.timeout, server.rto() * 2**sent) if sent + 1 < attempts else None
                    await server.send(lookup, qname, kind, wire, tail, rto)
                    lookup.due = False
                    sent += 1
                await lookup.news()
                while lookup.answers:
                    server, answer = lookup.answers.popleft()
                    if answer is None:
                        if status not in ("servfail", "error"):  # an answer that failed tells more
                            status = "timeout"
                        continue
                    flags, records = answer
                    truncated = bool(flags & 0x0200)
                    if truncated:  # as dnspython does
                        over_tcp = await self._tcp(server, qname, kind, wire, tail)
                        if over_tcp is None:
                            status = "error"
                            continue
                        flags, records = over_tcp
                    rcode = flags & 0x000F
                    if rcode in (0, 3):  # NOERROR, NXDOMAIN
                        if rcode == 3:
                            return "nxdomain", records
                        return ("ok" if records else "nodata"), records
                    if truncated:
                        server.servfails += 1
                    status = "servfail" if rcode == 2 else "error"
                    attempts = min(attempts, max(sent, count))
                    lookup.due = True  # the next nameserver (if any) is asked now, not at the RTO
                if not lookup.inflight and sent >= attempts:
                    return status, []
                # Round again: the next attempt goes when none is in flight or the RTO passed.
        except asyncio.CancelledError:
            for server, query in lookup.inflight:
                server.forget(query)
            raise

    async def _tcp(self, server: _Server, qname: str, kind: int, wire: bytes, tail: bytes) -> _Answer:
        """The question over TCP (after a truncated answer): (flags, records) of
        an answer to it, else None (no answer, another question, broken)."""
        qid = next(server.ids)
        packet = qid.to_bytes(2, "big") + _HEADER_TAIL + wire + tail
        writer = None
        try:
            async with asyncio.timeout(self.timeout):
                reader, writer = await asyncio.open_connection(server.host, server.port)
                writer.write(len(packet).to_bytes(2, "big") + packet)
                size = int.from_bytes(await reader.readexactly(2), "big")
                msg = await reader.readexactly(size)
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            return None
        finally:
            if writer is not None:
                writer.close()
        end = 12 + len(wire)
        if len(msg) < end + 4:
            return None
        flags = (msg[2] << 8) | msg[3]
        if (
            (msg[0] << 8) | msg[1] != qid
            or not flags & 0x8000
            or flags & 0x7800
            or msg[4:6] != b"\x00\x01"
            or msg[12:end].lower() != wire
            or msg[end : end + 4] != tail
        ):
            return None
        flags &= ~0x0200  # (a TC bit over TCP: what came is what there is)
        records: list[DnsRecord] = []
        count = (msg[6] << 8) | msg[7]
        if count and flags & 0x000F in (0, 3):
            try:
                records = chain(qname, kind, msg, parse_answers(msg, end + 4, count))
            except _Malformed:
                return None
        return flags, records

    async def resolve(self, name: str, rtypes: tuple[str, ...]) -> DnsResult:
        """All of `rtypes` for one name, combined by dns.py's `merge`: the first
        type alone when it says the name is missing (NXDOMAIN) or the servers
        cannot tell for the whole name (no answer, SERVFAIL: the other types would
        fail alike and only slow a failing zone's names down); else the others
        too, in parallel (an "error" may be one type's: a truncated answer whose
        TCP retry failed, NOTIMP)."""
        types = tuple(dict.fromkeys(t.upper() for t in rtypes)) or ("A",)
        first = await self.query(name, types[0])
        outcomes = [first]
        if first[0] not in ("nxdomain", "timeout", "servfail") and len(types) > 1:
            outcomes += await asyncio.gather(*(self.query(name, t) for t in types[1:]))
        return merge(name, outcomes)
