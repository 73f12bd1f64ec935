"""Exports parse back, keep secrets redacted and escape hostile text."""

from __future__ import annotations

import csv
import io
import json
import re
from types import SimpleNamespace

import pytest
from support.world import World, fake_scan, project_with_targets

from assetmon_tui.events import compute_events
from assetmon_tui.export import export

HOSTILE = "<script>alert(1)</script> | =cmd|x [a](javascript:1) \x1b[2J"
SECRET = "AKIAREALSECRETVALUE1"


@pytest.fixture
def project():
    project = project_with_targets()
    first = fake_scan(project.id, World())
    compute_events(first)
    w = World()
    w.http["https://www.acme.test/"]["title"] = HOSTILE
    w.services[("10.0.0.2", 6379)] = "redis"
    compute_events(fake_scan(project.id, w))
    return SimpleNamespace(id=project.id, first_scan=first)


def test_json_has_inventory_and_events(project):
    doc = json.loads(export("acme", "json"))
    assert doc["project"] == "acme" and doc["generated_at"]
    inv = doc["inventory"]
    assert {h["name"] for h in inv["hosts"]} >= {"www.acme.test", "10.0.0.2"}
    assert {(s["host"], s["port"]) for s in inv["services"]} >= {("10.0.0.2", 6379)}
    assert [f["value"] for f in inv["findings"]] == ["AKIA…LUE1"]
    assert [(e["type"], e["scan"], e["prev_scan"]) for e in doc["events"]] == [
        ("baseline", project.first_scan, None),
        ("port_new", project.first_scan + 1, project.first_scan),
        ("title_changed", project.first_scan + 1, project.first_scan),
    ]
    assert set(doc["events"][0]) == {
        "type",
        "severity",
        "summary",
        "scan",
        "prev_scan",
        "entity",
        "acknowledged",
        "created_at",
    }
    assert SECRET not in export(project.id, "json")


def test_since_limits_events_to_later_scans(project):
    doc = json.loads(export("acme", "json", since_scan=project.first_scan))
    assert [e["type"] for e in doc["events"]] == ["port_new", "title_changed"]
    assert doc["inventory"]["hosts"]  # the inventory is whole


def test_jsonl_lines_each_parse(project):
    lines = [json.loads(line) for line in export("acme", "jsonl").splitlines()]
    assert lines[0]["section"] == "meta" and lines[0]["project"] == "acme"
    assert {line["section"] for line in lines[1:]} == {"host", "dns", "service", "http", "finding", "event"}


