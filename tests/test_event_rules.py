"""Event rules: acknowledge or suppress change events by type, host pattern or
fingerprint, in the feed, the new-events count, notifications (a real apprise
delivery to a loopback receiver), exports, the CLI and the TUI (the real app
driven by Pilot, and an 80x24 snapshot of the rule form).

Events are written straight into the store (as `assetmon_tui.events` writes
them), with yesterday's times, so that every rule here is retroactive."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert
from sqlmodel import select
from support import frozen
from textual.pilot import Pilot
from textual.widgets import Input

from assetmon_tui import notify
from assetmon_tui.cli import main as cli_main
from assetmon_tui.core.config import get_settings
from assetmon_tui.export import export
from assetmon_tui.store import event_log, leases, notifiers, repo
from assetmon_tui.store.db import session
from assetmon_tui.store.models import Event, EventRule
from assetmon_tui.testing import ROOT, VENV_BIN

YESTERDAY = datetime.now(UTC) - timedelta(days=1)
SIZE = (80, 24)
HOSTILE = "[bold]boom[/bold] \x1b]0;pwned\x07 [link=http://x]y[/link]"


# -- data ---------------------------------------------------------------------------------


def done_scan(project_id: int) -> int:
    scan = repo.create_scan(project_id, ["dns", "ports"], {})
    assert leases.claim(scan.id, "thread", "test:1", 60, 3)
    assert repo.finish_scan(scan.id, "done")
    return scan.id


def add_events(
    project_id: int, scan_id: int, *specs: dict[str, Any], when: datetime = YESTERDAY, prev: int | None = None
) -> list[int]:
    """Event rows as the events module writes them; each spec overrides the defaults."""
    ids = []
    with session() as s:
        for n, spec in enumerate(specs):
            values = dict(type="port_new", severity="medium", summary=f"change {n}", created_at=when, prev_scan_id=prev)
            values |= spec
            values.setdefault("entity", f"{values['type']}:{values.get('host', '')}")
            event = Event(project_id=project_id, scan_id=scan_id, **values)
            s.add(event)
            s.flush()
            ids.append(event.id)
        s.commit()
    return ids


@pytest.fixture
def acme() -> dict[str, Any]:
    """acme (a baseline scan and a scan with six changes from yesterday) and other (one change,
    about a host named as one of acme's)."""
    project = repo.create_project("acme")
    other = repo.create_project("other")
    first = done_scan(project.id)
    (baseline,) = add_events(project.id, first, dict(type="baseline", severity="info", summary="baseline: 3 hosts"))
    second = done_scan(project.id)
    ids = add_events(
        project.id,
        second,
        dict(type="port_new", severity="high", host="10.0.0.2", fingerprint="svc-6379", summary="new port 6379"),
        dict(type="host_new", host="dev.acme.test", fingerprint="host-dev", summary="new host: dev.acme.test"),
        dict(type="host_new", host="ci.dev.acme.test", fingerprint="host-ci", summary="new host: ci.dev.acme.test"),
        dict(type="http_title", severity="info", host="www.acme.test", summary=f"title {HOSTILE}"),
        dict(type="secret_new", severity="high", host="www.acme.test", fingerprint="fp-aws", summary="new secret"),
        dict(type="host_gone", severity="low", host="old.acme.test", quiet=True, summary="unconfirmed: old.acme.test"),
        prev=first,
    )
    other_scan = done_scan(other.id)
    (other_event,) = add_events(other.id, other_scan, dict(type="host_new", host="dev.acme.test", summary="x"))
    return {
        "id": project.id,
        "other": other.id,
        "scans": (first, second),
        "baseline": baseline,
        "ids": ids,
        "other_event": other_event,
    }


def rule(**fields: Any) -> EventRule:
    return EventRule(**{"action": "suppress", **fields})


def event(**fields: Any) -> Event:
    return Event(**{"project_id": 1, "scan_id": 1, "type": "port_new", **fields})


# -- matching ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule_fields", "event_fields", "matches"),
    [
        (dict(event_type="port_new"), dict(type="port_new"), True),
        (dict(event_type="port_new"), dict(type="port_closed"), False),
        (dict(event_type="port_*"), dict(type="port_closed"), True),
        (dict(event_type="*_new"), dict(type="host_gone"), False),
        (dict(event_type="host_?one"), dict(type="host_gone"), True),
        (dict(event_type="host_?one"), dict(type="host_ggone"), False),  # ? is one character
        (dict(host="*.acme.test"), dict(host="dev.acme.test"), True),
        (dict(host="*.acme.test"), dict(host="a.b.acme.test"), True),  # * crosses dots, as fnmatch
        (dict(host="*.acme.test"), dict(host="acme.test"), False),
        (dict(host="*.acme.test"), dict(host="DEV.ACME.TEST"), False),  # hosts are stored in lower case
        (dict(host="a_b.test"), dict(host="axb.test"), False),  # _ and % are no wildcards
        (dict(host="50%.test"), dict(host="50x.test"), False),
        (dict(host="a/b"), dict(host="a/b"), True),  # the SQL escape character is literal
        (dict(host="web[1].test"), dict(host="web1.test"), False),  # [ is literal (add_rule refuses it)
        (dict(host="*"), dict(host=""), True),  # a glob on an event without a host
        (dict(host="www.acme.test"), dict(host=""), False),
        (dict(fingerprint="fp-aws"), dict(fingerprint="fp-aws"), True),
        (dict(fingerprint="fp-*"), dict(fingerprint="fp-aws"), False),  # exact, never a glob
        (dict(fingerprint="FP-AWS"), dict(fingerprint="fp-aws"), False),  # exact, case too
        (dict(event_type="port_*", host="10.0.0.*"), dict(type="port_new", host="10.0.0.2"), True),
        (dict(event_type="port_*", host="10.0.0.*"), dict(type="host_new", host="10.0.0.2"), False),  # all must
        (dict(project_id=1, event_type="port_new"), dict(project_id=1), True),
        (dict(project_id=2, event_type="port_new"), dict(project_id=1), False),
        (dict(project_id=None, event_type="port_new"), dict(project_id=7), True),  # no project: every project
    ],
)
def test_rule_matches(rule_fields, event_fields, matches):
    assert event_log.rule_matches(rule(**rule_fields), event(**event_fields)) is matches


