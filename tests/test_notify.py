"""Notifications through apprise to a real HTTP receiver on loopback, and to a closed port."""

from __future__ import annotations

import logging

import pytest
from support.world import World, fake_scan, project_with_targets

from assetmon_tui import notify
from assetmon_tui.events import after_scan, compute_events
from assetmon_tui.store import notifiers
from assetmon_tui.testing import free_port


def changed_scan(project_id: int) -> int:
    """A baseline, then a scan with a high, a medium and an info change."""
    compute_events(fake_scan(project_id, World()))
    w = World()
    w.services[("10.0.0.2", 6379)] = "redis"  # high
    w.services[("10.0.0.2", 8080)] = "http-alt"  # medium
    del w.services[("10.0.0.1", 443)]  # info
    return fake_scan(project_id, w, options={"gone_after": 1})


def notified_scan(url: str, min_severity: str = "info"):
    """A project with one notifier at `url`, and a scan whose changes it is to be told (events computed)."""
    project = project_with_targets()
    notifier = notify.add_notifier(project.id, url, min_severity=min_severity)
    sid = changed_scan(project.id)
    compute_events(sid)
    return notifier, sid


def test_one_message_per_notifier_per_scan_at_or_above_its_severity(receiver, caplog):
    project = project_with_targets()
    high_only = notify.add_notifier(project.id, receiver.url, min_severity="high")
    everything = notify.add_notifier(project.id, receiver.url + "2", min_severity="info")
    sid = changed_scan(project.id)
    caplog.set_level(logging.INFO, logger="assetmon_tui.notify")
    compute_events(sid)  # as the pipeline does when a scan ends, before notifying
    assert len(after_scan(sid)) == 3
    assert {d.notifier_id: (d.status, d.attempts, d.events) for d in notifiers.list_deliveries(project.id)} == {
        high_only.id: ("sent", 1, 1),
        everything.id: ("sent", 1, 3),
    }
    messages = {b["title"]: b["message"] for b in receiver.bodies}
    assert len(receiver.bodies) == 2
    assert set(messages) == {"AssetMon: 1 change in acme", "AssetMon: 3 changes in acme"}
    lines = messages["AssetMon: 3 changes in acme"].splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["high", "port_new"],
        ["medium", "port_new"],
        ["info", "port_closed"],
    ]
    assert "10.0.0.2:6379 (redis)" in lines[0] and "Severity" not in messages["AssetMon: 1 change in acme"]
    assert "attempt 1/3 sent" in caplog.text
    # sent deliveries are not repeated
    notify.notify_scan(sid)
    assert len(receiver.bodies) == 2


def test_a_closed_port_fails_the_delivery_without_raising(caplog):
    project = project_with_targets()
    with_closed = notify.add_notifier(project.id, f"json://127.0.0.1:{free_port()}/hook", min_severity="info")
    sid = changed_scan(project.id)
    caplog.set_level(logging.INFO, logger="assetmon_tui.notify")
    compute_events(sid)
    (delivery,) = notify.notify_scan(sid, backoff=0.01)
    assert (delivery.notifier_id, delivery.status, delivery.attempts) == (with_closed.id, "failed", 3)
    assert delivery.last_error
    assert [f"attempt {i}/3 failed" in caplog.text for i in (1, 2, 3)] == [True, True, True]


def test_a_failing_receiver_is_retried_then_succeeds(receiver):
    _, sid = notified_scan(receiver.url)
    receiver.state["fail"] = 2
    (delivery,) = notify.notify_scan(sid, backoff=0.01)
    assert (delivery.status, delivery.attempts) == ("sent", 3)
    assert len(receiver.bodies) == 1


def test_nothing_is_sent_for_a_baseline_or_below_the_threshold_or_when_disabled(receiver):
    project = project_with_targets()
    first = fake_scan(project.id, World())
    notifier = notify.add_notifier(project.id, receiver.url, min_severity="info")
    compute_events(first)
    after_scan(first)  # baseline only
    w = World()
    del w.services[("10.0.0.1", 443)]  # info
    sid = fake_scan(project.id, w, options={"gone_after": 1})
    notify.set_notifier(notifier.id, min_severity="low")
    compute_events(sid)
    after_scan(sid)
    notify.set_notifier(notifier.id, enabled=False, min_severity="info")
    assert notify.notify_scan(sid) == []
    assert receiver.bodies == [] and notifiers.list_deliveries(project.id) == []


def test_notifier_validation_and_redaction():
    project = project_with_targets()
    with pytest.raises(ValueError, match="apprise"):
        notify.add_notifier(project.id, "nonsense://")
    with pytest.raises(ValueError, match="severity"):
        notify.add_notifier(project.id, "json://127.0.0.1/x", min_severity="urgent")
    shown = notify.redacted_url("json://user:hunter2@127.0.0.1:8080/hook")
    assert "hunter2" not in shown and "127.0.0.1" in shown


