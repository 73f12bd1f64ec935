"""Endpoints referenced by JavaScript: absolute URLs, API paths, templates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urljoin

import re2

from .textpos import positions


class _Match(Protocol):
    """The part of an re2 match (of a str pattern) used here: re2 has no type information."""

    def group(self, group: int, /) -> str | None: ...


_OPTS = re2.Options()
_OPTS.max_mem = 32 << 20

# Unbounded runs are single classes that exclude their own terminator, so a
# search never rescans: linear time.
_ABSOLUTE = re2.compile(r"\b(?:https?|wss?)://[^\s\"'`<>\\^{}|]+", _OPTS)
_PATH = re2.compile(r"[\"'`](/[A-Za-z0-9_\-.~%:@!$&*+,;=?#/\[\]]+)[\"'`]", _OPTS)
_TEMPLATE = re2.compile(r"`((?:[^`\\]|\\.)*)`", _OPTS)
_MAX_LITERAL = 2000
_PLACEHOLDER = re2.compile(r"\$\{([^{}]{0,200})\}")
_IDENT = re2.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_HOST = re2.compile(r"^(?:[A-Za-z0-9\-]{1,63}\.)+[A-Za-z]{2,63}$|^localhost$|^\d{1,3}(?:\.\d{1,3}){3}$")
_PATH_SHAPE = re2.compile(
    r"^/[A-Za-z0-9_{}][A-Za-z0-9_\-.~%:@{}]*(?:/[A-Za-z0-9_\-.~%:@{}]*)*"
    r"(?:\?[^#]*)?(?:#.*)?$"
)
_DATE_PART = re2.compile(r"(?i)^(?:y{2,4}|m{1,4}|d{1,4}|h{1,2}|s{1,2})$")
_MIME = re2.compile(r"^/?(?:text|application|image|audio|video|font|multipart|model)/[\w.+\-]+$")
_ASSET_EXT = (
    ".png",
    ".jpg",
    ".jpeg",
    ".gif",
    ".svg",
    ".ico",
    ".webp",
    ".css",
    ".woff",
    ".woff2",
    ".ttf",
    ".eot",
    ".otf",
    ".mp3",
    ".mp4",
    ".map",
)
_NOISE_HOSTS = ("www.w3.org", "ns.adobe.com", "purl.org", "schemas.xmlsoap.org")
_TRAILING = ".,;:)'!*"


@dataclass(frozen=True)
class Endpoint:
    value: str  # absolute URL or path, e.g. "/v2/orders/{id}"
    kind: str  # "absolute" | "path" | "template"
    line: int  # 1-based
    column: int  # 1-based, in characters
    url: str | None  # absolute form (paths resolved against base_url), if known


def _absolute_ok(url: str) -> bool:
    host = url.split("://", 1)[1].split("/", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1]
    host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return bool(_HOST.search(host)) and host not in _NOISE_HOSTS


def _path_ok(path: str) -> bool:
    if not _PATH_SHAPE.search(path) or _MIME.search(path) or "node_modules" in path:
        return False
    bare = path.split("?", 1)[0].split("#", 1)[0]
    segments = [s for s in bare.split("/") if s]
    if not any(any(c.isalpha() for c in s) and not s.startswith("{") for s in segments):
        return False  # nothing but parameters or numbers
    if all(_DATE_PART.search(s) for s in segments):
        return False  # "/yyyy/mm/dd" style date formats
    return not bare.lower().endswith(_ASSET_EXT)


def _template(body: str) -> str | None:
    """`${base}/v2/orders/${id}` -> "/v2/orders/{id}"; None if not URL-like."""
    first = _PLACEHOLDER.search(body)
    if first and first.start() == 0 and body[first.end() : first.end() + 1] in ("/", ""):
        body = body[first.end() :]  # a leading `${base}` is the origin, not a path

    def name(m: _Match) -> str:
        idents = _IDENT.findall(m.group(1))
        return "{" + (idents[-1] if idents else "param") + "}"

    value = _PLACEHOLDER.sub(name, body)
    if value.startswith(("http://", "https://", "ws://", "wss://")):
        return value if _absolute_ok(value) else None
    return value if value.startswith("/") and _path_ok(value) else None


def extract_endpoints(js_text: str, base_url: str | None = None) -> list[Endpoint]:
    """Endpoints in source order, each value once (first occurrence)."""
    data = js_text.encode("utf-8", "replace")
    found: dict[tuple[str, str], int] = {}

    def add(kind: str, value: str, offset: int) -> None:
        found.setdefault((kind, value), offset)

    templates = set()
    for m in _TEMPLATE.finditer(data):
        body = m.group(1)
        if b"${" not in body or len(body) > _MAX_LITERAL:
            continue
        value = _template(body.decode("utf-8", "replace"))
        if value:
            add("template", value, m.start(1))
            templates.add(m.start(1))
    for m in _ABSOLUTE.finditer(data):
        if m.end() - m.start() > _MAX_LITERAL:
            continue
        url = m.group(0).decode("utf-8", "replace").rstrip(_TRAILING)
        if data[m.end() : m.end() + 1] == b"{" or m.start() in templates:
            continue  # part of a template literal, reported above
        if _absolute_ok(url):
            add("absolute", url, m.start())
    for m in _PATH.finditer(data):
        path = m.group(1).decode("utf-8", "replace")
        if len(path) <= _MAX_LITERAL and not path.startswith("//") and _path_ok(path):
            add("path", path, m.start(1))

    items = sorted(found.items(), key=lambda kv: kv[1])
    out = []
    for ((kind, value), _), (line, col, _) in zip(items, positions(data, [o for _, o in items]), strict=False):
        if kind == "absolute" or value.startswith(("http://", "https://", "ws://", "wss://")):
            url = value
        else:
            url = urljoin(base_url, value) if base_url else None
        out.append(Endpoint(value, kind, line, col, url))
    return out
