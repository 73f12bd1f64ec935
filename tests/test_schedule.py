"""Schedules: validation, next runs, due runs claimed once, the project lock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from support.world import project_with_targets

from assetmon_tui import schedule
from assetmon_tui.store import leases, repo
from assetmon_tui.store.models import utcnow

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


class Recorder:
    """A stand-in for dispatcher.submit that records what it was asked to start."""

    def __init__(self, fail: Exception | None = None):
        self.calls: list[tuple[int, list[str], dict]] = []
        self.fail = fail

    def __call__(self, project_id: int, modules: list[str], options: dict):
        self.calls.append((project_id, modules, options))
        if self.fail:
            raise self.fail
        return repo.create_scan(project_id, modules, options)  # what a real submit leaves behind


def test_validation_gives_clear_errors():
    project = project_with_targets()
    with pytest.raises(ValueError, match="either an interval"):
        schedule.set_schedule(project.id)
    with pytest.raises(ValueError, match="either an interval"):
        schedule.set_schedule(project.id, interval_seconds=3600, cron="0 3 * * *")
    with pytest.raises(ValueError, match="at least 60"):
        schedule.set_schedule(project.id, interval_seconds=5)
    with pytest.raises(ValueError, match="5 fields"):
        schedule.set_schedule(project.id, cron="0 3 * *")
    with pytest.raises(ValueError, match="bad cron line '61 \\* \\* \\* \\*'"):
        schedule.set_schedule(project.id, cron="61 * * * *")
    with pytest.raises(ValueError, match="bad cron line"):
        schedule.set_schedule(project.id, cron="0 0 31 2 *")  # never comes
    with pytest.raises(ValueError, match="unknown module"):
        schedule.set_schedule(project.id, interval_seconds=3600, modules=["dns", "nmap"])
    assert schedule.get_schedule(project.id) is None


def test_set_schedule_replaces_and_computes_the_next_run():
    project = project_with_targets()
    first = schedule.set_schedule(project.id, interval_seconds=3600, modules=["http", "dns"], now=T0)
    assert first.kind == "interval" and first.modules == "dns,http"  # canonical order
    assert schedule.as_utc(first.next_run_at) == T0 + timedelta(hours=1)
    second = schedule.set_schedule(project.id, cron="30 4 * * *", options={"ports": "80"}, now=T0)
    assert second.id == first.id and second.kind == "cron" and second.interval_seconds is None
    assert len(schedule.list_schedules()) == 1
    local = schedule.as_utc(second.next_run_at).astimezone()
    assert (local.hour, local.minute) == (4, 30) and schedule.as_utc(second.next_run_at) > T0


def test_next_run_keeps_the_interval_cadence_without_catch_up_bursts():
    sch = schedule.Schedule(project_id=1, kind="interval", interval_seconds=600, next_run_at=T0)
    assert schedule.next_run(sch, T0 + timedelta(seconds=3)) == T0 + timedelta(minutes=10)
    assert schedule.next_run(sch, T0 + timedelta(hours=5, minutes=1)) == T0 + timedelta(hours=5, minutes=10)
    assert schedule.next_run(sch, T0 - timedelta(minutes=1)) == T0  # not due yet: unchanged
    fresh = schedule.Schedule(project_id=1, kind="interval", interval_seconds=600)
    assert schedule.next_run(fresh, T0) == T0 + timedelta(minutes=10)
    cron = schedule.Schedule(project_id=1, kind="cron", cron="*/15 * * * *")
    after = datetime(2030, 1, 1, 12, 7, tzinfo=UTC)
    assert schedule.next_run(cron, after).minute == 15 and schedule.next_run(cron, after) > after


def test_due_schedules_and_mark_ran_claim_a_run_once():
    project = project_with_targets()
    other = project_with_targets("other")
    sch = schedule.set_schedule(project.id, interval_seconds=600, now=T0)
    schedule.set_schedule(other.id, interval_seconds=600, enabled=False, now=T0)
    assert schedule.due_schedules(T0 + timedelta(minutes=9)) == []
    due = schedule.due_schedules(T0 + timedelta(minutes=10))
    assert [s.project_id for s in due] == [project.id]  # the disabled one is never due
    at = T0 + timedelta(minutes=10, seconds=2)
    assert schedule.mark_ran(sch.id, at)
    assert not schedule.mark_ran(sch.id, at)  # a second poller loses
    row = schedule.get_schedule(project.id)
    assert schedule.as_utc(row.last_run_at) == at and schedule.as_utc(row.next_run_at) == T0 + timedelta(minutes=20)
    schedule.enable_schedule(project.id, False)
    assert schedule.due_schedules(T0 + timedelta(hours=5)) == []
    row = schedule.enable_schedule(project.id, True, now=T0 + timedelta(hours=5, minutes=1))
    assert schedule.as_utc(row.next_run_at) == T0 + timedelta(hours=5, minutes=10)  # no catch-up run


def test_run_due_submits_free_projects_and_waits_for_busy_ones():
    now = utcnow()
    free, busy = project_with_targets("free"), project_with_targets("busy")
    schedule.set_schedule(free.id, interval_seconds=3600, modules=["dns"], options={"ports": "80"}, now=now)
    schedule.set_schedule(busy.id, interval_seconds=3600, now=now)
    running = repo.create_scan(busy.id, ["dns"], {})
    assert leases.claim(running.id, "thread", "t:1", 60, 3)
    submit = Recorder()
    later = now + timedelta(hours=1, seconds=1)
    assert schedule.run_due(submit, now=later) == [free.id]
    assert submit.calls == [(free.id, ["dns"], {"ports": "80"})]
    assert schedule.run_due(submit, now=later) == []  # the free project now has a queued scan
    repo.finish_scan(running.id, "done")
    assert schedule.run_due(submit, now=later) == [busy.id]  # still due, now free
    assert len(submit.calls) == 2


def test_a_failing_submit_is_recorded_and_the_schedule_moves_on():
    now = utcnow()
    project = project_with_targets()
    schedule.set_schedule(project.id, interval_seconds=600, now=now)
    submit = Recorder(fail=ValueError("the project has no targets"))
    assert schedule.run_due(submit, now=now + timedelta(minutes=11)) == []
    row = schedule.get_schedule(project.id)
    assert row.last_error == "ValueError: the project has no targets"
    assert schedule.as_utc(row.next_run_at) > now + timedelta(minutes=11)


def test_beat_scheduler_queues_due_scans_on_celery(redis_server, monkeypatch):
    """The beat scheduler's poll creates the scan row and puts the task on the queue."""
    import redis

    import worker.celery_app
    from worker.beat import DatabaseScheduler

    app = worker.celery_app.make_app()  # bound to this test's Redis
    monkeypatch.setattr(worker.celery_app, "app", app)
    project = project_with_targets()
    schedule.set_schedule(project.id, interval_seconds=600, modules=["dns"], now=utcnow() - timedelta(minutes=11))
    beat = DatabaseScheduler(app=app)
    delay = beat.tick()
    assert 0 < delay <= 5
    (scan,) = repo.list_scans(project.id)
    assert (scan.status, scan.backend, scan.modules) == ("queued", "celery", "dns") and scan.task_id
    queued = redis.Redis.from_url(redis_server.url).lrange(worker.celery_app.queue_name(), 0, -1)  # this store's
    assert len(queued) == 1 and scan.task_id.encode() in queued[0]
    beat.tick()  # polled again within 5 s: nothing more
    assert len(repo.list_scans(project.id)) == 1
