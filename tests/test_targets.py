"""Targets are validated before anything is stored, and a URL's password is never shown."""

from __future__ import annotations

import ipaddress

import pytest
from textual.widgets import DataTable

from assetmon_tui.core.config import get_settings
from assetmon_tui.core.targets import MAX_CIDR_ADDRESSES, TargetError, check_cidr, display, parse_target
from assetmon_tui.store import repo

PASSWORD = "S3cretPass"
URL = f"http://User:{PASSWORD}@Host.Acme.TEST:8080/Login?Next=/A"


# -- CIDR limit ----------------------------------------------------------------------


def test_an_oversized_cidr_is_refused_with_the_limit_and_nothing_is_stored():
    project = repo.create_project("acme")
    assert project.id is not None
    with pytest.raises(TargetError, match=r"10\.0\.0\.0/8.*16777216 addresses.*limit of 4096.*max_cidr_addresses"):
        repo.add_targets(project.id, ["acme.test", "10.0.0.0/8"])
    assert repo.list_targets(project.id) == []


def test_the_limit_is_a_setting_and_exclusions_are_not_limited(monkeypatch):
    assert get_settings().max_cidr_addresses == MAX_CIDR_ADDRESSES == 4096
    assert parse_target("10.0.0.0/20").value == "10.0.0.0/20"  # 4096: at the limit
    with pytest.raises(TargetError, match="4096"):
        parse_target("10.0.0.0/19")
    assert parse_target("!10.0.0.0/8").exclude  # an exclusion scans nothing
    monkeypatch.setenv("ASSETMON_MAX_CIDR_ADDRESSES", "256")
    get_settings.cache_clear()
    with pytest.raises(TargetError, match=r"limit of 256.*\(/24\)"):
        parse_target("10.0.0.0/23")
    assert parse_target("10.0.0.0/24").kind == "cidr"
    assert parse_target("10.0.0.0/16", max_cidr=65536).kind == "cidr"
    with pytest.raises(TargetError, match=r"2001:db8::/64.*limit of 256"):
        parse_target("2001:db8::/64")


def test_the_scan_time_check_names_the_limit_too():
    """A target stored by an older release is refused when a scan seeds from it."""
    with pytest.raises(TargetError, match=r"10\.0\.0\.0/8: 16777216 addresses is over the limit of 4096"):
        check_cidr(ipaddress.ip_network("10.0.0.0/8"), 4096)
    check_cidr(ipaddress.ip_network("10.0.0.0/20"), 4096)


# -- URL credentials -------------------------------------------------------------------


def test_url_credentials_keep_their_case_and_are_shown_redacted():
    target = parse_target(URL)
    assert target.value == f"http://User:{PASSWORD}@host.acme.test:8080/Login?Next=/A"
    assert target.spec == target.value and parse_target(target.spec) == target
    assert target.host == "host.acme.test"
    for shown in (str(target), repr(target), display(target.value), str(parse_target("!" + URL))):
        assert PASSWORD not in shown and "User:***@host.acme.test:8080" in shown, shown
    assert display("http://user@acme.test/") == "http://user@acme.test/"  # no password: nothing to hide
    assert display("acme.test") == "acme.test"


def test_urls_are_stored_as_given_but_messages_hide_the_password():
    project = repo.create_project("acme")
    assert project.id is not None
    repo.add_targets(project.id, [URL])
    (row,) = repo.list_targets(project.id)
    assert row.value == f"http://User:{PASSWORD}@host.acme.test:8080/Login?Next=/A"
    for bad in (
        f"http://u:{PASSWORD}@256.1.1.1/",
        f"http://u:{PASSWORD}@acme.test:99999/",
        f"ftp://u:{PASSWORD}@a.test/",
    ):
        with pytest.raises(TargetError) as err:
            parse_target(bad)
        assert PASSWORD not in str(err.value) and "***" in str(err.value), err.value