def test_sql_and_python_matching_agree(acme):
    """The SQL that filters the feed and counts decides every stored event as `rule_for` does."""
    more = add_events(
        acme["id"],
        acme["scans"][1],
        dict(type="http_new", host="a_b.acme.test"),
        dict(type="http_new", host="axb.acme.test"),
        dict(type="http_new", host="50%.acme.test"),
        dict(type="http_new", host="API.ACME.TEST"),
        dict(type="http_new", host="a/b.acme.test"),
    )
    assert len(more) == 5
    made = [
        event_log.add_rule("suppress", project_id=acme["id"], host="*.dev.acme.test"),
        event_log.add_rule("acknowledge", event_type="host_*"),  # every project
        event_log.add_rule("acknowledge", host="a_b.*"),
        event_log.add_rule("suppress", host="50%.acme.test", event_type="http_new"),
        event_log.add_rule("acknowledge", project_id=acme["id"], fingerprint="fp-aws"),
        event_log.add_rule("suppress", host="api.acme.test"),
        event_log.add_rule("acknowledge", host="a/b.acme.test"),
        event_log.add_rule("acknowledge", project_id=acme["other"], event_type="port_new"),
    ]
    rules = event_log.list_rules()
    assert [r.id for r in rules] == [r.id for r in made]
    feed = event_log.list_feed(limit=None, include_suppressed=True)
    with session() as s:
        stored = {e.id: e for e in s.exec(select(Event))}
    assert {item.event.id for item in feed} == set(stored)
    for item in feed:
        expected = event_log.rule_for(stored[item.event.id], rules)
        assert (item.rule.id if item.rule else None) == (expected.id if expected else None), item.event
    decided = {item.event.host: item.rule.id if item.rule else None for item in feed if item.event.type == "http_new"}
    assert decided == {
        "a_b.acme.test": made[2].id,
        "axb.acme.test": None,
        "50%.acme.test": made[3].id,
        "API.ACME.TEST": None,  # never stored so (hosts are lowered at ingestion): matching is exact-case
        "a/b.acme.test": made[6].id,
    }
    # suppress wins over acknowledge: ci.dev.acme.test is a host_* (ack) under *.dev.acme.test (suppress)
    (ci,) = [item for item in feed if item.event.host == "ci.dev.acme.test"]
    assert ci.suppressed and ci.rule.id == made[0].id
    python_new = [e for e in stored.values() if not e.acknowledged and event_log.rule_for(e, rules) is None]
    assert event_log.unacknowledged_count() == len(python_new)
    python_hidden = {e.id for e in stored.values() if (r := event_log.rule_for(e, rules)) and r.action == "suppress"}
    assert {e.id for e in event_log.list_events(limit=None)} == set(stored) - python_hidden
    assert event_log.suppressed_count() == len(python_hidden)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (dict(action="hide", event_type="port_new"), "unknown action 'hide': choose acknowledge or suppress"),
        (dict(action="suppress"), "a rule needs an event type, a host pattern or a fingerprint"),
        (dict(action="suppress", host="  ", note="only spaces"), "a rule needs an event type, a host pattern"),
        (dict(action="suppress", host="*"), "would match every event"),
        (dict(action="acknowledge", event_type="**", host="*"), "would match every event"),
        (dict(action="suppress", host="web[0-9].acme.test"), "host pattern 'web[0-9].acme.test': only * and ?"),
        (dict(action="suppress", event_type="port]"), "event type 'port]': only * and ?"),
        (dict(action="suppress", host="a\x1b[2Jb"), "host pattern has control characters"),
        (dict(action="suppress", fingerprint="x" * 300), "fingerprint is too long (300 characters, at most 255)"),
        (dict(action="suppress", project_id=999, event_type="port_new"), "no project 999"),
    ],
)
def test_add_rule_says_what_to_fix_in_one_line(fields, message):
    with pytest.raises(ValueError, match=None) as raised:
        event_log.add_rule(**fields)
    text = str(raised.value)
    assert message in text and "\n" not in text
    assert event_log.list_rules() == []


