"""The store: upserts keep first_seen, claims are atomic, cancel semantics."""

import pytest

from assetmon_tui.core.config import get_settings
from assetmon_tui.core.targets import TargetError
from assetmon_tui.store import leases, repo
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


def claim(scan_id: int, owner: str, lease: float = 60, dead: str = "") -> bool:
    return leases.claim(scan_id, "thread", owner, lease, max_attempts=3, dead_owner=dead)


def test_a_scan_is_claimed_once():
    project = repo.create_project("acme")
    scan = repo.create_scan(project.id, ["dns"], {})
    assert claim(scan.id, "a:1")
    assert not claim(scan.id, "b:2")  # a duplicate message: the lease is held
    assert repo.get_scan(scan.id).owner == "a:1"
    assert [(a.number, a.runner, a.ended_at) for a in leases.attempts(scan.id)] == [(1, "a:1", None)]


def test_a_second_enqueue_of_a_scan_a_runner_took_leaves_it_with_that_runner():
    """A reaper re-sent a scan its submitter was still queueing; a worker took
    one copy: before, the other's bookkeeping reset the row's owner, the
    runner stopped ("no longer run by"), and the scan waited for its lease."""
    from assetmon_tui.reaper import Reaper

    project = repo.create_project("acme")
    scan = repo.create_scan(project.id, ["dns"], {})
    sent: list[int] = []
    reaper = Reaper(get_settings(), enqueue=sent.append, held_tasks=lambda: set())
    assert reaper.reap() == [] and sent == []  # just submitted, no task id yet: its submitter is queueing it
    assert repo.set_backend(scan.id, "celery", "scan-1-a")
    assert claim(scan.id, "worker:1")
    assert not repo.set_backend(scan.id, "celery", "scan-1-b")  # the second copy's bookkeeping: refused
    row = repo.get_scan(scan.id)
    assert (row.owner, row.task_id, row.status) == ("worker:1", "scan-1-a", "running")


def test_cancel_queued_is_immediate_and_running_is_cooperative():
    project = repo.create_project("acme")
    queued = repo.create_scan(project.id, ["dns"], {})
    assert repo.request_cancel(queued.id) == "cancelled"
    assert not claim(queued.id, "a:1")  # nobody runs it afterwards
    running = repo.create_scan(project.id, ["dns"], {})
    claim(running.id, "a:1")
    assert repo.request_cancel(running.id) == "cancelling"
    assert repo.cancel_requested(running.id)
    assert repo.finish_scan(running.id, "cancelled")
    assert not repo.finish_scan(running.id, "failed")  # a final state is never overwritten
    assert repo.get_scan(running.id).status == "cancelled"
    assert leases.attempts(running.id)[0].outcome == "cancelled"


def test_an_expired_lease_or_a_dead_owner_lets_another_runner_take_over():
    project = repo.create_project("acme")
    scan = repo.create_scan(project.id, ["dns"], {})
    assert claim(scan.id, "a:1", lease=60)
    assert not claim(scan.id, "b:2")
    assert claim(scan.id, "b:2", dead="a:1")  # evidence: a:1 is known dead
    assert not leases.renew(scan.id, "a:1", 60)  # the old runner finds out at its next beat...
    assert not repo.finish_scan(scan.id, "done", owner="a:1")  # ...and cannot end the scan
    assert leases.renew(scan.id, "b:2", -1)  # b:2 stops renewing: its lease is in the past
    assert claim(scan.id, "c:3")
    assert repo.get_scan(scan.id).attempts == 3
    assert [(a.runner, a.outcome) for a in leases.attempts(scan.id)] == [("a:1", "lost"), ("b:2", "lost"), ("c:3", "")]
    assert not claim(scan.id, "d:4", dead="c:3")  # three attempts: the budget is spent
    assert repo.get_scan(scan.id).owner == "c:3"


def test_attempts_are_bounded_and_a_requeued_scan_keeps_its_checkpoint():
    project = repo.create_project("acme")
    scan = repo.create_scan(project.id, ["dns"], {})
    for n in range(3):
        assert claim(scan.id, f"r:{n}", lease=-1)  # each runner's lease is already over
        assert leases.save_checkpoint(scan.id, f"r:{n}", {"v": 1, "done": ["dns"] * n})
    assert not claim(scan.id, "r:9")  # max_attempts reached: only a reaper may end it now
    assert leases.requeue(scan.id, "r:2", "its runner exited")
    assert repo.get_scan(scan.id).status == "queued"
    assert leases.load_checkpoint(scan.id)["done"] == ["dns", "dns"]  # the last runner's checkpoint
    assert leases.attempts(scan.id)[-1].reason == "its runner exited"
    repo.finish_scan(scan.id, "failed", "gave up")
    assert leases.reopen(scan.id, "me:1")
    row = repo.get_scan(scan.id)
    assert (row.status, row.attempts, row.submitter) == ("queued", 0, "me:1")
    assert claim(scan.id, "r:10") and leases.attempts(scan.id)[-1].number == 4


def test_one_active_scan_per_project_is_enforced_by_the_database():
    project = repo.create_project("acme")
    other = repo.create_project("other")
    first = repo.create_scan(project.id, ["dns"], {})
    repo.create_scan(other.id, ["dns"], {})  # other projects are independent
    with pytest.raises(repo.ProjectBusy, match=f"#{first.id}"):
        repo.create_scan(project.id, ["dns"], {})
    claim(first.id, "w:1")
    repo.finish_scan(first.id, "failed", "runner lost")  # what the reaper does to a dead scan
    assert repo.create_scan(project.id, ["dns"], {}).id > first.id


def test_a_scan_and_its_attempt_end_in_one_transaction():
    """A reader that sees the scan done sees its attempt done too (the attempt
    was closed by a second commit, which a loaded machine let a test read
    between)."""
    project = repo.create_project("acme")
    scan = repo.create_scan(project.id, ["dns"], {})
    assert leases.claim(scan.id, "thread", "me:1", 60, 3)
    with session() as s:
        assert repo.end_scan(s, scan.id, "done", owner="me:1")
        s.rollback()
    assert repo.get_scan(scan.id).status == "running"
    assert [a.ended_at for a in leases.attempts(scan.id)] == [None]  # rolled back together
    with session() as s:
        assert repo.end_scan(s, scan.id, "done", owner="me:1")
        s.commit()
    [attempt] = leases.attempts(scan.id)
    assert attempt.outcome == "done" and attempt.ended_at is not None


def test_a_scan_that_ends_settles_its_queued_chunks_and_a_runner_that_lost_it_settles_none():
    """A runner whose scan went to its chunks (a send that then failed, say)
    must not cancel them when it ends: only the scan's holder ends it, and
    the chunks nobody will run settle with that end."""
    from assetmon_tui.store import chunks

    project = repo.create_project("acme")
    scan = repo.create_scan(project.id, ["dns"], {})
    assert leases.claim(scan.id, "celery", "me:1", 60, 3)
    chunks.plan(scan.id, "dns", [(["a.test"], 1), (["b.test"], 1)])
    assert leases.hand_over(scan.id, "me:1", chunks.fanout_owner("dns"), 60)
    assert not repo.finish_scan(scan.id, "failed", "send failed", owner="me:1")  # no longer its scan
    assert {c.status for c in chunks.of_step(scan.id, "dns")} == {"queued"}
    assert repo.finish_scan(scan.id, "cancelled", owner=chunks.fanout_owner("dns"))
    assert {c.status for c in chunks.of_step(scan.id, "dns")} == {"cancelled"}
