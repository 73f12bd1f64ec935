"""DNS scanner against a fake UDP DNS server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time

import pytest
from support.loopback import FakeDNS
from support.lossy import LossyProxy

from assetmon_tui.scanners.dns import DnsOptions, DnsResult, resolve

pytestmark = pytest.mark.one_store  # the store is not what this tests: the SQLite pass is enough

ZONE = {
    "www.acme.test": {"A": ["127.0.0.2", "127.0.0.3"], "AAAA": ["::1"]},
    "alias.acme.test": {"CNAME": ["hop.acme.test"]},
    "hop.acme.test": {"CNAME": ["www.acme.test"]},
    "dangling.acme.test": {"CNAME": ["gone.acme.test"]},
    "acme.test": {
        "MX": ["10 mail.acme.test", "20 backup.acme.test"],
        "TXT": ["v=spf1 \x1b]52;c;aGk=\x07 -all"],
        "NS": ["ns1.acme.test"],
    },
    "txtonly.acme.test": {"TXT": ["hello"]},
    "broken.acme.test": "SERVFAIL",
    "refused.acme.test": "REFUSED",
    "slow.acme.test": "DROP",
    **{f"slow{i}.acme.test": "DROP" for i in range(6)},
}


@pytest.fixture
def server():
    with FakeDNS(ZONE) as dns_server:
        yield dns_server


def options(server: FakeDNS, **kw) -> DnsOptions:
    kw.setdefault("timeout", 0.3)
    kw.setdefault("retries", 0)
    return DnsOptions(nameservers=[server.address], **kw)


async def run(names, opts, progress=None) -> dict[str, DnsResult]:
    return {r.name: r async for r in resolve(names, opts, progress)}


async def test_addresses_and_name_normalisation(server):
    results = await run(["WWW.Acme.Test."], options(server))
    result = results["www.acme.test"]
    assert result.status == "ok"
    assert sorted(result.addresses) == ["127.0.0.2", "127.0.0.3", "::1"]
    assert result.cnames == []
    assert {r.ttl for r in result.records} == {300}
    assert {r.name for r in result.records} == {"www.acme.test"}


async def test_cname_chain_recorded_hop_by_hop(server):
    result = (await run(["alias.acme.test"], options(server)))["alias.acme.test"]
    assert result.status == "ok"
    cnames = [(r.name, r.value) for r in result.records if r.rtype == "CNAME"]
    assert cnames == [("alias.acme.test", "hop.acme.test"), ("hop.acme.test", "www.acme.test")]
    assert result.cnames == ["hop.acme.test", "www.acme.test"]
    assert sorted(result.addresses) == ["127.0.0.2", "127.0.0.3", "::1"]
    # Address records are attributed to the end of the chain.
    assert {r.name for r in result.records if r.rtype == "A"} == {"www.acme.test"}


async def test_dangling_cname_is_kept(server):
    # The target does not exist (NXDOMAIN), but the CNAME itself is the finding.
    result = (await run(["dangling.acme.test"], options(server)))["dangling.acme.test"]
    assert result.cnames == ["gone.acme.test"]
    assert result.addresses == []
    assert result.status == "ok"


async def test_mx_txt_ns_and_hostile_txt(server):
    opts = options(server, rtypes=("MX", "TXT", "NS"))
    result = (await run(["acme.test"], opts))["acme.test"]
    assert result.status == "ok"
    values = {(r.rtype, r.value) for r in result.records}
    assert ("MX", "10 mail.acme.test") in values and ("MX", "20 backup.acme.test") in values
    assert ("NS", "ns1.acme.test") in values
    (txt,) = [r.value for r in result.records if r.rtype == "TXT"]
    assert txt == "v=spf1 -all"  # OSC 52 clipboard escape stripped


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("nope.acme.test", "nxdomain"),
        ("broken.acme.test", "servfail"),
        ("refused.acme.test", "error"),
        ("txtonly.acme.test", "nodata"),
    ],
)
async def test_failure_statuses(server, name, status):
    result = (await run([name], options(server)))[name]
    assert result.status == status
    assert result.records == []


async def test_timeout_is_a_status_and_quick(server):
    started = time.monotonic()
    result = (await run(["slow.acme.test"], options(server, timeout=0.2, retries=1)))["slow.acme.test"]
    elapsed = time.monotonic() - started
    assert result.status == "timeout"
    assert 0.35 < elapsed < 1.5  # two attempts of 0.2 s, no more
    assert server.queries.count(("slow.acme.test", "A")) == 2
    # Unreachable for A: the other types are not tried (would triple the wait).
    assert ("slow.acme.test", "AAAA") not in server.queries


async def test_a_lossy_resolver_costs_round_trips_not_timeouts():
    """A lost query is asked again after about a round trip (the RTO), not after
    the whole timeout: through a resolver that drops a quarter of them, every
    name is found well within one timeout of 10 s (7 attempts all lost: one
    chance in 10,000). dnspython, this step's resolver until 2026-12-06, waited
    the whole timeout for each loss: 10.4 s here with a 5 s timeout, and a lab
    scan's dns step through such a resolver took 11 s instead of 1 s."""
    zone = {f"h{i}.lossy.test": {"A": [f"127.0.1.{i}"]} for i in range(150)}
    with FakeDNS(zone) as upstream, LossyProxy(upstream.address, share=0.25, seed=5) as lossy:
        opts = DnsOptions(nameservers=[lossy.address], rtypes=("A",), timeout=10.0, retries=6)
        started = time.monotonic()
        results = await run(list(zone), opts)
        elapsed = time.monotonic() - started
    assert lossy.dropped > 20
    assert {r.status for r in results.values()} == {"ok"} and len(results) == 150
    assert all(results[n].addresses == zone[n]["A"] for n in zone)
    assert elapsed < 6.0, f"{elapsed:.1f} s for {lossy.dropped} lost queries"  # (1.4 s on an idle machine)


