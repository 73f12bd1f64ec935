"""The per-nameserver DNS rate shared through Redis (scanners/shared_rate.py):
a real redis-server, a real UDP DNS server on 127.0.0.1 and two OS processes
(the brute force's resolver in one, dnspython's `resolve` in the other) asking
it at the same rate R: together they stay near R, each alone reaches R; and
without Redis each process falls back to the whole rate, logged once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import threading
import time
from typing import Any

import pytest
import redis
from support.loopback import FakeDNS

from assetmon_tui.scanners import shared_rate
from assetmon_tui.scanners.dns import DnsOptions, resolve
from assetmon_tui.scanners.shared_rate import SharedRate
from assetmon_tui.scanners.subdomains import SubdomainOptions, discover
from assetmon_tui.scanners.udp_resolver import UdpResolver
from assetmon_tui.testing import wait_for

pytestmark = pytest.mark.one_store  # the store is not what this tests

RATE = 80.0


# ---- the child processes --------------------------------------------------------------


async def _drive(kind: str, address: str, url: str, prefix: str, stop: Any) -> None:
    """Lookups of fresh names without end, 50 at a time, until `stop`."""

    async def udp() -> None:
        async with UdpResolver([address], timeout=2.0, retries=0, rate=RATE, share_url=url) as resolver:

            async def one(i: int) -> None:
                while True:
                    await resolver.resolve(f"{prefix}{i}.rate.test", ("A",))
                    i += 50

            await asyncio.gather(*(one(i) for i in range(50)))

    async def dnspython() -> None:
        options = DnsOptions(
            nameservers=[address], rtypes=("A",), timeout=2.0, retries=0, concurrency=50, rate=RATE, share_url=url
        )
        for batch in range(10**6):
            async for _ in resolve((f"{prefix}{batch}x{i}.rate.test" for i in range(2000)), options):
                pass

    work = asyncio.create_task(udp() if kind == "udp" else dnspython())
    while not stop.is_set() and not work.done():
        await asyncio.sleep(0.02)
    work.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await work


def _child(kind: str, address: str, url: str, prefix: str, go: Any, stop: Any) -> None:
    go.wait(30)
    asyncio.run(_drive(kind, address, url, prefix, stop))
    for thread in threading.enumerate():  # the shared-rate threads remove their entries
        if thread is not threading.main_thread():
            thread.join(2)


# ---- helpers ------------------------------------------------------------------------------


def counted(server: FakeDNS, start: float, end: float, prefix: str = "") -> float:
    """Queries a second the server got in [start, end) for names starting with `prefix`."""
    times = list(server.times)
    queries = server.queries[: len(times)]
    hits = sum(1 for t, (name, _) in zip(times, queries, strict=True) if start <= t < end and name.startswith(prefix))
    return hits / (end - start)


def first_query(server: FakeDNS, prefix: str, after: float = 0.0) -> float | None:
    times = list(server.times)
    return next(
        (t for t, (n, _) in zip(times, server.queries, strict=False) if t >= after and n.startswith(prefix)), None
    )


def window(warm_up: float = 1.0, length: float = 2.5) -> tuple[float, float]:
    """From `warm_up` s from now, `length` s; returns when it is over."""
    start = time.monotonic() + warm_up
    end = start + length
    wait_for(lambda: time.monotonic() >= end, length + warm_up + 1, what="the measuring window")
    return start, end


def script_calls(client: redis.Redis) -> int:
    stats: dict[str, dict[str, int]] = client.info("commandstats")  # type: ignore[assignment]
    return sum(stats.get(f"cmdstat_{c}", {}).get("calls", 0) for c in ("evalsha", "eval"))


# ---- two processes, one nameserver ------------------------------------------------------------


def test_two_processes_share_one_rate(redis_server):
    """The brute force's resolver (a) alone reaches R; dnspython's resolve (b)
    joins: together they stay near R; a leaves: b alone reaches R. Redis sees
    a couple of calls a second per process, not one per query."""
    client = redis.Redis.from_url(redis_server.url)
    ctx = multiprocessing.get_context("spawn")
    with FakeDNS({}) as server:
        key = f"{shared_rate.PREFIX}{server.address}"
        go = {k: ctx.Event() for k in "ab"}
        stop = {k: ctx.Event() for k in "ab"}
        kinds = {"a": "udp", "b": "dnspython"}
        procs = {
            k: ctx.Process(target=_child, args=(kinds[k], server.address, redis_server.url, k, go[k], stop[k]))
            for k in "ab"
        }
        try:
            for proc in procs.values():
                proc.start()  # both spawn now (the imports take a while); b waits for its go
            calls = script_calls(client)
            started = time.monotonic()
            go["a"].set()
            wait_for(lambda: first_query(server, "a"), 20, what="a's first query")
            alone_a = counted(server, *window())

            go["b"].set()
            wait_for(lambda: first_query(server, "b"), 20, what="b's first query")
            start, end = window()
            together, share_a, share_b = (counted(server, start, end, p) for p in ("", "a", "b"))

            stop["a"].set()
            procs["a"].join(30)  # a loaded machine: its last queries and the Redis goodbye take a while
            assert procs["a"].exitcode == 0
            alone_b = counted(server, *window())
            ops = (script_calls(client) - calls) / (time.monotonic() - started)

            stop["b"].set()
            procs["b"].join(30)
            assert procs["b"].exitcode == 0
        finally:
            for k, proc in procs.items():
                stop[k].set()
                go[k].set()
                proc.join(5)
                if proc.is_alive():
                    proc.kill()
    measured = (
        f"a alone {alone_a:.0f}/s, together {together:.0f}/s (a {share_a:.0f}, b {share_b:.0f}),"
        f" b alone {alone_b:.0f}/s, redis {ops:.1f} calls/s"
    )
    print(measured)
    assert 0.75 * RATE <= alone_a <= 1.3 * RATE, measured
    assert 0.6 * RATE <= together <= 1.3 * RATE, measured
    assert share_a >= 0.2 * RATE and share_b >= 0.2 * RATE, measured
    assert 0.75 * RATE <= alone_b <= 1.3 * RATE, measured
    assert ops <= 2 * 4, measured  # two processes, a refresh every half second each (never one per query)
    assert client.zcard(key) == 0  # each left its entry behind it


# ---- the share in one process -------------------------------------------------------------


def test_users_of_a_key_split_its_rate(redis_server):
    one = SharedRate("k", 90, redis_server.url).start()
    two = SharedRate("k", 90, redis_server.url).start()
    other = SharedRate("other", 90, redis_server.url).start()
    try:
        wait_for(lambda: one.share == two.share == 45 and one.shared, 5, what="the split")
        wait_for(lambda: other.ready.is_set(), 5)
        assert other.share == 90 and other.members == 1  # another key, another rate
        two.close()
        wait_for(lambda: one.share == 90, 5, what="the whole rate back")
    finally:
        for user in (one, two, other):
            user.close()
    client = redis.Redis.from_url(redis_server.url)
    wait_for(lambda: not client.exists(f"{shared_rate.PREFIX}k"), 5, what="the entries removed")


def test_redis_back_after_an_outage(redis_server, caplog):
    redis_server.stop()
    user = SharedRate("k", 60, redis_server.url, retry=0.2).start()
    try:
        with caplog.at_level(logging.INFO, logger=shared_rate.__name__):
            wait_for(lambda: user.ready.is_set() and user.refreshes >= 3, 10, what="retries")
            assert user.share == 60 and not user.shared
            twin = SharedRate("k", 60, redis_server.url, retry=0.2).start()
            redis_server.start()
            wait_for(lambda: user.shared and twin.shared and user.share == 30, 10, what="shared again")
            twin.close()
        messages = [r.getMessage() for r in caplog.records]
        assert sum("does not answer" in m for m in messages) == 1, messages  # once, not per try nor per user
        assert sum("answers again" in m for m in messages) == 1, messages
    finally:
        user.close()


# ---- without Redis --------------------------------------------------------------------------


async def test_without_redis_each_process_has_the_whole_rate(no_redis, caplog):
    """A URL where nothing listens: both paths run at the whole rate, said once."""
    from assetmon_tui.core.config import get_settings

    url = get_settings().redis_url
    shared_rate._silent.clear()
    rate = 100.0
    with caplog.at_level(logging.WARNING, logger=shared_rate.__name__), FakeDNS({}) as server:
        async with UdpResolver([server.address], timeout=2.0, retries=0, rate=rate, share_url=url) as resolver:
            started = time.monotonic()
            await asyncio.gather(*(resolver.resolve(f"u{i}.rate.test", ("A",)) for i in range(150)))
            udp_elapsed = time.monotonic() - started
            [stats] = resolver.stats()
        options = DnsOptions(
            nameservers=[server.address], rtypes=("A",), timeout=2.0, retries=0, rate=rate, share_url=url
        )
        started = time.monotonic()
        results = [r async for r in resolve((f"d{i}.rate.test" for i in range(150)), options)]
        dns_elapsed = time.monotonic() - started
    assert stats.ceiling == rate and stats.sent == 150
    assert len(results) == 150 and {r.status for r in results} == {"nxdomain"}
    # 150 at 100 a second: about 1.5 s each, never much faster (the ceiling holds), not starved either
    assert 1.3 < udp_elapsed < 6 and 1.3 < dns_elapsed < 6, (udp_elapsed, dns_elapsed)
    warnings = [r.getMessage() for r in caplog.records if "does not answer" in r.getMessage()]
    assert len(warnings) == 1, warnings


async def test_no_rate_no_pacing(redis_server):
    """rate 0 (the default): nothing is shared nor paced, even with a URL."""
    with FakeDNS({}) as server:
        options = DnsOptions(nameservers=[server.address], rtypes=("A",), share_url=redis_server.url)
        results = [r async for r in resolve((f"n{i}.rate.test" for i in range(300)), options)]
    assert len(results) == 300
    assert not redis.Redis.from_url(redis_server.url).keys(f"{shared_rate.PREFIX}*")


async def test_the_brute_force_shares_its_nameserver_rate(redis_server, tmp_path):
    """SubdomainOptions.dns.share_url: the brute force's ceiling is its part of
    dns_rate, here with another user of the same nameserver's key."""
    words = tmp_path / "words.txt"
    words.write_text("".join(f"w{i}\n" for i in range(40)))
    paces = []
    with FakeDNS({"share.test": {"A": ["127.0.0.10"]}}) as server:
        other = SharedRate(server.address, 200, redis_server.url).start()
        try:
            wait_for(lambda: other.shared, 5, what="the other user")
            options = SubdomainOptions(
                ct=False,
                san=False,
                tools=(),
                recursive_depth=0,
                wordlist_path=str(words),
                dns=DnsOptions(nameservers=[server.address], timeout=1.0, retries=0, share_url=redis_server.url),
                dns_rate=200,
                dns_pace=paces.append,
            )
            [f async for f in discover(["share.test"], options, lambda n: True)]
        finally:
            other.close()
    [last] = paces[-1]
    assert last.ceiling == 100 and last.limit == 100