def test_send_test_reports_the_outcome(receiver):
    project = project_with_targets()
    good = notify.add_notifier(project.id, receiver.url)
    bad = notify.add_notifier(project.id, f"json://127.0.0.1:{free_port()}/x")
    assert notify.send_test(good.id) == (True, "")
    ok, error = notify.send_test(bad.id)
    assert not ok and error
    assert receiver.bodies[0]["title"] == "AssetMon: test notification"


def test_a_local_scan_ends_its_notifications_before_the_process_exits(no_redis, receiver, capsys):
    """A scan run in a thread (the TUI's or the CLI's fallback) notifies after
    its end; the process exits right after it (os._exit kills the thread):
    before, a slow receiver's notification was cut and never recorded."""
    from support.scenario import estate, make_project, run_to_end

    from assetmon_tui.cli import _let_runners_finish
    from assetmon_tui.dispatch import Dispatcher
    from assetmon_tui.store import repo

    with estate() as e:
        project_id = make_project(targets=["www.scan.test"])
        dispatcher = Dispatcher()
        first = dispatcher.submit(project_id, ["dns", "ports"], e.options(ports=str(free_port("127.0.0.7"))))
        run_to_end(dispatcher, first.id)  # the baseline: no notification
        dispatcher.thread.join(10)
        notify.add_notifier(project_id, receiver.url, min_severity="info")
        receiver.state["delay"] = 2.0
        second = dispatcher.submit(project_id, ["dns", "ports"], e.options())  # the web port opens: events
        run_to_end(dispatcher, second.id)
        assert dispatcher.thread.busy() == [second.id]  # notifying after the end
        until(lambda: notifiers.list_deliveries(project_id), "the delivery, stored before sending")
        assert [d.status for d in notifiers.list_deliveries(project_id)] == ["pending"]
        _let_runners_finish(dispatcher)  # what `assetmon tui` and `assetmon scan` do before they exit
    assert not dispatcher.thread.busy()
    assert [(d.scan_id, d.status) for d in notifiers.list_deliveries(project_id)] == [(second.id, "sent")]
    assert len(receiver.bodies) == 1 and repo.get_scan(second.id).status == "done"
    assert f"finishing scan #{second.id} (its notifications)" in capsys.readouterr().err


def test_a_local_scan_whose_notifications_outlast_the_grace_leaves_them_pending_and_says_so(
    no_redis, receiver, capsys, monkeypatch
):
    from support.scenario import estate, make_project, run_to_end

    from assetmon_tui import cli
    from assetmon_tui.dispatch import Dispatcher

    monkeypatch.setattr(cli, "RUNNER_GRACE", 1.0)
    with estate() as e:
        project_id = make_project(targets=["www.scan.test"])
        dispatcher = Dispatcher()
        first = dispatcher.submit(project_id, ["dns", "ports"], e.options(ports=str(free_port("127.0.0.7"))))
        run_to_end(dispatcher, first.id)
        dispatcher.thread.join(10)
        notify.add_notifier(project_id, receiver.url, min_severity="info")
        receiver.state["delay"] = 3.0  # longer than the grace
        second = dispatcher.submit(project_id, ["dns", "ports"], e.options())
        run_to_end(dispatcher, second.id)
        cli._let_runners_finish(dispatcher)
        assert dispatcher.thread.busy() == [second.id]  # the process would exit now, killing the send
        until(lambda: notifiers.list_deliveries(project_id), "the delivery row")  # (a loaded machine: not yet made)
        assert [(d.scan_id, d.status) for d in notifiers.list_deliveries(project_id)] == [(second.id, "pending")]
        assert "leaving with notifications unsent: they are kept as pending" in capsys.readouterr().err
        dispatcher.thread.join(10)  # (this process goes on: let the send end before the test's home goes)


# -- deliveries not sent: a sender lost mid-send, a receiver down --------------------------------

SENDER = """
import sys
from assetmon_tui import notify
notify.notify_scan(int(sys.argv[1]))
"""


def until(condition, what: str, timeout: float = 30.0):
    import time

    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
    return value


def test_a_sender_killed_mid_send_leaves_a_pending_delivery_that_a_later_pass_sends_once(receiver, tmp_path):
    """Before, a process killed while it notified (a worker's kill -9, the CLI
    after its grace) left no Delivery row: the message was lost, and nothing said so."""
    import os
    import signal
    import subprocess
    import sys
    from datetime import timedelta

    from assetmon_tui.store.models import utcnow

    notifier, sid = notified_scan(receiver.url)
    receiver.state["delay"] = 60.0  # the receiver holds the request: the sender is mid-send when it dies
    sender = subprocess.Popen([sys.executable, "-c", SENDER, str(sid)], start_new_session=True)
    try:
        pending = until(lambda: notifiers.get_delivery(notifier.id, sid), "the delivery row, before sending")
        assert pending.status == "pending"
        os.killpg(sender.pid, signal.SIGKILL)
    finally:
        sender.kill()
        sender.wait()
    receiver.state["delay"] = 0.0
    assert notify.deliver_due() == []  # a pending row this fresh may still be someone's send
    later = utcnow() + timedelta(seconds=notify.STALE + 1)
    (delivery,) = notify.deliver_due(now=later)
    assert (delivery.status, delivery.attempts, delivery.events) == ("sent", 1, 3)
    assert [b["title"] for b in receiver.bodies] == ["AssetMon: 3 changes in acme"]
    assert notify.deliver_due(now=later + timedelta(hours=1)) == []  # sent: never again


