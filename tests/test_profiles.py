"""Scan profiles (issue 12): built-in and user TOML files checked by the
project-settings registry, their precedence, `assetmon scan --profile` and
`assetmon profiles` as real commands (a thread-backend scan of the loopback
lab), schedules that take a profile, the scan form that remembers its values,
exports to the user's folder, the lab's short start line, and the forms at
80x24 and 60x20 (SVG snapshots)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from support.scenario import estate, make_project, run_to_end
from textual.widgets import Button, Input, Select, SelectionList

from assetmon_tui import schedule
from assetmon_tui.core import profiles
from assetmon_tui.core.config import SettingsError, get_settings
from assetmon_tui.store import repo
from assetmon_tui.store.models import utcnow
from assetmon_tui.testing import ROOT, VENV_BIN

STANDARD = ["subdomains", "dns", "ports", "http", "takeover"]


def user_profile(name: str, text: str):
    folder = get_settings().config_dir / "profiles"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(text)
    return path


def assetmon(*args: str, env: dict[str, str] | None = None, cwd=ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "assetmon"), *args],
        cwd=cwd,
        env={**os.environ, "ASSETMON_BACKEND": "thread", **(env or {})},
        capture_output=True,
        text=True,
        timeout=180,
    )


# -- loading and checking ---------------------------------------------------------------------


def test_the_built_in_profiles():
    assert profiles.profile_names() == ["quick", "standard", "full"]
    quick, standard, full = profiles.all_profiles()
    assert {p.source for p in (quick, standard, full)} == {"built-in"}
    assert quick.modules == ["dns", "ports", "http"] and quick.values["ports"] == "top100"
    assert standard.modules == STANDARD  # the default: a domain's subdomains are discovered
    assert full.modules == [*STANDARD, "js"] and full.values["ports"] == "top1000"
    assert all(p.description for p in (quick, standard, full))
    assert profiles.DEFAULT == "standard"


def test_a_user_profile_adds_one_or_replaces_a_built_in(tmp_path):
    words = get_settings().config_dir / "profiles" / "words.txt"
    path = user_profile(
        "lab",
        'description = "my lab"\nmodules = ["dns", "subdomains"]\nports = "22,80"\n'
        'nameservers = ["127.0.0.1:5353"]\nct_url = "http://127.0.0.1:8081/"\nwordlist = "words.txt"\n'
        "dns_concurrency = 50\nport_rate = 0\n",
    )
    words.write_text("www\n")
    user_profile("quick", 'modules = ["dns"]\n')
    assert profiles.profile_names() == ["quick", "standard", "full", "lab"]
    lab = profiles.get_profile("lab")
    assert lab.source == str(path) and lab.description == "my lab"
    assert lab.values == {
        "modules": ["subdomains", "dns"],  # run order
        "ports": "22,80",
        "nameservers": ["127.0.0.1:5353"],
        "ct_url": "http://127.0.0.1:8081/",
        "wordlist": str(words.resolve()),  # relative to the profile's folder
        "dns_concurrency": 50,
        "port_rate": 0,
    }
    assert profiles.get_profile("quick").modules == ["dns"]
    assert profiles.get_profile("quick").source.endswith("profiles/quick.toml")


@pytest.mark.parametrize(
    "text,message",
    [
        ('ports = "22,http"\n', "bad.toml: ports: bad port 'http' in '22,http'"),
        ('modules = ["dns", "fast"]\n', "bad.toml: modules: unknown module(s): fast"),
        ('nameservers = "ns1.example.com"\n', "bad.toml: nameservers: 'ns1.example.com' is not an IP address"),
        ("dns_concurrency = 0\n", "bad.toml: dns_concurrency: '0' is not a whole number of at least 1"),
        ('colour = "red"\n', "bad.toml: unknown key 'colour' (a profile sets modules, ports, nameservers"),
        ('profile = "quick"\n', "bad.toml: unknown key 'profile'"),
        ("ports = [\n", "bad.toml is not valid TOML"),
    ],
)
def test_a_bad_profile_file_is_one_line_naming_the_file_and_the_key(text, message):
    path = user_profile("bad", text)
    with pytest.raises(SettingsError) as caught:
        profiles.get_profile("bad")
    assert message in str(caught.value) and str(path) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_an_unknown_profile_names_the_known_ones():
    with pytest.raises(SettingsError, match=r"^unknown profile 'nope': known profiles are quick, standard, full$"):
        profiles.get_profile("nope")


def test_precedence_global_then_profile_then_project_then_explicit():
    user_profile("mine", 'modules = ["dns", "http"]\nports = "top1000"\nnameservers = ["127.0.0.1:5301"]\n')
    # the profile alone: its values; the name is recorded
    assert profiles.resolve([], {}, {}, "mine") == (
        ["dns", "http"],
        {"ports": "top1000", "nameservers": ["127.0.0.1:5301"], "profile": "mine"},
    )
    # the project's settings beat the profile; explicit options beat both
    project = {"ports": "22", "modules": ["ports"], "ct_url": "http://127.0.0.1:9/"}
    modules, options = profiles.resolve([], {"nameservers": ["127.0.0.1:5302"]}, project, "mine")
    assert modules == ["ports"]
    assert options == {
        "ports": "22",
        "nameservers": ["127.0.0.1:5302"],
        "ct_url": "http://127.0.0.1:9/",
        "profile": "mine",
    }
    assert profiles.resolve(["http"], {}, project, "mine")[0] == ["http"]  # explicit modules win
    # which profile: the one given, else the options', else the project's; none: nothing changes
    assert profiles.resolve([], {}, {"profile": "mine"})[1]["profile"] == "mine"
    assert profiles.resolve([], {"profile": "quick"}, {"profile": "mine"})[1]["profile"] == "quick"
    assert profiles.resolve(["dns"], {"ports": "1"}, {}) == (["dns"], {"ports": "1"})
    gone = r"^project setting wordlist: no readable file at '/gone.txt'.*project's settings"
    with pytest.raises(ValueError, match=gone):
        profiles.resolve([], {}, {"wordlist": "/gone.txt"}, "mine")


def test_the_project_profile_setting_is_checked():
    from assetmon_tui.core import project_settings as registry

    assert registry.check("profile", " full ") == "full"
    with pytest.raises(ValueError, match=r"^profile: unknown profile 'fast': choose from quick, standard, full"):
        registry.check("profile", "fast")
    project_id = make_project()
    assert repo.set_project_settings(project_id, {"profile": "quick"}) == {"profile": "quick"}


# -- the command line -------------------------------------------------------------------------


def test_profiles_lists_name_source_and_modules():
    path = user_profile("lab", 'description = "the lab"\nmodules = ["dns"]\nports = "53"\n')
    out = assetmon("profiles")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:3] == ["quick", "built-in", "dns,ports,http"]
    assert any(line.split()[:3] == ["standard", "built-in", ",".join(STANDARD)] for line in lines)
    assert any(line.split()[:4] == ["lab", str(path), "dns", "ports=53"] for line in lines)
    rows = [json.loads(line) for line in assetmon("profiles", "--json").stdout.splitlines()]
    assert [r["name"] for r in rows] == ["quick", "standard", "full", "lab"]
    assert rows[3] == {
        "name": "lab",
        "source": str(path),
        "description": "the lab",
        "modules": ["dns"],
        "settings": {"ports": "53"},
    }


def test_an_unknown_profile_is_one_line_and_exit_2_and_stores_nothing():
    out = assetmon("scan", "acme.test", "--profile", "nope")
    assert out.returncode == 2
    assert out.stderr == "assetmon: unknown profile 'nope': known profiles are quick, standard, full\n"
    assert repo.list_projects() == []
    user_profile("broken", 'ports = "x"\n')
    out = assetmon("profiles")
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "broken.toml: ports: bad port 'x'" in out.stderr


@pytest.fixture
def lab(tmp_path):
    from assetmon_tui.lab import Lab

    with Lab(hosts=8, standard_ports=False) as running:
        words = [n.split(".")[0] for n in running.estate.names_from("wordlist")] + ["nothere"]
        (tmp_path / "words.txt").write_text("\n".join(words))
        yield running


def test_scan_with_a_user_profile_against_the_lab(lab, tmp_path):
    """The profile alone carries the lab's nameserver, CT source, wordlist and ports."""
    info = lab.info
    ports = sorted({info["http_port"], *(s["port"] for s in info["services"])})
    user_profile(
        "lab",
        f'modules = ["subdomains", "dns", "ports"]\nports = "{",".join(map(str, ports))}"\n'
        f'nameservers = ["{info["nameserver"]}"]\nct_url = "{info["ct_url"]}"\nwordlist = "{tmp_path / "words.txt"}"\n',
    )
    out = assetmon("scan", "acme.test", "--project", "lab", "--profile", "lab", "--json")
    assert out.returncode == 0, out.stderr
    assert "(profile lab: subdomains,dns,ports)" in out.stderr
    final = json.loads(out.stdout.splitlines()[-1])
    assert final["type"] == "scan" and final["status"] == "done"
    scan = repo.get_scan(final["id"])
    assert scan.modules == "subdomains,dns,ports"
    options = json.loads(scan.options)
    assert options["profile"] == "lab" and options["nameservers"] == [info["nameserver"]]
    assert options["ct_url"] == info["ct_url"]
    project_id = repo.get_project("lab").id
    found = {h.name for h in repo.hosts(project_id) if not h.is_address}
    from_ct = set(lab.estate.names_from("ct"))
    from_words = set(lab.estate.names_from("wordlist"))
    assert from_ct and found & from_ct and from_words <= found  # CT and the profile's wordlist, resolved by its DNS
    assert {s.port for s, _ in repo.services(project_id)} & set(ports)


