"""Change events: scans are built with the repo's upserts (as the pipeline
writes them), ended with a status, then compared."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from support.world import World, fake_scan, project_with_targets

from assetmon_tui import events
from assetmon_tui.core.config import get_settings
from assetmon_tui.events import Thresholds, compute_events
from assetmon_tui.store import event_log, models, repo, snapshots
from assetmon_tui.store.db import session
from assetmon_tui.store.models import Event, utcnow


@pytest.fixture(autouse=True)
def gone_at_once(monkeypatch):
    """These tests compare two scans: one covered miss is gone (flap damping has its own tests)."""
    monkeypatch.setenv("ASSETMON_GONE_AFTER", "1")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def kinds(evts: list[Event]) -> set[tuple[str, str]]:
    return {(e.type, e.entity) for e in evts}


def test_first_scan_is_a_baseline():
    project = project_with_targets()
    sid = fake_scan(project.id, World())
    (event,) = compute_events(sid)
    assert event.type == "baseline" and event.severity == "info" and event.prev_scan_id is None
    assert "3 hosts" in event.summary and "3 addresses" in event.summary and "4 open ports" in event.summary
    assert "2 web endpoints" in event.summary and "1 findings" in event.summary


def test_two_done_scans_give_exactly_the_changes():
    project = project_with_targets()
    first = fake_scan(project.id, World())
    compute_events(first)

    w = World().copy()
    w.names["dev.acme.test"] = ("ok", [("A", "10.0.0.4")])  # new host
    w.services[("10.0.0.4", 80)] = "http"
    w.names["old.acme.test"] = ("nxdomain", [])  # gone, and so is its address
    del w.services[("10.0.0.3", 80)]
    w.names["api.acme.test"] = ("ok", [("A", "10.0.0.2"), ("A", "10.0.0.5"), ("CNAME", "lb.acme.test")])
    w.services[("10.0.0.2", 6379)] = "redis"
    del w.services[("10.0.0.1", 443)]
    w.http["https://www.acme.test/"].update(title="Acme Store", tech="nginx,php")
    w.http["http://api.acme.test/"]["status"] = 500
    w.http["http://dev.acme.test/"] = dict(status=401, title="Login")
    del w.findings["fp-aws"]
    w.findings["fp-ep"] = dict(
        kind="endpoint",
        rule="api-path",
        severity="info",
        value="/api/v2/users",
        location="https://www.acme.test/main.js",
        host="www.acme.test",
    )
    w.findings["fp-to"] = dict(
        kind="takeover", rule="s3-bucket", severity="high", value="", redacted="", location="static.acme.test", host=""
    )
    w.js["https://www.acme.test/chunk.js"] = "sha-2"
    second = fake_scan(project.id, w)
    evts = compute_events(second)

    assert kinds(evts) == {
        ("host_new", "host:dev.acme.test"),
        ("host_new", "host:10.0.0.4"),
        ("host_gone", "host:old.acme.test"),
        ("host_gone", "host:10.0.0.3"),
        ("dns_changed", "dns:api.acme.test"),
        ("port_new", "service:10.0.0.2:6379"),
        ("port_new", "service:10.0.0.4:80"),
        ("port_closed", "service:10.0.0.1:443"),
        ("title_changed", "http:https://www.acme.test/"),
        ("tech_changed", "http:https://www.acme.test/"),
        ("http_status_changed", "http:http://api.acme.test/"),
        ("http_new", "http:http://dev.acme.test/"),
        ("secret_resolved", "secret:aws_access_key_id AKIA…LUE1 @ https://www.acme.test/main.js:3"),
        ("endpoint_new", "endpoint:/api/v2/users"),
        ("takeover", "takeover:s3-bucket @ static.acme.test"),
        ("js_new", "js:https://www.acme.test/chunk.js"),
    }
    by_entity = {e.entity: e for e in evts}
    by_type = {e.type: e for e in evts}
    assert all(e.scan_id == second and e.prev_scan_id == first for e in evts)
    assert by_entity["service:10.0.0.2:6379"].severity == "high"  # redis is exposed
    assert by_entity["service:10.0.0.4:80"].severity == "medium"
    assert by_type["dns_changed"].summary == "dns changed: api.acme.test A +10.0.0.5"
    assert by_type["http_status_changed"].summary == "http://api.acme.test/: 200 -> 500"
    assert by_type["tech_changed"].summary.endswith(": +php")
    gone = next(e for e in evts if e.entity == "host:10.0.0.3")
    assert gone.summary == "host gone: 10.0.0.3 (1 open ports no longer seen)"
    assert "new host: dev.acme.test (10.0.0.4)" in {e.summary for e in evts}
    assert all("\n" not in e.summary and "AKIAREALSECRETVALUE1" not in e.summary for e in evts)


def test_compute_events_is_idempotent():
    project = project_with_targets()
    compute_events(fake_scan(project.id, World()))
    w = World()
    w.services[("10.0.0.1", 8080)] = "http-alt"
    sid = fake_scan(project.id, w)
    first = compute_events(sid)
    again = compute_events(sid)
    assert [e.id for e in first] == [e.id for e in again] and len(first) == 1
    assert len(event_log.scan_events(sid)) == 1


def test_cancelled_and_failed_scans_produce_nothing_and_are_never_previous():
    project = project_with_targets()
    first = fake_scan(project.id, World())
    compute_events(first)
    only_www = World()
    only_www.names = {"www.acme.test": only_www.names["www.acme.test"]}
    only_www.services = {("10.0.0.1", 80): "http"}
    cancelled = fake_scan(project.id, only_www, status="cancelled")
    failed = fake_scan(project.id, only_www, status="failed")
    assert compute_events(cancelled) == [] and compute_events(failed) == []
    assert snapshots.get_snapshot(cancelled) is None
    third = fake_scan(project.id, World())
    assert compute_events(third) == []  # the same as scan 1: nothing gone, nothing new
    assert snapshots.get_snapshot(third).prev_scan_id == first


def test_a_dns_only_scan_closes_no_port_and_the_next_full_scan_compares_with_what_was_known():
    project = project_with_targets()
    compute_events(fake_scan(project.id, World()))
    w = World()
    w.names["www.acme.test"] = ("ok", [("A", "10.0.0.1"), ("AAAA", "::1")])
    dns_only = fake_scan(project.id, w, modules=("dns",))
    assert kinds(compute_events(dns_only)) == {("dns_changed", "dns:www.acme.test")}
    del w.services[("10.0.0.2", 22)]
    full = fake_scan(project.id, w)
    assert kinds(compute_events(full)) == {("port_closed", "service:10.0.0.2:22")}


def test_ports_outside_the_scanned_list_are_not_closed():
    project = project_with_targets()
    compute_events(fake_scan(project.id, World()))
    w = World()
    w.services = {k: v for k, v in w.services.items() if k[1] == 80}
    sid = fake_scan(project.id, w, options={"ports": "80,8080"})
    assert compute_events(sid) == []


def test_a_seeded_scan_of_part_of_the_scope_marks_nothing_gone():
    project = project_with_targets()
    compute_events(fake_scan(project.id, World()))
    w = World()
    w.names = {"www.acme.test": ("ok", [("A", "10.0.0.1")])}
    w.services = {("10.0.0.1", 80): "http", ("10.0.0.1", 443): "https", ("10.0.0.1", 8443): "https-alt"}
    w.http = {k: v for k, v in w.http.items() if "www" in k}
    sid = fake_scan(project.id, w, options={"seeds": ["www.acme.test"]})
    assert kinds(compute_events(sid)) == {("port_new", "service:10.0.0.1:8443")}
    assert snapshots.get_snapshot(sid).partial


def test_an_uncertain_dns_answer_keeps_the_host_and_its_children():
    project = project_with_targets()
    compute_events(fake_scan(project.id, World()))
    w = World()
    w.names["api.acme.test"] = ("timeout", [])
    del w.http["http://api.acme.test/"]  # not probed: its address was unknown
    sid = fake_scan(project.id, w)
    assert compute_events(sid) == []
    w.names["api.acme.test"] = ("nxdomain", [])
    sid = fake_scan(project.id, w)
    assert kinds(compute_events(sid)) == {("host_gone", "host:api.acme.test")}


def test_a_secret_that_disappears_and_returns_says_so():
    project = project_with_targets()
    compute_events(fake_scan(project.id, World()))
    without = World()
    without.findings = {}
    gone = compute_events(fake_scan(project.id, without))
    assert [e.type for e in gone] == ["secret_resolved"]
    back = compute_events(fake_scan(project.id, World()))
    assert [(e.type, e.severity) for e in back] == [("secret_reopened", "high")]
    assert "AKIA…LUE1" in back[0].summary and "AKIAREALSECRETVALUE1" not in back[0].summary
    # and the first sighting of a secret is "new"
    w = World()
    w.findings["fp-gh"] = dict(
        kind="secret",
        rule="github_pat",
        severity="critical",
        value="ghp_x" * 8,
        redacted="ghp_…xxxx",
        location="https://www.acme.test/main.js",
        line=9,
    )
    assert [(e.type, e.severity) for e in compute_events(fake_scan(project.id, w))] == [("secret_new", "critical")]


def test_noisy_titles_and_sizes_respect_thresholds():
    project = project_with_targets()
    compute_events(fake_scan(project.id, World()))
    w = World()
    w.http["https://www.acme.test/"].update(title="Acme", content_length=5000)
    w.http["http://api.acme.test/"].update(title="API v1 - 12:04:05")
    compute_events(fake_scan(project.id, w))  # title now has a clock
    w.http["http://api.acme.test/"].update(title="API v1 - 12:09:59")
    w.http["https://www.acme.test/"]["content_length"] = 5100  # 2 %: noise
    assert compute_events(fake_scan(project.id, w)) == []
    w.http["http://api.acme.test/"].update(title="API v1 - 13:00:00")
    w.http["https://www.acme.test/"]["content_length"] = 9000
    strict = Thresholds(ignore_title_digits=False, content_length_ratio=0.5)
    assert kinds(compute_events(fake_scan(project.id, w), strict)) == {
        ("title_changed", "http:http://api.acme.test/"),
        ("content_changed", "http:https://www.acme.test/"),
    }


def test_certificates_changed_and_expiring_are_reported_once():
    project = project_with_targets()
    compute_events(fake_scan(project.id, World()))
    w = World()
    soon = (utcnow() + timedelta(days=5)).isoformat()
    w.http["https://www.acme.test/"]["tls"] = json.dumps({"sha256": "bb", "issuer": "Evil CA", "not_after": soon})
    evts = compute_events(fake_scan(project.id, w))
    assert {(e.type, e.severity) for e in evts} == {("cert_changed", "medium"), ("cert_expiring", "medium")}
    assert "expires in 4 days" in next(e for e in evts if e.type == "cert_expiring").summary
    assert compute_events(fake_scan(project.id, w)) == []  # still expiring: not again
    assert compute_events(fake_scan(project.id, w), Thresholds(cert_expiry_days=3)) == []


def test_http_status_classes_and_endpoints_going_down():
    project = project_with_targets()
    w = World()
    w.http["http://api.acme.test/"]["status"] = 403
    compute_events(fake_scan(project.id, w))
    w.http["http://api.acme.test/"]["status"] = 200  # now open to anyone
    w.http["https://www.acme.test/"]["status"] = 204  # same class
    (opened,) = compute_events(fake_scan(project.id, w))
    assert (opened.type, opened.severity, opened.summary) == (
        "http_status_changed",
        "medium",
        "http://api.acme.test/: 403 -> 200",
    )
    down = w.copy()
    del down.http["http://api.acme.test/"]
    (event,) = compute_events(fake_scan(project.id, down))
    assert event.summary == "http://api.acme.test/: 200 -> down"
    (event,) = compute_events(fake_scan(project.id, w))
    assert event.summary == 'http://api.acme.test/: down -> 200 "API v1"'


def test_a_scan_can_no_longer_be_compared_once_a_later_scan_ran():
    project = project_with_targets()
    compute_events(fake_scan(project.id, World()))
    late = fake_scan(project.id, World())
    later = fake_scan(project.id, World())
    assert compute_events(late) == []
    assert compute_events(later) == []  # compared with scan 1: unchanged
    assert snapshots.get_snapshot(late) is None


def test_list_acknowledge_and_count():
    project = project_with_targets()
    compute_events(fake_scan(project.id, World()))
    w = World()
    w.services[("10.0.0.2", 3389)] = "rdp"
    w.services[("10.0.0.2", 8080)] = "http-alt"
    evts = compute_events(fake_scan(project.id, w))
    assert events.unacknowledged_count(project.id) == 3  # baseline + two ports
    assert [e.type for e in events.list_events(project.id, severity="high")] == ["port_new"]
    assert len(events.list_events(project.id, type="port_new")) == 2
    assert events.acknowledge([e.id for e in evts]) == 2
    assert events.unacknowledged_count() == 1
    assert [e.type for e in events.list_events(unacknowledged_only=True)] == ["baseline"]


def test_scan_diff_and_history():
    project = project_with_targets()
    a = fake_scan(project.id, World())
    compute_events(a)
    w = World()
    w.names["dev.acme.test"] = ("ok", [("A", "10.0.0.1")])
    w.http["http://dev.acme.test/"] = dict(status=200, title="Dev")
    del w.services[("10.0.0.1", 443)]
    b = fake_scan(project.id, w)
    compute_events(b)
    diff = events.scan_diff(a, b)
    assert diff["hosts"] == {"added": ["dev.acme.test"], "removed": []}
    assert diff["services"] == {"added": [], "removed": ["10.0.0.1:443"]}
    assert diff["endpoints"] == {"added": ["http://dev.acme.test/"], "removed": []}
    assert events.scan_diff(b, a)["services"] == {"added": ["10.0.0.1:443"], "removed": []}
    cancelled = fake_scan(project.id, w, status="cancelled")
    with pytest.raises(ValueError, match="no inventory snapshot"):
        events.scan_diff(a, cancelled)
    hist = events.history(project.id)
    assert [(h["id"], h["hosts"], h["services"], h["endpoints"], h["findings"], h["events"]) for h in hist] == [
        (a, 3, 4, 2, 1, 1),
        (b, 4, 3, 3, 1, 3),
    ]
    assert hist[0]["finished_at"] is not None


def test_deleting_a_project_removes_its_monitoring_rows():
    from assetmon_tui import notify, schedule

    project = project_with_targets()
    compute_events(fake_scan(project.id, World()))
    schedule.set_schedule(project.id, interval_seconds=3600)
    notify.add_notifier(project.id, "json://127.0.0.1:9/hook")
    repo.delete_project(project.id)
    with session() as s:
        for model in (models.Snapshot, models.SnapshotItem, models.Schedule, models.Notifier):
            assert s.exec(model.__table__.select()).first() is None


# -- lifecycle: flap damping, findings, storage ------------------------------------------


def test_a_first_miss_is_unconfirmed_and_quiet_a_flap_is_silent_and_a_second_miss_is_gone(monkeypatch):
    monkeypatch.setenv("ASSETMON_GONE_AFTER", "2")
    get_settings.cache_clear()
    project = project_with_targets()
    compute_events(fake_scan(project.id, World()))
    w = World()
    del w.services[("10.0.0.2", 22)]
    missed = compute_events(fake_scan(project.id, w))
    assert [(e.type, e.entity, e.quiet) for e in missed] == [("unconfirmed", "service:10.0.0.2:22", True)]
    _, items = events.as_of(project.id)
    assert ("service:10.0.0.2:22", "unconfirmed") in {(i.entity, status) for i, status in items}
    assert compute_events(fake_scan(project.id, World())) == []  # back: a flap, no event
    for expected in ([("unconfirmed", "service:10.0.0.2:22")], [("port_closed", "service:10.0.0.2:22")]):
        assert [(e.type, e.entity) for e in compute_events(fake_scan(project.id, w))] == expected
    _, items = events.as_of(project.id)
    assert ("service:10.0.0.2:22", "gone") in {(i.entity, status) for i, status in items}


def test_a_finding_not_looked_for_stays_open_and_only_a_resolved_one_reopens():
    project = project_with_targets()
    compute_events(fake_scan(project.id, World()))
    secret = "secret:aws_access_key_id AKIA…LUE1 @ https://www.acme.test/main.js:3"
    # the script could not be fetched: its secret is not looked at, so it is not resolved
    w = World()
    del w.findings["fp-aws"]
    unlooked = events.Looked(failed_scripts={"https://www.acme.test/main.js"})
    sid = fake_scan(project.id, w)
    assert compute_events(sid, looked=unlooked) == []
    assert compute_events(fake_scan(project.id, World())) == []  # still open: nothing to reopen
    assert [e.type for e in compute_events(fake_scan(project.id, w))] == ["secret_resolved"]
    back = compute_events(fake_scan(project.id, World()))
    assert [(e.type, e.entity, e.fingerprint) for e in back] == [("secret_reopened", secret, "fp-aws")]
    _, items = events.as_of(project.id)
    assert (secret, "reopened") in {(i.entity, status) for i, status in items}


def test_pages_read_on_one_port_say_nothing_of_the_scripts_on_another(monkeypatch):
    """A rescan without the ports module reads www's pages on :443 only; its app's scripts on :8443
    were not looked at (the rule was by host: they went unconfirmed, then gone, on an unchanged host)."""
    monkeypatch.setenv("ASSETMON_GONE_AFTER", "2")
    project = project_with_targets()
    world = World()
    world.js["https://www.acme.test:8443/app.js"] = "sha-2"
    compute_events(fake_scan(project.id, world))
    w = world.copy()
    del w.js["https://www.acme.test:8443/app.js"]  # not fetched: its page on :8443 was not probed
    on_443 = events.Looked(scripts={"https://www.acme.test/main.js"}, page_origins={"https://www.acme.test:443"})
    assert compute_events(fake_scan(project.id, w), looked=on_443) == []
    both = events.Looked(
        scripts={"https://www.acme.test/main.js"},
        page_origins={"https://www.acme.test:443", "https://www.acme.test:8443"},
    )
    missed = compute_events(fake_scan(project.id, w), looked=both)  # its pages were read and no longer lead to it
    assert [(e.type, e.entity) for e in missed] == [("unconfirmed", "js:https://www.acme.test:8443/app.js")]


def test_an_origin_names_its_default_port():
    assert events.origin("https://App.acme.test/x.js?v=1") == "https://app.acme.test:443"
    assert events.origin("http://www.acme.test:8080/") == "http://www.acme.test:8080"
    assert events.origin("http://[::1]/a.js") == "http://::1:80"


def test_what_a_scan_did_not_reach_is_kept_whatever_its_modules_cover():
    project = project_with_targets()
    compute_events(fake_scan(project.id, World()))
    w = World()
    del w.services[("10.0.0.2", 22)]  # 10.0.0.2 did not answer the port scan at all
    del w.http["http://api.acme.test/"]  # its probe timed out
    looked = events.Looked(answered={"10.0.0.1", "10.0.0.3"}, probed={"https://www.acme.test/"})
    assert compute_events(fake_scan(project.id, w), looked=looked) == []


def test_an_unchanged_rescan_stores_no_item_versions():
    from sqlmodel import func, select

    project = project_with_targets()
    compute_events(fake_scan(project.id, World()))
    with session() as s:
        first = s.exec(select(func.count()).select_from(models.SnapshotItem)).one()
    for _ in range(3):
        assert compute_events(fake_scan(project.id, World())) == []
    with session() as s:
        assert s.exec(select(func.count()).select_from(models.SnapshotItem)).one() == first
        assert len(s.exec(select(models.Snapshot)).all()) == 4
    assert [h["hosts"] for h in events.history(project.id)] == [3, 3, 3, 3]
