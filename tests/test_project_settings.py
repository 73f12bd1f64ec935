"""Per-project scan settings: the registry's checks and messages, the store,
`new_scan` merging them into each scan's options, real thread-backend scans
(direct and scheduled) that use a project's loopback DNS, CT source, wordlist
and ports over the global ones, and the TUI form (Pilot and an 80x24 snapshot).

The global settings point at loopback decoys (a DNS server, a CT source and a
wordlist naming other hosts), so a scan that used them instead of the
project's would find the decoys, and nothing ever leaves the machine."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from support.loopback import FakeDNS, HttpServer, TcpServer, page
from support.scenario import run_to_end
from textual.widgets import Input, SelectionList, Static

from assetmon_tui import schedule
from assetmon_tui.core import project_settings as registry
from assetmon_tui.core.config import get_settings
from assetmon_tui.store import repo
from assetmon_tui.store.models import utcnow

SIZE = (80, 24)
ADDRESS = "127.0.0.30"  # the project's hosts (nothing else listens there)
DECOY = "127.0.0.31"


def ct_answer(*names: str):
    """A crt.sh-style JSON answer naming `names`."""
    rows = [{"issuer_ca_id": 1, "name_value": name, "common_name": name, "id": i} for i, name in enumerate(names)]
    return page(json.dumps(rows), content_type="application/json")


@pytest.fixture
def decoys(tmp_path, monkeypatch):
    """Global settings (as from the environment) that a project's settings must beat."""
    zone = {"decoy.set.test": {"A": [DECOY]}, "ctdecoy.set.test": {"A": [DECOY]}, "set.test": {"A": [DECOY]}}
    with FakeDNS(zone) as dns, HttpServer({"/": ct_answer("ctdecoy.set.test")}) as ct:
        words = tmp_path / "decoy-words.txt"
        words.write_text("decoy\n")
        monkeypatch.setenv("ASSETMON_NAMESERVERS", dns.address)
        monkeypatch.setenv("ASSETMON_CT_URL", ct.url + "/")
        monkeypatch.setenv("ASSETMON_WORDLIST", str(words))
        monkeypatch.setenv("ASSETMON_BACKEND", "thread")
        get_settings.cache_clear()
        yield dns, ct


@pytest.fixture
def estate(tmp_path):
    """The project's own sources: its DNS (set.test, www from the wordlist, ct
    only in its CT source), its CT source, its wordlist and a TCP service on
    an odd port."""
    zone = {
        "set.test": {"A": [ADDRESS]},
        "www.set.test": {"A": [ADDRESS]},
        "ct.set.test": {"A": [ADDRESS]},
    }
    with (
        FakeDNS(zone) as dns,
        HttpServer({"/": ct_answer("ct.set.test", "*.set.test")}) as ct,
        TcpServer(b"SSH-2.0-OpenSSH_9.6\r\n", host=ADDRESS) as service,
    ):
        words = tmp_path / "words.txt"
        words.write_text("www\nnothere\n")
        settings = {
            "nameservers": [dns.address],
            "ct_url": ct.url + "/",
            "wordlist": str(words),
            "ports": str(service.port),
            "gone_after": 3,
        }
        yield {"dns": dns, "ct": ct, "service": service, "settings": settings}


def project(targets=("set.test",)) -> int:
    created = repo.create_project("acme")
    assert created.id is not None
    repo.add_targets(created.id, list(targets))
    return created.id


# -- the registry: checks and their messages -----------------------------------------------------


