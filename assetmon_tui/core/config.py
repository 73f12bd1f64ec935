"""Settings: environment (and `.env`) first, then the TOML config file, then defaults.

`ASSETMON_HOME` puts data, state and config under one folder (tests and
portable installs); otherwise platformdirs picks the user's folders.
"""

from __future__ import annotations

import contextlib
import os
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, get_type_hints

import platformdirs

from .targets import MAX_CIDR_ADDRESSES

APP = "assetmon"


@dataclass(frozen=True)
class Settings:
    redis_url: str = "redis://127.0.0.1:6379/0"
    database_url: str = ""  # empty: SQLite in data_dir
    data_dir: Path = Path()
    state_dir: Path = Path()
    config_dir: Path = Path()
    # Backend selection
    health_timeout: float = 1.0  # seconds for PING and worker ping
    health_interval: float = 5.0  # re-check period
    # Scan limits
    scan_time_limit: int = 3600  # hard limit per scan, seconds
    heartbeat_interval: float = 5.0  # the runner renews its lease this often
    lease_timeout: float = 30.0  # a runner silent this long has lost its scan: anyone may resume it
    max_attempts: int = 3  # runs of one scan (the first and its resumes) before it is failed
    checkpoint_interval: float = 2.0  # seconds of work a resume may repeat (checkpoint writes in between)
    chunk_seconds: float = 5.0  # the work one chunk of a big step aims at (any worker takes any chunk)
    max_chunks: int = 64  # chunks of one step at most
    dns_concurrency: int = 200
    dns_timeout: float = 2.0
    dns_retries: int = 2
    dns_rate: int = 0  # DNS queries a second per nameserver, every query, shared by all workers (0: no ceiling)
    nameservers: str = ""  # comma separated host[:port]
    http_concurrency: int = 50
    http_timeout: float = 5.0
    http_max_body: int = 1_000_000
    port_concurrency: int = 2048
    port_timeout: float = 1.0
    port_rate: int = 0
    ports: str = "top100"
    ct_url: str = "https://crt.sh/"
    wordlist: str = ""  # subdomain wordlist file; empty: the bundled one (~9,600 names)
    js_max_size: int = 10_000_000
    nuclei_path: str = "nuclei"  # the binary (on PATH, or a path); the nuclei module is skipped without it
    nuclei_templates: str = ""  # comma separated templates, folders or tags for -t ("" : nuclei's default set)
    nuclei_severity: str = ""  # e.g. "medium,high,critical" ("": all)
    nuclei_rate: int = 50  # requests a second nuclei sends at most (-rl)
    nuclei_timeout: float = 900.0  # the whole nuclei run, seconds
    max_cidr_addresses: int = MAX_CIDR_ADDRESSES  # addresses in one include CIDR target, checked when it is added
    # Live verification of secrets (off by default): each provider's base URL, the only place its keys go
    verify_secrets: bool = False
    verify_github_url: str = "https://api.github.com"
    verify_slack_url: str = "https://slack.com"
    verify_stripe_url: str = "https://api.stripe.com"
    verify_sendgrid_url: str = "https://api.sendgrid.com"
    verify_mailgun_url: str = "https://api.mailgun.net"
    verify_twilio_url: str = "https://api.twilio.com"
    verify_openai_url: str = "https://api.openai.com"
    verify_aws_url: str = "https://sts.amazonaws.com"
    # Change events
    gone_after: int = 2  # consecutive covered scans that miss an asset before it is gone (1: at once)

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'assetmon.db'}"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def nameserver_list(self) -> list[str]:
        return [n.strip() for n in self.nameservers.split(",") if n.strip()]


def normalise_url(url: str) -> str:
    """A database URL that uses psycopg 3 for PostgreSQL whatever spelling the user chose."""
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _dirs() -> tuple[Path, Path, Path]:
    home = os.environ.get("ASSETMON_HOME")
    if home:
        root = Path(home).expanduser()
        return root / "data", root / "state", root / "config"
    return (
        Path(platformdirs.user_data_dir(APP)),
        Path(platformdirs.user_state_dir(APP)),
        Path(platformdirs.user_config_dir(APP)),
    )


class SettingsError(ValueError):
    """A setting that cannot be used: one line naming it, where it came from, and what to do."""


# Lower bounds of numeric settings (inclusive); 0 where 0 means "off" or "none".
_AT_LEAST: dict[str, float] = {
    "health_timeout": 0.1,
    "health_interval": 0.5,
    "scan_time_limit": 1,
    "heartbeat_interval": 0.5,
    "lease_timeout": 1,
    "max_attempts": 1,
    "checkpoint_interval": 0.1,
    "chunk_seconds": 0.01,
    "max_chunks": 1,
    "dns_concurrency": 1,
    "dns_timeout": 0.1,
    "dns_retries": 0,
    "dns_rate": 0,
    "http_concurrency": 1,
    "http_timeout": 0.1,
    "http_max_body": 1,
    "port_concurrency": 1,
    "port_timeout": 0.05,
    "port_rate": 0,
    "js_max_size": 1,
    "nuclei_rate": 1,
    "nuclei_timeout": 1,
    "gone_after": 1,
    "max_cidr_addresses": 1,
}


