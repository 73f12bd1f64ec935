"""What makes a screen the same on every run (SVG snapshots, screen-text checks):
UTC and the thread backend, every stored time rewritten to a fixed instant, no
blinking cursor; and waiting for what a Pilot-driven screen shows."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Input, TextArea

from assetmon_tui.core.config import get_settings

BASE = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


@contextmanager
def utc(monkeypatch: Any) -> Iterator[None]:
    """Local time is UTC (C's tzset: monkeypatch alone does not reach it), and back after."""
    old_tz = os.environ.get("TZ")
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        yield
    finally:
        if old_tz is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = old_tz
        time.tzset()


@contextmanager
def utc_thread_world(monkeypatch: Any) -> Iterator[None]:
    """UTC times and the thread backend (its header is fixed: no Redis asked)."""
    monkeypatch.setenv("ASSETMON_BACKEND", "thread")  # header: "Local thread · ASSETMON_BACKEND=thread"
    get_settings.cache_clear()
    with utc(monkeypatch):
        yield


def freeze_times(minutes: Mapping[str, int] | None = None) -> None:
    """Every stored time becomes BASE + the row's rank (by id) in hours + `minutes` of its
    column (others: on the hour): the same on every run and on both databases."""
    from sqlalchemy import DateTime, select, update
    from sqlmodel import SQLModel

    from assetmon_tui.store.db import session

    minutes = minutes or {}
    with session() as s:
        conn = s.connection()
        for table in SQLModel.metadata.sorted_tables:
            columns = [c for c in table.columns if isinstance(getattr(c.type, "impl", c.type), DateTime)]
            if not columns or "id" not in table.c:
                continue
            rows = conn.execute(select(table.c.id, *columns).order_by(table.c.id)).all()
            for number, row in enumerate(rows, 1):
                values = {
                    c.name: BASE + timedelta(hours=number, minutes=minutes.get(c.name, 0))
                    for c in columns
                    if row._mapping[c.name] is not None
                }
                if values:
                    conn.execute(update(table).where(table.c.id == row.id).values(values))
        s.commit()


def screen_text(pilot: Pilot) -> str:
    return "\n".join(strip.text for strip in pilot.app.screen._compositor.render_strips())


async def until(pilot: Pilot, condition: Callable[[], Any], what: str, timeout: float = 20.0) -> None:
    for _ in range(int(timeout / 0.05)):
        await pilot.pause(0.05)
        if condition():
            return
    raise AssertionError(f"timed out waiting for {what}\n{screen_text(pilot)}")


async def showing(pilot: Pilot, *needles: str) -> str:
    await until(pilot, lambda: all(n in screen_text(pilot) for n in needles), f"the screen to show {needles}")
    return screen_text(pilot)


async def settle(pilot: Pilot) -> None:
    """Let the last updates land, then stop every cursor blinking."""
    await pilot.pause(0.3)
    for widget in pilot.app.screen.query(Input):
        widget.cursor_blink = False
    for area in pilot.app.screen.query(TextArea):
        area.cursor_blink = False
    await pilot.pause(0.1)