@pytest.mark.parametrize(
    "name,value,message",
    [
        ("modules", "dns,fast", "modules: unknown module(s): fast (choose from subdomains, dns, ports, http"),
        ("ports", "22,http", "ports: bad port 'http' in '22,http': expected a number 1-65535"),
        ("ports", "top5000", "ports: 'top5000': top lists go from top1 to top1000"),
        ("ports", "90-80", "ports: bad range '90-80' in '90-80': start is after end"),
        ("nameservers", "ns1.example.com", "nameservers: 'ns1.example.com' is not an IP address: give IP or IP:PORT"),
        ("nameservers", "127.0.0.1:0", "nameservers: bad port in '127.0.0.1:0': expected IP:PORT with a port 1-65535"),
        ("ct_url", "crt.sh", "ct_url: 'crt.sh' is not an http(s) URL: give e.g. https://crt.sh/"),
        ("ct_url", "ftp://127.0.0.1/", "ct_url: 'ftp://127.0.0.1/' is not an http(s) URL"),
        ("ct_url", "http://127.0.0.1:99999/", "ct_url: 'http://127.0.0.1:99999/' is not an http(s) URL"),
        ("wordlist", "/no/such/words.txt", "wordlist: no readable file at '/no/such/words.txt': give the path of a"),
        ("wordlist", "/", "wordlist: no readable file at '/'"),  # a folder
        ("gone_after", "0", "gone_after: '0' is not a whole number of at least 1: give 1 (gone at once)"),
        ("gone_after", "two", "gone_after: 'two' is not a whole number of at least 1"),
        ("gone_after", True, "gone_after: expected a whole number, got True"),
        ("ports", 80, "ports: expected text, got 80"),
        ("colour", "red", "unknown project setting 'colour' (choose from modules, ports, nameservers, ct_url"),
    ],
)
def test_bad_values_get_one_line_messages(name, value, message):
    with pytest.raises(ValueError) as caught:
        registry.check(name, value)
    text = str(caught.value)
    assert text.startswith(message) and "\n" not in text


def test_good_values_are_stored_in_one_form(tmp_path):
    words = tmp_path / "w.txt"
    words.write_text("www\n")
    assert registry.check("modules", "http, dns ports") == ["dns", "ports", "http"]  # run order
    assert registry.check("modules", ["js", "dns"]) == ["dns", "js"]
    assert registry.check("ports", " 22,80,8000-8100 ") == "22,80,8000-8100"
    assert registry.check("nameservers", "127.0.0.1:5353, ::1 [::1]:53 127.0.0.1:5353") == [
        "127.0.0.1:5353",
        "::1",
        "[::1]:53",
    ]
    assert registry.check("ct_url", "http://127.0.0.1:8080/ct") == "http://127.0.0.1:8080/ct"
    assert registry.check("wordlist", str(words)) == str(words.resolve())
    assert registry.check("gone_after", " 3 ") == 3 and registry.check("gone_after", 1) == 1
    for empty in ("", "  ", None, []):
        assert registry.check("ports", empty) is None  # empty: the global default applies


def test_every_setting_shows_what_it_stores_and_its_global_default(tmp_path):
    defaults = get_settings()
    assert registry.NAMES == (
        "modules",
        "ports",
        "nameservers",
        "ct_url",
        "wordlist",
        "gone_after",
        "profile",  # a scan profile's name (core/profiles.py)
        "dns_concurrency",  # rates: set through a profile, not lines of the form
        "http_concurrency",
        "port_concurrency",
        "port_rate",
        "verify_secrets",  # live verification of found keys (set through the CLI or a profile)
    )
    assert [s.name for s in registry.FORM] == list(registry.NAMES[:7])
    assert "modules" not in registry.SCAN_OPTIONS  # they choose a scan's steps, not its options
    assert registry.show("nameservers", ["127.0.0.1:53", "::1"]) == "127.0.0.1:53, ::1"
    assert registry.show("gone_after", 2) == "2" and registry.show("ports", None) == ""
    shown = {s.name: s.default(defaults) for s in registry.SETTINGS}
    assert shown["ports"] == "top100" and shown["ct_url"] == "https://crt.sh/" and shown["gone_after"] == "2"
    assert all(s.help and "\n" not in s.help for s in registry.SETTINGS)


# -- the store ------------------------------------------------------------------------------------


