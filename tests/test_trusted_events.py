"""Change events a user can trust, end to end on the offline lab: rescans
with fewer modules, failed sources and a lossy resolver raise no false
alarm; a removed host is unconfirmed, then gone; every planted change is
reported once; the same scans give the same events whatever their timing."""

from __future__ import annotations

import json
import time

import pytest
from support.lossy import LossyProxy
from support.scenario import lab_with_short_wordlist, run_to_end

from assetmon_tui.core.modules import NAMES as ALL
from assetmon_tui.dispatch import Dispatcher
from assetmon_tui.events import list_events
from assetmon_tui.lab import Lab
from assetmon_tui.notify import add_notifier
from assetmon_tui.store import repo
from assetmon_tui.store.event_log import scan_events
from assetmon_tui.store.models import Event, Scan
from assetmon_tui.testing import free_port, wait_for

NAMES = tuple(m for m in ALL if m != "nuclei")  # the lab's modules: nuclei's binary is not installable here
pytestmark = [pytest.mark.one_store, pytest.mark.alone, pytest.mark.timeout(600)]  # several lab scans each
HOSTS = 12  # web hosts of the lab: about a hundred names with CT and the wordlist
ALARMS = ("host_gone", "port_closed", "secret_resolved", "secret_reopened", "takeover_resolved", "unconfirmed")


def _lab(tmp_path, monkeypatch, process: bool):
    monkeypatch.setenv("ASSETMON_BACKEND", "thread")
    monkeypatch.setenv("ASSETMON_HTTP_TIMEOUT", "8")  # generous: a loaded machine must not fail a source here
    return lab_with_short_wordlist(tmp_path, monkeypatch, hosts=HOSTS, process=process)


@pytest.fixture
def lab(tmp_path, monkeypatch):
    with _lab(tmp_path, monkeypatch, process=True) as lab:
        yield lab


@pytest.fixture
def lab_with_log(tmp_path, monkeypatch):
    """In this process: its DNS query log is read."""
    with _lab(tmp_path, monkeypatch, process=False) as lab:
        yield lab


def project(lab: Lab, name: str = "acme") -> int:
    row = repo.create_project(name)
    repo.add_targets(row.id, [lab.info["domain"]])
    return row.id


def scan(dispatcher: Dispatcher, project_id: int, lab: Lab, modules=NAMES, **options) -> tuple[Scan, list[Event]]:
    """One scan to its end; the scan row and its events (stored before the row says done)."""
    options = {"nameservers": [lab.info["nameserver"]], "ports": ports_of(lab), **options}
    row = dispatcher.submit(project_id, list(modules), options)
    progress, _ = run_to_end(dispatcher, row.id, timeout=240)
    assert progress.state == "done", progress
    return repo.get_scan(row.id), scan_events(row.id)


def ports_of(lab: Lab) -> str:
    return f"22,25,80,443,6379,{lab.info['http_port']},{lab.info['https_port']}"  # 80/443 may be taken here


def shown(events: list[Event], why: bool = False) -> list[str]:
    return sorted(f"{e.type} {e.entity}" + (f" ({e.summary})" if why else "") for e in events)


def test_rescans_with_a_module_left_out_and_an_unchanged_lab_raise_nothing(lab, receiver):
    dispatcher = Dispatcher()
    pid = project(lab)
    add_notifier(pid, receiver.url, min_severity="info")
    _, first = scan(dispatcher, pid, lab)
    assert [e.type for e in first] == ["baseline"]
    for left_out in NAMES:
        row, events = scan(dispatcher, pid, lab, [m for m in NAMES if m != left_out])
        assert shown(events) == [], f"without {left_out}: {shown(events, why=True)}"
        assert row.status == "done"
    _, events = scan(dispatcher, pid, lab)
    assert shown(events) == [], f"the full rescan of the unchanged lab: {shown(events, why=True)}"
    dispatcher.thread.join(30)  # notifications are sent right after a scan ends
    assert receiver.bodies == []


def test_failed_sources_are_warnings_and_keep_what_they_found(lab):
    dispatcher = Dispatcher()
    pid = project(lab)
    scan(dispatcher, pid, lab)
    closed = f"http://127.0.0.1:{free_port()}/"
    row = dispatcher.submit(
        pid, list(NAMES), {"nameservers": [lab.info["nameserver"]], "ct_url": closed, "ports": ports_of(lab)}
    )
    progress, _ = run_to_end(dispatcher, row.id, timeout=240)
    assert progress.state == "done" and "warning" in progress.message
    assert any(w.startswith("ct acme.test: failed") for w in progress.warnings), progress.warnings
    done = repo.get_scan(row.id)
    assert any(
        s["source"] == "ct acme.test" and s["status"] == "failed" and s["reason"] for s in json.loads(done.sources)
    )
    assert not [e for e in scan_events(row.id) if e.type in ALARMS], shown(scan_events(row.id))

    with LossyProxy(lab.info["nameserver"], share=0.3, seed=7) as lossy:
        row, events = scan(dispatcher, pid, lab, nameservers=[lossy.address])
    assert lossy.dropped > 0
    assert not [e for e in events if e.type in ALARMS], shown(events)
    warnings = [s for s in json.loads(row.sources) if s["status"] != "ok"]
    assert warnings and all(s["reason"] for s in warnings)


