"""One scan across many workers: subdomains (the roots' brute force), dns,
ports and http cut into chunks that
real Celery workers take, merged into one scan; a worker killed mid-chunk,
a cancel mid-step, and the thread backend running the very same chunks."""

from __future__ import annotations

import json

import pytest
from support.scenario import lab_with_short_wordlist

from assetmon_tui.core.config import get_settings
from assetmon_tui.core.progress import FINAL_STATES
from assetmon_tui.dispatch import Dispatcher
from assetmon_tui.lab import Lab
from assetmon_tui.pipeline.fanout import cut, plan_parts
from assetmon_tui.pipeline.steps import Ports
from assetmon_tui.store import chunks, repo
from assetmon_tui.store.models import ScanChunk
from assetmon_tui.testing import wait_for

pytestmark = pytest.mark.alone  # three workers and kills: judged on timing, run one at a time

PORTS = "22,25,80,443,6379"
MODULES = ["subdomains", "dns", "ports", "http"]
FANNED = ("subdomains", "dns", "ports", "http")


@pytest.fixture
def lab(tmp_path, monkeypatch):
    with lab_with_short_wordlist(tmp_path, monkeypatch, hosts=40) as lab:
        monkeypatch.setenv("ASSETMON_CHUNK_SECONDS", "0.01")  # every fanned step in max_chunks chunks
        monkeypatch.setenv("ASSETMON_MAX_CHUNKS", "6")
        monkeypatch.setenv("ASSETMON_LEASE_TIMEOUT", "6")  # a reaper pass every 2 s
        monkeypatch.setenv("ASSETMON_HEARTBEAT_INTERVAL", "1")
        get_settings.cache_clear()
        yield lab


def options(lab: Lab) -> dict:
    return {
        "nameservers": [lab.info["nameserver"]],
        "ports": f"{PORTS},{lab.info['http_port']},{lab.info['https_port']}",
    }


def project(lab: Lab, name: str) -> int:
    row = repo.create_project(name)
    repo.add_targets(row.id, [lab.info["domain"]])
    return row.id


def inventory(project_id: int) -> dict[str, set]:
    return {
        "hosts": {h.name for h in repo.hosts(project_id)},
        "dns": {(name, r.rtype, r.value) for r, name in repo.dns_records(project_id)},
        "services": {(name, s.port) for s, name in repo.services(project_id)},
        "http": {(e.url, e.status, e.title) for e, _ in repo.endpoints(project_id)},
    }


def wait_final(scan_id: int, timeout: float = 180):
    return wait_for(lambda: (s := repo.get_scan(scan_id)).status in FINAL_STATES and s, timeout, 0.1, f"scan {scan_id}")


def scan_chunks(scan_id: int) -> list[ScanChunk]:
    return [c for step in FANNED for c in chunks.of_step(scan_id, step)]


def test_chunks_are_cut_evenly_and_sized_from_the_measured_pace():
    assert cut([str(i) for i in range(10)], 3) == [["0", "1", "2", "3"], ["4", "5", "6"], ["7", "8", "9"]]
    assert cut(["a"], 5) == [["a"]] and cut([], 3) == []
    settings = get_settings()
    step = Ports.__new__(Ports)  # units() needs only the ports setting
    step.ports = lambda: list(range(100))  # type: ignore[method-assign]
    items = [f"10.0.0.{i}" for i in range(50)]  # 5,000 probes
    assert len(plan_parts(step, items, pace=1000.0, settings=settings)) == 1  # 5 s at 1,000 a second
    assert len(plan_parts(step, items, pace=250.0, settings=settings)) == 4  # 20 s: four of 5 s
    parts = plan_parts(step, items, pace=1.0, settings=settings)  # 5,000 s: as many as the smallest chunk allows
    assert len(parts) == 5000 // Ports.min_units and sum(units for _, units in parts) == 5000
    many = [f"10.0.{i // 250}.{i % 250}" for i in range(5000)]  # 500,000 probes: at most max_chunks
    assert len(plan_parts(step, many, pace=1.0, settings=settings)) == settings.max_chunks