def test_settings_are_stored_checked_and_removed_by_empty_values(tmp_path):
    project_id = project()
    assert repo.project_settings(project_id) == {}
    saved = repo.set_project_settings(project_id, {"gone_after": "3", "ports": "top1000", "nameservers": "127.0.0.1"})
    assert saved == {"ports": "top1000", "nameservers": ["127.0.0.1"], "gone_after": 3}  # registry order
    assert repo.project_settings(project_id) == saved
    # A partial update keeps the others; an empty value removes its setting.
    assert repo.set_project_settings(project_id, {"ports": "", "modules": "dns"}) == {
        "modules": ["dns"],
        "nameservers": ["127.0.0.1"],
        "gone_after": 3,
    }
    # One bad value stores nothing, not even the good ones beside it.
    with pytest.raises(ValueError, match=r"^ct_url: 'nowhere' is not an http\(s\) URL"):
        repo.set_project_settings(project_id, {"gone_after": 5, "ct_url": "nowhere"})
    with pytest.raises(ValueError, match="unknown project setting 'port'"):
        repo.set_project_settings(project_id, {"port": "80"})
    assert repo.project_settings(project_id)["gone_after"] == 3
    with pytest.raises(repo.NotFound):
        repo.set_project_settings(project_id + 100, {"ports": "80"})


def test_new_scan_merges_the_project_settings_explicit_options_win(tmp_path):
    words = tmp_path / "w.txt"
    words.write_text("www\n")
    project_id = project()
    repo.set_project_settings(
        project_id,
        {
            "modules": "dns,http",
            "ports": "top1000",
            "nameservers": "127.0.0.1:5353",
            "ct_url": "http://127.0.0.1:9/",
            "wordlist": str(words),
            "gone_after": 4,
        },
    )
    scan = repo.new_scan(project_id, ["dns", "ports"], {"ports": "22", "seeds": ["set.test"]})
    assert scan.modules == "dns,ports"  # modules given: the project's default does not apply
    assert json.loads(scan.options) == {
        "ports": "22",  # explicit wins
        "seeds": ["set.test"],  # options that are no setting pass through
        "nameservers": ["127.0.0.1:5353"],
        "ct_url": "http://127.0.0.1:9/",
        "wordlist": str(words.resolve()),
        "gone_after": 4,  # recorded with the scan: what its events use
    }
    repo.finish_scan(scan.id, "done")
    # No modules given: the project's; an explicit empty option is no choice (the project's applies).
    scan = repo.new_scan(project_id, [], {"ports": "", "nameservers": []})
    assert scan.modules == "dns,http"
    options = json.loads(scan.options)
    assert options["ports"] == "top1000" and options["nameservers"] == ["127.0.0.1:5353"]
    repo.finish_scan(scan.id, "done")
    # Explicit options are checked like settings.
    with pytest.raises(ValueError, match="^nameservers: 'dns.example' is not an IP address"):
        repo.new_scan(project_id, ["dns"], {"nameservers": ["dns.example"]})
    # A project without settings: options as given, and still at least one module.
    other = repo.create_project("other")
    repo.add_targets(other.id, ["other.test"])
    scan = repo.new_scan(other.id, ["dns"], {"ports": "80"})
    assert json.loads(scan.options) == {"ports": "80"}
    repo.finish_scan(scan.id, "done")
    with pytest.raises(ValueError, match="choose at least one module"):
        repo.new_scan(other.id, [], {})


def test_a_setting_gone_bad_since_it_was_saved_stops_the_scan_with_a_clear_message(tmp_path):
    words = tmp_path / "w.txt"
    words.write_text("www\n")
    project_id = project()
    repo.set_project_settings(project_id, {"wordlist": str(words)})
    words.unlink()
    with pytest.raises(ValueError) as caught:
        repo.new_scan(project_id, ["subdomains"], {})
    assert str(caught.value).startswith("project setting wordlist: no readable file at")
    assert "fix it in the project's settings" in str(caught.value)
    assert repo.list_scans(project_id) == []
    # An explicit option in its place is used instead.
    words.write_text("www\n")
    assert json.loads(repo.new_scan(project_id, ["subdomains"], {"wordlist": str(words)}).options)["wordlist"]


# -- real scans --------------------------------------------------------------------------------


