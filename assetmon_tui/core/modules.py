"""The one registry of scan modules: name, label, help, run order, and which
asset kinds each one observes in full (so change events know what a scan
that skipped a module could not have seen).

Everything that lists modules reads it from here: the pipeline (run order,
which step runs), change events (coverage), the scan and schedule forms and
the CLI (names and help). It is plain data, importable without the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Module:
    name: str
    label: str  # short, for forms and panels
    help: str  # one line, for forms and `--help`
    covers: frozenset[str] = frozenset()  # asset kinds this module sees exhaustively (events.py)


# In run order: each module reads what the earlier ones found.
MODULES: tuple[Module, ...] = (
    Module("subdomains", "Subdomains", "CT, wordlist, certificates"),
    Module("dns", "DNS", "A, AAAA, CNAME (+ MX, NS, TXT)", frozenset({"host", "dns"})),
    Module("ports", "Ports", "TCP connect scan + banners", frozenset({"ip", "service"})),
    Module("http", "HTTP", "title, server, TLS, tech, favicon", frozenset({"http"})),
    Module("takeover", "Takeover", "dangling CNAMEs", frozenset({"finding:takeover"})),
    Module("js", "JavaScript", "secrets and API endpoints", frozenset({"js", "finding:secret", "finding:endpoint"})),
    Module("nuclei", "Nuclei", "templates on probed URLs (nuclei on PATH)", frozenset({"finding:nuclei"})),
)
BY_NAME: dict[str, Module] = {m.name: m for m in MODULES}
NAMES: tuple[str, ...] = tuple(BY_NAME)
DEFAULT_CLI = ("dns", "ports", "http")


def check_modules(names: list[str] | tuple[str, ...]) -> list[str]:
    """Validate module names and return them in run order (raises ValueError)."""
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise ValueError(f"unknown module(s): {', '.join(unknown)} (choose from {', '.join(NAMES)})")
    return [n for n in NAMES if n in names]


def coverage() -> dict[str, frozenset[str]]:
    """Asset kind -> the modules that observe all of it."""
    out: dict[str, set[str]] = {}
    for module in MODULES:
        for kind in module.covers:
            out.setdefault(kind, set()).add(module.name)
    return {kind: frozenset(names) for kind, names in out.items()}


def describe(name: str) -> str:
    """ "DNS: A, AAAA, CNAME (+ MX, NS, TXT)": a form's line for a module."""
    module = BY_NAME[name]
    return f"{module.label}: {module.help}"
