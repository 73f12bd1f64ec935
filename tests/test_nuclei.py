"""The nuclei module with a stand-in `nuclei` on PATH (the real binary is not
installable here): its JSONL becomes findings with severity and template,
its hostile text is cleaned, its templates' version is recorded, and a
finding that comes with new templates says so; without nuclei the module is
skipped and says why."""

from __future__ import annotations

import json
import os
import stat
import sys

import pytest
from support.scenario import estate, make_project, run_to_end

from assetmon_tui.core.config import get_settings
from assetmon_tui.dispatch import Dispatcher
from assetmon_tui.events import list_events
from assetmon_tui.store import repo

pytestmark = pytest.mark.one_store

FAKE = """#!{python}
import json, os, sys
args = sys.argv[1:]
templates = os.environ.get("FAKE_NUCLEI_TEMPLATES", "10.0.0")
if "-version" in args:
    print("[INF] Nuclei Engine Version: v3.3.0", file=sys.stderr)
elif "-templates-version" in args:
    print(f"[INF] Public nuclei-templates version: v{{templates}}", file=sys.stderr)
else:
    urls = open(args[args.index("-l") + 1]).read().split()
    print("[WRN] not json")
    for url in urls:
        if "www." in url:
            info = {{"name": "Git config \\x1b[31mexposed", "severity": "medium"}}
            print(json.dumps({{"template-id": "exposed-git", "info": info,
                              "matched-at": url + ".git/config", "host": url, "type": "http",
                              "extracted-results": ["\\x1b]0;evil\\x07[bold]x[/]"]}}))
            if templates != "10.0.0":
                print(json.dumps({{"template-id": "new-check", "info": {{"name": "New check", "severity": "high"}},
                                  "matched-at": url, "host": url, "type": "http"}}))
"""


@pytest.fixture
def nuclei(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "nuclei"
    fake.write_text(FAKE.format(python=sys.executable))
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("ASSETMON_BACKEND", "thread")
    get_settings.cache_clear()
    return monkeypatch


def scan(dispatcher: Dispatcher, project_id: int, site) -> int:
    row = dispatcher.submit(project_id, ["dns", "ports", "http", "nuclei"], site.options())
    progress, _ = run_to_end(dispatcher, row.id, timeout=60)
    assert progress.state == "done", progress
    return row.id


def test_nuclei_findings_are_stored_cleaned_and_new_templates_are_told_apart(nuclei):
    with estate() as site:
        dispatcher = Dispatcher()
        project_id = make_project()
        first = scan(dispatcher, project_id, site)
        findings = [f for f, _ in repo.findings(project_id) if f.kind == "nuclei"]
        assert [(f.rule, f.severity) for f in findings] == [("exposed-git", "medium")]
        assert findings[0].location == f"http://www.scan.test:{site.web.port}/.git/config"
        assert "\x1b" not in findings[0].context + findings[0].value + findings[0].redacted
        sources = {s["source"]: s for s in json.loads(repo.get_scan(first).sources)}
        assert sources["nuclei templates"]["reason"].startswith("templates 10.0.0")

        again = scan(dispatcher, project_id, site)  # the same templates, the same target: nothing to say
        assert [e.type for e in list_events(project_id) if e.scan_id == again] == []

        nuclei.setenv("FAKE_NUCLEI_TEMPLATES", "10.0.1")
        third = scan(dispatcher, project_id, site)
        events = [e for e in list_events(project_id) if e.scan_id == third]
        assert [e.type for e in events] == ["nuclei_new"]
        assert "new-check" in events[0].summary and "10.0.0 -> 10.0.1" in events[0].summary


def test_without_nuclei_the_module_is_skipped_and_says_why(nuclei):
    nuclei.setenv("ASSETMON_NUCLEI_PATH", "nuclei-not-installed")
    get_settings.cache_clear()
    with estate() as site:
        project_id = make_project()
        scan_id = scan(Dispatcher(), project_id, site)
    sources = {s["source"]: s for s in json.loads(repo.get_scan(scan_id).sources)}
    assert sources["nuclei"]["status"] == "skipped" and "not found on PATH" in sources["nuclei"]["reason"]
