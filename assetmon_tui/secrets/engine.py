"""Scan text for secrets.

Work is linear in the input: the text is encoded to UTF-8 once, one RE2 set
pass finds which rule triggers occur at all, and only those rules run (each
one RE2 pass). Python code runs per regex match, never per byte. Positions
are byte offsets until the end, where they become 1-based line and column
(in characters) in the original text.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypedDict

import re2

from . import validators as v
from .beautify import context_lines as _context_lines
from .rules import NEAR_BYTES, RULES, Rule
from .textpos import positions

_OPTS = re2.Options()
_OPTS.max_mem = 64 << 20  # generous DFA cache: patterns stay on the fast path
_CONF_RANK = {"high": 3, "medium": 2, "low": 1}
_REJECT = "reject"  # a fixed-format token that failed its checks: claims its span
_PEM_LIMIT = 64 * 1024
_MAX_BEAUTIFIED = 50  # findings per scan whose context is beautified (~3 ms each)
_KEY_NAME_STRONG = re2.compile(
    r"(?i)api[_\-]?key|apikey|secret|access[_\-]?token|auth[_\-]?token|private[_\-]?key|"
    r"access[_\-]?key|credential|passw|pwd|passphrase"
)
_NOT_A_SECRET = re2.compile(
    r"^(?:[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+"  # dotted property path
    r"|[\w\-.]+\.(?:js|mjs|css|html?|json|png|jpe?g|gif|svg|woff2?|map)"  # file name
    r"|#[0-9a-fA-F]{3,8}|[a-z]+(?:[\-_][a-z]+)*|[A-Z]+(?:_[A-Z0-9]+)*)$"  # color, words
)


class _Match(Protocol):
    """The part of an re2 match used here (re2 has no type information)."""

    def span(self, group: int = 0, /) -> tuple[int, int]: ...
    def group(self, group: int = 0, /) -> bytes | None: ...


class _Regex(Protocol):
    """A compiled re2 pattern, searched in bytes."""

    @property
    def groupindex(self) -> Mapping[str, int]: ...
    def search(self, text: bytes, pos: int | None = None, endpos: int | None = None, /) -> _Match | None: ...
    def finditer(self, text: bytes, pos: int | None = None, endpos: int | None = None, /) -> Iterator[_Match]: ...


class _TriggerSet(Protocol):
    """A compiled re2.Set: the indexes of the patterns that occur, or None."""

    def Match(self, text: bytes, /) -> list[int] | None: ...


# (secret start, secret end, rule, value, confidence or _REJECT)
_Candidate = tuple[int, int, Rule, str, str]


class SecretFindingDict(TypedDict):
    rule_id: str
    title: str
    severity: str
    confidence: str
    source: str
    line: int
    column: int
    secret: str
    redacted: str
    fingerprint: str
    context: list[str]


@dataclass(frozen=True)
class SecretFinding:
    rule_id: str
    title: str
    severity: str
    confidence: str
    source: str
    line: int  # 1-based
    column: int  # 1-based, in characters
    secret: str = field(repr=False)
    redacted: str
    fingerprint: str  # sha256(rule id + secret): same secret, same value anywhere
    context: tuple[str, ...] = ()  # lines around the match, secret redacted

    def to_dict(self, *, reveal: bool = False) -> SecretFindingDict:
        return SecretFindingDict(
            rule_id=self.rule_id,
            title=self.title,
            severity=self.severity,
            confidence=self.confidence,
            source=self.source,
            line=self.line,
            column=self.column,
            secret=self.secret if reveal else self.redacted,
            redacted=self.redacted,
            fingerprint=self.fingerprint,
            context=list(self.context),
        )


def redact(value: str) -> str:
    """A recognisable stub: never more than a quarter of the value."""
    head = min(4, len(value) // 4)
    tail = min(2, len(value) // 8)
    return value[:head] + "…" + (value[-tail:] if tail else "")


def fingerprint(rule_id: str, value: str) -> str:
    return hashlib.sha256(f"{rule_id}\x00{value}".encode("utf-8", "replace")).hexdigest()


@dataclass(frozen=True)
class _Compiled:
    rule: Rule
    rx: _Regex
    s_group: int
    name_group: int | None
    near: _Regex | None


def _compile() -> tuple[list[_Compiled], _TriggerSet, list[list[int]]]:
    """Each rule is its own RE2 pass, run only when one of its triggers occurs
    in the text; one RE2 set pass finds which triggers do. (One alternation
    of all rules was tried: warm it is faster, but a program that size builds
    its DFA so slowly that each new file costs seconds.)"""
    compiled: list[_Compiled] = []
    triggers: dict[str, list[int]] = {}
    for i, rule in enumerate(RULES):
        rx = re2.compile(rule.pattern, _OPTS)
        near = re2.compile(rule.near, _OPTS) if rule.near else None
        compiled.append(_Compiled(rule, rx, rx.groupindex["s"], rx.groupindex.get("name"), near))
        for t in rule.triggers:
            triggers.setdefault(t, []).append(i)
    tset = re2.Set.SearchSet(_OPTS)
    for t in triggers:
        tset.Add(t)
    tset.Compile()
    return compiled, tset, list(triggers.values())


_COMPILED, _TRIGGER_SET, _TRIGGER_RULES = _compile()


def _rules_for(data: bytes) -> list[_Compiled]:
    hit = _TRIGGER_SET.Match(data) or ()
    wanted = sorted({r for t in hit for r in _TRIGGER_RULES[t]})
    return [_COMPILED[i] for i in wanted]


def _judge_generic(rule: Rule, name: str, value: str) -> str | None:
    """Generic assignments: both the name and the value must look secret."""
    if v.is_placeholder(value) or "://" in value or value.startswith(("/", "./", "../")):
        return None
    if _NOT_A_SECRET.search(value):
        return None
    ent = v.entropy(value)
    if not any(c.isalpha() for c in value):
        return None
    if not any(c.isdigit() for c in value) and not (v.char_classes(value) >= 2 and ent >= 4.2):
        return None  # digit-free values must at least be mixed-case noise
    strong = _KEY_NAME_STRONG.search(name) is not None
    if rule.id == "generic-password":
        return "medium" if ent >= 2.8 and len(value) >= 8 else None
    if len(value) < 16 or ent < (3.3 if strong else 3.7):
        return None
    return "medium" if strong and ent >= 3.7 else "low"


def _pem_block(data: bytes, m_end: int, begin: bytes) -> int | None:
    """End offset of the PEM block whose BEGIN line ends at m_end, if it has
    a plausible body and the matching END line."""
    body_end = v.pem_body(data, m_end, min(len(data), m_end + _PEM_LIMIT))
    if body_end is None:
        return None
    end_line = b"-----END" + begin[len(b"-----BEGIN") :]
    return body_end + len(end_line) if data.startswith(end_line, body_end) else None


def _judge(c: _Compiled, s: int, e: int, name: bytes | None, data: bytes, value: str) -> str | None:
    rule = c.rule
    fixed = rule.specificity == 3
    if rule.check and not rule.check(value):
        return _REJECT if fixed else None
    if rule.placeholder_check and v.is_placeholder(value):
        return _REJECT if fixed or rule.specificity == 2 else None
    if rule.min_entropy and v.entropy(value) < rule.min_entropy:
        return _REJECT if fixed else None
    if c.near is not None and not c.near.search(data, max(0, s - NEAR_BYTES), min(len(data), e + NEAR_BYTES)):
        return None
    if name is not None:
        return _judge_generic(rule, name.decode("utf-8", "replace"), value)
    return rule.confidence


def _hits(data: bytes) -> Iterator[tuple[_Compiled, int, int, bytes | None]]:
    """(compiled rule, secret start, secret end, name or None) per raw hit."""
    for c in _rules_for(data):
        for m in c.rx.finditer(data):
            s, e = m.span(c.s_group)
            name = m.group(c.name_group) if c.name_group is not None else None
            yield c, s, e, name


def _candidates(data: bytes) -> Iterator[_Candidate]:
    """(start, end, rule, value, confidence or _REJECT) per hit."""
    for c, s, e, name in _hits(data):
        if c.rule.id.startswith("private-key-"):
            end = _pem_block(data, e, data[s:e])
            if end is None:
                continue
            e = end
        value = data[s:e].decode("utf-8", "replace")
        verdict = _judge(c, s, e, name, data, value)
        if verdict is not None:
            yield s, e, c.rule, value, verdict


def _resolve_overlaps(cands: list[_Candidate]) -> list[_Candidate]:
    """Keep the most specific, then most confident, then longest hit where
    spans overlap; a rejected specific token hides generic hits on it."""

    def priority(c: _Candidate) -> tuple[int, bool, int, int, int]:
        s, e, rule, _, verdict = c
        return (rule.specificity, verdict != _REJECT, _CONF_RANK.get(verdict, 0), e - s, -s)

    starts: list[int] = []
    ends: list[int] = []
    kept: list[_Candidate] = []
    for cand in sorted(cands, key=priority, reverse=True):
        s, e = cand[0], cand[1]
        i = bisect.bisect_left(starts, s)
        if (i > 0 and ends[i - 1] > s) or (i < len(starts) and starts[i] < e):
            continue
        starts.insert(i, s)
        ends.insert(i, e)
        if cand[4] != _REJECT:
            kept.append(cand)
    kept.sort(key=lambda c: c[0])
    return kept


def scan_text(text: str, source: str, *, context_lines: int = 3) -> list[SecretFinding]:
    """All findings in `text`, ordered by position. `source` is recorded as is."""
    data = text.encode("utf-8", "replace")  # lone surrogates become one '?' each
    found = _resolve_overlaps(list(_candidates(data)))
    out: list[SecretFinding] = []
    for (_s, _e, rule, value, confidence), (line, col, char_off) in zip(
        found, positions(data, [c[0] for c in found]), strict=False
    ):
        redacted = redact(value)
        ctx: tuple[str, ...] = ()
        if context_lines > 0:
            ctx = _context_lines(
                text,
                char_off,
                char_off + len(value),
                context_lines,
                value,
                redacted,
                beautify=len(out) < _MAX_BEAUTIFIED,
            )
        out.append(
            SecretFinding(
                rule.id,
                rule.title,
                rule.severity,
                confidence,
                source,
                line,
                col,
                value,
                redacted,
                fingerprint(rule.id, value),
                ctx,
            )
        )
    return out


def scan_bytes(data: bytes, source: str, max_size: int = 10_000_000) -> list[SecretFinding]:
    """Scan raw bytes. Inputs over `max_size` raise ValueError (nothing is
    scanned: callers decide whether to read less). Text is UTF-8 with invalid
    bytes replaced, or UTF-16 when it has a BOM. Binary data (NUL bytes) is
    still scanned, since tokens embedded in binaries are real, but gets no
    context lines."""
    if len(data) > max_size:
        raise ValueError(f"{source}: {len(data)} bytes is over the {max_size}-byte scan limit")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        text = data.decode("utf-16", "replace")
    else:
        text = data.decode("utf-8", "replace")
    binary = b"\x00" in data[:8192]
    return scan_text(text, source, context_lines=0 if binary else 3)
