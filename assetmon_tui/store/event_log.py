"""The change-event log: severities, listing and acknowledging events (they
are computed and written by `assetmon_tui.events`, with their snapshot), and
the rules that acknowledge or suppress events.

A rule (`models.EventRule`) matches an event when every field it gives
matches: `event_type` and `host` are globs (`*` any run of characters, `?`
one character, nothing else is special), `fingerprint` is exact, and a rule
without a project applies to every project. Types and host names are stored
in lower case (hosts are lowered at ingestion), so `add_rule` lowers the
patterns and matching itself is case-sensitive: cheap in SQL (GLOB on
SQLite, LIKE on PostgreSQL, no lower() on every row). Rules are
applied when events are read, never written into the events, so a rule made
today covers yesterday's events, and deleting it brings them back.

- a *suppressed* event is left out of the feed (unless asked for, marked),
  of the new-events count, of notifications and of exports;
- a *rule-acknowledged* event is shown as acknowledged, as if `a` had been
  pressed on it, and is never notified.

When both kinds match, suppress wins. The same semantics exist twice, on
purpose: `rule_matches` (Python, for one event at a time: notifications) and
`_rule_clause` (SQL, so that a page of the feed and the count never load
every row); tests check that both agree.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, case, delete, false, func, literal, not_, or_, true, update
from sqlmodel import col, select

from ..core.sanitize import clean_text
from . import db
from .models import Event, EventRule, Project

SEVERITIES = ("info", "low", "medium", "high", "critical")  # ascending
RULE_ACTIONS = ("acknowledge", "suppress")
MAX_PATTERN = 255
MAX_NOTE = 200


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else 0


def at_or_above(severity: str) -> list[str]:
    return list(SEVERITIES[severity_rank(severity) :])


# -- rules ------------------------------------------------------------------------------


def check_rule(
    action: str,
    *,
    project_id: int | None = None,
    event_type: str = "",
    host: str = "",
    fingerprint: str = "",
    note: str = "",
) -> EventRule:
    """The rule these fields make, checked but not stored (`project_id` None:
    every project): ValueError, one line naming what to fix, when the action
    is unknown, no field is given, or a field is malformed or would match every
    event. Surrounding spaces are dropped."""
    action = action.strip().lower()
    if action not in RULE_ACTIONS:
        raise ValueError(f"unknown action {clean_text(action, 40)!r}: choose acknowledge or suppress")
    event_type = _fold(_check_pattern("event type", event_type))
    host = _fold(_check_pattern("host pattern", host))
    fingerprint = _check_field("fingerprint", fingerprint)
    if not (event_type or host or fingerprint):
        raise ValueError("a rule needs an event type, a host pattern or a fingerprint")
    if not fingerprint and all(not p or set(p) == {"*"} for p in (event_type, host)):
        raise ValueError("this rule would match every event: give a narrower event type, host or a fingerprint")
    note = clean_text(note, MAX_NOTE)
    return EventRule(
        project_id=project_id, action=action, event_type=event_type, host=host, fingerprint=fingerprint, note=note
    )


def add_rule(
    action: str,
    *,
    project_id: int | None = None,
    event_type: str = "",
    host: str = "",
    fingerprint: str = "",
    note: str = "",
) -> EventRule:
    """Store a rule: `check_rule`'s checks, and a ValueError too when the
    project does not exist or the same rule exists already."""
    rule = check_rule(
        action, project_id=project_id, event_type=event_type, host=host, fingerprint=fingerprint, note=note
    )
    with db.session() as s:
        if project_id is not None and s.get(Project, project_id) is None:
            raise ValueError(f"no project {project_id}")
        same = s.exec(
            select(EventRule).where(
                col(EventRule.project_id).is_(None) if project_id is None else EventRule.project_id == project_id,
                EventRule.action == rule.action,
                EventRule.event_type == rule.event_type,
                EventRule.host == rule.host,
                EventRule.fingerprint == rule.fingerprint,
            )
        ).first()
        if same is not None:
            raise ValueError(f"the same rule exists already: #{same.id}")
        s.add(rule)
        s.commit()
        s.refresh(rule)
        return rule


def _check_field(what: str, value: str) -> str:
    value = value.strip()
    if len(value) > MAX_PATTERN:
        raise ValueError(f"{what} is too long ({len(value)} characters, at most {MAX_PATTERN})")
    if value != clean_text(value, MAX_PATTERN + 1):
        raise ValueError(f"{what} has control characters or runs of spaces: retype it")
    return value


def _check_pattern(what: str, value: str) -> str:
    value = _check_field(what, value)
    if "[" in value or "]" in value:
        raise ValueError(f"{what} {value!r}: only * and ? are wildcards ([ and ] are not allowed)")
    return value


def list_rules(project_id: int | None = None) -> list[EventRule]:
    """Oldest first. With a project: the rules that apply to it (its own and
    the every-project ones); without: every rule."""
    query = select(EventRule).order_by(col(EventRule.id))
    if project_id is not None:
        query = query.where(or_(col(EventRule.project_id).is_(None), col(EventRule.project_id) == project_id))
    with db.session() as s:
        return list(s.exec(query))


def get_rule(rule_id: int) -> EventRule | None:
    with db.session() as s:
        return s.get(EventRule, rule_id)


def delete_rule(rule_id: int) -> bool:
    """False when there is no such rule. The events it covered are shown again."""
    with db.session() as s:
        result = s.exec(delete(EventRule).where(col(EventRule.id) == rule_id))
        s.commit()
        return bool(result.rowcount)


def _fold(text: str) -> str:
    """ASCII lower case (as host names are stored: "İ".lower() is not ASCII)."""
    return text.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _glob(value: str, pattern: str) -> bool:
    # fnmatch, case-sensitive, with [ taken literally: * and ? are the only wildcards, as in the SQL below
    return fnmatch.fnmatchcase(value, pattern.replace("[", "[[]"))


def rule_matches(rule: EventRule, event: Event) -> bool:
    """The rule's every given field matches the event (see the module's doc)."""
    return (
        (rule.project_id is None or rule.project_id == event.project_id)
        and (not rule.event_type or _glob(event.type or "", rule.event_type))
        and (not rule.host or _glob(event.host or "", rule.host))
        and (not rule.fingerprint or rule.fingerprint == (event.fingerprint or ""))
    )


def _by_precedence(rules: Iterable[EventRule]) -> list[EventRule]:
    """Suppress rules first (they win), then acknowledge rules; oldest first within each."""
    return sorted(rules, key=lambda r: (r.action != "suppress", r.id or 0))


def rule_for(event: Event, rules: Sequence[EventRule]) -> EventRule | None:
    """The rule that decides what happens to the event: the first suppress rule
    that matches it, else the first acknowledge rule, else None."""
    return next((r for r in _by_precedence(rules) if rule_matches(r, event)), None)


def _like(pattern: str) -> str:
    """A glob as a LIKE pattern with "/" as the escape character."""
    out = []
    for ch in pattern:
        if ch == "*":
            out.append("%")
        elif ch == "?":
            out.append("_")
        elif ch in "%_/":
            out.append("/" + ch)
        else:
            out.append(ch)
    return "".join(out)


def _glob_clause(column: Any, pattern: str, sqlite: bool) -> ColumnElement[bool]:
    """Case-sensitive glob matching: SQLite's GLOB (its LIKE ignores case), PostgreSQL's LIKE."""
    if sqlite:
        return col(column).op("GLOB", is_comparison=True)(pattern.replace("[", "[[]"))
    return col(column).like(_like(pattern), escape="/")


def _rule_clause(rule: EventRule, sqlite: bool) -> ColumnElement[bool]:
    """`rule_matches` in SQL (the columns are NOT NULL)."""
    parts: list[ColumnElement[bool]] = []
    if rule.project_id is not None:
        parts.append(col(Event.project_id) == rule.project_id)
    if rule.event_type:
        parts.append(_glob_clause(Event.type, rule.event_type, sqlite))
    if rule.host:
        parts.append(_glob_clause(Event.host, rule.host, sqlite))
    if rule.fingerprint:
        parts.append(col(Event.fingerprint) == rule.fingerprint)
    return and_(true(), *parts)


def _any_clause(rules: Iterable[EventRule], sqlite: bool) -> ColumnElement[bool]:
    return or_(false(), *[_rule_clause(r, sqlite) for r in rules])


def _on_sqlite() -> bool:
    return db.get_engine().dialect.name == "sqlite"


def rule_preview(rule: EventRule) -> tuple[int, int]:
    """For a rule being written (not stored): how many stored events it
    matches, and how many of them are new (unacknowledged)."""
    unacknowledged = func.count(case((col(Event.acknowledged).is_(False), 1)))
    query = select(func.count(), unacknowledged).where(_rule_clause(rule, _on_sqlite()))
    with db.session() as s:
        total, new = s.exec(query).one()
        return int(total), int(new)


# -- events -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedEvent:
    """An event as the feed, exports and counts see it: with the rule that
    acknowledges or suppresses it, if any."""

    event: Event
    rule: EventRule | None = None

    @property
    def suppressed(self) -> bool:
        return self.rule is not None and self.rule.action == "suppress"

    @property
    def acknowledged(self) -> bool:
        """Acknowledged by hand or by a rule (a suppressed event is neither new nor shown)."""
        return self.event.acknowledged or self.rule is not None

    @property
    def acknowledged_by_rule(self) -> bool:
        return self.rule is not None and self.rule.action == "acknowledge"


def scan_events(scan_id: int) -> list[Event]:
    """Every event of one scan as stored (rules not applied), oldest first."""
    with db.session() as s:
        return list(s.exec(select(Event).where(Event.scan_id == scan_id).order_by(col(Event.id))))


def list_feed(
    project_id: int | None = None,
    severity: str | None = None,
    type: str | None = None,
    unacknowledged_only: bool = False,
    limit: int | None = 500,
    since_scan: int | None = None,
    *,
    include_suppressed: bool = False,
    scan_id: int | None = None,
    offset: int = 0,
) -> list[FeedEvent]:
    """Newest first, at most `limit` (None: all) after the first `offset`, each with the rule that
    decides it. `severity` is a minimum: "high" lists high and critical.
    Suppressed events are left out unless `include_suppressed`;
    `unacknowledged_only` leaves out acknowledged ones, by hand or by rule
    (and suppressed ones: they are never new). Filtering is done in SQL, so a
    page costs the same with 100 or 100,000 events."""
    rules = _by_precedence(list_rules(project_id))
    sqlite = _on_sqlite()
    query: Any = select(Event)
    if rules:
        decided = case(*[(_rule_clause(r, sqlite), literal(r.id)) for r in rules], else_=None).label("rule_id")
        query = select(Event, decided)
    query = query.order_by(col(Event.id).desc()).limit(limit).offset(offset or None)
    query = _feed_filters(
        query, rules, sqlite, project_id, severity, type, unacknowledged_only, since_scan, include_suppressed, scan_id
    )
    by_id = {r.id: r for r in rules}
    with db.session() as s:
        if not rules:
            return [FeedEvent(e) for e in s.exec(query)]
        return [FeedEvent(e, by_id.get(rule_id)) for e, rule_id in s.exec(query)]


def feed_count(
    project_id: int | None = None,
    severity: str | None = None,
    type: str | None = None,
    unacknowledged_only: bool = False,
    since_scan: int | None = None,
    *,
    include_suppressed: bool = False,
    scan_id: int | None = None,
) -> int:
    """How many events `list_feed` lists with the same filters and no limit (a feed shown page by page says so)."""
    rules = _by_precedence(list_rules(project_id))
    sqlite = _on_sqlite()
    query: Any = select(func.count()).select_from(Event)
    query = _feed_filters(
        query, rules, sqlite, project_id, severity, type, unacknowledged_only, since_scan, include_suppressed, scan_id
    )
    with db.session() as s:
        return int(s.exec(query).one())


def _feed_filters(
    query: Any,
    rules: list[EventRule],
    sqlite: bool,
    project_id: int | None,
    severity: str | None,
    type: str | None,
    unacknowledged_only: bool,
    since_scan: int | None,
    include_suppressed: bool,
    scan_id: int | None,
) -> Any:
    """The feed's WHERE clauses (list_feed, feed_count)."""
    if project_id is not None:
        query = query.where(Event.project_id == project_id)
    if scan_id is not None:
        query = query.where(Event.scan_id == scan_id)
    if severity:
        query = query.where(col(Event.severity).in_(at_or_above(severity)))
    if type:
        query = query.where(Event.type == type)
    if unacknowledged_only:
        query = query.where(col(Event.acknowledged).is_(False))
        if rules:
            query = query.where(not_(_any_clause(rules, sqlite)))
    elif not include_suppressed and any(r.action == "suppress" for r in rules):
        query = query.where(not_(_any_clause((r for r in rules if r.action == "suppress"), sqlite)))
    if since_scan is not None:
        query = query.where(Event.scan_id > since_scan)
    return query


