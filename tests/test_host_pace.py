"""Adaptive per-host politeness (scanners/host_pace.py) against a loopback
server that rate-limits: a 429 halves the host's concurrency and pauses it
(Retry-After honoured), the throttled probes are asked again so the limit
never becomes the endpoint's status, and good answers give concurrency back."""

from __future__ import annotations

import asyncio
import time

import pytest
from support.loopback import HttpServer, page

from assetmon_tui.scanners.host_pace import HostPace
from assetmon_tui.scanners.http import HttpOptions, HttpTarget, probe

pytestmark = pytest.mark.one_store  # the store is not what this tests: the SQLite pass is enough


async def test_the_pace_halves_on_pushback_and_recovers_one_by_one():
    pace = HostPace(ceiling=8)
    assert await pace.answered("a", 429, "", "0") == 0 and pace._hosts["a"].limit == 4  # a 0 s pause
    assert await pace.answered("a", None, "timeout") == 0 and pace._hosts["a"].limit == 2
    assert pace.slowed() == 1 and pace.backoffs == 2
    for _ in range(6):
        await pace.answered("a", 200, "")
    assert pace._hosts["a"].limit == 8 and pace.slowed() == 0
    assert await pace.answered("b", 503, "") == 0.5  # no Retry-After: 0.5 s, then doubling
    assert await pace.answered("b", 503, "") == 1.0
    assert await pace.answered("b", 429, "", "120") == 30.0  # capped


async def test_a_rate_limited_host_is_slowed_and_its_answers_are_the_real_ones():
    state = {"inflight": 0, "most": 0, "limited": 0}
    starts: list[float] = []
    limit_until = 6  # the server says 429 to the first six requests

    async def handler(request, writer):
        state["inflight"] += 1
        state["most"] = max(state["most"], state["inflight"])
        starts.append(time.monotonic())
        try:
            await asyncio.sleep(0.05)
            if state["limited"] < limit_until:
                state["limited"] += 1
                await page("slow down", status=429, headers={"Retry-After": "0.2"})(request, writer)
            else:
                await page("<title>ok</title>")(request, writer)
        finally:
            state["inflight"] -= 1

    with HttpServer({f"/p{i}": handler for i in range(40)}) as server:
        targets = [HttpTarget("rl.test", server.port, "http", server.host, f"/p{i}") for i in range(40)]
        pace = HostPace(16)
        learned: list[float] = []
        answered = pace.answered

        async def noting(key, status, error, retry_after=""):
            if status == 429 and not learned:
                learned.append(time.monotonic())
            return await answered(key, status, error, retry_after)

        pace.answered = noting  # type: ignore[method-assign]
        options = HttpOptions(concurrency=40, timeout=5, per_host=16, favicon=False, tls_info=False, pace=pace)
        started = time.monotonic()
        results = [r async for r in probe(targets, options)]
    assert len(results) == 40 and {r.status for r in results} == {200}  # the 429s were asked again
    assert state["limited"] == limit_until
    assert state["most"] <= 16  # the ceiling per host
    assert time.monotonic() - started >= 0.2  # the Retry-After pause was waited
    # Once the client learned of the 429, nothing new reaches the host during the pause (0.2 s).
    assert not [t for t in starts if learned[0] + 0.05 < t < learned[0] + 0.18], [t - learned[0] for t in starts]