def test_the_cli_default_on_a_domain_is_the_standard_profile_which_discovers_subdomains(lab, tmp_path):
    info = lab.info
    env = {"ASSETMON_CT_URL": info["ct_url"], "ASSETMON_WORDLIST": str(tmp_path / "words.txt")}
    out = assetmon(
        "scan", "acme.test", "--nameserver", info["nameserver"], "--ports", str(info["http_port"]), "--json", env=env
    )
    assert out.returncode == 0, out.stderr
    scan = repo.get_scan(json.loads(out.stdout.splitlines()[-1])["id"])
    assert scan.modules == ",".join(STANDARD)
    assert json.loads(scan.options)["profile"] == "standard"
    found = {h.name for h in repo.hosts(scan.project_id) if not h.is_address}
    assert set(lab.estate.names_from("wordlist")) <= found  # subdomains were discovered


# -- schedules -------------------------------------------------------------------------------


def test_a_schedule_with_a_profile_starts_a_scan_with_its_settings(monkeypatch):
    from assetmon_tui.dispatch import Dispatcher

    monkeypatch.setenv("ASSETMON_BACKEND", "thread")
    get_settings.cache_clear()
    with estate() as e:
        user_profile("nightly", f'nameservers = ["{e.dns.address}"]\nports = "{e.web.port}"\n')
        project_id = make_project()
        with pytest.raises(ValueError, match="unknown profile 'nope'"):
            schedule.set_schedule(project_id, interval_seconds=3600, modules=["dns"], options={"profile": "nope"})
        schedule.set_schedule(
            project_id,
            interval_seconds=3600,
            modules=["dns", "ports", "http"],
            options={"profile": "nightly"},
            now=utcnow() - timedelta(hours=2),
        )
        dispatcher = Dispatcher()
        assert schedule.run_due(dispatcher.submit) == [project_id]
        (scan,) = repo.list_scans(project_id)
        assert json.loads(scan.options) == {
            "ports": str(e.web.port),
            "nameservers": [e.dns.address],
            "profile": "nightly",
        }
        assert run_to_end(dispatcher, scan.id)[0].state == "done"
    assert e.dns.queries  # the profile's nameserver answered
    assert {(name, s.port) for s, name in repo.services(project_id)} == {("127.0.0.7", e.web.port)}


