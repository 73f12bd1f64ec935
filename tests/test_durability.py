"""Durable scans under real faults: busy workers, a worker's process group
killed with nobody watching, a pool child killed, a kill during subdomain
discovery, worker + beat only. Real Redis, real Celery workers, the lab."""

from __future__ import annotations

import os
import signal
import subprocess
import threading

import pytest
from support.scenario import estate, lab_with_short_wordlist, make_project

from assetmon_tui.core.config import get_settings
from assetmon_tui.core.progress import FINAL_STATES
from assetmon_tui.dispatch import Dispatcher
from assetmon_tui.lab import Lab
from assetmon_tui.store import chunks, leases, repo
from assetmon_tui.testing import ROOT, VENV_BIN, Beat, wait_for

PORTS = "22,25,80,443,6379"
pytestmark = pytest.mark.alone  # kills mid-step and queues of real workers: judged on timing, run one at a time


@pytest.fixture
def lab(tmp_path, monkeypatch):
    with lab_with_short_wordlist(tmp_path, monkeypatch, hosts=60) as lab:
        yield lab


def lab_options(lab: Lab) -> dict:
    ports = f"{PORTS},{lab.info['http_port']},{lab.info['https_port']}"
    return {"nameservers": [lab.info["nameserver"]], "ports": ports}


def lab_project(lab: Lab, name: str) -> int:
    project = repo.create_project(name)
    repo.add_targets(project.id, [lab.info["domain"]])
    return project.id


def wait_final(scan_id: int, timeout: float = 180):
    return wait_for(lambda: (s := repo.get_scan(scan_id)).status in FINAL_STATES and s, timeout, 0.1, f"scan {scan_id}")


def inventory(project_id: int) -> dict[str, set]:
    """What a scan of the lab saw, independent of ids and times."""
    return {
        "hosts": {h.name for h in repo.hosts(project_id)},
        "dns": {(name, r.rtype, r.value) for r, name in repo.dns_records(project_id)},
        "services": {(name, s.port) for s, name in repo.services(project_id)},
        "http": {(e.url, e.status, e.title) for e, _ in repo.endpoints(project_id)},
    }


def checkpointed(scan_id: int, step: str) -> int:
    """How many items of `step` the scan's checkpoint says are finished."""
    state = leases.load_checkpoint(scan_id)
    return len(state.get("items", [])) if state.get("step") == step else 0


def wait_step(dispatcher: Dispatcher, scan_id: int, step: str, done: int = 1, timeout: float = 120) -> None:
    """Until `step` is running and has finished at least `done` items."""

    def there() -> bool:
        module = dispatcher.poll(scan_id)[1].modules.get(step)
        return bool(module and module.status == "running" and module.done >= done)

    wait_for(there, timeout, 0.05, f"{step} to be under way in scan {scan_id}")


@pytest.mark.timeout(300)
def test_a_worker_killed_mid_http_with_nobody_watching_is_resumed_by_a_new_worker(lab, worker_factory, monkeypatch):
    monkeypatch.setenv("ASSETMON_HTTP_CONCURRENCY", "2")  # a step long enough to be killed in the middle
    monkeypatch.setenv("ASSETMON_CHUNK_SECONDS", "0.01")  # http in max_chunks chunks: the unit a resume repeats
    monkeypatch.setenv("ASSETMON_MAX_CHUNKS", "8")
    get_settings.cache_clear()
    modules = ["subdomains", "dns", "ports", "http"]
    first = worker_factory()
    dispatcher = Dispatcher()
    assert dispatcher.check_health().backend == "celery"
    baseline = dispatcher.submit(lab_project(lab, "undisturbed"), modules, lab_options(lab))
    assert wait_final(baseline.id).status == "done"

    project_id = lab_project(lab, "killed")
    scan = dispatcher.submit(project_id, modules, lab_options(lab))

    def mid_http() -> list[int]:  # a chunk done, and the next one under way
        rows = chunks.of_step(scan.id, "http")
        done = [c.id for c in rows if c.status == "done"]
        return done if done and any(c.status == "running" for c in rows) else []

    done_before = wait_for(mid_http, 120, 0.01, "the http step to finish a chunk and run the next")
    first.kill()  # the whole process group, mid-http; no TUI or CLI reaps from here on
    assert repo.get_scan(scan.id).status == "running"

    worker_factory()  # its reaper finds the dead runner's chunk (same host, pid gone) and sends it again
    row = wait_final(scan.id)
    assert row.status == "done", row.error
    assert inventory(project_id) == inventory(baseline.project_id)
    rows = {c.id: c for c in chunks.of_step(scan.id, "http")}
    assert all(rows[i].attempts == 1 for i in done_before)  # a finished chunk is never run again
    assert any(c.attempts == 2 for c in rows.values())  # the one killed mid-way was redone
    assert [a.outcome for a in leases.attempts(scan.id)] == ["done"]  # the chunk was lost, not the scan


def test_a_killed_pool_child_is_resumed_at_once_by_the_redelivered_message(lab, worker_factory, monkeypatch):
    monkeypatch.setenv("ASSETMON_LEASE_TIMEOUT", "600")  # only the evidence of the dead pid can explain a fast resume
    get_settings.cache_clear()
    worker = worker_factory()
    dispatcher = Dispatcher()
    assert dispatcher.check_health().backend == "celery"
    scan = dispatcher.submit(lab_project(lab, "child"), ["subdomains", "dns", "ports", "http"], lab_options(lab))
    wait_step(dispatcher, scan.id, "http", done=5)
    (child,) = worker.pool_pids()
    os.kill(child, signal.SIGKILL)
    row = wait_final(scan.id, timeout=120)
    assert row.status == "done", row.error
    attempts = leases.attempts(scan.id)
    assert len(attempts) == 2 and attempts[0].outcome == "lost" and attempts[1].outcome == "done"
    assert attempts[1].started_at.timestamp() - attempts[0].started_at.timestamp() < 120