async def test_the_dashboard_shows_the_url_without_its_password(monkeypatch):
    from assetmon_tui.ui.app import AssetMonApp

    monkeypatch.setenv("ASSETMON_BACKEND", "thread")
    get_settings.cache_clear()
    project = repo.create_project("acme")
    assert project.id is not None
    repo.add_targets(project.id, [URL])
    app = AssetMonApp()
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.screen.query_one("#targets", DataTable)
        for _ in range(200):
            await pilot.pause(0.05)
            if table.row_count:
                break
        cells = [str(c) for c in table.get_row_at(0)]
        table.focus()
        await pilot.press("enter")  # the whole value, which the narrow pane cuts with …
        for _ in range(200):
            await pilot.pause(0.05)
            if app._notifications:
                break
        told = [n.message for n in app._notifications]
    assert any("User:***" in c for c in cells), cells
    assert any("User:***@host.acme.test" in m for m in told), told
    assert not any(PASSWORD in c for c in cells + told)


# -- names and addresses ---------------------------------------------------------------


@pytest.mark.parametrize(
    "text,problem",
    [
        ("256.1.1.1", "not a valid IPv4 address"),
        ("10.0.0.256", "not a valid IPv4 address"),
        ("1.2.3", "not a valid IPv4 address"),
        ("010.0.0.1", "not a valid IPv4 address"),  # leading zeros: octal to some parsers
        ("host.123", "is a number"),
        ("a..acme.test", "empty label"),
        (".acme.test", "empty label"),
        ("www.-acme.test", "starts or ends with a hyphen"),
        ("www.acme-.test", "starts or ends with a hyphen"),
        ("!-acme.test", "starts or ends with a hyphen"),
        ("a" * 64 + ".test", "64 characters (at most 63)"),
        (".".join(["a" * 60] * 5), "characters (a name has at most 253)"),
        ("exa mple.test", "has ' '"),
        ("bad!name.test", "has '!'"),
        ("localhost", "a single label"),
    ],
)
def test_bad_names_are_refused_with_one_line_naming_the_target(text, problem):
    with pytest.raises(TargetError) as err:
        parse_target(text)
    message = str(err.value)
    assert problem in message and "\n" not in message
    shown = text[:20]
    assert shown in message or text.lstrip("!-")[:20] in message


@pytest.mark.parametrize(
    "text,kind,value,exclude",
    [
        ("1.1.1.1", "ip", "1.1.1.1", False),
        ("255.255.255.255", "ip", "255.255.255.255", False),
        ("-acme.test", "domain", "acme.test", True),  # `assetmon scan -- -acme.test`
        ("!acme.test", "domain", "acme.test", True),
        ("! 10.0.0.5", "ip", "10.0.0.5", True),
        ("_dmarc.acme.test", "domain", "_dmarc.acme.test", False),
        ("xn--bcher-kva.test", "domain", "xn--bcher-kva.test", False),
        ("1a.acme.test", "domain", "1a.acme.test", False),
        ("acme.test.", "domain", "acme.test", False),
        ("http://[::1]:8080/", "url", "http://[::1]:8080/", False),
    ],
)
def test_good_targets_still_parse(text, kind, value, exclude):
    target = parse_target(text)
    assert (target.kind, target.value, target.exclude) == (kind, value, exclude)


def test_a_bad_line_among_good_ones_stores_nothing():
    project = repo.create_project("acme")
    assert project.id is not None
    with pytest.raises(TargetError, match="256.1.1.1"):
        repo.add_targets(project.id, ["acme.test", "10.0.0.0/24", "256.1.1.1"])
    assert repo.list_targets(project.id) == []
    added = repo.add_targets(project.id, ["acme.test", "-dev.acme.test", "10.0.0.0/24"])
    assert [(t.value, t.exclude) for t in added] == [
        ("acme.test", False),
        ("dev.acme.test", True),
        ("10.0.0.0/24", False),
    ]


# -- the CLI ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv,message",
    [
        (["scan", "10.0.0.0/8"], "over the limit of 4096"),
        (["scan", "acme.test", "256.1.1.1"], "'256.1.1.1': not a valid IPv4 address"),
        (["scan", f"http://u:{PASSWORD}@a..acme.test/"], "empty label"),
        (["scan", "--", "-acme.test"], "not only exclusions"),  # `--`: a leading - is an exclusion, not an option
    ],
)
def test_the_cli_refuses_bad_targets_in_one_line_and_stores_nothing(argv, message, capsys):
    from assetmon_tui.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and PASSWORD not in err, err
    assert all(repo.list_targets(p.id) == [] for p in repo.list_projects() if p.id is not None)