def test_add_list_and_delete_rules(acme):
    mine = event_log.add_rule("suppress", project_id=acme["id"], host=" *.DEV.Acme.test ", note="staging\tnoise")
    assert (mine.host, mine.note, mine.event_type, mine.fingerprint) == ("*.dev.acme.test", "staging noise", "", "")
    everywhere = event_log.add_rule("acknowledge", event_type="host_gone")
    theirs = event_log.add_rule("suppress", project_id=acme["other"], event_type="host_new")
    with pytest.raises(ValueError, match=f"the same rule exists already: #{mine.id}"):
        event_log.add_rule("suppress", project_id=acme["id"], host="*.dev.acme.test")
    assert [r.id for r in event_log.list_rules()] == [mine.id, everywhere.id, theirs.id]
    assert [r.id for r in event_log.list_rules(acme["id"])] == [mine.id, everywhere.id]  # its own and global ones
    assert [r.id for r in event_log.list_rules(acme["other"])] == [everywhere.id, theirs.id]
    assert event_log.delete_rule(mine.id) is True
    assert event_log.delete_rule(mine.id) is False
    assert event_log.get_rule(mine.id) is None
    repo.delete_project(acme["other"])  # its rules go with it
    assert [r.id for r in event_log.list_rules()] == [everywhere.id]


# -- the feed and the count --------------------------------------------------------------


