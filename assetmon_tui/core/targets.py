"""Parse what a user types as a target, and decide what is in scope.

A target line is one of: a domain or host name (`example.com`, `*.example.com`
means the zone too), an IP address, a CIDR, or a URL. A leading `!` (or `-`)
makes it an exclusion rule, e.g. `!*.dev.example.com` or `!10.0.0.5`.

Everything is checked before anything is stored (`parse_target` raises a
one-line `TargetError` naming the target and what is wrong): an include CIDR
above `max_cidr_addresses` (a setting, default `MAX_CIDR_ADDRESSES`), a dotted
quad that is not an address (`256.1.1.1` is no domain), empty, over-long or
hyphen-edged labels. A URL keeps its credentials as typed (only the host is
lower-cased) and never shows the password: `str(target)`, `repr(target)`,
error messages and `display()` write it as `***`.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

KINDS = ("domain", "ip", "cidr", "url")
MAX_CIDR_ADDRESSES = 4096  # the default of the `max_cidr_addresses` setting
_LABEL_CHARS = re.compile(r"^[a-z0-9_-]+$")
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_DOTTED = re.compile(r"^[0-9.]+$")
HIDDEN = "***"  # what a URL's password is shown as


class TargetError(ValueError):
    """A target the user typed that we cannot understand."""


@dataclass(frozen=True, repr=False)
class Target:
    kind: str  # one of KINDS
    value: str  # normalised (a URL's credentials as typed)
    exclude: bool = False

    def __str__(self) -> str:
        """The rule as shown to people: a URL's password hidden."""
        return ("!" if self.exclude else "") + display(self.value)

    def __repr__(self) -> str:
        return f"Target({self.kind!r}, {display(self.value)!r}, exclude={self.exclude})"

    @property
    def spec(self) -> str:
        """The rule as typed back to `parse_target` (a URL's password included)."""
        return ("!" if self.exclude else "") + self.value

    @property
    def host(self) -> str:
        """Host name or address this target names (the URL's host for URLs)."""
        if self.kind == "url":
            return urlsplit(self.value).hostname or ""
        return self.value.removeprefix("*.")


def display(value: str) -> str:
    """A target value (or any URL) fit to print: a URL's password as `***`."""
    if "://" not in value:
        return value
    try:
        parts = urlsplit(value)
    except ValueError:
        return value.split("://", 1)[0] + "://" + HIDDEN
    if parts.password is None:
        return value
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return parts._replace(netloc=f"{user}:{HIDDEN}@{hostport}").geturl()


def is_hostname(name: str) -> bool:
    return hostname_problem(name) is None


def hostname_problem(name: str) -> str | None:
    """What is wrong with `name` as a host name (lower case), or None."""
    name = name.rstrip(".")
    if not name:
        return "empty name"
    if len(name) > 253:
        return f"{len(name)} characters (a name has at most 253)"
    if "." not in name:
        return "a single label (give the full name, e.g. host.example.com)"
    labels = name.split(".")
    if _DOTTED.match(name):
        return "not a valid IPv4 address (four numbers 0-255 separated by dots)"
    if labels[-1].isdigit():
        return f"the last label {labels[-1]!r} is a number (no domain ends in one)"
    for label in labels:
        if not label:
            return "empty label (two dots in a row, or a leading dot)"
        if len(label) > 63:
            return f"label {label[:20]}… is {len(label)} characters (at most 63)"
        if not _LABEL_CHARS.match(label):
            bad = next(ch for ch in label if not _LABEL_CHARS.match(ch))
            return f"label {label!r} has {bad!r} (letters, digits, - and _ only)"
        if not _LABEL.match(label):
            return f"label {label!r} starts or ends with a hyphen"
    return None


def _default_limit() -> int:
    from .config import get_settings

    return get_settings().max_cidr_addresses


def check_cidr(network: ipaddress.IPv4Network | ipaddress.IPv6Network, limit: int, shown: str = "") -> None:
    """Refuse a range to scan with more than `limit` addresses."""
    if network.num_addresses > limit:
        prefix = network.max_prefixlen - max(1, limit).bit_length() + 1  # the widest range within the limit
        what = f"bad target {shown}" if shown else str(network)
        raise TargetError(
            f"{what}: {network.num_addresses} addresses is over the limit of {limit} "
            f"(setting max_cidr_addresses): split it into ranges of at most {limit} addresses (/{prefix})"
        )


def parse_target(text: str, max_cidr: int | None = None) -> Target:
    """`text` as a target; `max_cidr` (default: the `max_cidr_addresses`
    setting) caps the addresses of an include CIDR (an exclusion costs nothing)."""
    raw = text.strip()
    exclude = raw[:1] in ("!", "-")
    value = raw[1:].strip() if exclude else raw
    shown = repr(display(raw))
    if not value:
        raise TargetError(f"empty target: {shown} (a lone ! or - excludes nothing)")
    if "://" in value:
        return Target("url", _url(value, shown), exclude)
    try:
        return Target("ip", str(ipaddress.ip_address(value)), exclude)
    except ValueError:
        pass
    if "/" in value:
        try:
            network = ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise TargetError(f"bad target {shown}: not a valid CIDR (examples: 10.0.0.0/24, 2001:db8::/120)") from None
        if not exclude:
            check_cidr(network, _default_limit() if max_cidr is None else max_cidr, shown)
        return Target("cidr", str(network), exclude)
    name = value.lower().rstrip(".")
    bare = name.removeprefix("*.")
    problem = hostname_problem(bare)
    if problem:
        raise TargetError(
            f"bad target {shown}: {problem} "
            "(a target is a domain, IP, CIDR or URL: example.com, 10.0.0.1, 10.0.0.0/24, https://example.com/)"
        )
    return Target("domain", name, exclude)


def _url(value: str, shown: str) -> str:
    """The URL normalised: scheme and host lower-cased, credentials, path and query as typed."""
    try:
        parts: SplitResult = urlsplit(value)
        port = parts.port  # raises on a bad port
    except ValueError as exc:
        raise TargetError(f"bad target {shown}: not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetError(f"bad target {shown}: not an http(s) URL with a host (e.g. https://example.com/)")
    host = parts.hostname.lower()
    if not is_ip(host):
        problem = hostname_problem(host)
        if problem:
            raise TargetError(f"bad target {shown}: the URL's host: {problem}")
    if port == 0:
        raise TargetError(f"bad target {shown}: port 0")
    userinfo, at, hostport = parts.netloc.rpartition("@")
    return parts._replace(netloc=userinfo + at + hostport.lower()).geturl()


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
