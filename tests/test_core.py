"""Targets and scope, sanitising, the progress protocol, settings."""

import json

import pytest

from assetmon_tui.core.config import get_settings
from assetmon_tui.core.progress import Progress
from assetmon_tui.core.sanitize import clean_text
from assetmon_tui.core.targets import Scope, TargetError, parse_target

pytestmark = pytest.mark.one_store  # the store is not what this tests: the SQLite pass is enough


@pytest.mark.parametrize(
    "text,kind,value,exclude",
    [
        ("Example.COM.", "domain", "example.com", False),
        ("*.dev.example.com", "domain", "*.dev.example.com", False),
        ("!*.dev.example.com", "domain", "*.dev.example.com", True),
        ("-10.0.0.5", "ip", "10.0.0.5", True),
        ("::1", "ip", "::1", False),
        ("10.0.0.7/24", "cidr", "10.0.0.0/24", False),
        ("https://App.Example.com:8443/login", "url", "https://app.example.com:8443/login", False),
    ],
)
def test_parse_target(text, kind, value, exclude):
    target = parse_target(text)
    assert (target.kind, target.value, target.exclude) == (kind, value, exclude)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "!",
        "bad target",
        "localhost",
        "exa mple.com",
        "-foo-.com",
        "10.0.0.0/33",
        "ftp://example.com",
        "http://",
        "a" * 64 + ".com",
    ],
)
def test_malformed_targets_are_refused_with_a_message(text):
    with pytest.raises(TargetError, match=r"\S"):
        parse_target(text)


def test_scope_excludes_win_and_wildcards_mean_subdomains():
    scope = Scope(
        [
            parse_target(t)
            for t in ["acme.test", "!*.dev.acme.test", "10.0.0.0/24", "!10.0.0.5", "https://shop.other.test/"]
        ]
    )
    assert "acme.test" in scope and "WWW.acme.test." in scope
    assert "x.dev.acme.test" not in scope
    assert "dev.acme.test" in scope  # the wildcard excludes below it, not the name itself
    assert "10.0.0.4" in scope and "10.0.0.5" not in scope and "10.0.1.1" not in scope
    assert "shop.other.test" in scope and "other.test" not in scope
    assert "evilacme.test" not in scope


def test_clean_text_strips_terminal_escapes_and_controls():
    hostile = "Hi\x1b]52;c;ZXZpbA==\x07\x1b[2J\x1b]0;pwned\x07[bold red]x[/]\x00\u202e\x9b"
    cleaned = clean_text(hostile)
    assert cleaned == "Hi[bold red]x[/]"
    assert all(ch.isprintable() for ch in cleaned)
    assert len(clean_text("a" * 10_000, 100)) == 100
    lone = clean_text(json.loads('"ok\\ud800.acme\\udfff.test"'))  # surrogates no store can encode
    assert lone == "ok.acme.test" and lone.encode("utf-8")


def test_progress_round_trips_through_json():
    import json

    p = Progress(7, state="running", started_at=1.0)
    p.module("dns").total = 4
    p.module("dns").done = 1
    p.count("hosts", 3)
    back = Progress.from_dict(json.loads(json.dumps(p.to_dict())))
    assert back == p
    assert back.modules["dns"].fraction == 0.25


def test_settings_from_env_and_config_file(home, monkeypatch):
    (home / "config").mkdir(parents=True)
    (home / "config" / "config.toml").write_text('dns_timeout = 3.5\nports = "top1000"\n')
    monkeypatch.setenv("ASSETMON_PORTS", "22,80")
    monkeypatch.delenv("ASSETMON_REDIS_URL", raising=False)  # (start.sh exports it)
    monkeypatch.setenv("REDIS_URL", "redis://example.invalid:1/0")
    get_settings.cache_clear()
    s = get_settings()
    assert s.dns_timeout == 3.5 and s.ports == "22,80" and s.redis_url == "redis://example.invalid:1/0"
    assert s.db_url.startswith("postgresql") or str(home) in s.db_url


def test_unknown_config_key_is_an_error(home):
    (home / "config").mkdir(parents=True)
    (home / "config" / "config.toml").write_text("dns_timout = 3\n")
    get_settings.cache_clear()
    with pytest.raises(ValueError, match="dns_timout"):
        get_settings()