# -- exports ---------------------------------------------------------------------------------


def test_export_paths(tmp_path, monkeypatch):
    from assetmon_tui.export import CWD_VARIABLE, ExportPathError, output_path, user_folder, write_file

    here = tmp_path / "caller"
    here.mkdir()
    monkeypatch.setenv(CWD_VARIABLE, str(here))
    assert user_folder() == here
    assert output_path("acme.json") == here / "acme.json"
    assert output_path(str(tmp_path / "abs.json")) == tmp_path / "abs.json"
    with pytest.raises(
        ExportPathError, match=rf"^cannot write {here}/no/such/x.json: the folder {here}/no/such does not"
    ):
        output_path("no/such/x.json")
    (here / "file").write_text("")
    with pytest.raises(ExportPathError, match=r"the folder .*/file is not a folder$"):
        output_path("file/x.json")
    with pytest.raises(ExportPathError, match=r"is a folder: give a file name$"):
        output_path(str(here))
    write_file(here / "out.txt", "hello")
    assert (here / "out.txt").read_text() == "hello" and not list(here.glob(".*.tmp"))
    monkeypatch.setenv(CWD_VARIABLE, "")
    monkeypatch.chdir(tmp_path)
    assert user_folder() == tmp_path  # no variable: the current folder


def test_export_command_writes_in_the_callers_folder_and_refuses_a_missing_one(tmp_path):
    make_project()
    here = tmp_path / "caller"
    here.mkdir()
    out = assetmon("export", "acme", "-o", "acme.json", env={"ASSETMON_CWD": str(here)})
    assert out.returncode == 0, out.stderr
    assert json.loads((here / "acme.json").read_text())["project"] == "acme"
    assert out.stderr == f"wrote {here / 'acme.json'}\n"
    out = assetmon("export", "acme", "-o", "gone/acme.json", env={"ASSETMON_CWD": str(here)})
    assert out.returncode == 2
    assert out.stderr == f"assetmon: cannot write {here}/gone/acme.json: the folder {here}/gone does not exist\n"


