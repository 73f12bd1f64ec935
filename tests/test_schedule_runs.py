"""A due schedule really fires: under a `celery beat` process with a worker,
and in thread mode through `run_due` with the dispatcher."""

from __future__ import annotations

from datetime import timedelta

from support.scenario import estate, make_project, run_to_end

from assetmon_tui import schedule
from assetmon_tui.core.config import get_settings
from assetmon_tui.dispatch import Dispatcher
from assetmon_tui.store import repo
from assetmon_tui.store.models import utcnow
from assetmon_tui.testing import Beat, wait_for


def due_schedule(project_id: int, e) -> None:
    schedule.set_schedule(
        project_id,
        interval_seconds=3600,
        modules=["dns", "http"],
        options=e.options(),
        now=utcnow() - timedelta(hours=2),
    )  # next run is in the past: due now


def test_a_schedule_fires_under_celery_beat(worker, home):
    with estate() as e:
        project_id = make_project("acme", [e.url])
        due_schedule(project_id, e)
        with Beat(home, worker.environment()) as beat:
            scans = wait_for(lambda: repo.list_scans(project_id), 30, 0.2, f"beat to start a scan ({beat.log})")
            (scan,) = scans
            assert scan.backend == "celery"
            progress, _ = run_to_end(Dispatcher(), scan.id, timeout=60)
            assert progress.state == "done"
            assert schedule.get_schedule(project_id).next_run_at > utcnow()  # moved to the next slot


def test_a_schedule_fires_in_thread_mode(monkeypatch):
    monkeypatch.setenv("ASSETMON_BACKEND", "thread")
    get_settings.cache_clear()
    with estate() as e:
        project_id = make_project("acme", [e.url])
        due_schedule(project_id, e)
        dispatcher = Dispatcher()
        assert schedule.run_due(dispatcher.submit) == [project_id]
        (scan,) = repo.list_scans(project_id)
        assert scan.backend == "thread"
        assert run_to_end(dispatcher, scan.id)[0].state == "done"
        assert schedule.run_due(dispatcher.submit) == []  # not due again until the next slot
