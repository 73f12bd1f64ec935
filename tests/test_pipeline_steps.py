"""The pipeline's parts: the step registry, what steps declare, and the
batched writer against a real store."""

from __future__ import annotations

import asyncio
import dataclasses
from functools import partial

import pytest
from sqlmodel import SQLModel
from support.scenario import make_project

from assetmon_tui.core.config import get_settings
from assetmon_tui.core.modules import NAMES
from assetmon_tui.pipeline import STEPS, ScanContext
from assetmon_tui.pipeline.checkpoint import LeaseLost, decode_found, encode_found
from assetmon_tui.pipeline.context import SEEDED, Found
from assetmon_tui.pipeline.persist import BatchSaver, save_services
from assetmon_tui.pipeline.run import Run
from assetmon_tui.pipeline.steps import Dns
from assetmon_tui.scanners.dns import DnsRecord, DnsResult
from assetmon_tui.scanners.js import Page
from assetmon_tui.scanners.ports import PortResult
from assetmon_tui.store import leases, repo
from assetmon_tui.store.blobs import save_blob


def test_steps_are_the_module_registry_in_run_order():
    assert tuple(STEPS) == NAMES
    assert all(STEPS[name].name == name for name in NAMES)


def test_steps_declare_state_they_read_and_write():
    assert (Dns.inputs, Dns.outputs, Dns.saves) == (
        ("addresses", "roots"),
        ("addresses", "cnamed"),
        ("host", "dnsrecord"),
    )
    fields = {f.name for f in dataclasses.fields(Found)}
    tables = set(SQLModel.metadata.tables)
    available = set(SEEDED)  # what a step can read: the seeds and what earlier steps wrote
    for name in NAMES:
        step = STEPS[name]
        assert set(step.inputs) <= available, f"{name} reads what no earlier step writes"
        assert set(step.outputs) <= fields and set(step.saves) <= tables, name
        available |= set(step.outputs)


def scan_context() -> ScanContext:
    project_id = make_project()
    scan = repo.create_scan(project_id, ["ports"], {})
    assert leases.claim(scan.id, "thread", "test:1", 60, 3)
    return Run(scan.id, lambda progress: None, get_settings(), "thread", "test:1").ctx


def saved(ctx: ScanContext) -> set[int]:
    return {service.port for service, _ in repo.services(ctx.project_id, ctx.scan_id)}


async def test_batch_saver_writes_by_size_then_the_rest_on_exit():
    ctx = scan_context()
    async with BatchSaver[PortResult](partial(save_services, ctx), size=2, every=60) as saver:
        for port in (1, 2, 3):
            await saver.add(PortResult("192.0.2.1", port, service="x"))
        assert saved(ctx) == {1, 2}
    assert saved(ctx) == {1, 2, 3}


async def test_batch_saver_writes_by_time_while_the_step_waits():
    ctx = scan_context()
    async with BatchSaver[PortResult](partial(save_services, ctx), size=100, every=0.2) as saver:
        await saver.add(PortResult("192.0.2.1", 80))
        # The scanner is busy (nothing more is added): the found port is written meanwhile.
        for _ in range(100):
            if saved(ctx) == {80}:
                break
            await asyncio.sleep(0.05)
        assert saved(ctx) == {80}


def test_found_survives_a_checkpoint_round_trip():
    found = Found()
    found.addresses["www.acme.test"] = {"10.0.0.1", "10.0.0.2"}
    found.open_ports["10.0.0.1"] = {443: "https"}
    found.port_scanned, found.direct, found.urls = {"10.0.0.1"}, {"10.0.0.9"}, ["https://acme.test/"]
    found.roots, found.wildcards, found.revealed = ["acme.test"], {"dyn.acme.test"}, {"api.acme.test"}
    found.pages = [Page("https://www.acme.test/", "www.acme.test", "<script src=/a.js></script>")]
    found.cnamed = [DnsResult("cdn.acme.test", "ok", [DnsRecord("cdn.acme.test", "CNAME", "x.cdn.test", 60)])]
    again = decode_found(encode_found(found, lambda page: save_blob(page.html.encode())))
    assert again == found


