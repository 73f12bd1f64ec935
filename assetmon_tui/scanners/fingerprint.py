"""Technology fingerprinting from one HTTP response, Wappalyzer-style.

The rules are Wappalyzer's own data format (`data/technologies.json`, a
trimmed copy of its MIT-licensed technology files, see that file's "source"):
per technology, patterns on headers, cookies, meta tags, script URLs, inline
scripts, the HTML and the URL, plus `implies` / `excludes` / `requires`.
Pattern syntax is `regex\\;version:\\1\\;confidence:50`.

Every pattern runs under RE2 (linear time: a hostile page cannot make a
pattern backtrack for ever). The few Wappalyzer patterns RE2 cannot express
(look-arounds, back-references) are skipped at load time. Patterns that run
over whole bodies (html, scripts) are first screened with one RE2 set per
field, so a body is scanned once for all of them and only the hits are
re-run for versions.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Protocol

import re2
from selectolax.lexbor import LexborHTMLParser

HTML_LIMIT = 512 * 1024  # bytes of a body the engine looks at
_MAX_SCRIPTS = 200
_MAX_META = 200
_OPTS = re2.Options()
_OPTS.case_sensitive = False  # Wappalyzer compiles with the "i" flag
_OPTS.max_mem = 64 << 20
_OPTS.log_errors = False


class _Regex(Protocol):
    """The part of a compiled re2 pattern used here (re2 has no type information)."""

    @property
    def pattern(self) -> str: ...
    @property
    def groups(self) -> int: ...
    def search(self, text: str, /) -> _Match | None: ...


class _Match(Protocol):
    @property
    def re(self) -> _Regex: ...
    def group(self, group: int, /) -> str | None: ...


class _Set(Protocol):
    """An re2.Set: Add returns the pattern's index, Match the indexes found (or None)."""

    def Add(self, pattern: str, /) -> int: ...
    def Compile(self) -> None: ...
    def Match(self, text: str, /) -> list[int] | None: ...


@dataclass(frozen=True)
class _Pattern:
    tech: str
    regex: _Regex
    version: str
    confidence: int


@dataclass
class Tech:
    name: str
    version: str = ""
    confidence: int = 100
    categories: tuple[str, ...] = ()


def _parse(spec: str, tech: str) -> _Pattern | None:
    parts = str(spec).split("\\;")
    version, confidence = "", 100
    for part in parts[1:]:
        key, _, value = part.partition(":")
        if key == "version":
            version = value
        elif key == "confidence":
            with contextlib.suppress(ValueError):
                confidence = int(value)
    try:
        regex = re2.compile(parts[0], _OPTS)
    except re2.error:  # look-arounds and back-references are not RE2
        return None
    return _Pattern(tech, regex, version, confidence)