def test_a_rule_made_today_covers_yesterdays_events(acme):
    port, dev, ci, title, secret, gone = acme["ids"]
    everything = {acme["baseline"], *acme["ids"], acme["other_event"]}
    assert event_log.unacknowledged_count() == 8  # baseline, six changes, the other project's one
    suppress = event_log.add_rule("suppress", project_id=acme["id"], host="*.acme.test", event_type="host_new")
    ack = event_log.add_rule("acknowledge", fingerprint="fp-aws", note="rotated, known")
    assert all(e.created_at < suppress.created_at for e in event_log.list_events(limit=None))  # yesterday's

    shown = event_log.list_events(acme["id"], limit=None)
    assert dev not in {e.id for e in shown} and ci not in {e.id for e in shown}
    acknowledged = {e.id for e in shown if e.acknowledged}
    assert acknowledged == {secret}
    assert event_log.unacknowledged_count() == 8 - 3 and event_log.unacknowledged_count(acme["id"]) == 7 - 3
    assert event_log.unacknowledged_count(acme["other"]) == 1  # a project's rule stays in its project
    assert event_log.suppressed_count(acme["id"]) == 2 and event_log.suppressed_count(acme["other"]) == 0
    assert {e.id for e in event_log.list_events(acme["id"], unacknowledged_only=True)} == {
        acme["baseline"],
        port,
        title,
        gone,
    }
    # asked for, suppressed events come back, marked with their rule
    feed = {item.event.id: item for item in event_log.list_feed(include_suppressed=True, limit=None)}
    assert set(feed) >= everything
    assert {i for i, item in feed.items() if item.suppressed} == {dev, ci}
    assert feed[dev].rule.id == suppress.id and feed[secret].rule.id == ack.id and feed[secret].acknowledged_by_rule
    assert feed[port].rule is None and not feed[port].acknowledged
    # the page limit counts shown events only, and the newest come first
    page = event_log.list_events(acme["id"], limit=3)
    assert [e.id for e in page] == [gone, secret, title]
    assert [e.id for e in event_log.list_events(acme["id"], type="host_new")] == []
    assert [e.id for e in event_log.list_events(acme["id"], type="host_new", include_suppressed=True)] == [ci, dev]
    # nothing was written into the events: deleting the rules brings them back as they were
    event_log.delete_rule(suppress.id)
    event_log.delete_rule(ack.id)
    assert event_log.unacknowledged_count() == 8
    assert not any(e.acknowledged for e in event_log.list_events(limit=None))


def test_the_count_and_a_page_stay_quick_with_100k_events(acme):
    """The count is one COUNT in SQL and a page reads only its rows, rules or not."""
    project, scan = acme["id"], acme["scans"][1]
    with session() as s:
        rows = [
            dict(
                project_id=project,
                scan_id=scan,
                type="port_new" if n % 2 else "http_new",
                host=f"h{n % 500}.acme.test",
                fingerprint=f"fp{n}",
                created_at=YESTERDAY,
            )
            for n in range(100_000)
        ]
        s.execute(insert(Event), rows)
        s.commit()
    for n in range(20):
        event_log.add_rule("suppress" if n % 2 else "acknowledge", host=f"h{n}.acme.test", event_type="*_new")
    started = time.perf_counter()
    count = event_log.unacknowledged_count()
    page = event_log.list_events(limit=500)
    elapsed = time.perf_counter() - started
    assert count == 100_000 - 20 * 200 + 8  # 200 events per covered host; the fixture's 8 are not covered
    assert len(page) == 500
    print(f"count and a page of 500 over 100k events, 20 rules: {elapsed:.3f} s")
    assert elapsed < 5.0, elapsed  # this only catches loading every row


# -- notifications ----------------------------------------------------------------------------


def test_notifications_leave_out_suppressed_acknowledged_and_quiet_events(acme, receiver):
    notify.add_notifier(acme["id"], receiver.url, min_severity="info")
    event_log.add_rule("suppress", host="*.dev.acme.test")
    event_log.add_rule("acknowledge", project_id=acme["id"], event_type="secret_*")
    _, dev, *_ = acme["ids"]
    event_log.acknowledge([dev])  # by hand
    (delivery,) = notify.notify_scan(acme["scans"][1])
    assert (delivery.status, delivery.events) == ("sent", 2)
    (body,) = receiver.bodies
    assert body["title"] == "AssetMon: 2 changes in acme"
    lines = body["message"].splitlines()
    assert [line.split()[:2] for line in lines] == [["high", "port_new"], ["info", "http_title"]]
    text = body["message"]
    assert "dev.acme.test" not in text  # by hand (dev.), by rule (ci.dev.)
    assert "new secret" not in text and "unconfirmed" not in text and "baseline" not in text
    assert "[bold]boom[/bold]" in text and "\x1b" not in text and "pwned" not in text
    # a sent delivery is not repeated, and a rule made later does not unsend it
    assert notify.notify_scan(acme["scans"][1])[0].status == "sent" and len(receiver.bodies) == 1


