"""Parse what a user types as a target, and decide what is in scope.

A target line is one of: a domain or host name (`example.com`, `*.example.com`
means the zone too), an IP address, a CIDR, or a URL. A leading `!` (or `-`)
makes it an exclusion rule, e.g. `!*.dev.example.com` or `!10.0.0.5`.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

KINDS = ("domain", "ip", "cidr", "url")
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


class TargetError(ValueError):
    """A target the user typed that we cannot understand."""


@dataclass(frozen=True)
class Target:
    kind: str  # one of KINDS
    value: str  # normalised
    exclude: bool = False

    def __str__(self) -> str:
        return ("!" if self.exclude else "") + self.value

    @property
    def host(self) -> str:
        """Host name or address this target names (the URL's host for URLs)."""
        if self.kind == "url":
            return urlsplit(self.value).hostname or ""
        return self.value.removeprefix("*.")


def is_hostname(name: str) -> bool:
    name = name.rstrip(".")
    if not name or len(name) > 253 or "." not in name:
        return False
    return all(_LABEL.match(label) for label in name.split("."))


def parse_target(text: str) -> Target:
    raw = text.strip()
    exclude = raw[:1] in ("!", "-")
    value = raw[1:].strip() if exclude else raw
    if not value:
        raise TargetError(f"empty target: {text!r}")
    if "://" in value:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise TargetError(f"not an http(s) URL: {text!r}")
        host = parts.hostname.lower()
        if not (is_hostname(host) or is_ip(host)):
            raise TargetError(f"bad host in URL: {text!r}")
        return Target("url", parts._replace(netloc=parts.netloc.lower()).geturl(), exclude)
    try:
        return Target("ip", str(ipaddress.ip_address(value)), exclude)
    except ValueError:
        pass
    if "/" in value:
        try:
            return Target("cidr", str(ipaddress.ip_network(value, strict=False)), exclude)
        except ValueError:
            raise TargetError(f"not a valid CIDR: {text!r}") from None
    name = value.lower().rstrip(".")
    bare = name.removeprefix("*.")
    if not is_hostname(bare):
        raise TargetError(
            f"not a domain, host, IP, CIDR or URL: {text!r} "
            "(examples: example.com, 10.0.0.1, 10.0.0.0/24, https://example.com/)"
        )
    return Target("domain", name, exclude)


def is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return False


def _matches(rule: Target, name: str) -> bool:
    if rule.kind == "ip":
        return name == rule.value
    if rule.kind == "cidr":
        return is_ip(name) and ipaddress.ip_address(name) in ipaddress.ip_network(rule.value)
    pattern = rule.host if rule.kind == "url" else rule.value
    if pattern.startswith("*."):
        return fnmatch.fnmatchcase(name, pattern)  # subdomains only
    return name == pattern or name.endswith("." + pattern)


class Scope:
    """Include rules widen scope, exclude rules cut it (excludes win)."""

    def __init__(self, targets: list[Target]):
        self.includes = [t for t in targets if not t.exclude]
        self.excludes = [t for t in targets if t.exclude]

    def __contains__(self, name: str) -> bool:
        name = name.lower().rstrip(".")
        if any(_matches(rule, name) for rule in self.excludes):
            return False
        return any(_matches(rule, name) for rule in self.includes)

    def excludes_below(self, zone: str) -> bool:
        """Whether every name below `zone` is excluded: by an exclude rule for
        `zone` itself or `*.zone`, or one for a parent (`!dev.acme.com` and
        `!*.acme.com` both exclude everything below `x.dev.acme.com`). A scanner
        sends nothing under such a zone: no brute force, no wildcard probe, no
        CT search. The zone's own name may still be in scope (`!*.zone`)."""
        zone = zone.lower().rstrip(".")
        return any(_covers_below(rule, zone) for rule in self.excludes)


def _covers_below(rule: Target, zone: str) -> bool:
    """Whether `rule` matches every name below `zone` (see `_matches`)."""
    if rule.kind not in ("domain", "url"):
        return False
    base = (rule.host if rule.kind == "url" else rule.value).removeprefix("*.")
    # `base` and `*.base` both match every name below base, hence below any zone under base.
    return zone == base or zone.endswith("." + base)