def test_csv_parses_back_with_a_section_column(project):
    text = export("acme", "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    sections = {r["section"] for r in rows}
    assert sections == {"host", "dns", "service", "http", "finding", "event"}
    (www,) = [r for r in rows if r["section"] == "http" and r["url"] == "https://www.acme.test/"]
    assert www["status"] == "200" and www["title"].startswith("<script>")
    assert json.loads(www["tls"])["issuer"] == "R3"
    assert [r["value"] for r in rows if r["section"] == "finding"] == ["AKIA…LUE1"]
    assert SECRET not in text


def test_csv_defuses_spreadsheet_formulas(project):
    from assetmon_tui.store import repo
    from assetmon_tui.store.db import session
    from assetmon_tui.store.models import HttpEndpoint

    scan = repo.create_scan(repo.get_project("acme").id, ["http"], {})
    with session() as s:
        host_id = repo.upsert_host(s, repo.get_project("acme").id, "evil.acme.test", scan.id)
        repo.upsert(
            s,
            HttpEndpoint,
            {"host_id": host_id, "url": "http://evil.acme.test/"},
            {"status": 200, "title": '=HYPERLINK("http://x")', "content_length": -1},
            scan.id,
        )
        s.commit()
    rows = list(csv.DictReader(io.StringIO(export("acme", "csv"))))
    (evil,) = [r for r in rows if r.get("url") == "http://evil.acme.test/"]
    assert evil["title"] == '\'=HYPERLINK("http://x")' and evil["content_length"] == "-1"


def test_html_is_self_contained_and_escaped(project):
    page = export("acme", "html")
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "\x1b" not in page
    assert not re.search(r"""(src|href)\s*=|@import|url\(""", page)  # nothing external
    assert "default-src 'none'" in page and "<style>" in page
    assert "port_new" in page and "high 1" in page and "info 2" in page  # summary by severity
    assert SECRET not in page and "AKIA…LUE1" in page


def test_markdown_escapes_pipes_and_markup(project):
    text = export("acme", "md")
    assert "<script>" not in text and "&lt;script&gt;" in text
    (row,) = [line for line in text.splitlines() if line.startswith("| https://www.acme.test/ |")]
    assert r"\| =cmd\|x \[a\](javascript:1)" in row
    cells = re.split(r"(?<!\\)\|", row.strip().strip("|"))
    assert len(cells) == 7  # the http table's columns: hostile pipes split nothing
    assert SECRET not in text


def test_unknown_format_and_project():
    from assetmon_tui.store.repo import NotFound

    project_with_targets()
    with pytest.raises(ValueError, match="unknown format"):
        export("acme", "xml")
    with pytest.raises(NotFound):
        export("nope", "json")


def test_html_report_opens_in_headless_chromium_without_errors(project, tmp_path):
    import os
    import shutil
    import subprocess

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is required in CI (./start.sh test installs it)")
        pytest.skip("chromium not installed")
    report = tmp_path / "report.html"
    report.write_text(export("acme", "html"), encoding="utf-8")
    result = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=2000",
            "--dump-dom",
            report.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    assert "port_new" in dom and "&lt;script&gt;alert(1)" in dom  # rendered, hostile title inert
    console = [line for line in result.stderr.splitlines() if "CONSOLE" in line or "Refused to" in line]
    assert console == [], console  # no script errors, no CSP violations


def test_the_latest_scans_failed_sources_are_in_every_report(project):
    from sqlmodel import col, update

    from assetmon_tui.store.db import session
    from assetmon_tui.store.models import Scan

    failed = {"source": "ct acme.test", "step": "subdomains", "status": "failed", "reason": "timed out <b>|x|</b>"}
    with session() as s:
        s.exec(
            update(Scan)
            .where(col(Scan.id) == project.first_scan + 1)
            .values(sources=json.dumps([failed, {"source": "ports", "step": "ports", "status": "ok", "reason": ""}]))
        )
        s.commit()
    doc = json.loads(export("acme", "json"))
    assert doc["latest_scan"]["id"] == project.first_scan + 1
    assert doc["latest_scan"]["warnings"] == [failed]
    assert json.loads(export("acme", "jsonl").splitlines()[0])["latest_scan"]["warnings"] == [failed]
    md = export("acme", "md")
    assert "ct acme.test: failed (timed out &lt;b&gt;\\|x\\|&lt;/b&gt;)" in md
    html = export("acme", "html")
    assert "timed out &lt;b&gt;|x|&lt;/b&gt;" in html and "<b>|x|" not in html


def test_a_context_holding_another_secret_of_the_file_masks_both():
    """A stored context masks only its own finding's value; the file's other secrets must not leak through it."""
    project = project_with_targets()
    world = World()
    other = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"
    world.findings["fp-aws"]["context"] = f'key="{SECRET}"; stripe="{other}"'
    world.findings["fp-stripe"] = dict(
        kind="secret",
        rule="stripe_secret_key",
        severity="high",
        value=other,
        redacted="sk_l…p7dc",
        location="https://www.acme.test/main.js",
        line=3,
        host="www.acme.test",
        context=f'key="{SECRET}"; stripe="{other}"',
    )
    fake_scan(project.id, world)
    for fmt in ("json", "jsonl", "csv", "md", "html"):
        out = export(project.id, fmt)
        assert SECRET not in out and other not in out, fmt
    contexts = {f["rule"]: f["context"] for f in json.loads(export(project.id, "json"))["inventory"]["findings"]}
    assert contexts["aws_access_key_id"] == 'key="AKIA…LUE1"; stripe="sk_l…p7dc"'