def test_a_scan_whose_every_change_is_covered_sends_nothing(acme, receiver):
    notify.add_notifier(acme["id"], receiver.url, min_severity="info")
    event_log.add_rule("suppress", project_id=acme["id"], event_type="*_new")
    event_log.add_rule("acknowledge", project_id=acme["id"], host="www.acme.test")
    assert notify.notify_scan(acme["scans"][1]) == []  # the quiet host_gone is left too
    assert receiver.bodies == [] and notifiers.list_deliveries(acme["id"]) == []


# -- exports ------------------------------------------------------------------------------


def test_exports_leave_suppressed_events_out_and_mark_acknowledged_ones(acme):
    event_log.add_rule("suppress", project_id=acme["id"], host="*.dev.acme.test", note="staging")
    event_log.add_rule("acknowledge", fingerprint="fp-aws")
    doc = json.loads(export("acme", "json"))
    assert doc["events_suppressed"] == 1
    events = {e["summary"]: e for e in doc["events"]}
    assert "new host: ci.dev.acme.test" not in events and "new host: dev.acme.test" in events
    assert events["new secret"]["acknowledged"] is True and events["new port 6379"]["acknowledged"] is False
    assert len(doc["events"]) == 6

    meta = json.loads(export("acme", "jsonl").splitlines()[0])
    assert (meta["section"], meta["events_suppressed"]) == ("meta", 1)
    rows = list(csv.DictReader(io.StringIO(export("acme", "csv"))))
    assert [r["acknowledged"] for r in rows if r["section"] == "event" and r["summary"] == "new secret"] == ["true"]
    for fmt in ("json", "jsonl", "csv", "md", "html"):
        assert "ci.dev.acme.test" not in export("acme", fmt), fmt
    md, page = export("acme", "md"), export("acme", "html")
    assert "1 event suppressed by event rules is left out." in md
    assert "<p>1 event suppressed by event rules is left out.</p>" in page
    assert "| acknowledged |" in md and "<th>acknowledged</th>" in page
    # since_scan counts what it leaves out in its own range
    assert json.loads(export("acme", "json", since_scan=acme["scans"][1]))["events_suppressed"] == 0


# -- CLI ------------------------------------------------------------------------------------