def list_events(
    project_id: int | None = None,
    severity: str | None = None,
    type: str | None = None,
    unacknowledged_only: bool = False,
    limit: int | None = 500,
    since_scan: int | None = None,
    *,
    include_suppressed: bool = False,
    scan_id: int | None = None,
) -> list[Event]:
    """`list_feed`'s events, with the rule-acknowledged ones (and, when
    included, the suppressed ones) showing `acknowledged` True. The rows are
    detached copies: that flag is not written back. Callers that need to tell
    suppressed from acknowledged use `list_feed`."""
    feed = list_feed(
        project_id,
        severity,
        type,
        unacknowledged_only,
        limit,
        since_scan,
        include_suppressed=include_suppressed,
        scan_id=scan_id,
    )
    for item in feed:
        if item.rule is not None:
            item.event.acknowledged = True
    return [item.event for item in feed]


def acknowledge(event_ids: Iterable[int]) -> int:
    ids = list(event_ids)
    if not ids:
        return 0
    with db.session() as s:
        result = s.exec(update(Event).where(col(Event.id).in_(ids)).values(acknowledged=True))
        s.commit()
        return result.rowcount


def unacknowledged_count(project_id: int | None = None) -> int:
    """New events: neither acknowledged (by hand or by a rule) nor suppressed. One COUNT in SQL."""
    query = select(func.count()).select_from(Event).where(col(Event.acknowledged).is_(False))
    if project_id is not None:
        query = query.where(Event.project_id == project_id)
    rules = list_rules(project_id)
    if rules:
        query = query.where(not_(_any_clause(rules, _on_sqlite())))
    with db.session() as s:
        return s.exec(query).one()


def suppressed_count(project_id: int | None = None, since_scan: int | None = None) -> int:
    """Events a suppress rule hides (from the feed, notifications and exports)."""
    rules = [r for r in list_rules(project_id) if r.action == "suppress"]
    if not rules:
        return 0
    query = select(func.count()).select_from(Event).where(_any_clause(rules, _on_sqlite()))
    if project_id is not None:
        query = query.where(Event.project_id == project_id)
    if since_scan is not None:
        query = query.where(Event.scan_id > since_scan)
    with db.session() as s:
        return s.exec(query).one()
