"""The pipeline's parts: the step registry, what steps declare, and the
batched writer against a real store."""

from __future__ import annotations

import asyncio
import dataclasses
from functools import partial

from scenario import make_project
from sqlmodel import SQLModel

from assetmon_tui.core.config import get_settings
from assetmon_tui.core.modules import NAMES
from assetmon_tui.pipeline import STEPS, ScanContext
from assetmon_tui.pipeline.context import SEEDED, Found
from assetmon_tui.pipeline.persist import BatchSaver, save_services
from assetmon_tui.pipeline.run import Run
from assetmon_tui.pipeline.steps import Dns
from assetmon_tui.scanners.ports import PortResult
from assetmon_tui.store import repo


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
    return Run(scan.id, lambda progress: None, get_settings(), "thread").ctx


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
        await asyncio.sleep(0.6)  # the scanner is busy; the found port is written meanwhile
        assert saved(ctx) == {80}