# -- the lab's start line ----------------------------------------------------------------------


def test_the_lab_prints_a_short_line_and_writes_its_json_to_a_file(tmp_path):
    here = tmp_path / "caller"
    here.mkdir()
    for extra, where in (([], get_settings().state_dir / "lab.json"), (["--json-file", "lab.json"], here / "lab.json")):
        proc = subprocess.Popen(
            [sys.executable, "-m", "assetmon_tui.lab", "--free-ports", "--hosts", "8", *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "ASSETMON_CWD": str(here)},
        )
        try:
            first, second = proc.stdout.readline(), proc.stdout.readline()
            info = json.loads(where.read_text())
            assert first.startswith(f"acme.test: nameserver {info['nameserver']}  ct_url {info['ct_url']}  ")
            assert first.rstrip().endswith(f"{info['hosts']} hosts") and len(first.rstrip()) <= 80
            assert second == f"lab info (JSON): {where}\n"
            assert info["http"] and info["addresses"]
        finally:
            proc.terminate()
            assert proc.wait(15) == 0
            proc.stdout.close()
            proc.stderr.close()


# -- the TUI -----------------------------------------------------------------------------------


def app():
    from assetmon_tui.ui.app import AssetMonApp

    return AssetMonApp()


def screen_text(a) -> str:
    return "\n".join(strip.text for strip in a.screen._compositor.render_strips())


async def until(pilot, condition, what: str, timeout: float = 15.0) -> None:
    for _ in range(int(timeout / 0.05)):
        await pilot.pause(0.05)
        if condition():
            return
    raise AssertionError(f"timed out waiting for {what}\n{screen_text(pilot.app)}")


async def dashboard(pilot, a, project_id: int) -> None:
    await until(pilot, lambda: a.project_id == project_id and a.dispatcher is not None, "the dashboard")


async def scan_form(pilot, a):
    from assetmon_tui.ui.screens.forms import ScanForm

    await pilot.press("s")
    await until(pilot, lambda: isinstance(a.screen, ScanForm) and a.screen.loaded, "the scan form")
    return a.screen


