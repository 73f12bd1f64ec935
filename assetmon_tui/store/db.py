"""Engine and sessions: SQLite (WAL, busy timeout) by default, PostgreSQL via DATABASE_URL."""

from __future__ import annotations

import os
import threading
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

from ..core.config import get_settings
from .models import create_tables

_engines: dict[tuple[int, str], Engine] = {}
_lock = threading.Lock()


def normalise_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL whatever spelling the user chose."""
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cur.execute("PRAGMA busy_timeout=30000")  # TUI and workers share the file
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def get_engine(url: str | None = None) -> Engine:
    """One engine per process and URL (a forked Celery child makes its own)."""
    url = normalise_url(url or get_settings().db_url)
    key = (os.getpid(), url)
    with _lock:
        engine = _engines.get(key)
        if engine is None:
            if url.startswith("sqlite"):
                engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
                event.listen(engine, "connect", _sqlite_pragmas)
            else:
                engine = create_engine(
                    url, pool_pre_ping=True, pool_size=5, max_overflow=5, connect_args={"options": "-c TimeZone=UTC"}
                )  # stored times are UTC
            create_tables(engine)
            _engines[key] = engine
        return engine


def session() -> Session:
    return Session(get_engine(), expire_on_commit=False)