async def test_a_checkpoint_is_written_after_the_rows_it_covers():
    ctx = scan_context()
    checkpoint = ctx.checkpoint
    assert checkpoint is not None
    checkpoint.begin("ports")
    async with BatchSaver[PortResult](partial(save_services, ctx), size=1, every=60, checkpoint=checkpoint) as saver:
        checkpoint.mark("192.0.2.1")
        await saver.add(PortResult("192.0.2.1", 22, service="ssh"))
    state = leases.load_checkpoint(ctx.scan_id)
    assert state["step"] == "ports" and state["items"] == ["192.0.2.1"] and saved(ctx) == {22}
    # Another runner took the scan over: this one may not write any more.
    assert leases.claim(ctx.scan_id, "thread", "other:2", 60, 3, dead_owner="test:1")
    with pytest.raises(LeaseLost):
        checkpoint.write(checkpoint.capture())


@pytest.mark.parametrize(
    "before,now,merged",
    [(None, "ok", "ok"), ("partial", "ok", "partial"), ("ok", "timeout", "timeout"), ("nodata", "ok", "ok")],
)
def test_a_name_resolved_twice_keeps_the_least_certain_answer(before, now, merged):
    from assetmon_tui.pipeline.persist import merged_status

    assert merged_status(before, now) == merged


def test_a_ports_only_scan_imports_no_http_js_or_secrets():
    """Steps are imported when first looked up: the ports step (and a
    checkpoint without pages) pulls in neither HTTP, JS nor the secrets engine."""
    import subprocess
    import sys

    heavy = (
        "assetmon_tui.scanners.http",
        "assetmon_tui.scanners.js",
        "assetmon_tui.secrets",
        "assetmon_tui.pipeline.steps.js",
        "assetmon_tui.pipeline.steps.http",
    )
    code = (
        "import sys; from assetmon_tui.pipeline import STEPS;"
        " from assetmon_tui.pipeline.checkpoint import decode_found;"
        " STEPS['ports']; decode_found({'open_ports': {'127.0.0.1': {'22': 'ssh'}}});"
        f" print(sorted(m for m in sys.modules if m.startswith({heavy!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_the_dns_step_shows_its_resolvers_back_off_in_the_progress():
    """The dns step's resolver adapts its pace like the brute force's, and the
    live panel's counters say so while it lasts (dns_limit, beside the rate);
    once the step is over, neither stands in the scan's summary."""
    from support.loopback import FakeDNS

    from assetmon_tui.pipeline.run import run_scan

    names = [f"s{i}.acme.test" for i in range(300)]
    seen: list[dict[str, int]] = []
    with FakeDNS(dict.fromkeys(names, "SERVFAIL")) as server:
        project_id = make_project(targets=names)
        scan = repo.create_scan(project_id, ["dns"], {"nameservers": [server.address]})
        final = run_scan(scan.id, lambda progress: seen.append(dict(progress.counters)), "thread")
    assert final.state == "done"
    assert any("dns_limit" in counters for counters in seen), (seen, final.counters)
    assert any("dns_qps" in counters for counters in seen)
    assert "dns_qps" not in final.counters and "dns_limit" not in final.counters  # live values: over with the step


def test_a_nameserver_that_refuses_is_named_in_the_failed_source():
    """A nameserver that does not resolve the names for us (an authoritative one
    asked for others' zones, a resolver for its own network only): REFUSED for
    all. The source's reason names it and asks the question to fix, once."""
    import json

    from support.loopback import FakeDNS

    from assetmon_tui.pipeline.run import run_scan

    names = [f"r{i}.acme.test" for i in range(60)]
    with FakeDNS(dict.fromkeys(names, "REFUSED")) as server:
        project_id = make_project(targets=names)
        scan = repo.create_scan(project_id, ["dns"], {"nameservers": [server.address]})
        final = run_scan(scan.id, lambda progress: None, "thread")
    assert final.state == "done" and final.warnings
    [source] = [s for s in json.loads(repo.get_scan(scan.id).sources) if s["source"] == "resolver A,AAAA,CNAME"]
    assert source["status"] == "failed"
    assert source["reason"].startswith("60 of 60 names got no definitive answer (60 error)"), source["reason"]
    assert f"{server.address} refused 180 queries: does it resolve these names for you" in source["reason"]