def test_a_receiver_that_was_down_gets_later_rounds_then_is_given_up(caplog):
    from datetime import timedelta

    from assetmon_tui.store.models import as_utc

    _, sid = notified_scan(f"json://127.0.0.1:{free_port()}/hook")
    (delivery,) = notify.notify_scan(sid, backoff=0.01)
    assert (delivery.status, delivery.attempts) == ("failed", 3)
    failed_at = as_utc(delivery.updated_at)
    assert notify.deliver_due(now=failed_at + timedelta(seconds=notify.RETRY_AFTER[0] - 1), backoff=0.01) == []
    for round_, wait in enumerate(notify.RETRY_AFTER, start=2):  # the receiver stays down
        (delivery,) = notify.deliver_due(now=as_utc(delivery.updated_at) + timedelta(seconds=wait), backoff=0.01)
        assert (delivery.status, delivery.attempts) == ("failed", 3 * round_)
    assert not notify.due(delivery, as_utc(delivery.updated_at) + timedelta(days=1))  # given up after 4 rounds
    assert notify.deliver_due(now=as_utc(delivery.updated_at) + timedelta(hours=2)) == []


def test_a_receiver_back_up_gets_the_message_once_though_two_passes_race(receiver):
    import threading
    from datetime import timedelta

    from assetmon_tui.store.models import as_utc

    notifier, sid = notified_scan(receiver.url, min_severity="high")
    receiver.state["fail"] = 3  # down for the whole first round
    (delivery,) = notify.notify_scan(sid, backoff=0.01)
    assert delivery.status == "failed" and not receiver.bodies
    receiver.state["delay"] = 0.3  # each pass is mid-send long enough for the other to try
    now = as_utc(delivery.updated_at) + timedelta(seconds=notify.RETRY_AFTER[0])
    results: list[list] = []
    passes = [threading.Thread(target=lambda: results.append(notify.deliver_due(now=now))) for _ in range(2)]
    for thread in passes:
        thread.start()
    for thread in passes:
        thread.join(30)
    assert len(receiver.bodies) == 1 and receiver.bodies[0]["title"] == "AssetMon: 1 change in acme"
    final = notifiers.get_delivery(notifier.id, sid)
    assert (final.status, final.attempts) == ("sent", 4)


def test_a_delivery_whose_events_were_all_acknowledged_since_is_dropped_not_sent(receiver):
    from datetime import timedelta

    from assetmon_tui.store.event_log import acknowledge, scan_events
    from assetmon_tui.store.models import as_utc

    _, sid = notified_scan(receiver.url)
    receiver.state["fail"] = 3
    (delivery,) = notify.notify_scan(sid, backoff=0.01)
    assert acknowledge([e.id for e in scan_events(sid)])
    (delivery,) = notify.deliver_due(now=as_utc(delivery.updated_at) + timedelta(seconds=notify.RETRY_AFTER[0]))
    assert (delivery.status, delivery.last_error) == ("dropped", "nothing left to send")
    assert not receiver.bodies
    assert notify.deliver_due(now=as_utc(delivery.updated_at) + timedelta(hours=2)) == []


def test_every_reaper_pass_sends_the_deliveries_due_in_the_background(no_redis, receiver):
    """The TUI's and the CLI's reaper pass (and a worker's) are what run `deliver_due`."""
    import threading
    from datetime import timedelta

    from sqlalchemy import update

    from assetmon_tui.dispatch import Dispatcher
    from assetmon_tui.store.db import session
    from assetmon_tui.store.models import Delivery, utcnow

    notifier, sid = notified_scan(receiver.url)
    receiver.state["fail"] = 3
    (delivery,) = notify.notify_scan(sid, backoff=0.01)
    with session() as s:  # as a process that failed an hour ago left it
        s.exec(update(Delivery).values(updated_at=utcnow() - timedelta(hours=1)))
        s.commit()
    Dispatcher().reap(deliveries=True)  # (a submit's reap leaves them: it must stay quick)
    until(lambda: receiver.bodies, "the message, sent by the pass")
    for thread in threading.enumerate():
        if thread.name == "assetmon-deliveries":
            thread.join(10)
    assert notifiers.get_delivery(notifier.id, sid).status == "sent"
