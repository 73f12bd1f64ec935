"""A setting that cannot be used is one line naming it and what to do, with
exit status 2, from the real command; values are checked when read."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from assetmon_tui.core.config import SettingsError, get_settings
from assetmon_tui.testing import ROOT, VENV_BIN


@pytest.fixture
def config(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True)
    monkeypatch.setenv("ASSETMON_HOME", str(home))
    get_settings.cache_clear()
    yield home / "config" / "config.toml"
    get_settings.cache_clear()


@pytest.mark.parametrize(
    "toml,env,says",
    [
        ("dns_timeout = [", {}, "is not valid TOML"),
        ('dns_timeout = "fast"', {}, "dns_timeout = 'fast' in"),
        ("http_concurrency = -5", {}, "http_concurrency = -5 in"),
        ("colour = 1", {}, "unknown settings"),
        ("", {"ASSETMON_REDIS_URL": "redis://127.0.0.1:99999/0"}, "redis_url in $ASSETMON_REDIS_URL: the port"),
        ("", {"DATABASE_URL": "mysql://x@y/z"}, "database_url in $DATABASE_URL: unknown scheme 'mysql'"),
        ("", {"ASSETMON_PORT_TIMEOUT": "soon"}, "port_timeout = 'soon' in $ASSETMON_PORT_TIMEOUT: expected a number"),
    ],
)
def test_a_bad_setting_is_one_line_and_exit_2(config, monkeypatch, toml, env, says):
    config.write_text(toml)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=None) as caught:
        get_settings()
    assert says in str(caught.value) and "\n" not in str(caught.value)
    clean = {k: v for k, v in os.environ.items() if k != "DATABASE_URL" or "DATABASE_URL" in env}
    for command in ([str(VENV_BIN / "assetmon"), "scans"], [sys.executable, "-m", "assetmon_tui.core.config"]):
        done = subprocess.run(command, cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2, (command, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and says in lines[0], done.stderr


def test_a_database_that_does_not_answer_is_one_line(config):
    from assetmon_tui.testing import free_port

    url = f"postgresql://postgres:hunter2@127.0.0.1:{free_port()}/assetmon"
    env = {**os.environ, "DATABASE_URL": url}
    done = subprocess.run([str(VENV_BIN / "assetmon"), "scans"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert "cannot be used" in line and "DATABASE_URL" in line and "hunter2" not in line
    debug = subprocess.run(
        [str(VENV_BIN / "assetmon"), "--debug", "scans"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert debug.returncode == 1 and "Traceback" in debug.stderr


def test_a_data_folder_that_cannot_be_made_is_one_line(tmp_path):
    blocker = tmp_path / "home"
    blocker.write_text("a file where the data folder should be")  # even root cannot make a folder here
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | {"ASSETMON_HOME": str(blocker)}
    done = subprocess.run([str(VENV_BIN / "assetmon"), "scans"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert "cannot create or use" in line and "ASSETMON_HOME" in line


def test_a_system_without_nameservers_fails_the_scan_in_one_line_without_a_traceback(
    home, tmp_path, monkeypatch, caplog
):
    """A container or a broken systemd-resolved leaves /etc/resolv.conf without
    nameservers: the scan ends failed with one line saying what to set (before:
    "NoResolverConfiguration: no nameservers" and a traceback in the log), and
    the same scan with the project's nameservers runs."""
    from support.loopback import FakeDNS
    from support.scenario import make_project

    from assetmon_tui.dispatch import Dispatcher
    from assetmon_tui.scanners import udp_resolver
    from assetmon_tui.store import repo
    from assetmon_tui.testing import wait_for

    empty = tmp_path / "resolv.conf"
    empty.write_text("# managed by nobody\nsearch example.internal\n")
    monkeypatch.setattr(udp_resolver, "RESOLV_CONF", str(empty))
    monkeypatch.setenv("ASSETMON_BACKEND", "thread")
    monkeypatch.delenv("ASSETMON_NAMESERVERS", raising=False)
    get_settings.cache_clear()
    dispatcher = Dispatcher()
    project = make_project(targets=["www.acme.test"])
    scan = dispatcher.submit(project, ["dns"], {})
    row = wait_for(lambda: (r := repo.get_scan(scan.id)).status not in ("queued", "running") and r, 30, 0.05, "end")
    assert row.status == "failed"
    assert row.error.startswith(f"no nameserver to ask: {empty}: ") and "ASSETMON_NAMESERVERS" in row.error
    assert "\n" not in row.error and "Error:" not in row.error
    dispatcher.thread.join(10)
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records if r.exc_info]

    with FakeDNS({"www.acme.test": {"A": ["127.0.0.5"]}}) as server:
        again = dispatcher.submit(project, ["dns"], {"nameservers": [server.address]})
        wait_for(lambda: repo.get_scan(again.id).status == "done", 30, 0.05, "the scan with nameservers")
    assert ("www.acme.test", "A", "127.0.0.5") in {(host, r.rtype, r.value) for r, host in repo.dns_records(project)}