async def test_the_scan_form_remembers_the_last_values_per_project(monkeypatch):
    monkeypatch.setenv("ASSETMON_BACKEND", "thread")
    get_settings.cache_clear()
    with estate() as e:
        project_id = make_project()
        other = make_project("other")
        a = app()
        async with a.run_test(size=(80, 24)) as pilot:
            await dashboard(pilot, a, project_id)
            form = await scan_form(pilot, a)
            assert form.query_one("#profile", Select).value == "standard"
            assert list(form.query_one(SelectionList).selected) == STANDARD
            form.query_one("#profile", Select).value = "quick"  # as the user picks it
            await until(
                pilot, lambda: list(form.query_one(SelectionList).selected) == ["dns", "ports", "http"], "quick"
            )
            assert "known names only" in screen_text(a)
            form.query_one("#ports", Input).value = str(e.web.port)
            form.query_one("#nameserver", Input).value = e.dns.address
            await pilot.click("#start")
            await until(pilot, lambda: repo.list_scans(project_id), "the scan")
            (scan,) = repo.list_scans(project_id)
            assert scan.modules == "dns,ports,http"
            assert json.loads(scan.options) == {
                "ports": str(e.web.port),
                "nameservers": [e.dns.address],
                "profile": "quick",
            }
            assert run_to_end(a.dispatcher, scan.id)[0].state == "done"

            # Opened again: the same profile, modules, ports and nameserver, typed once.
            form = await scan_form(pilot, a)
            assert form.query_one("#profile", Select).value == "quick"
            assert list(form.query_one(SelectionList).selected) == ["dns", "ports", "http"]
            assert form.query_one("#ports", Input).value == str(e.web.port)
            assert form.query_one("#nameserver", Input).value == e.dns.address
            await pilot.press("escape")

            # Another project remembers nothing of it.
            a.project_id = other
            await dashboard(pilot, a, other)
            form = await scan_form(pilot, a)
            assert form.query_one("#profile", Select).value == "standard"
            assert form.query_one("#nameserver", Input).value == ""


async def test_the_targets_form_has_its_own_id_and_the_project_name():
    from assetmon_tui.ui.screens.forms import TargetsForm

    project_id = make_project("acme-corp")
    a = app()
    async with a.run_test(size=(80, 24)) as pilot:
        await dashboard(pilot, a, project_id)
        await pilot.press("a")
        await until(pilot, lambda: isinstance(a.screen, TargetsForm), "the targets form")
        field = a.screen.query_one("#targets-input", Input)
        assert field.outer_size.height == 3 and not a.screen.query("#targets")  # not the table's 1fr
        assert "Add targets to acme-corp" in screen_text(a)


@pytest.mark.parametrize("key,form", [("s", "ScanForm"), ("S", "ScheduleForm"), ("E", "ExportForm"), ("p", "Proj")])
async def test_forms_keep_their_buttons_visible_at_60x20(key, form):
    project_id = make_project()
    a = app()
    async with a.run_test(size=(60, 20)) as pilot:
        await dashboard(pilot, a, project_id)
        await pilot.press(key)
        await until(pilot, lambda: type(a.screen).__name__.startswith(form), form)
        await pilot.pause(0.3)
        buttons = list(a.screen.query(Button))
        assert buttons
        for button in buttons:
            region = button.region
            assert region.height == 3 and region.y >= 0 and region.bottom <= 20, (button, region)
            assert button.label.plain in screen_text(a)


# -- snapshots -------------------------------------------------------------------------------

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((60, 20), id="60x20")]


@pytest.fixture
def snapshot_world(monkeypatch):
    monkeypatch.setenv("ASSETMON_BACKEND", "thread")  # a fixed header
    monkeypatch.setenv("ASSETMON_NAMESERVERS", "")
    get_settings.cache_clear()
    user_profile("lab", 'description = "the offline lab: its DNS and CT"\nmodules = ["subdomains", "dns"]\n')
    return make_project("acme", ["acme.test"])


def _settle(form_name: str, *needles: str):
    async def run_before(pilot) -> None:
        a = pilot.app
        a.animation_level = "none"
        await until(pilot, lambda: a.project_id is not None and a.dispatcher is not None, "the dashboard")
        await until(pilot, lambda: "Local thread" in a.sub_title, "the header")
        await pilot.press({"ScanForm": "s", "ScheduleForm": "S"}[form_name])
        await until(
            pilot,
            lambda: (
                type(a.screen).__name__ == form_name
                and bool(a.screen.profiles)  # loaded
                and all(n in screen_text(a) for n in needles)
            ),
            form_name,
        )
        for widget in a.screen.query(Input):
            widget.cursor_blink = False
        await pilot.pause(0.3)

    return run_before


@pytest.mark.parametrize("size", SIZES)
def test_scan_form_with_profiles_snapshot(snap_compare, snapshot_world, size):
    assert snap_compare(app(), terminal_size=size, run_before=_settle("ScanForm", "Start scan", "new subdomains"))


@pytest.mark.parametrize("size", SIZES)
def test_schedule_form_with_profiles_snapshot(snap_compare, snapshot_world, size):
    assert snap_compare(app(), terminal_size=size, run_before=_settle("ScheduleForm", "Profile", "Save"))