def names(project_id: int) -> set[str]:
    return {h.name for h in repo.hosts(project_id) if not h.is_address}


def test_a_scan_uses_the_project_dns_ct_wordlist_and_ports(decoys, estate):
    from assetmon_tui.dispatch import Dispatcher

    project_id = project()
    repo.set_project_settings(project_id, estate["settings"])
    dispatcher = Dispatcher()
    scan = dispatcher.submit(project_id, ["subdomains", "dns", "ports"], {})
    assert scan.backend == "thread"
    progress, _ = run_to_end(dispatcher, scan.id)
    assert progress.state == "done", repo.get_scan(scan.id).error
    assert json.loads(repo.get_scan(scan.id).options) == estate["settings"]
    # CT gave ct.set.test, the project's wordlist www (both resolved by its DNS);
    # the decoys' names (their CT, wordlist and DNS) are nowhere.
    assert names(project_id) == {"set.test", "www.set.test", "ct.set.test"}
    addresses = {(r.value, name) for r, name in repo.dns_records(project_id) if r.rtype == "A"}
    assert addresses == {(ADDRESS, n) for n in ("set.test", "www.set.test", "ct.set.test")}
    dns, ct = decoys
    assert not dns.queries and not ct.requests
    assert {r.path.split("?")[0] for r in estate["ct"].requests} == {"/"}
    # The one port of the project's ports setting, on the project's address.
    assert {(name, s.port, s.service) for s, name in repo.services(project_id)} == {
        (ADDRESS, estate["service"].port, "ssh")
    }


def test_a_scheduled_scan_carries_the_project_settings(decoys, estate):
    from assetmon_tui.dispatch import Dispatcher

    project_id = project()
    repo.set_project_settings(project_id, estate["settings"])
    schedule.set_schedule(
        project_id,
        interval_seconds=3600,
        modules=["dns", "ports"],
        options={"ports": "1-10"},  # the schedule's own option wins over the project's
        now=utcnow() - timedelta(hours=2),
    )
    dispatcher = Dispatcher()
    assert schedule.run_due(dispatcher.submit) == [project_id]
    (scan,) = repo.list_scans(project_id)
    assert json.loads(scan.options) == {**estate["settings"], "ports": "1-10"}
    progress, _ = run_to_end(dispatcher, scan.id)
    assert progress.state == "done", repo.get_scan(scan.id).error
    # Resolved by the project's DNS (the decoy DNS would say 127.0.0.31).
    assert {(r.value, name) for r, name in repo.dns_records(project_id)} >= {(ADDRESS, "set.test")}
    assert not decoys[0].queries
    assert repo.services(project_id) == []  # ports 1-10, not the project's port


# -- the TUI --------------------------------------------------------------------------------------


def app():
    from assetmon_tui.ui.app import AssetMonApp

    return AssetMonApp()


def screen_text(a) -> str:
    return "\n".join(strip.text for strip in a.screen._compositor.render_strips())


async def until(pilot, condition, what: str, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.05)):
        await pilot.pause(0.05)
        if condition():
            return
    raise AssertionError(f"timed out waiting for {what}\n{screen_text(pilot.app)}")


async def open_settings(pilot, a, project_id: int):
    from assetmon_tui.ui.screens.project_settings import ProjectSettingsForm

    await until(pilot, lambda: a.project_id == project_id and a.dispatcher is not None, "the dashboard")
    await pilot.press("p")
    await until(pilot, lambda: isinstance(a.screen, ProjectSettingsForm) and a.screen.loaded, "the settings form")
    return a.screen


def field(a, name: str) -> Input:
    return a.screen.query_one(f"#setting-{name}", Input)


def help_text(a, name: str) -> str:
    return str(a.screen.query_one(f"#help-{name}", Static).content)


