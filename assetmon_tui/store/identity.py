"""The database's own id: random, made once by the first process that asks,
and the same for every process that opens that database, however its URL is
spelled. It names the Celery queue (`worker.celery_app`) and marks the
workers' and runners' heartbeats (`core.fleet`), so installs that share one
Redis (a server's system Redis) take only their own scans and count only
their own workers."""

from __future__ import annotations

import contextlib
import threading
import uuid

from ..core.config import get_settings, normalise_url

_known: dict[str, str] = {}  # database URL -> id: it never changes, one read per process
_lock = threading.Lock()


def store_id() -> str:
    """12 hex digits naming this database."""
    url = normalise_url(get_settings().db_url)
    with _lock:
        if url not in _known:
            _known[url] = _read_or_make()
        return _known[url]


def known_store_id() -> str:
    """The id if this database has one, read without the ORM (a health check
    stays quick); "" when it has none yet: no worker took its queue then."""
    url = normalise_url(get_settings().db_url)
    with _lock:
        if url in _known:
            return _known[url]
    found = _plain_read(url)
    if found:
        with _lock:
            _known[url] = found
    return found


def _plain_read(url: str) -> str:
    query = "SELECT value FROM store_meta WHERE key = 'id'"
    try:
        if url.startswith("sqlite:///"):
            import sqlite3

            path = url.removeprefix("sqlite:///").split("?", 1)[0]
            with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as conn:
                row = conn.execute(query).fetchone()
        else:
            import psycopg

            with psycopg.connect(url.replace("+psycopg", "", 1), connect_timeout=5) as conn:
                row = conn.execute(query).fetchone()
    except Exception:  # no file, no table yet, no server: no id known
        return ""
    return str(row[0]) if row else ""


def _read_or_make() -> str:
    from sqlalchemy.exc import IntegrityError

    from .db import session
    from .models import StoreMeta

    with session() as s:
        row = s.get(StoreMeta, "id")
        if row is not None:
            return row.value
        s.add(StoreMeta(key="id", value=uuid.uuid4().hex[:12]))
        try:
            s.commit()
        except IntegrityError:  # another process made it a moment ago: theirs it is
            s.rollback()
    with session() as s:
        made = s.get(StoreMeta, "id")
        assert made is not None
        return made.value