def test_one_scan_on_one_and_on_three_workers_and_in_a_thread_gives_one_inventory(lab, worker_factory, monkeypatch):
    monkeypatch.setenv("ASSETMON_BACKEND", "thread")
    get_settings.cache_clear()
    local = Dispatcher()
    threaded = local.submit(project(lab, "thread"), MODULES, options(lab))
    assert wait_final(threaded.id).status == "done"
    assert {c.step for c in scan_chunks(threaded.id)} == set(FANNED)  # the thread ran the same chunks
    assert all(c.status == "done" and c.attempts == 1 for c in scan_chunks(threaded.id))
    expected = inventory(threaded.project_id)
    assert expected["services"] and expected["http"]

    monkeypatch.delenv("ASSETMON_BACKEND")
    get_settings.cache_clear()
    one = [worker_factory()]
    dispatcher = Dispatcher()
    assert dispatcher.check_health().backend == "celery"
    single = dispatcher.submit(project(lab, "one"), MODULES, options(lab))
    assert wait_final(single.id).status == "done", repo.get_scan(single.id).error
    assert inventory(single.project_id) == expected

    three = one + worker_factory.many(2)
    dispatcher.check_health()
    spread = dispatcher.submit(project(lab, "three"), MODULES, options(lab))
    seen_workers: set[str] = set()
    ended_at: dict[str, int] = {}  # a finished step's total, as first seen
    odd: list[str] = []

    def ended() -> bool:  # meanwhile, the merged progress names the workers on it, and never goes back
        row, progress = dispatcher.poll(spread.id)
        seen_workers.update(w.split()[0] for w in progress.workers)
        if row.status not in FINAL_STATES:
            if "resuming" in progress.message:
                odd.append(f"a handover told as a resume: {progress.message}")
            if ended_at and all(m.status == "pending" for m in progress.modules.values()):
                odd.append("every step pending again after some ended")
            for name, mod in progress.modules.items():
                if mod.status == "done":
                    first = ended_at.setdefault(name, mod.total)
                    if mod.total != first:
                        odd.append(f"{name} ended at {first}, then shown {mod.done}/{mod.total}")
        return row.status in FINAL_STATES

    wait_for(ended, 180, 0.02, f"scan {spread.id}")
    assert not odd, odd[:5]
    row = repo.get_scan(spread.id)
    assert row.status == "done", row.error
    assert inventory(spread.project_id) == expected
    rows = scan_chunks(spread.id)
    assert all(c.status == "done" and c.attempts == 1 for c in rows)  # no chunk ran twice
    assert len({c.worker for c in rows}) == 3, sorted((c.step, c.number, c.worker) for c in rows)
    for worker in three:
        assert f"scan {spread.id}: " in worker.log_text() and " chunk " in worker.log_text()
    assert len(seen_workers) >= 2, seen_workers


@pytest.mark.timeout(300)
def test_a_worker_killed_mid_chunk_has_its_chunk_redone_elsewhere(lab, worker_factory, monkeypatch):
    monkeypatch.setenv("ASSETMON_HTTP_CONCURRENCY", "2")  # chunks long enough to be killed in the middle
    get_settings.cache_clear()
    workers = worker_factory.many(3)
    dispatcher = Dispatcher()
    assert dispatcher.check_health().backend == "celery"
    baseline = dispatcher.submit(project(lab, "undisturbed"), MODULES, options(lab))
    assert wait_final(baseline.id).status == "done"

    scan = dispatcher.submit(project(lab, "killed"), MODULES, options(lab))
    victim = workers[1]
    name = victim.hostname.split("@")[0]

    def victim_runs_http() -> list[ScanChunk]:
        return [c for c in chunks.of_step(scan.id, "http") if c.status == "running" and c.worker.startswith(name)]

    running = wait_for(victim_runs_http, 120, 0.02, "the victim to run an http chunk")
    victim.kill()  # the whole process group, mid-chunk

    def victim_not_shown() -> bool:  # a runner whose process is gone (or a zombie) is not shown at work
        return not [w for w in dispatcher.poll(scan.id)[1].workers if w.startswith(name)]

    wait_for(victim_not_shown, 2, 0.02, "the killed worker's runners to leave the panel")  # not their 15 s TTL
    said: set[str] = set()

    def ended() -> bool:  # meanwhile, the line says why the step's done went down
        row, progress = dispatcher.poll(scan.id)
        said.add(progress.message)
        return row.status in FINAL_STATES

    wait_for(ended, 180, 0.02, f"scan {scan.id}")
    assert any("http: " in m and "; 1 redone (a worker was lost)" in m for m in said), sorted(said)[:10]
    row = wait_final(scan.id)
    assert row.status == "done", row.error
    assert inventory(scan.project_id) == inventory(baseline.project_id)
    rows = {c.id: c for c in scan_chunks(scan.id)}
    assert all(c.status == "done" for c in rows.values())
    killed = rows[running[0].id]
    assert killed.attempts == 2 and not killed.worker.startswith(name)  # redone elsewhere
    assert all(c.attempts == 1 for c in rows.values() if c.id != killed.id)  # a finished chunk never twice
    assert repo.get_scan(scan.id).attempts == 1  # the scan itself was never lost