def _convert(name: str, kind: type, raw: object, source: str) -> object:
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
        raise SettingsError(f"{name} = {str(raw)[:40]!r} in {source}: expected true or false")
    if kind is Path:
        return Path(str(raw)).expanduser()
    if kind in (int, float):
        try:
            if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
                raise ValueError
            value = kind(raw)
        except ValueError:
            expected = "a whole number" if kind is int else "a number"
            raise SettingsError(f"{name} = {str(raw)[:40]!r} in {source}: expected {expected}") from None
        low = _AT_LEAST.get(name)
        if low is not None and value < low:
            raise SettingsError(f"{name} = {value} in {source}: must be at least {low:g}")
        return value
    return str(raw)


def _check_urls(settings: Settings, sources: dict[str, str]) -> None:
    from urllib.parse import urlsplit

    checks = (("redis_url", ("redis", "rediss", "unix")), ("database_url", ("sqlite", "postgresql", "postgres")))
    for name, schemes in checks:
        url = getattr(settings, name)
        if not url:
            continue
        where = sources.get(name, "the defaults")
        parts = urlsplit(url)
        scheme = parts.scheme.split("+", 1)[0]
        if scheme not in schemes:
            raise SettingsError(f"{name} in {where}: unknown scheme {parts.scheme or '(none)'!r}, use {schemes[0]}://")
        try:
            port = parts.port
        except ValueError:
            port = -1
        if port is not None and not 1 <= port <= 65535:
            raise SettingsError(f"{name} in {where}: the port must be a number 1-65535")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Load once per process; call `get_settings.cache_clear()` after changing env."""
    try:
        from dotenv import load_dotenv

        load_dotenv(override=False)
    except ImportError:  # optional at runtime
        pass
    data_dir, state_dir, config_dir = _dirs()
    values: dict[str, object] = {"data_dir": data_dir, "state_dir": state_dir, "config_dir": config_dir}
    config_file = config_dir / "config.toml"
    sources: dict[str, str] = {}
    if config_file.is_file():
        try:
            with config_file.open("rb") as fh:
                loaded = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{config_file} is not valid TOML ({exc}): fix or remove it") from None
        except OSError as exc:
            raise SettingsError(f"{config_file} cannot be read ({exc.strerror}): check its permissions") from None
        values.update(loaded)
        sources.update(dict.fromkeys(loaded, str(config_file)))
    types = get_type_hints(Settings)
    for name in types:
        variable = f"ASSETMON_{name.upper()}"
        env = os.environ.get(variable)
        if env is None and name in ("redis_url", "database_url") and name.upper() in os.environ:
            variable = name.upper()
            env = os.environ[variable]
        if env is not None:
            values[name] = env
            sources[name] = f"${variable}"
    values.pop("passive", None)  # [passive.<provider>] tables: scanners/passive.configured() reads them
    unknown = set(values) - set(types)
    if unknown:
        raise SettingsError(f"unknown settings in {config_file}: {', '.join(sorted(unknown))} (see the README)")
    # Each value is converted to its field's type at run time, by name: no static type to check.
    fields: dict[str, Any] = {k: _convert(k, types[k], v, sources.get(k, "the defaults")) for k, v in values.items()}
    settings = Settings(**fields)
    _check_urls(settings, sources)
    try:
        private(settings)
    except OSError as exc:
        raise SettingsError(
            f"cannot create or use {exc.filename or settings.data_dir} ({exc.strerror}): "
            "check its permissions, or set ASSETMON_HOME to a folder you own"
        ) from None
    return settings


def private(settings: Settings) -> None:
    """Our files hold secrets (the database, stored JavaScript bodies with their
    keys, logs, exports): from here on this process creates them 0600 in 0700
    folders whatever the user's umask, and our folders of an older install
    are closed to other users too."""
    os.umask(0o077)
    for folder in (settings.data_dir, settings.state_dir, settings.log_dir, settings.config_dir):
        if folder == settings.config_dir and not folder.exists():
            continue  # only read: made by the user when they write a config file
        folder.mkdir(parents=True, exist_ok=True)
        if folder.stat().st_mode & 0o077:
            with contextlib.suppress(OSError):  # not ours (an admin-made folder): its owner decides
                folder.chmod(0o700)


def shell_exports() -> str:
    """`eval "$(python -m assetmon_tui.core.config)"` in start.sh: one source of paths."""
    import shlex

    s = get_settings()
    values = {"ASSETMON_REDIS_URL": s.redis_url, "ASSETMON_STATE_DIR": s.state_dir, "ASSETMON_LOG_DIR": s.log_dir}
    return "\n".join(f"{k}={shlex.quote(str(v))}" for k, v in values.items())


if __name__ == "__main__":
    import sys

    try:
        print(shell_exports())
    except SettingsError as exc:
        print(f"assetmon: {exc}", file=sys.stderr)
        sys.exit(2)