def _list(value: object) -> list[Any]:
    """A technologies.json value that is one item or a list of them, as a list."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


class _Field:
    """All the body-wide patterns of one field, screened by one RE2 set."""

    def __init__(self, patterns: list[_Pattern]) -> None:
        self.patterns = patterns
        self.set: _Set = re2.Set.SearchSet(_OPTS)
        kept: list[_Pattern] = []
        for p in patterns:
            try:
                self.set.Add(p.regex.pattern)
                kept.append(p)
            except (re2.error, ValueError):
                pass
        self.patterns = kept
        self.set.Compile()

    def hits(self, text: str) -> list[_Pattern]:
        if not text or not self.patterns:
            return []
        return [self.patterns[i] for i in (self.set.Match(text) or ())]


class Rules:
    def __init__(self, data: dict[str, Any]) -> None:
        """`data`: technologies.json as parsed (Wappalyzer's format)."""
        cats: dict[str, str] = {k: v["name"] for k, v in data.get("categories", {}).items()}
        self.techs: dict[str, dict[str, Any]] = data["technologies"]
        self.categories = {
            name: tuple(cats.get(str(c), str(c)) for c in spec.get("cats", [])) for name, spec in self.techs.items()
        }
        self.headers: dict[str, list[_Pattern]] = {}
        self.cookies: dict[str, list[_Pattern]] = {}
        self.meta: dict[str, list[_Pattern]] = {}
        html: list[_Pattern] = []
        scripts: list[_Pattern] = []
        script_src: list[_Pattern] = []
        self.url: list[_Pattern] = []
        self.cert_issuer: list[_Pattern] = []
        self.skipped = 0
        for name, spec in self.techs.items():
            for key, table in (("headers", self.headers), ("cookies", self.cookies), ("meta", self.meta)):
                for field_name, specs in (spec.get(key) or {}).items():
                    for s in _list(specs):
                        p = self._compile(s, name)
                        if p is not None:
                            table.setdefault(field_name.lower(), []).append(p)
            for key, bucket in (
                ("html", html),
                ("scripts", scripts),
                ("scriptSrc", script_src),
                ("url", self.url),
                ("certIssuer", self.cert_issuer),
            ):
                for s in _list(spec.get(key)):
                    p = self._compile(s, name)
                    if p is not None:
                        bucket.append(p)
        self.html = _Field(html)
        self.scripts = _Field(scripts)
        self.script_src = _Field(script_src)
        # One screening set per header / cookie / meta name and for the URL too:
        # a response is matched in a handful of set scans, not hundreds of searches.
        self.header_sets = {k: _Field(v) for k, v in self.headers.items()}
        self.cookie_sets = {k: _Field(v) for k, v in self.cookies.items()}
        self.meta_sets = {k: _Field(v) for k, v in self.meta.items()}
        self.url_set = _Field(self.url)

    def _compile(self, spec: str, name: str) -> _Pattern | None:
        p = _parse(spec, name)
        if p is None:
            self.skipped += 1
        return p

    @property
    def count(self) -> int:
        return len(self.techs)


@lru_cache(maxsize=1)
def rules() -> Rules:
    text = resources.files("assetmon_tui").joinpath("data", "technologies.json").read_text("utf-8")
    return Rules(json.loads(text))


def _version(p: _Pattern, m: _Match | None) -> str:
    """Wappalyzer version templates: `\\1`, and `\\1?yes:no` ternaries."""
    template = p.version
    if not template or m is None:
        return ""
    out = template
    for i in range(min(9, (m.re.groups if hasattr(m, "re") else 9)), 0, -1):
        try:
            group = m.group(i) or ""
        except (IndexError, re2.error):
            group = ""
        token = f"\\{i}"
        if token not in out:
            continue
        if f"{token}?" in out:  # \1?a:b
            head, _, rest = out.partition(f"{token}?")
            yes, _, no = rest.partition(":")
            out = head + (yes if group else no)
        out = out.replace(token, group)
    return out.strip()[:40]


class _Collector:
    def __init__(self) -> None:
        self.found: dict[str, Tech] = {}

    def add(self, p: _Pattern, text: str) -> None:
        m = p.regex.search(text)
        if m is None:
            return
        tech = self.found.get(p.tech)
        version = _version(p, m)
        if tech is None:
            self.found[p.tech] = Tech(p.tech, version, min(100, p.confidence))
        else:
            tech.confidence = min(100, tech.confidence + p.confidence)
            if version and (not tech.version or len(version) > len(tech.version)):
                tech.version = version


def _cookie_names(set_cookie: str) -> dict[str, str]:
    """Cookie name -> value from a (possibly comma-joined) Set-Cookie header."""
    out: dict[str, str] = {}
    for part in set_cookie.split(","):
        first = part.split(";", 1)[0]
        if "=" in first:
            name, _, value = first.partition("=")
            name = name.strip()
            if name and " " not in name:
                out.setdefault(name.lower(), value.strip())
    return out


def _page_parts(html: str) -> tuple[dict[str, str], list[str], list[str]]:
    """(meta name -> content, script src URLs, inline script texts)."""
    meta: dict[str, str] = {}
    srcs: list[str] = []
    inline: list[str] = []
    if not html:
        return meta, srcs, inline
    tree = LexborHTMLParser(html)
    for node in tree.css("meta")[:_MAX_META]:
        attrs = node.attributes
        key = attrs.get("name") or attrs.get("property") or attrs.get("http-equiv")
        if key and attrs.get("content") is not None:
            meta.setdefault(key.lower(), attrs.get("content") or "")
    for node in tree.css("script")[:_MAX_SCRIPTS]:
        src = node.attributes.get("src")
        if src:
            srcs.append(src)
        else:
            text = node.text(deep=True)
            if text:
                inline.append(text)
    return meta, srcs, inline


def detect(
    headers: dict[str, str], body: bytes | str = b"", url: str = "", content_type: str = "", cert_issuer: str = ""
) -> list[Tech]:
    """Technologies seen in one response. `headers` with lower-case names
    (as HttpResult.headers); `body` is only parsed when it looks like HTML."""
    r = rules()
    c = _Collector()
    headers = {k.lower(): v for k, v in headers.items()}
    for name, value in headers.items():
        field = r.header_sets.get(name)
        if field is not None:
            for p in field.hits(value) if value else field.patterns:
                c.add(p, value)
    for name, value in _cookie_names(headers.get("set-cookie", "")).items():
        field = r.cookie_sets.get(name)
        if field is not None:
            for p in field.hits(value) if value else field.patterns:
                c.add(p, value)
    if url:
        for p in r.url_set.hits(url):
            c.add(p, url)
    if cert_issuer:
        for p in r.cert_issuer:
            c.add(p, cert_issuer)
    body = body[:HTML_LIMIT].decode("utf-8", "replace") if isinstance(body, bytes) else body[:HTML_LIMIT]
    is_html = "html" in content_type.lower() or body.lstrip()[:1] == "<"
    if body and is_html:
        for p in r.html.hits(body):
            c.add(p, body)
        meta, srcs, inline = _page_parts(body)
        for name, value in meta.items():
            field = r.meta_sets.get(name)
            if field is not None:
                for p in field.hits(value) if value else field.patterns:
                    c.add(p, value)
        for src in srcs:
            for p in r.script_src.hits(src):
                c.add(p, src)
        for text in inline:
            for p in r.scripts.hits(text):
                c.add(p, text)
    return _resolve(r, c.found)


def _resolve(r: Rules, found: dict[str, Tech]) -> list[Tech]:
    """Apply implies (transitively), excludes, requires, requiresCategory."""
    queue = list(found)
    while queue:
        name = queue.pop()
        for spec in _list(r.techs.get(name, {}).get("implies")):
            p = str(spec).split("\\;")
            implied = p[0]
            conf = next((int(x.split(":")[1]) for x in p[1:] if x.startswith("confidence:") and x[11:].isdigit()), 100)
            if implied in r.techs and implied not in found:
                found[implied] = Tech(implied, "", min(conf, found[name].confidence))
                queue.append(implied)
    for name in list(found):
        for excluded in _list(r.techs.get(name, {}).get("excludes")):
            found.pop(str(excluded), None)
    changed = True
    while changed:  # dropping one may orphan another
        changed = False
        cats_present = {c for n in found for c in r.techs.get(n, {}).get("cats", [])}
        for name in list(found):
            spec = r.techs.get(name, {})
            needs = [str(x) for x in _list(spec.get("requires"))]
            needs_cat = [int(x) for x in _list(spec.get("requiresCategory")) if str(x).isdigit()]
            if (needs and not any(n in found for n in needs)) or (needs_cat and not cats_present & set(needs_cat)):
                del found[name]
                changed = True
    out = []
    for tech in found.values():
        tech.categories = r.categories.get(tech.name, ())
        out.append(tech)
    return sorted(out, key=lambda t: t.name.lower())
