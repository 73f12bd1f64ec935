"""Engine and sessions: SQLite (WAL, busy timeout) by default, PostgreSQL via DATABASE_URL."""

from __future__ import annotations

import os
import threading
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

from ..core.config import get_settings, normalise_url
from .migrate import ensure

_engines: dict[tuple[int, str], Engine] = {}
_lock = threading.Lock()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cur.execute("PRAGMA busy_timeout=30000")  # TUI and workers share the file
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def make_engine(url: str) -> Engine:
    """An engine with our connection settings, without checks or migrations
    (`get_engine` is what the rest of the code uses)."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(
        url, pool_pre_ping=True, pool_size=5, max_overflow=5, connect_args={"options": "-c TimeZone=UTC"}
    )  # stored times are UTC


def get_engine(url: str | None = None) -> Engine:
    """One engine per process and URL (a forked Celery child makes its own).
    Opening it checks the database and brings its schema to the code's
    (`store.migrate`), once per process."""
    url = normalise_url(url or get_settings().db_url)
    key = (os.getpid(), url)
    with _lock:
        engine = _engines.get(key)
        if engine is None:
            engine = make_engine(url)
            try:
                ensure(engine)
            except BaseException:
                engine.dispose()
                raise
            _engines[key] = engine
        return engine


def session() -> Session:
    return Session(get_engine(), expire_on_commit=False)