@pytest.mark.timeout(300)
def test_a_killed_pool_child_has_its_chunk_redone_at_once_by_the_redelivered_message(lab, worker_factory, monkeypatch):
    """The child running a chunk is killed (its worker lives on): Celery
    redelivers the chunk's message. Before, the claim refused a chunk whose
    lease had not expired, though its holder's pid was gone: the chunk waited
    for the lease (and a reaper pass), here ten minutes."""
    import os
    import signal
    import time

    monkeypatch.setenv("ASSETMON_HTTP_CONCURRENCY", "2")  # chunks long enough to be killed in the middle
    monkeypatch.setenv("ASSETMON_LEASE_TIMEOUT", "600")  # only the evidence of the dead pid can explain a quick redo
    get_settings.cache_clear()
    worker = worker_factory()
    dispatcher = Dispatcher()
    assert dispatcher.check_health().backend == "celery"
    scan = dispatcher.submit(project(lab, "child"), MODULES, options(lab))

    def http_chunk_running() -> list[ScanChunk]:
        return [c for c in chunks.of_step(scan.id, "http") if c.status == "running"]

    (running,) = wait_for(http_chunk_running, 120, 0.02, "an http chunk to run")
    (child,) = worker.pool_pids()
    os.kill(child, signal.SIGKILL)
    killed_at = time.monotonic()
    row = wait_final(scan.id, timeout=120)
    assert row.status == "done", row.error
    assert time.monotonic() - killed_at < 60  # not the lease's 600 s
    again = chunks.get(running.id)
    assert again is not None and again.status == "done" and again.attempts == 2
    said = f"http chunk {again.number}: took over from {running.owner}, which exited"
    assert said in worker.log_text()  # the log says why the chunk was taken over


def test_cancel_during_a_fanned_out_step_stops_every_chunk_within_two_seconds(lab, worker_factory, monkeypatch):
    import time

    monkeypatch.setenv("ASSETMON_HTTP_CONCURRENCY", "1")
    get_settings.cache_clear()
    worker_factory.many(2)
    dispatcher = Dispatcher()
    assert dispatcher.check_health().backend == "celery"
    scan = dispatcher.submit(project(lab, "cancelled"), MODULES, options(lab))

    def http_fanned_out() -> bool:
        row = repo.get_scan(scan.id)
        running = [c for c in chunks.of_step(scan.id, "http") if c.status == "running"]
        return row.owner == chunks.fanout_owner("http") and len(running) >= 2

    wait_for(http_fanned_out, 120, 0.02, "http chunks running on both workers")
    started = time.monotonic()
    dispatcher.cancel(scan.id)
    row = wait_final(scan.id, timeout=10)
    assert row.status == "cancelled" and time.monotonic() - started < 2
    settled = chunks.of_step(scan.id, "http")
    assert all(c.status in chunks.SETTLED for c in settled), [(c.number, c.status) for c in settled]
    assert all(c.status == "cancelled" for c in settled if not json.loads(c.result or "{}"))