def test_a_removed_host_is_unconfirmed_then_gone_and_the_same_scans_give_the_same_events(lab, monkeypatch):
    """Two projects watch the lab: one scans back to back, the other pauses
    between scans (timestamps in other seconds); both see the lab change
    once, then scan it again, without the subdomains module, and in full."""
    monkeypatch.setenv("ASSETMON_GONE_AFTER", "2")
    dispatcher = Dispatcher()
    quick, slow = project(lab, "quick"), project(lab, "slow")
    plan = [NAMES, NAMES, [m for m in NAMES if m != "subdomains"], NAMES]
    seen: dict[int, list[list[Event]]] = {quick: [], slow: []}
    failed: dict[int, list[list[str]]] = {quick: [], slow: []}  # sources that failed, per scan
    for step, modules in enumerate(plan):
        if step == 1:
            lab.set_mutation(1)
        for pid in (quick, slow):
            if pid == slow:
                second = int(time.time())
                wait_for(lambda second=second: int(time.time()) != second, timeout=3)
            row, events = scan(dispatcher, pid, lab, modules)
            seen[pid].append(events)
            failed[pid].append(
                [f"{s['source']}: {s['reason']}" for s in json.loads(row.sources) if s["status"] != "ok"]
            )

    def same(events: list[Event]) -> list[str]:
        return ["baseline" if line.startswith("baseline ") else line for line in shown(events)]

    expected = lab.diff(0, 1)
    (removed,) = expected["hosts_removed"]
    due = {2: [f"host_gone host:{removed}"]}  # the alarms the lab's change calls for, per scan
    for step, (a, b) in enumerate(zip(seen[quick], seen[slow], strict=True)):
        if failed[quick][step] or failed[slow][step]:
            # A source that failed (a loaded machine) reports its new items at the next scan
            # that sees them: the events may come later, never as false alarms.
            alarms = [e for e in a + b if e.type in ALARMS and e.type != "unconfirmed"]
            false = [line for line in shown(alarms) if line not in due.get(step, [])]
            assert not false, (step, false, failed[quick][step], failed[slow][step])
            continue
        only_quick, only_slow = set(same(a)) - set(same(b)), set(same(b)) - set(same(a))
        assert same(a) == same(b), f"scan {step}: only back to back {only_quick}, only with pauses {only_slow}"

    _, changed, partial, full = seen[quick]
    # the first scan after the change: the removed host is unconfirmed (quiet), the rest reported
    unconfirmed = [e for e in changed if e.type == "unconfirmed"]
    assert [e.entity for e in unconfirmed if e.entity.startswith("host:")] == [f"host:{removed}"]
    assert all(e.quiet for e in unconfirmed)
    # and the scripts of the bundle the change redeployed (new file names): quiet as well
    assert all(e.entity.startswith(("host:", "js:")) for e in unconfirmed), shown(unconfirmed)
    assert not [e for e in changed if e.type in ALARMS and e.type != "unconfirmed"], shown(changed)
    by_type: dict[str, list[Event]] = {}
    for e in changed:
        by_type.setdefault(e.type, []).append(e)
    assert set(by_type) == {"unconfirmed", "host_new", "title_changed", "port_new", "secret_new", "http_new", "js_new"}
    assert len(by_type["host_new"]) == len(expected["hosts_added"])
    assert all(any(h in e.entity for e in by_type["host_new"]) for h in expected["hosts_added"])
    assert all("Spring Sale" in e.summary for e in by_type["title_changed"])
    (port,) = by_type["port_new"]
    assert "22" in port.entity
    (secret,) = by_type["secret_new"]
    assert expected["secrets_added"][0]["value"] not in secret.summary  # redacted
    # the partial rescan looks at names again (DNS): the second miss makes it gone
    assert shown(partial) == [f"host_gone host:{removed}"]
    assert shown(full) == []  # nothing is reported twice
    # the feed: unconfirmed events are shown, never notified
    assert any(e.type == "unconfirmed" for e in list_events(quick))


def test_nothing_is_asked_under_an_excluded_zone_or_name(lab_with_log):
    lab = lab_with_log
    dispatcher = Dispatcher()
    pid = project(lab)
    repo.add_targets(pid, ["!*.dyn.acme.test", "!jenkins.acme.test"])
    lab.dns_log.clear()
    row, _ = scan(dispatcher, pid, lab)
    asked = {name for name, _ in lab.dns_log.entries()}
    assert "www.acme.test" in asked  # the log works
    assert not [n for n in asked if n.endswith(".dyn.acme.test") or n == "jenkins.acme.test"]
    names = {h.name for h in repo.hosts(pid)}
    assert "jenkins.acme.test" not in names and not [n for n in names if n.endswith(".dyn.acme.test")]
