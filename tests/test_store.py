"""The store: upserts keep first_seen, claims are atomic, cancel semantics."""

import pytest

from assetmon_tui.core.targets import TargetError
from assetmon_tui.store import repo
from assetmon_tui.store.db import session


def test_add_targets_is_all_or_nothing():
    project = repo.create_project("acme")
    with pytest.raises(TargetError):
        repo.add_targets(project.id, ["acme.test", "not a target"])
    assert repo.list_targets(project.id) == []
    repo.add_targets(project.id, ["acme.test", "acme.test", "!dev.acme.test"])
    assert [(t.value, t.exclude) for t in repo.list_targets(project.id)] == [
        ("acme.test", False),
        ("dev.acme.test", True),
    ]


def test_duplicate_project_name_is_refused():
    repo.create_project("acme")
    with pytest.raises(ValueError, match="exists"):
        repo.create_project("acme")


def test_upsert_keeps_first_seen_and_moves_last_seen():
    project = repo.create_project("acme")
    first = repo.create_scan(project.id, ["dns"], {})
    with session() as s:
        a = repo.upsert_host(s, project.id, "www.acme.test", first.id, dns_status="ok")
        s.commit()
    repo.finish_scan(first.id, "done")
    second = repo.create_scan(project.id, ["dns"], {})
    with session() as s:
        b = repo.upsert_host(s, project.id, "www.acme.test", second.id, dns_status="nxdomain")
        s.commit()
    assert a == b
    (host,) = repo.hosts(project.id)
    assert host.first_scan_id == first.id and host.last_scan_id == second.id
    assert host.first_seen <= host.last_seen and host.dns_status == "nxdomain"


def test_a_scan_is_claimed_once():
    project = repo.create_project("acme")
    scan = repo.create_scan(project.id, ["dns"], {})
    assert repo.claim_scan(scan.id, "thread", "a:1")
    assert not repo.claim_scan(scan.id, "celery", "b:2")
    assert repo.get_scan(scan.id).owner == "a:1"


def test_cancel_queued_is_immediate_and_running_is_cooperative():
    project = repo.create_project("acme")
    queued = repo.create_scan(project.id, ["dns"], {})
    assert repo.request_cancel(queued.id) == "cancelled"
    assert not repo.claim_scan(queued.id, "thread", "a:1")  # nobody runs it afterwards
    running = repo.create_scan(project.id, ["dns"], {})
    repo.claim_scan(running.id, "thread", "a:1")
    assert repo.request_cancel(running.id) == "cancelling"
    assert repo.cancel_requested(running.id)
    assert repo.finish_scan(running.id, "cancelled")
    assert not repo.finish_scan(running.id, "failed")  # a final state is never overwritten
    assert repo.get_scan(running.id).status == "cancelled"


def test_stale_scans_are_those_without_recent_heartbeat():
    project = repo.create_project("acme")
    scan = repo.create_scan(project.id, ["dns"], {})
    repo.claim_scan(scan.id, "celery", "w:1")
    assert repo.stale_scans(60) == []
    assert [s.id for s in repo.stale_scans(-1)] == [scan.id]


def test_one_active_scan_per_project_is_enforced_by_the_database():
    project = repo.create_project("acme")
    other = repo.create_project("other")
    first = repo.create_scan(project.id, ["dns"], {})
    repo.create_scan(other.id, ["dns"], {})  # other projects are independent
    with pytest.raises(repo.ProjectBusy, match=f"#{first.id}"):
        repo.create_scan(project.id, ["dns"], {})
    repo.claim_scan(first.id, "celery", "w:1")
    repo.finish_scan(first.id, "failed", "runner lost")  # what the reaper does to a dead scan
    assert repo.create_scan(project.id, ["dns"], {}).id > first.id
