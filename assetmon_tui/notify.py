"""Notifications: one message per notifier per scan, through apprise.

A notifier is an apprise URL (json://host:port/path, mailto://..., tgram://...)
attached to a project with a minimum severity. A delivery is a Delivery row,
stored as pending before anything is sent; a round is a few attempts with a
short backoff, every attempt logged, the outcome stored. A receiver that is
down gets more rounds later (RETRY_AFTER), and a pending row whose sender was
killed mid-send (a process that exited, a worker lost) is taken over once it is
STALE: `deliver_due`, run in the background by every reaper pass. Nothing here
raises to the caller: a notification failure never fails a scan.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from .core.sanitize import clean_text
from .store import notifiers as rows
from .store import repo
from .store.event_log import SEVERITIES, at_or_above, list_rules, rule_for, scan_events, severity_rank
from .store.models import Delivery, Event, Notifier, as_utc, utcnow
from .store.notifiers import delete_notifier, list_deliveries, list_notifiers

__all__ = [
    "SEVERITIES",
    "Delivery",
    "Notifier",
    "add_notifier",
    "delete_notifier",
    "deliver_due",
    "deliver_due_in_background",
    "format_message",
    "list_deliveries",
    "list_notifiers",
    "notifiable",
    "notify_scan",
    "redacted_url",
    "send",
    "send_test",
    "set_notifier",
]

if TYPE_CHECKING:
    import apprise

log = logging.getLogger(__name__)

ATTEMPTS = 3
BACKOFF = 0.5  # seconds, doubled after each failed attempt
MAX_LINES = 50  # events listed in one message; the rest are counted
NOT_NOTIFIED = ("baseline",)  # a first scan is not a change
STALE = 300.0  # seconds pending: its sender is gone (a round takes under 30 s: apprise waits 4+4 s per attempt)
RETRY_AFTER = (60.0, 600.0, 3600.0)  # seconds after the 1st, 2nd, 3rd failed round; after the 4th it stays failed
DUE_PER_PASS = 5  # deliveries one pass sends at most: a pass is a background thread, not a backlog


def notifiable(events: list[Event], project_id: int) -> list[Event]:
    """The events a notification may list: not a baseline, not quiet (an asset
    missed once: unconfirmed), not acknowledged by hand, and neither
    acknowledged nor suppressed by a rule (rules are read now, so a rule made
    after the scan but before a retried delivery applies too)."""
    rules = list_rules(project_id)
    return [
        e
        for e in events
        if e.type not in NOT_NOTIFIED and not e.quiet and not e.acknowledged and rule_for(e, rules) is None
    ]


def _apprise(url: str) -> apprise.Apprise:
    """An Apprise object holding exactly this URL; ValueError if apprise cannot parse it."""
    import apprise  # ~0.3 s: only when a notifier is used

    obj = apprise.Apprise()
    if not obj.add(url):
        raise ValueError(f"not a notification URL apprise understands: {redacted_url(url)!r}")
    return obj


def redacted_url(url: str) -> str:
    """The URL with passwords and tokens masked, for screens and logs."""
    try:
        import apprise

        plugin = apprise.Apprise.instantiate(url)
        if plugin:
            # apprise ships type hints but leaves URLBase.url() unannotated
            shown: str = plugin.url(privacy=True)  # type: ignore[no-untyped-call]
            return shown.split("?", 1)[0]  # the query holds only apprise's options
    except Exception:
        pass
    return url.split("://", 1)[0] + "://…" if "://" in url else "…"


def add_notifier(project_id: int, url: str, min_severity: str = "medium", enabled: bool = True) -> Notifier:
    url = url.strip()
    if min_severity not in SEVERITIES:
        raise ValueError(f"unknown severity {min_severity!r} (choose from {', '.join(SEVERITIES)})")
    _apprise(url)
    return rows.add_notifier(project_id, url, min_severity, enabled)


def set_notifier(notifier_id: int, *, enabled: bool | None = None, min_severity: str | None = None) -> None:
    values: dict[str, bool | str] = {}
    if enabled is not None:
        values["enabled"] = enabled
    if min_severity is not None:
        if min_severity not in SEVERITIES:
            raise ValueError(f"unknown severity {min_severity!r}")
        values["min_severity"] = min_severity
    if values:
        rows.update_notifier(notifier_id, **values)


def format_message(project: str, events: list[Event]) -> tuple[str, str]:
    """Title and plain-text body: one line per event, severity as a plain word."""
    ordered = sorted(events, key=lambda e: (-severity_rank(e.severity), e.id or 0))
    n = len(events)
    title = f"AssetMon: {n} change{'s' if n != 1 else ''} in {clean_text(project, 80)}"
    lines = [f"{str(e.severity):<8} {str(e.type):<20} {clean_text(e.summary, 300)}" for e in ordered[:MAX_LINES]]
    if n > MAX_LINES:
        lines.append(f"... and {n - MAX_LINES} more (see AssetMon)")
    return title, "\n".join(lines)


def send(
    url: str,
    title: str,
    body: str,
    severity: str = "info",
    attempts: int = ATTEMPTS,
    backoff: float = BACKOFF,
    what: str = "message",
) -> tuple[bool, int, str]:
    """Deliver one message with retries: (ok, attempts made, last error)."""
    import apprise

    notify_type = (
        apprise.NotifyType.FAILURE
        if severity_rank(severity) >= severity_rank("high")
        else apprise.NotifyType.WARNING
        if severity == "medium"
        else apprise.NotifyType.INFO
    )
    try:
        obj = _apprise(url)
    except ValueError as exc:  # retrying cannot help
        log.warning("%s not sent: %s", what, exc)
        return False, 0, str(exc)
    error = ""
    for attempt in range(1, attempts + 1):
        try:
            # apprise ships type hints but leaves LogCapture unannotated
            capture = apprise.LogCapture(level=logging.WARNING, fmt="%(message)s")  # type: ignore[no-untyped-call]
            with capture as captured:
                ok = bool(
                    obj.notify(title=title, body=body, notify_type=notify_type, body_format=apprise.NotifyFormat.TEXT)
                )
            error = "" if ok else clean_text(captured.getvalue(), 500) or "delivery failed"
        except Exception as exc:
            ok, error = False, f"{type(exc).__name__}: {exc}"
        log.log(
            logging.INFO if ok else logging.WARNING,
            "%s to %s: attempt %d/%d %s",
            what,
            redacted_url(url),
            attempt,
            attempts,
            "sent" if ok else f"failed: {error}",
        )
        if ok:
            return True, attempt, ""
        if attempt < attempts:
            time.sleep(backoff * 2 ** (attempt - 1))
    return False, attempts, error


def notify_scan(scan_id: int, attempts: int = ATTEMPTS, backoff: float = BACKOFF) -> list[Delivery]:
    """Send the scan's events to each enabled notifier of its project (those at
    or above its minimum severity, batched in one message; see `notifiable` for
    what is never sent). A delivery already sent is not repeated; a failed one
    is retried. Never raises."""
    try:
        scan = repo.get_scan(scan_id)
        events = notifiable(scan_events(scan_id), scan.project_id)
        notifiers = list_notifiers(scan.project_id, enabled_only=True)
        project = repo.project_name(scan.project_id)
    except Exception:
        log.exception("notifications for scan %s: could not read the scan", scan_id)
        return []
    deliveries = []
    for notifier in notifiers:
        try:
            delivery = _deliver(notifier, scan_id, project, events, attempts, backoff)
        except Exception:  # e.g. the database went away: log, go on
            log.exception("notifier %s, scan %s: delivery not recorded", notifier.id, scan_id)
            continue
        if delivery is not None:
            deliveries.append(delivery)
    return deliveries


def due(delivery: Delivery, now: datetime) -> bool:
    """Whether a delivery not sent should be tried again now."""
    since = now - (as_utc(delivery.updated_at) or now)
    if delivery.status == "pending":
        return since >= timedelta(seconds=STALE)
    if delivery.status != "failed":
        return False
    rounds = math.ceil(delivery.attempts / ATTEMPTS)  # 0: the URL itself is wrong, no round can help
    return 0 < rounds <= len(RETRY_AFTER) and since >= timedelta(seconds=RETRY_AFTER[rounds - 1])


def deliver_due(
    now: datetime | None = None, attempts: int = ATTEMPTS, backoff: float = BACKOFF, limit: int = DUE_PER_PASS
) -> list[Delivery]:
    """Send the deliveries that are `due`: a round each, with the scan's events
    as they are now (acknowledged or suppressed since: not listed). Never raises."""
    now = now or utcnow()
    sent: list[Delivery] = []
    try:
        waiting = [d for d in rows.unsent_deliveries(now - timedelta(days=1)) if due(d, now)][:limit]
        by_id = {n.id: n for n in list_notifiers()} if waiting else {}
        for delivery in waiting:
            notifier = by_id.get(delivery.notifier_id)
            if notifier is None:
                continue
            scan = repo.get_scan(delivery.scan_id)
            events = notifiable(scan_events(delivery.scan_id), scan.project_id)
            project = repo.project_name(scan.project_id)
            log.info("notifier %s, scan %s: delivering again (%s)", notifier.id, delivery.scan_id, delivery.status)
            again = _deliver(notifier, delivery.scan_id, project, events, attempts, backoff, now)
            if again is None:  # every event it would list was acknowledged or suppressed since
                delivery.status, delivery.last_error = "dropped", "nothing left to send"
                again = rows.save_delivery(delivery)
            sent.append(again)
    except Exception:  # the database away: the next pass tries again
        log.exception("notifications: the pass over deliveries not sent failed")
    return sent


_passing = threading.Lock()


def deliver_due_in_background() -> None:
    """`deliver_due` in a daemon thread, one at a time per process (a reaper
    pass must not wait for a slow receiver)."""

    def run() -> None:
        try:
            deliver_due()
        finally:
            _passing.release()

    if _passing.acquire(blocking=False):
        threading.Thread(target=run, name="assetmon-deliveries", daemon=True).start()


def _deliver(
    notifier: Notifier,
    scan_id: int,
    project: str,
    events: list[Event],
    attempts: int,
    backoff: float,
    now: datetime | None = None,
) -> Delivery | None:
    """One round for one notifier and scan; None when there is nothing to say,
    or another sender has it; the row as it ends otherwise (sent ones: as they are)."""
    wanted = set(at_or_above(notifier.min_severity))
    selected = [e for e in events if e.severity in wanted]
    if not selected:
        return None
    assert notifier.id is not None  # a stored row
    now = now or utcnow()
    delivery = rows.claim_delivery(notifier.id, scan_id, now, pending_before=now - timedelta(seconds=STALE))
    if delivery is None:
        return rows.get_delivery(notifier.id, scan_id)
    title, body = format_message(project, selected)
    worst = max((e.severity for e in selected), key=severity_rank)
    ok, tries, error = send(
        notifier.url, title, body, worst, attempts, backoff, what=f"notifier {notifier.id}, scan {scan_id}"
    )
    delivery.status = "sent" if ok else "failed"
    delivery.attempts += tries
    delivery.events = len(selected)
    delivery.last_error = error
    return rows.save_delivery(delivery)


def send_test(notifier_id: int) -> tuple[bool, str]:
    """A test message from the TUI: (ok, error)."""
    notifier = next((n for n in list_notifiers() if n.id == notifier_id), None)
    if notifier is None:
        return False, f"no notifier {notifier_id}"
    ok, _, error = send(
        notifier.url,
        "AssetMon: test notification",
        f"Notifications for {repo.project_name(notifier.project_id)} reach you.",
        attempts=1,
        what=f"notifier {notifier_id} test",
    )
    return ok, error
