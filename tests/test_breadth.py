"""Discovery breadth on the lab's second estate (lab/breadth.py): every
technique finds the one name only it can reveal; nothing comes from a
wildcard, nothing out of scope is kept, and nothing at all is sent into the
excluded sub-zone, by DNS or HTTP."""

from __future__ import annotations

import pytest
from support.scenario import make_project, run_to_end

from assetmon_tui.core.config import get_settings
from assetmon_tui.dispatch import Dispatcher
from assetmon_tui.lab.breadth import EXCLUDED, ONLY, REFERENCED, ROOT, SCOPE, WILDCARDS, WORDS, BreadthLab
from assetmon_tui.store import repo

pytestmark = pytest.mark.one_store


@pytest.mark.timeout(180)
def test_each_technique_finds_its_own_name_and_nothing_else_is_kept(tmp_path, monkeypatch):
    (tmp_path / "words.txt").write_text("\n".join(WORDS))
    monkeypatch.setenv("ASSETMON_BACKEND", "thread")
    monkeypatch.setenv("ASSETMON_WORDLIST", str(tmp_path / "words.txt"))
    monkeypatch.setenv("ASSETMON_CT_URL", "")  # no CT log in this estate
    with BreadthLab() as lab:
        shodan = lab.info["passive"]["shodan"]
        monkeypatch.setenv("ASSETMON_PASSIVE_SHODAN_KEYS", shodan["key"])
        monkeypatch.setenv("ASSETMON_PASSIVE_SHODAN_URL", shodan["url"])
        get_settings.cache_clear()
        project_id = make_project("breadth", list(SCOPE))
        dispatcher = Dispatcher()
        options = {"nameservers": [lab.info["nameserver"]], "ports": str(lab.info["http_port"])}
        row = dispatcher.submit(project_id, ["subdomains", "dns", "ports", "http", "js"], options)
        progress, _ = run_to_end(dispatcher, row.id, timeout=150)
        assert progress.state == "done", progress
        hosts = {h.name for h in repo.hosts(project_id) if not h.is_address}
        missed = {technique: name for technique, name in ONLY.items() if name not in hosts}
        assert not missed, f"recall: missed {missed}"
        assert not [h for h in hosts if not (h == ROOT or h.endswith("." + ROOT))], hosts  # out of scope
        assert not [h for h in hosts if h.endswith(EXCLUDED)], hosts
        under_wildcards = {h for h in hosts if any(h.endswith(f".{z}.{ROOT}") for z in WILDCARDS)}
        assert under_wildcards <= set(REFERENCED), under_wildcards - set(REFERENCED)  # no guess from a wildcard
        assert lab.hosts_into_excluded() == []  # not one query nor request into the excluded zone
        assert lab.dns.transfers >= 1
    get_settings.cache_clear()
