"""Scan profiles: named sets of scan settings in TOML files.

Built-in profiles (`quick`, `standard`, `full`) ship in `assetmon_tui/data/profiles/`;
a user adds or replaces one with `<config dir>/profiles/NAME.toml` (the folder
of `config.toml`). A profile sets any of the keys a project may set
(core/project_settings.py, the one registry: modules, ports, nameservers,
ct_url, wordlist, gone_after and the rates), checked by the same code; a bad
file is a one-line SettingsError naming the file and the key.

    description = "my lab: its DNS and CT, a short wordlist"
    modules = ["subdomains", "dns", "ports", "http"]
    ports = "top100"
    nameservers = ["127.0.0.1:5353"]
    ct_url = "http://127.0.0.1:8081/"
    wordlist = "words.txt"          # relative: next to the profile file
    dns_concurrency = 100

Precedence, lowest first: the global settings (environment, config.toml),
the profile, the project's own settings, what the caller gives for this scan
(scan form fields, `--ports`, `--nameserver`, a schedule's own options). The
profile is the one chosen for the scan (scan form, `--profile`, schedule),
else the project's `profile` setting; `resolve()` applies it.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import project_settings as registry
from .config import SettingsError, get_settings

DEFAULT = "standard"  # the CLI's, the scan form's and the schedule form's choice when the project has none
BUILTIN_DIR = Path(__file__).resolve().parent.parent / "data" / "profiles"
BUILTIN = "built-in"


@dataclass(frozen=True)
class Profile:
    name: str
    source: str  # "built-in" or the user's file
    description: str = ""
    values: dict[str, Any] = field(default_factory=dict)  # registry key -> stored value (checked)

    @property
    def modules(self) -> list[str]:
        return list(self.values.get("modules") or [])


def user_dir() -> Path:
    return get_settings().config_dir / "profiles"


def _files() -> dict[str, tuple[Path, str]]:
    """name -> (file, source); a user's file replaces a built-in of the same name."""
    found: dict[str, tuple[Path, str]] = {}
    for folder, source in ((BUILTIN_DIR, BUILTIN), (user_dir(), "")):
        try:
            files = sorted(folder.glob("*.toml")) if folder.is_dir() else []
        except OSError:
            files = []
        for path in files:
            found[path.stem] = (path, source or str(path))
    return found


def profile_names() -> list[str]:
    """Built-ins first (quick, standard, full), then the user's, by name."""
    files = _files()
    order = {"quick": 0, "standard": 1, "full": 2}
    return sorted(files, key=lambda n: (order.get(n, 3), n))


def load(path: Path, source: str | None = None) -> Profile:
    """One profile file, checked: SettingsError "FILE: KEY: what is wrong"."""
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"profile {path} is not valid TOML ({exc}): fix or remove it") from None
    except OSError as exc:
        raise SettingsError(f"profile {path} cannot be read ({exc.strerror}): check its permissions") from None
    description = data.pop("description", "")
    if not isinstance(description, str):
        raise SettingsError(f"profile {path}: description: expected text")
    unknown = sorted(set(data) - set(registry.PROFILE_KEYS))
    if unknown:
        raise SettingsError(
            f"profile {path}: unknown key {unknown[0]!r} (a profile sets {', '.join(registry.PROFILE_KEYS)})"
        )
    values: dict[str, Any] = {}
    for key in registry.PROFILE_KEYS:  # registry order
        if key not in data:
            continue
        raw = data[key]
        if key == "wordlist" and isinstance(raw, str) and raw.strip():
            raw = str(path.parent / Path(raw.strip()).expanduser())  # relative to the profile's folder
        try:
            value = registry.check(key, raw)
        except ValueError as exc:
            raise SettingsError(f"profile {path}: {exc}") from None
        if value is not None:
            values[key] = value
    return Profile(path.stem, source or str(path), " ".join(description.split()), values)


def get_profile(name: str) -> Profile:
    """The profile called `name`; SettingsError naming the known ones otherwise."""
    files = _files()
    if name not in files:
        raise SettingsError(f"unknown profile {name!r}: known profiles are {', '.join(profile_names())}")
    path, source = files[name]
    return load(path, source)


def all_profiles() -> list[Profile]:
    """Every profile, checked (the first bad file raises)."""
    return [get_profile(name) for name in profile_names()]


def chosen(project: Mapping[str, Any], options: Mapping[str, Any], profile: str | None = None) -> str | None:
    """Which profile a scan uses: the one given, else the options', else the project's (None: none)."""
    for candidate in (profile, options.get("profile"), project.get("profile")):
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()
    return None


def resolve(
    modules: list[str] | tuple[str, ...],
    options: Mapping[str, Any],
    project: Mapping[str, Any],
    profile: str | None = None,
) -> tuple[list[str], dict[str, Any]]:
    """The modules and options of a new scan: the profile's values under the
    project's settings under the caller's `options` (and `modules`, when given).
    The profile's name is recorded in the options. Without a profile (none
    given, none in the options or the project) the options are returned as
    they are. Raises SettingsError for an unknown or bad profile, ValueError
    for a project setting gone bad since it was saved."""
    name = chosen(project, options, profile)
    if name is None:
        return list(modules), dict(options)
    chosen_profile = get_profile(name)
    merged: dict[str, Any] = {k: v for k, v in chosen_profile.values.items() if k in registry.SCAN_OPTIONS}
    for key in registry.SCAN_OPTIONS:
        if not registry.is_empty(project.get(key)):
            try:
                merged[key] = registry.check(key, project[key])
            except ValueError as exc:  # e.g. a wordlist deleted since it was saved
                raise ValueError(f"project setting {exc} (fix it in the project's settings)") from None
    for key, value in options.items():
        if not registry.is_empty(value):
            merged[key] = value
    merged["profile"] = name
    chosen_modules = list(modules) or list(project.get("modules") or []) or chosen_profile.modules
    return chosen_modules, merged
