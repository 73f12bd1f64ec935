"""The one registry of per-project scan settings: name, label, help, how a
value is checked and stored, and the global default it replaces.

A scan profile (core/profiles.py) sets the same keys, checked here too.
A project's settings (the `project.settings` JSON) go into the options of
every scan created for it (`store.repo.new_scan`: explicit options win), where
`ScanContext.setting()` finds them over the global `Settings`. The settings
form, the store and the CLI read this list; nothing else names the keys.

Stored values are JSON: `modules` and `nameservers` lists, `gone_after` and
the rates ints, `verify_secrets` a boolean, the others strings. `check()` takes a form's text or a stored value and
returns the stored value, or None for an empty one (the global default
applies); bad values raise a one-line ValueError naming the setting.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .config import Settings
from .modules import NAMES as MODULE_NAMES
from .modules import check_modules
from .portspec import parse_ports


@dataclass(frozen=True)
class ProjectSetting:
    name: str  # the key in project.settings and in a scan's options
    label: str  # short, for the form
    help: str  # one line, for the form
    parse: Callable[[Any], Any]  # a non-empty text or stored value -> the stored value (ValueError)
    show: Callable[[Any], str]  # a stored value -> the form's text
    default: Callable[[Settings], str]  # the global default, as the form shows it
    scan_option: bool = True  # copied into each new scan's options (modules choose the scan's steps instead)
    in_form: bool = True  # a line of the project settings form (rates are set through a profile)
    in_profile: bool = True  # a key a scan profile may set (core/profiles.py)


def _words(value: Any) -> list[str]:
    """ "a, b c" or ["a", "b"] -> ["a", "b", "c"]."""
    if isinstance(value, str):
        return value.replace(",", " ").split()
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return [w for v in value for w in v.replace(",", " ").split()]
    raise ValueError(f"expected text or a list of text, got {value!r}")


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected text, got {value!r}")
    return value.strip()


def _modules(value: Any) -> list[str]:
    return check_modules(_words(value))


def _ports(value: Any) -> str:
    spec = _text(value)
    parse_ports(spec)
    return spec


def nameserver(spec: str) -> str:
    """Check one "IP", "IP:PORT" or "[IPv6]:PORT" (as the DNS scanner reads them)."""
    host, port = spec, "53"
    if spec.startswith("["):
        host, _, rest = spec[1:].partition("]")
        if rest and not rest.startswith(":"):
            host = spec
        port = rest[1:] if rest.startswith(":") else "53"
    elif spec.count(":") == 1:
        host, _, port = spec.partition(":")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f"{spec!r} is not an IP address: give IP or IP:PORT, e.g. 127.0.0.1:5353 or [::1]:53"
        ) from None
    if not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
        raise ValueError(f"bad port in {spec!r}: expected IP:PORT with a port 1-65535")
    return spec


def _nameservers(value: Any) -> list[str]:
    return list(dict.fromkeys(nameserver(spec) for spec in _words(value)))


def _ct_url(value: Any) -> str:
    url = _text(value)
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a port that is no number or out of range
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in url):
        raise ValueError(f"{url!r} is not an http(s) URL: give e.g. https://crt.sh/")
    return url


def _wordlist(value: Any) -> str:
    text = _text(value)
    path = Path(text).expanduser().resolve()
    try:
        readable = path.is_file() and os.access(path, os.R_OK)
    except OSError:
        readable = False
    if not readable:
        raise ValueError(f"no readable file at {text!r}: give the path of a text file, one word a line")
    return str(path)


def _gone_after(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"expected a whole number, got {value!r}")
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise ValueError(f"{text!r} is not a whole number of at least 1: give 1 (gone at once), 2, 3…")
    return int(text)


def _profile(value: Any) -> str:
    from .profiles import profile_names  # profiles check their own keys with this registry

    name = _text(value)
    known = profile_names()
    if name not in known:
        raise ValueError(f"unknown profile {name!r}: choose from {', '.join(known)}")
    return name


def _at_least(low: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError(f"expected a whole number, got {value!r}")
        text = str(value).strip()
        if not (text.isascii() and text.isdigit()) or int(text) < low:
            raise ValueError(f"{text!r} is not a whole number of at least {low}")
        return int(text)

    return parse


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = _text(value).lower()
    if text in ("on", "yes", "true", "1"):
        return True
    if text in ("off", "no", "false", "0"):
        return False
    raise ValueError(f"{text!r} is not on or off: give on or off")


def _on_off(value: Any) -> str:
    return "on" if value else "off"


def _joined(value: Any) -> str:
    return ", ".join(value) if isinstance(value, list) else str(value)


SETTINGS: tuple[ProjectSetting, ...] = (
    ProjectSetting(
        "modules",
        "Modules",
        f"new scans' modules: {' '.join(MODULE_NAMES)}",
        _modules,
        _joined,
        lambda s: "the profile's",
        scan_option=False,
    ),
    ProjectSetting(
        "ports",
        "Ports",
        "top100, top1000, all, or a list like 22,80,8000-8100",
        _ports,
        str,
        lambda s: s.ports,
    ),
    ProjectSetting(
        "nameservers",
        "Nameservers",
        "DNS servers: IP or IP:PORT, comma separated",
        _nameservers,
        _joined,
        lambda s: s.nameservers or "the system resolver",
    ),
    ProjectSetting(
        "ct_url",
        "CT URL",
        "certificate-transparency search in crt.sh's JSON format",
        _ct_url,
        str,
        lambda s: s.ct_url,
    ),
    ProjectSetting(
        "wordlist",
        "Wordlist",
        "subdomain brute-force words: a file, one word a line",
        _wordlist,
        str,
        lambda s: s.wordlist or "the bundled one (~9,600 names)",
    ),
    ProjectSetting(
        "gone_after",
        "Gone after",
        "covered scans missing an asset before it is reported gone",
        _gone_after,
        str,
        lambda s: str(s.gone_after),
    ),
    ProjectSetting(
        "profile",
        "Profile",
        "scan profile: quick, standard, full or one of yours",
        _profile,
        str,
        lambda s: "standard",
        in_profile=False,
    ),
    # Rates: in profiles (and scan options), not lines of the project form.
    ProjectSetting(
        "dns_concurrency",
        "DNS queries",
        "DNS queries in flight",
        _at_least(1),
        str,
        lambda s: str(s.dns_concurrency),
        in_form=False,
    ),
    ProjectSetting(
        "http_concurrency",
        "HTTP probes",
        "HTTP requests in flight",
        _at_least(1),
        str,
        lambda s: str(s.http_concurrency),
        in_form=False,
    ),
    ProjectSetting(
        "port_concurrency",
        "Port probes",
        "TCP connects in flight",
        _at_least(1),
        str,
        lambda s: str(s.port_concurrency),
        in_form=False,
    ),
    ProjectSetting(
        "port_rate",
        "Port rate",
        "TCP connects a second (0: unlimited)",
        _at_least(0),
        str,
        lambda s: str(s.port_rate or "unlimited"),
        in_form=False,
    ),
    # Live verification of the secrets found (secrets/verify.py): off unless asked for.
    ProjectSetting(
        "verify_secrets",
        "Verify secrets",
        "check found keys with their provider (one read-only call): on or off",
        _flag,
        _on_off,
        lambda s: _on_off(s.verify_secrets),
        in_form=False,
    ),
)
BY_NAME: dict[str, ProjectSetting] = {s.name: s for s in SETTINGS}
NAMES: tuple[str, ...] = tuple(BY_NAME)
SCAN_OPTIONS: tuple[str, ...] = tuple(s.name for s in SETTINGS if s.scan_option)
FORM: tuple[ProjectSetting, ...] = tuple(s for s in SETTINGS if s.in_form)  # the lines of the `p` form
PROFILE_KEYS: tuple[str, ...] = tuple(s.name for s in SETTINGS if s.in_profile)  # what a profile may set


def is_empty(value: Any) -> bool:
    """An empty value removes a setting (the global default applies again)."""
    if isinstance(value, str):
        return not value.strip()
    return value is None or (isinstance(value, (list, tuple)) and not value)


def check(name: str, value: Any) -> Any:
    """The stored form of one setting's value, or None when it is empty.
    Raises ValueError "NAME: what is wrong and what to give"."""
    setting = BY_NAME.get(name)
    if setting is None:
        raise ValueError(f"unknown project setting {name!r} (choose from {', '.join(NAMES)})")
    if is_empty(value):
        return None
    try:
        stored = setting.parse(value)
    except ValueError as exc:
        raise ValueError(f"{name}: {' '.join(str(exc).split())}") from None
    return None if is_empty(stored) else stored


def check_all(values: Mapping[str, Any]) -> dict[str, Any]:
    """Every setting of `values` checked: name -> stored value, or None to remove it."""
    return {name: check(name, value) for name, value in values.items()}


def show(name: str, value: Any) -> str:
    """A stored value as the form shows it ("" when unset)."""
    return "" if is_empty(value) else BY_NAME[name].show(value)