async def test_the_settings_form_edits_checks_and_saves(decoys, tmp_path):
    project_id = project()
    repo.set_project_settings(project_id, {"ports": "top1000", "gone_after": 3})
    a = app()
    async with a.run_test(size=SIZE) as pilot:
        await open_settings(pilot, a, project_id)
        # Prefilled with the project's values; the global defaults are the placeholders.
        assert field(a, "ports").value == "top1000" and field(a, "gone_after").value == "3"
        assert field(a, "nameservers").value == "" and field(a, "nameservers").placeholder == decoys[0].address
        assert field(a, "ports").placeholder == "top100" and field(a, "ct_url").placeholder == decoys[1].url + "/"
        assert a.screen.focused is field(a, "modules")

        # Typed values, one of them bad: the error shows under its field, nothing is saved.
        await pilot.press(*"dns,ports", "tab")
        field(a, "nameservers").value = "127.0.0.1:53"
        await pilot.press("tab", "end", *",ns.x", "tab")
        await until(pilot, lambda: "is not an IP address" in help_text(a, "nameservers"), "the inline error")
        assert help_text(a, "nameservers").startswith("nameservers: 'ns.x' is not an IP address")
        assert "nameservers: 'ns.x' is not an IP address" in screen_text(a)
        assert help_text(a, "modules") == registry.BY_NAME["modules"].help  # the good ones keep their help
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert repo.project_settings(project_id) == {"ports": "top1000", "gone_after": 3}
        assert a.screen.focused is field(a, "nameservers")  # back to the bad field

        # Fixed: the error goes as it is typed away; an emptied field is the global default again.
        await pilot.press("end", *["backspace"] * len(",ns.x"))  # focusing selected it all: keep the start
        await until(pilot, lambda: help_text(a, "nameservers") == registry.BY_NAME["nameservers"].help, "no error")
        field(a, "ports").value = ""
        await pilot.click("#save")
        await until(pilot, lambda: not a.screen.query("#project-settings"), "the form to close")
        assert repo.project_settings(project_id) == {
            "modules": ["dns", "ports"],
            "nameservers": ["127.0.0.1:53"],
            "gone_after": 3,
        }
        saved = "Settings of acme saved: modules, nameservers, gone after"
        await until(pilot, lambda: any(n.message == saved for n in a._notifications), "the notification")

        # Opened again: what was saved. Escape closes without saving.
        await open_settings(pilot, a, project_id)
        assert field(a, "modules").value == "dns, ports" and field(a, "ports").value == ""
        field(a, "gone_after").value = "7"
        await pilot.press("escape")
        await until(pilot, lambda: not a.screen.query("#project-settings"), "the form to close")
    assert repo.project_settings(project_id)["gone_after"] == 3


async def test_the_scan_form_starts_from_the_project_settings(decoys):
    from assetmon_tui.ui.screens.forms import ScanForm

    project_id = project()
    repo.set_project_settings(project_id, {"modules": "dns,http", "ports": "22,80", "nameservers": "127.0.0.1:5353"})
    a = app()
    async with a.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: a.project_id == project_id and a.dispatcher is not None, "the dashboard")
        await pilot.press("s")
        await until(pilot, lambda: isinstance(a.screen, ScanForm), "the scan form")
        ports = a.screen.query_one("#ports", Input)
        await until(pilot, lambda: ports.value == "22,80", "the ports from the project")
        assert list(a.screen.query_one(SelectionList).selected) == ["dns", "http"]
        assert "127.0.0.1:5353" in a.screen.query_one("#nameserver", Input).placeholder


async def test_enter_before_the_form_has_read_the_settings_starts_the_scan_they_describe(decoys, monkeypatch):
    """A quick `s`, Enter: before, the form started every module (its look
    before the prefill), not the project's choice it showed a moment later."""
    import threading

    from assetmon_tui.core import profiles
    from assetmon_tui.ui.screens.forms import ScanForm

    project_id = project()
    repo.set_project_settings(project_id, {"modules": "dns,http", "ports": "22,80"})
    gate, read = threading.Event(), profiles.all_profiles
    monkeypatch.setattr(profiles, "all_profiles", lambda: gate.wait(30) and read())  # a slow disk
    a = app()
    async with a.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: a.project_id == project_id and a.dispatcher is not None, "the dashboard")
        await pilot.press("s")
        await until(pilot, lambda: isinstance(a.screen, ScanForm), "the scan form")
        form = a.screen
        await pilot.press("tab", "tab", "enter")
        await until(pilot, lambda: "Reading the project's settings" in str(form.query_one("#error").render()), "a wait")
        assert isinstance(a.screen, ScanForm) and not repo.list_scans(project_id)
        gate.set()
        await until(pilot, lambda: repo.list_scans(project_id), "the scan")
        assert not isinstance(a.screen, ScanForm)
    (scan,) = repo.list_scans(project_id)
    assert scan.modules == "dns,http"


