"""Both backends end to end: a real redis-server, a real Celery worker
process, and loopback DNS and HTTP servers to scan."""

from __future__ import annotations

import time

import pytest
from support.scenario import WEB_ADDRESS, estate, make_project, run_to_end

from assetmon_tui.core.config import get_settings
from assetmon_tui.dispatch import Dispatcher
from assetmon_tui.store import leases, repo
from assetmon_tui.testing import wait_for


def assert_results(project_id: int, scan_id: int, port: int) -> None:
    rows = repo.scan_results(scan_id)
    hosts = {r["name"] for r in rows if r["type"] == "host"}
    assert {"www.scan.test", "api.scan.test", WEB_ADDRESS} <= hosts
    dns = {(r["name"], r["rtype"], r["value"]) for r in rows if r["type"] == "dns"}
    assert ("www.scan.test", "A", WEB_ADDRESS) in dns
    assert ("api.scan.test", "CNAME", "www.scan.test") in dns
    services = {(r["address"], r["port"]) for r in rows if r["type"] == "service"}
    assert (WEB_ADDRESS, port) in services  # (this machine may listen on 0.0.0.0 too)
    http = {r["url"]: r for r in rows if r["type"] == "http"}
    page = http[f"http://www.scan.test:{port}/"]
    assert page["status"] == 200
    assert page["title"] == "Scan [bold]Test[/] Home"  # escapes stripped, markup kept as text


def test_celery_scan_end_to_end_with_live_progress(worker):
    dispatcher = Dispatcher()
    assert dispatcher.check_health().backend == "celery"
    with estate() as e:
        project_id = make_project()
        scan = dispatcher.submit(project_id, ["dns", "ports", "http"], e.options(ports="1-65535"))
        assert scan.backend == "celery" and scan.task_id
        progress, seen = run_to_end(dispatcher, scan.id)
        assert progress.state == "done", progress
        running = [s for s in seen if s[0] == "running"]
        assert len(running) >= 2, f"expected at least two intermediate states, saw {seen}"
        assert_results(project_id, scan.id, e.web.port)
        row = repo.get_scan(scan.id)
        assert row.status == "done" and row.backend == "celery" and row.heartbeat is not None


def test_redis_down_runs_in_a_thread_then_back_to_celery(worker, redis_server):
    dispatcher = Dispatcher()
    with estate() as e:
        project_id = make_project()
        redis_server.stop()
        health = dispatcher.check_health()
        assert health.backend == "thread" and "no Redis at" in health.detail
        local = dispatcher.submit(project_id, ["dns", "ports", "http"], e.options())
        assert local.backend == "thread"
        progress, _ = run_to_end(dispatcher, local.id)
        assert progress.state == "done"
        assert_results(project_id, local.id, e.web.port)

        redis_server.start()  # same port: the worker reconnects by itself
        wait_for(lambda: dispatcher.check_health().backend == "celery", 60, 0.5, "the worker to come back")
        remote = dispatcher.submit(project_id, ["dns", "ports", "http"], e.options())
        assert remote.backend == "celery"
        progress, _ = run_to_end(dispatcher, remote.id)
        assert progress.state == "done"
        assert_results(project_id, remote.id, e.web.port)


def test_redis_up_without_worker_never_queues(redis_server):
    dispatcher = Dispatcher()
    health = dispatcher.check_health()
    assert health.backend == "thread" and health.redis_ok and "no worker on" in health.detail
    with estate() as e:
        scan = dispatcher.submit(make_project(), ["dns"], e.options())
        assert scan.backend == "thread"
        assert run_to_end(dispatcher, scan.id)[0].state == "done"


def test_scan_queued_to_a_worker_that_died_is_taken_back_by_its_submitter(worker):
    dispatcher = Dispatcher()
    assert dispatcher.check_health().backend == "celery"
    worker.kill()  # the cached health still says Celery: the race a user can hit
    with estate() as e:
        scan = dispatcher.submit(make_project(), ["dns", "ports", "http"], e.options())
        assert scan.backend == "celery" and repo.get_scan(scan.id).status == "queued"
        other = Dispatcher()
        other.owner = "another-host:4242"  # another TUI or CLI (this process's pid is the submitter)
        assert other.reap() == []  # it did not submit the scan: it never takes it
        assert repo.get_scan(scan.id).backend == "celery"
        assert scan.id in dispatcher.reap()  # its submitter, with evidence that no worker is alive
        progress, _ = run_to_end(dispatcher, scan.id)
        assert progress.state == "done"
        assert repo.get_scan(scan.id).backend == "thread"