def cli(capsys: Any, *args: str) -> tuple[int, str, str]:
    try:
        code = cli_main(list(args))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_add_list_rm(acme, capsys):
    code, out, err = cli(capsys, "rules", "add", "--project", "acme", "--action", "suppress", "--type", "host_new")
    assert code == 0 and out == ""
    (rule,) = event_log.list_rules()
    assert err == f"rule {rule.id}: suppress type=host_new in acme (covers 2 stored events, 2 of them new)\n"
    code, _, err = cli(
        capsys, "rules", "add", "--all-projects", "--action", "acknowledge", "--type", "host_gone", "--note", "flaky"
    )
    assert code == 0 and "in every project (covers 1 stored event, 1 of them new)" in err
    assert event_log.unacknowledged_count(acme["id"]) == 7 - 3
    assert event_log.unacknowledged_count(acme["other"]) == 1

    code, out, _ = cli(capsys, "rules", "list")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 2
    assert lines[0].split() == [str(rule.id), "acme", "suppress", "type=host_new"]
    assert lines[1].split() == [str(rule.id + 1), "*", "acknowledge", "type=host_gone", "#", "flaky"]
    code, out, _ = cli(capsys, "rules", "list", "--project", "other", "--json")
    assert [json.loads(line)["id"] for line in out.splitlines()] == [rule.id + 1]  # the global one only
    row = json.loads(out)
    assert {k: row[k] for k in ("project", "action", "type", "host", "fingerprint", "note")} == {
        "project": "*",
        "action": "acknowledge",
        "type": "host_gone",
        "host": "",
        "fingerprint": "",
        "note": "flaky",
    }

    assert cli(capsys, "rules", "rm", str(rule.id)) == (0, "", f"rule {rule.id} deleted\n")
    assert event_log.unacknowledged_count(acme["id"]) == 7 - 1
    code, out, err = cli(capsys, "rules", "list", "--project", "acme")
    assert code == 0 and len(out.splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("rules",), "the following arguments are required: COMMAND"),
        (("rules", "add", "--project", "acme", "--action", "hide", "--type", "x"), "invalid choice: 'hide'"),
        (("rules", "add", "--action", "suppress", "--type", "x"), "one of the arguments --project --all-projects"),
        (("rules", "add", "--project", "acme", "--action", "suppress"), "a rule needs an event type, a host pattern"),
        (("rules", "add", "--project", "nope", "--action", "suppress", "--type", "x"), "no project 'nope'"),
        (("rules", "add", "--all-projects", "--action", "suppress", "--host", "web[1]"), "only * and ? are wildcards"),
        (("rules", "add", "--all-projects", "--action", "suppress", "--host", "*"), "would match every event"),
        (("rules", "rm", "12345"), "no rule 12345"),
        (("rules", "rm", "one"), "invalid int value: 'one'"),
        (("rules", "list", "--project", "nope"), "no project 'nope'"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(acme, capsys, args, message):
    code, out, err = cli(capsys, *args)
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and message in err, err
    assert event_log.list_rules() == []


def test_the_installed_command(acme):
    def assetmon(*args: str) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ)
        return subprocess.run(
            [str(VENV_BIN / "assetmon"), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )

    bad = assetmon("rules", "add", "--project", "acme", "--action", "suppress")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "a rule needs" in bad.stderr
    good = assetmon("rules", "add", "--project", "acme", "--action", "suppress", "--fingerprint", "svc-6379")
    assert good.returncode == 0, good.stderr
    assert [r.fingerprint for r in event_log.list_rules()] == ["svc-6379"]


# -- TUI ---------------------------------------------------------------------------------


@pytest.fixture
def thread_backend(monkeypatch):
    monkeypatch.setenv("ASSETMON_BACKEND", "thread")  # no Redis needed: the app starts at once
    get_settings.cache_clear()


def screen_text(app: Any) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


async def until(pilot: Pilot, condition: Callable[[], Any], what: str, timeout: float = 15.0) -> None:
    for _ in range(int(timeout / 0.05)):
        await pilot.pause(0.05)
        if condition():
            return
    raise AssertionError(f"timed out waiting for {what}\n{screen_text(pilot.app)}")


async def showing(pilot: Pilot, *needles: str) -> str:
    texts: list[str] = []

    def shown() -> bool:
        texts[:] = [screen_text(pilot.app)]
        return all(n in texts[0] for n in needles)

    await until(pilot, shown, f"the screen to show {needles}")
    return texts[0]


async def events_screen(pilot: Pilot, rows: int) -> Any:
    app: Any = pilot.app
    await until(pilot, lambda: app.dispatcher is not None and "Local thread" in app.sub_title, "the dashboard")
    await pilot.press("e")
    await until(pilot, lambda: type(app.screen).__name__ == "EventsScreen", "the events screen")
    await until(pilot, lambda: app.screen.query_one("#events").row_count == rows, f"{rows} events")
    return app.screen.query_one("#events")


def notified(app: Any, message: str) -> bool:
    return any(n.message == message for n in app._notifications)


def row_of(table: Any, summary: str) -> int:
    return next(i for i in range(table.row_count) if str(table.get_row_at(i)[5]).startswith(summary))


async def test_tui_rule_from_the_selected_event_updates_the_feed(acme, thread_backend):
    from assetmon_tui.ui.app import AssetMonApp

    async with AssetMonApp().run_test(size=SIZE) as pilot:
        app: Any = pilot.app
        table = await events_screen(pilot, 8)
        await until(pilot, lambda: "8 new events ·" in app.sub_title, "the header count")
        assert table.border_subtitle == ""  # no rules yet

        # r on "new host: dev.acme.test": the form is prefilled with its type, host and fingerprint
        table.move_cursor(row=row_of(table, "new host: dev.acme.test"))
        await showing(pilot, "host_new", "dev.acme.test", "scan #")
        await pilot.press("r")
        await until(pilot, lambda: type(app.screen).__name__ == "RuleForm", "the rule form")
        form = app.screen
        assert (form.query_one("#type", Input).value, form.query_one("#host", Input).value) == (
            "host_new",
            "dev.acme.test",
        )
        assert form.query_one("#fingerprint", Input).value == "host-dev"
        assert not form.query_one("#use-fingerprint").value  # type and host by default
        await showing(pilot, "Suppresses 1 stored event (1 new) and future ones.")
        # widen the host to a glob: the preview follows
        form.query_one("#host", Input).value = "*.acme.test"
        await showing(pilot, "Suppresses 2 stored events (2 new) and future ones.")
        form.query_one("#note", Input).value = "staging churn"
        form.query_one("#note", Input).focus()
        await pilot.press("enter")
        await until(pilot, lambda: type(app.screen).__name__ == "EventsScreen", "back to the feed")
        (made,) = event_log.list_rules()
        assert (made.action, made.project_id, made.event_type, made.host, made.fingerprint, made.note) == (
            "suppress",
            acme["id"],
            "host_new",
            "*.acme.test",
            "",
            "staging churn",
        )
        # the feed, its title and the header count follow at once; both hosts are gone from the list
        await until(pilot, lambda: table.row_count == 6, "the feed without the suppressed events")
        text = await showing(pilot, "Events (6 shown, 6 new)", "6 new events ·", "R 1 rule · h show 2 suppressed")
        assert "dev.acme.test" not in text
        # h shows them, marked ×, with their rule in the detail line
        await pilot.press("h")
        await until(pilot, lambda: table.row_count == 8, "the suppressed events shown")
        row = row_of(table, "new host: ci.dev.acme.test")
        assert str(table.get_row_at(row)[0]) == "×"
        table.move_cursor(row=row)
        await showing(pilot, f"suppressed (rule #{made.id})", "h hide suppressed")
        await pilot.press("a")  # a suppressed event is not acknowledged by hand
        await until(pilot, lambda: notified(app, f"Suppressed (rule #{made.id}): R lists the rules."), "the notice")
        await pilot.press("h")
        await until(pilot, lambda: table.row_count == 6, "the suppressed events hidden again")

        # acknowledge events like the secret one, everywhere: shown as acknowledged, the count drops
        table.move_cursor(row=row_of(table, "new secret"))
        await showing(pilot, "secret_new", "new secret")
        await pilot.press("r")
        await until(pilot, lambda: type(app.screen).__name__ == "RuleForm", "the rule form")
        form = app.screen
        await pilot.click("#action-acknowledge")
        await pilot.click("#use-host")  # type only
        await pilot.click("#use-project")  # every project
        await showing(pilot, "Acknowledges 1 stored event (1 new) and future ones.")
        await pilot.click("#save")
        await until(pilot, lambda: type(app.screen).__name__ == "EventsScreen", "back to the feed")
        await until(pilot, lambda: "5 new events ·" in app.sub_title, "the header count")
        row = row_of(table, "new secret")
        assert str(table.get_row_at(row)[0]) == "·"
        table.move_cursor(row=row)
        await showing(pilot, "Events (6 shown, 5 new)", "acknowledged (rule #", "R 2 rules")

        # the rules list: both, the global one shown as "all"; x then y deletes the highlighted one
        await pilot.press("R")
        await until(pilot, lambda: type(app.screen).__name__ == "RulesForm", "the rules list")
        rules_table = app.screen.query_one("#rules")
        await until(pilot, lambda: rules_table.row_count == 2, "two rules")
        text = await showing(pilot, "2 rules", "*.acme.test", "secret_new", "all", "staging churn")
        await pilot.press("x")
        await showing(pilot, f"Delete rule #{made.id} (suppress)?")
        await pilot.press("y")
        await until(pilot, lambda: rules_table.row_count == 1, "one rule left")
        assert [r.action for r in event_log.list_rules()] == ["acknowledge"]
        await pilot.press("escape")
        await until(pilot, lambda: type(app.screen).__name__ == "EventsScreen", "back to the feed")
        await until(pilot, lambda: table.row_count == 8, "the events back")
        await until(pilot, lambda: "7 new events ·" in app.sub_title, "the header count back")


async def test_tui_rule_form_errors_stay_on_the_form_and_hostile_text_is_inert(acme, thread_backend):
    from assetmon_tui.ui.app import AssetMonApp

    async with AssetMonApp().run_test(size=SIZE) as pilot:
        app: Any = pilot.app
        table = await events_screen(pilot, 8)
        table.move_cursor(row=row_of(table, "title [bold]boom"))
        await pilot.press("r")
        await until(pilot, lambda: type(app.screen).__name__ == "RuleForm", "the rule form")
        form = app.screen
        text = await showing(pilot, "title [bold]boom[/bold]", "[link=http://x]y[/link]")
        assert "pwned" not in text
        form.query_one("#use-type").value = False
        form.query_one("#use-host").value = False
        await showing(pilot, "a rule needs an event type, a host pattern or a fingerprint")  # the preview says so
        await pilot.click("#save")
        needs = "a rule needs an event type, a host pattern or a fingerprint"
        await until(pilot, lambda: needs in str(form.query_one("#error").content), "the error line")
        form.query_one("#host", Input).value = "web[1].acme.test"
        form.query_one("#use-host").value = True
        await showing(pilot, "host pattern 'web[1].acme.test': only * and ? are wildcards")
        await pilot.click("#save")
        await until(pilot, lambda: "only * and ? are" in str(form.query_one("#error").content), "the error line")
        assert type(app.screen).__name__ == "RuleForm" and event_log.list_rules() == []
        await pilot.press("escape")
        await until(pilot, lambda: type(app.screen).__name__ == "EventsScreen", "the form closed, nothing saved")
        assert event_log.list_rules() == []


# -- snapshot ------------------------------------------------------------------------------


@pytest.fixture
def utc(monkeypatch):
    with frozen.utc(monkeypatch):
        yield


def test_rule_form_snapshot(snap_compare, thread_backend, utc):
    project = repo.create_project("acme")
    scan = done_scan(project.id)
    base = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    add_events(
        project.id,
        scan,
        dict(type="port_new", severity="high", host="10.0.0.2", fingerprint="svc-6379", summary="new port 6379"),
        dict(type="host_new", host="dev.acme.test", fingerprint="host-dev", summary="new host: dev.acme.test"),
        dict(type="host_new", host="ci.dev.acme.test", fingerprint="host-ci", summary="new host: ci.dev.acme.test"),
        when=base,
    )
    from assetmon_tui.ui.app import AssetMonApp

    async def rule_form(pilot: Pilot) -> None:
        app: Any = pilot.app
        app.animation_level = "none"
        table = await events_screen(pilot, 3)
        table.move_cursor(row=row_of(table, "new host: ci.dev.acme.test"))
        await showing(pilot, "ci.dev.acme.test", "scan #")
        await pilot.press("r")
        await until(pilot, lambda: type(app.screen).__name__ == "RuleForm", "the rule form")
        app.screen.query_one("#host", Input).value = "*.acme.test"
        await showing(pilot, "Suppresses 2 stored events (2 new) and future ones.", "3 new events ·")
        await pilot.pause(0.3)
        for widget in app.screen.query(Input):
            widget.cursor_blink = False
        await pilot.pause(0.1)

    assert snap_compare(AssetMonApp(), terminal_size=SIZE, run_before=rule_form)