async def test_a_scan_form_that_cannot_read_the_settings_says_so_and_enter_reads_them_again(decoys):
    """The project table gone from under the TUI (a damaged database): before,
    the form said "Reading the project's settings…" at every Enter, forever."""
    from sqlalchemy import text as sql

    from assetmon_tui.store.db import get_engine
    from assetmon_tui.ui.screens.forms import ScanForm

    project_id = project()
    repo.set_project_settings(project_id, {"modules": "dns,http"})

    def rename(old: str, new: str) -> None:
        with get_engine().begin() as connection:
            connection.execute(sql(f"ALTER TABLE {old} RENAME TO {new}"))

    a = app()
    async with a.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: a.project_id == project_id and a.dispatcher is not None, "the dashboard")
        rename("project", "project_away")
        try:
            await pilot.press("s")
            await until(pilot, lambda: isinstance(a.screen, ScanForm), "the scan form")
            form = a.screen
            error = form.query_one("#error")
            await until(pilot, lambda: "Could not read" in str(error.render()), "the failure, said")
            said = str(error.render())
            assert "project_away" not in said and "Enter" in said, said  # one line that says what to do
            await pilot.press("tab", "tab", "enter")
            await until(pilot, lambda: "Could not read" in str(error.render()), "the failure again")
            assert isinstance(a.screen, ScanForm) and not form.loaded
        finally:
            rename("project_away", "project")
        await pilot.press("enter")  # the database is back: Enter reads the settings again, and starts nothing yet
        await until(pilot, lambda: form.loaded, "the settings read")
        assert "Could not read" not in str(error.render())
        assert list(form.query_one(SelectionList).selected) == ["dns", "http"]
        assert isinstance(a.screen, ScanForm) and not repo.list_scans(project_id)
        await pilot.press("enter")
        await until(pilot, lambda: repo.list_scans(project_id), "the scan")
    (scan,) = repo.list_scans(project_id)
    assert scan.modules == "dns,http"


@pytest.mark.parametrize("size", [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")])
def test_settings_form_snapshot(snap_compare, decoys, monkeypatch, size):
    """Every setting on one line with its help; the project's values, the
    global defaults dimmed, and one inline error."""
    monkeypatch.setenv("ASSETMON_NAMESERVERS", "")  # fixed placeholders: no random ports in the picture
    monkeypatch.setenv("ASSETMON_CT_URL", "http://127.0.0.1:8080/")
    monkeypatch.setenv("ASSETMON_WORDLIST", "")
    get_settings.cache_clear()
    project_id = project()
    repo.set_project_settings(project_id, {"modules": "subdomains,dns,http", "ports": "top1000", "gone_after": 3})

    async def run_before(pilot) -> None:
        a = pilot.app
        a.animation_level = "none"
        await open_settings(pilot, a, project_id)
        field(a, "ct_url").value = "crt.sh"
        field(a, "ct_url").focus()
        await pilot.press("tab")  # leaving the field checks it
        await until(pilot, lambda: "not an http(s) URL" in help_text(a, "ct_url"), "the inline error")
        await until(pilot, lambda: "Local thread" in a.sub_title, "the header")
        await pilot.pause(0.3)
        for widget in a.screen.query(Input):
            widget.cursor_blink = False
        await pilot.pause(0.1)

    assert snap_compare(app(), terminal_size=size, run_before=run_before)
