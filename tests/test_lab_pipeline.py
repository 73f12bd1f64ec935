"""The whole pipeline against the offline lab: every module finds what the
lab planted, and a rescan after `--mutate 1` yields exactly its changes."""

from __future__ import annotations

import pytest
from support.scenario import lab_with_short_wordlist, run_to_end

from assetmon_tui.core.config import get_settings
from assetmon_tui.core.modules import NAMES as MODULES
from assetmon_tui.dispatch import Dispatcher
from assetmon_tui.events import list_events
from assetmon_tui.lab import Lab
from assetmon_tui.store import repo

PORTS = "22,25,80,443,6379"


pytestmark = [pytest.mark.one_store, pytest.mark.alone]


@pytest.fixture
def lab(tmp_path, monkeypatch):
    with lab_with_short_wordlist(tmp_path, monkeypatch, hosts=80) as lab:
        monkeypatch.setenv("ASSETMON_BACKEND", "thread")
        get_settings.cache_clear()
        yield lab


def scan(dispatcher: Dispatcher, project_id: int, lab: Lab) -> int:
    ports = f"{PORTS},{lab.info['http_port']},{lab.info['https_port']}"  # 80/443 may be taken on this machine
    # gone at the first covered miss here (flap damping: tests/test_trusted_events.py)
    options = {"nameservers": [lab.info["nameserver"]], "ports": ports, "gone_after": 1}
    row = dispatcher.submit(project_id, list(MODULES), options)
    progress, _ = run_to_end(dispatcher, row.id, timeout=180)
    assert progress.state == "done", progress
    return row.id


def test_lab_scan_finds_what_was_planted_and_a_mutation_yields_its_events(lab):
    dispatcher = Dispatcher()
    project = repo.create_project("acme")
    repo.add_targets(project.id, [lab.info["domain"]])
    first = scan(dispatcher, project.id, lab)

    names = {h.name for h in repo.hosts(project.id)}
    assert set(lab.estate.san_names) <= names, "names only in certificate SANs"
    assert {"mdm-enroll-eu.acme.test", "uat-partner-api-2.acme.test"} <= names, "names only in CT"
    assert "partners-hub-eu.acme.test" in names, "a name only linked from HTML"
    assert not any(n.endswith(".dyn.acme.test") and n.split(".")[0] in ("nothere", "decoy-7") for n in names)
    findings = repo.findings(project.id)
    takeovers = {f.location for f, _ in findings if f.kind == "takeover"}
    assert takeovers == {lab.estate.dangling.name if hasattr(lab.estate.dangling, "name") else "promo.acme.test"}
    secrets = {f.value for f, _ in findings if f.kind == "secret"}
    planted = {s.value for s in lab.estate.secrets}
    assert planted <= secrets
    api_paths = {f.redacted for f, _ in findings if f.kind == "endpoint"}
    assert {"/api/v1/users", "/v2/orders/{id}"} <= api_paths
    www = next(e for e, host in repo.endpoints(project.id) if host == "www.acme.test" and e.url.startswith("https"))
    assert www.tech and '"sans"' in www.tls
    assert [e.type for e in list_events(project.id)] == ["baseline"]  # the first scan is not a flood

    lab.set_mutation(1)
    second = scan(dispatcher, project.id, lab)
    expected = lab.diff(0, 1)
    events = [e for e in list_events(project.id) if e.scan_id == second]
    by_type: dict[str, list] = {}
    for e in events:
        by_type.setdefault(e.type, []).append(e)

    def entities(kind: str) -> set[str]:
        return {e.entity for e in by_type.get(kind, [])}

    assert any(h in e for h in expected["hosts_added"] for e in entities("host_new"))
    assert any(h in e for h in expected["hosts_removed"] for e in entities("host_gone"))
    assert len(by_type.get("host_new", [])) == len(expected["hosts_added"])
    assert len(by_type.get("host_gone", [])) == len(expected["hosts_removed"])
    # Exactly the mutation's changes, plus what follows from them (the new host's
    # web endpoints and scripts, the redeployed bundle's new file names).
    assert set(by_type) == {"host_new", "host_gone", "title_changed", "port_new", "secret_new", "http_new", "js_new"}
    assert entities("title_changed") and all("://www.acme.test" in e for e in entities("title_changed"))
    assert all("Spring Sale" in e.summary for e in by_type["title_changed"])
    assert {e.entity.split("/")[2].split(":")[0] for e in by_type["http_new"]} == {"beta-checkout.acme.test"}
    (port,) = by_type["port_new"]
    assert "127.0.2.5" in port.entity and "22" in port.entity
    (secret,) = by_type["secret_new"]
    assert "sendgrid" in secret.summary.lower()
    assert expected["secrets_added"][0]["value"] not in secret.summary  # redacted
    assert "port_closed" not in by_type and "secret_resolved" not in by_type
    assert all(e.prev_scan_id == first for e in events)