async def test_nxdomain_skips_remaining_types(server):
    await run(["nope.acme.test"], options(server))
    assert server.queries == [("nope.acme.test", "A")]


async def test_results_stream_as_completed_with_progress(server):
    calls = []
    names = ["slow.acme.test", "www.acme.test", "WWW.acme.test", "nope.acme.test"]
    order = [r.name async for r in resolve(names, options(server), lambda d, t: calls.append((d, t)))]
    # Duplicate (after normalisation) dropped; the slow name comes last.
    assert order[-1] == "slow.acme.test"
    assert sorted(order) == ["nope.acme.test", "slow.acme.test", "www.acme.test"]
    assert calls == [(1, 3), (2, 3), (3, 3)]


async def test_concurrency_is_bounded(server):
    names = [f"slow{i}.acme.test" for i in range(6)]
    opts = options(server, concurrency=2, timeout=0.25)
    started = time.monotonic()
    results = await run(names, opts)
    assert {r.status for r in results.values()} == {"timeout"}
    first_wave = {n for n, t in zip(server.queries, server.times, strict=False) if t - started < 0.15}
    assert len(first_wave) == 2
    assert time.monotonic() - started > 0.7  # three waves of 0.25 s


async def test_cancellation_leaves_no_tasks(server):
    names = [f"slow{i}.acme.test" for i in range(6)]
    before = asyncio.all_tasks()

    async def consume():
        async for _ in resolve(names, options(server, timeout=5, retries=3)):
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.2)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 0.5
    await asyncio.sleep(0)
    assert asyncio.all_tasks() - before == set()


async def test_empty_input_yields_nothing(server):
    assert await run([], options(server)) == {}
    assert await run(["", " . "], options(server)) == {}


async def test_unknown_record_type_is_a_caller_error(server):
    with pytest.raises(ValueError, match="unknown DNS record type"):
        await run(["www.acme.test"], options(server, rtypes=("A", "BOGUS")))


async def test_the_pace_is_told_and_a_back_off_shows():
    """A resolver shedding load (SERVFAIL for everything): the pace is cut, and
    `pace` is told so while it lasts (the live panel's dns_limit), then once at the end."""
    zone = {f"s{i}.acme.test": "SERVFAIL" for i in range(300)}
    told: list[list] = []
    with FakeDNS(zone) as server:
        opts = DnsOptions(nameservers=[server.address], rtypes=("A",), timeout=1.0, retries=0)
        results = {r.name: r async for r in resolve(list(zone), opts, pace=told.append)}
    assert {r.status for r in results.values()} == {"servfail"}
    assert any(s.backoffs and s.limit is not None for stats in told for s in stats), told[-1]
    assert len(told) >= 2 and told[-1][0].sent == 300  # the last call: the whole run