def test_names_found_before_a_kill_during_subdomains_are_in_the_store(lab, worker_factory):
    worker = worker_factory()
    dispatcher = Dispatcher()
    project_id = lab_project(lab, "subs")
    # The whole bundled wordlist (9,600 words): a brute force of several seconds, longer than a flush
    wordlist = ROOT / "assetmon_tui" / "data" / "subdomains.txt"
    scan = dispatcher.submit(project_id, ["subdomains", "dns"], {**lab_options(lab), "wordlist": str(wordlist)})

    def stored_while_running() -> set[str]:
        module = dispatcher.poll(scan.id)[1].modules.get("subdomains")
        running = module is not None and module.status == "running"
        names = {h.name for h in repo.hosts(project_id)} - {lab.info["domain"]}
        return names if running and len(names) >= 3 else set()

    # Written as found (at least every couple of seconds), not when the step ends:
    found = wait_for(stored_while_running, 60, 0.05, "names stored while subdomain discovery runs")
    worker.kill()
    assert repo.get_scan(scan.id).status == "running"  # killed mid-step...
    assert found <= {h.name for h in repo.hosts(project_id)}  # ...and what it found is kept


def test_busy_workers_keep_their_queue_and_run_each_scan_once(lab, worker_factory, home):
    """Two workers of one process each, ten CLI scans at once: every scan runs
    on Celery exactly once, however long it waits behind the others."""
    workers = worker_factory.many(2)
    env = {**os.environ, **workers[0].extra_env}
    procs = []
    for n in range(10):
        cmd = [str(VENV_BIN / "assetmon"), "scan", lab.info["domain"], "--project", f"p{n}"]
        cmd += [
            "--modules",
            "dns,ports,http",
            "--nameserver",
            lab.info["nameserver"],
            "--ports",
            lab_options(lab)["ports"],
        ]
        procs.append(
            subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        )
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 10, errors
    scans = repo.list_scans()
    assert len(scans) == 10 and {s.status for s in scans} == {"done"} and {s.backend for s in scans} == {"celery"}
    for scan in scans:
        assert [a.outcome for a in leases.attempts(scan.id)] == ["done"], scan.id
    logs = "".join(w.log_text() for w in workers)
    for scan in scans:
        assert logs.count(f"[{scan.task_id}] succeeded") == 1, scan.task_id


def test_worker_and_beat_only_a_killed_worker_does_not_block_the_schedule(worker_factory, home, redis_server):
    """No TUI, no CLI: the interrupted scan is resumed by the next worker and the
    project's next scheduled slot runs."""
    from datetime import timedelta

    from assetmon_tui import schedule
    from assetmon_tui.store import schedules
    from assetmon_tui.store.models import utcnow

    worker = worker_factory()
    page = threading.Event()  # the home page answers once set: the first scan runs until the kill
    with estate(gate=page) as e:
        project_id = make_project(targets=[e.url])
        due = utcnow() - timedelta(seconds=61)  # the first slot is due at once
        schedule.set_schedule(project_id, interval_seconds=60, modules=["dns", "http"], options=e.options(), now=due)
        with Beat(home, worker.environment()) as beat:
            first = wait_for(lambda: repo.list_scans(project_id), 30, 0.2, f"beat to start a scan ({beat.log})")[0]
            wait_for(lambda: repo.get_scan(first.id).status == "running", 30, 0.1, "the scheduled scan to run")
            worker.kill()
            worker_factory()  # resumes the interrupted scan
            page.set()
            assert wait_final(first.id, timeout=120).status == "done"
            # The next slot starts now that the project is free (time moved on to it).
            schedules.save_schedule(project_id, next_run_at=utcnow() - timedelta(seconds=1))
            later = wait_for(lambda: [s for s in repo.list_scans(project_id) if s.id != first.id], 30, 0.2, "slot")
            assert wait_final(later[0].id, timeout=120).status == "done"


def test_a_redis_outage_mid_scan_is_said_plainly_and_loses_nothing(worker_factory, redis_server, monkeypatch):
    # Two slow pages probed one after the other: the first ends (a progress
    # report) while Redis is down, the second after it is back.
    monkeypatch.setenv("ASSETMON_HTTP_TIMEOUT", "4")
    monkeypatch.setenv("ASSETMON_HTTP_CONCURRENCY", "1")
    get_settings.cache_clear()
    worker = worker_factory()  # started with these settings
    dispatcher = Dispatcher()
    with estate(slow=True) as e:
        urls = [e.url, e.url.replace("www.", "api.")]
        scan = dispatcher.submit(make_project(targets=urls), ["dns", "http"], e.options())
        wait_step(dispatcher, scan.id, "http", done=0)
        redis_server.stop()
        message = wait_for(lambda: "Redis unreachable since" in (m := dispatcher.poll(scan.id)[1].message) and m, 10)
        assert "the worker keeps scanning" in message
        wait_for(lambda: "Redis unreachable" in worker.log_text(), 30, 0.1, "the worker to say Redis went away")
        assert repo.get_scan(scan.id).status == "running"  # the second page is still being waited for
        redis_server.start()
        row = wait_final(scan.id, timeout=60)
    assert row.status == "done"
    assert {"www.scan.test", "api.scan.test"} <= {h.name for h in repo.hosts(row.project_id)}  # nothing lost
    log = worker.log_text()
    assert log.count("Redis unreachable") == 1 and log.count("Redis is back") == 1, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