@pytest.mark.alone  # cancel within 2 s: timed
@pytest.mark.parametrize("backend", ["thread", "celery"])
def test_cancel_a_running_scan(backend, request, monkeypatch):
    if backend == "celery":
        request.getfixturevalue("worker")
    else:
        monkeypatch.setenv("ASSETMON_BACKEND", "thread")
    monkeypatch.setenv("ASSETMON_HTTP_TIMEOUT", "60")
    get_settings.cache_clear()
    dispatcher = Dispatcher()
    with estate(slow=True) as e:
        scan = dispatcher.submit(make_project(targets=[e.url]), ["dns", "http"], e.options())
        assert scan.backend == backend
        wait_for(
            lambda: (
                dispatcher.poll(scan.id)[1].modules.get("http", None)
                and dispatcher.poll(scan.id)[1].modules["http"].status == "running"
            ),
            30,
            what="http to start",
        )
        started = time.monotonic()
        assert dispatcher.cancel(scan.id) == "cancelling"
        progress, _ = run_to_end(dispatcher, scan.id, timeout=15)
        assert progress.state == "cancelled"
        assert time.monotonic() - started < 2  # the running step stops within 2 s
        row = repo.get_scan(scan.id)
        assert row.status == "cancelled" and row.finished_at is not None


def test_a_cancel_between_a_steps_plan_and_its_first_chunk_cancels_the_scan(monkeypatch):
    """The race that left Celery scans 'cancelling' for a lease: a cancel right
    after a step planned its chunks makes the claim refuse; that is a cancel,
    not a runner lost."""
    from assetmon_tui.pipeline import run as pipeline_run
    from assetmon_tui.store import chunks

    monkeypatch.setenv("ASSETMON_BACKEND", "thread")
    get_settings.cache_clear()
    dispatcher = Dispatcher()
    planned = chunks.plan

    def plan_then_cancel(scan_id, step, parts):
        rows = planned(scan_id, step, parts)
        if step == "http":
            assert dispatcher.cancel(scan_id) == "cancelling"
        return rows

    monkeypatch.setattr(pipeline_run.chunks, "plan", plan_then_cancel)
    with estate() as e:
        scan = dispatcher.submit(make_project(), ["dns", "http"], e.options())
        progress, _ = run_to_end(dispatcher, scan.id, timeout=15)
    assert progress.state == "cancelled", progress
    row = repo.get_scan(scan.id)
    assert row.status == "cancelled" and row.finished_at is not None
    assert all(c.status in chunks.SETTLED for c in chunks.of_step(scan.id, "http"))


def test_a_lost_runner_is_failed_once_its_attempts_are_spent(monkeypatch):
    monkeypatch.setenv("ASSETMON_MAX_ATTEMPTS", "1")
    get_settings.cache_clear()
    project_id = make_project()
    scan = repo.create_scan(project_id, ["dns"], {})
    assert leases.claim(scan.id, "celery", "elsewhere:1", lease=-1, max_attempts=1)  # lease already over
    assert scan.id in Dispatcher().reap()
    row = repo.get_scan(scan.id)
    assert row.status == "failed" and "stopped renewing its lease" in row.error and "1 attempts" in row.error


def test_thread_scan_of_a_dead_process_is_requeued_at_once(no_redis):
    project_id = make_project()
    scan = repo.create_scan(project_id, ["dns"], {})
    import socket

    dead = f"{socket.gethostname()}:999999"
    assert leases.claim(scan.id, "thread", dead, lease=3600, max_attempts=3)  # a long lease: only the pid tells
    assert scan.id in Dispatcher().reap()
    row = repo.get_scan(scan.id)
    assert row.status == "queued" and row.owner == ""
    assert "exited" in leases.attempts(scan.id)[0].reason


def test_a_scan_taken_back_by_a_process_that_died_before_running_it_is_sent_again(monkeypatch):
    import socket

    from assetmon_tui.reaper import Reaper

    scan = repo.create_scan(make_project(), ["dns"], {})
    repo.set_backend(scan.id, "thread", owner=f"{socket.gethostname()}:999999")  # it died before claiming
    sent: list[int] = []
    assert Reaper(get_settings(), enqueue=sent.append, held_tasks=lambda: None).reap() == [scan.id]
    assert sent == [scan.id]
    repo.set_backend(scan.id, "thread", owner=Dispatcher().owner)  # a live process about to run it
    assert Reaper(get_settings(), enqueue=sent.append, held_tasks=lambda: None).reap() == []


def test_the_broker_is_asked_which_messages_it_still_holds(redis_server):
    from worker.celery_app import enqueue_scan, held_tasks, make_app

    app = make_app(get_settings())
    scan = repo.create_scan(make_project(), ["dns"], {})
    task_id = enqueue_scan(app, scan.id)  # no worker: the message waits in the queue
    assert task_id in held_tasks(app)
    redis_server.stop()
    assert held_tasks(app) is None  # cannot tell: the reaper then leaves the scan alone


def test_a_poll_between_the_rows_end_and_the_last_report_tells_the_end(no_redis):
    """The runner commits the row's end, then reports: a poll in between saw
    the row's state beside the last step's line ("js: done"), seen in CI."""
    from assetmon_tui.core.progress import Progress

    dispatcher = Dispatcher()
    scan = repo.create_scan(make_project(), ["dns"], {})
    repo.set_backend(scan.id, "thread", owner=dispatcher.owner)
    running = Progress(scan.id, state="running", message="js: done", warnings=["ct acme.test: failed (refused)"])
    dispatcher.thread._progress[scan.id] = running  # the runner's report before its last one
    assert repo.finish_scan(scan.id, "done")
    _, progress = dispatcher.poll(scan.id)
    assert progress.state == "done" and progress.message == "finished with 1 warning(s)"
    assert progress.finished_at is not None and not progress.active
