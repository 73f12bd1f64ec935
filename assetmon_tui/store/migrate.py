"""Schema migrations (Alembic, driven from here: no alembic.ini) and the
integrity check, run when a process opens the database (`db.get_engine`).

- A new database gets the tables of the code and is stamped with the head
  revision; one without a revision (made before migrations) is adopted by the
  baseline; one at an older revision is upgraded; one at a revision this code
  does not know (made by a newer AssetMon) is refused.
- Several processes (TUI, workers, beat) may open an old or new database at
  the same moment: whoever changes the schema holds a lock (SQLite: BEGIN
  EXCLUSIVE; PostgreSQL: a transaction advisory lock) and looks at the
  revision again once it has it, so the others find the work done.
- SQLite files are checked with `PRAGMA quick_check` before anything writes.

Opening a database already at the head costs one plain query of
alembic_version (compared with `HEAD`, a constant a test checks against the
migrations folder): Alembic and the table models (~0.25 s and ~0.2 s of
imports) are loaded only when the schema must be looked at or changed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DatabaseError

if TYPE_CHECKING:  # Alembic is imported when a schema is looked at or changed, not on every open
    from alembic.config import Config
    from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).with_name("migrations")
HEAD = "0004"  # the newest revision in migrations/versions (tests/test_migrations.py checks it)
VERSION_TABLE = "alembic_version"  # Alembic's default, which env.py keeps
_LOCK_KEY = 0x61737365746D6F6E  # "assetmon": the advisory lock of schema changes (PostgreSQL)


class StoreUnusable(RuntimeError):
    """The database cannot be used as it is; the message is one line saying what to do."""


def _config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


@cache
def _script() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config())


def head() -> str:
    revision = _script().get_current_head()
    assert revision is not None
    return revision


def known_revisions() -> set[str]:
    return {script.revision for script in _script().walk_revisions()}


def current(engine: Engine) -> str | None:
    """The database's revision (None: new, or made before migrations)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _stamped(engine: Engine) -> str | None:
    """The one revision in the version table, read with plain SQL; None when
    there is no table, no row or more than one (Alembic is asked then)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table(VERSION_TABLE):
            return None
        rows = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).fetchmany(2)
    return str(rows[0][0]) if len(rows) == 1 else None


def where(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def ensure(engine: Engine) -> None:
    """What a process does when it opens the database: check it, then bring
    its schema to the head (cheap when it is there already: no Alembic)."""
    check_integrity(engine)
    if _stamped(engine) == HEAD:
        return
    revision = current(engine)
    if revision == head():
        return
    _refuse_unknown(engine, revision)
    upgrade(engine)


def _refuse_unknown(engine: Engine, revision: str | None) -> None:
    if revision is not None and revision not in known_revisions():
        raise StoreUnusable(
            f"the database {where(engine)} is at revision {revision}, made by a newer AssetMon "
            f"(this one knows up to {head()}): upgrade AssetMon, or `assetmon restore` a backup made by this version"
        )


def upgrade(engine: Engine) -> str:
    """Bring the schema to the head under the migration lock; return the revision."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from sqlmodel import SQLModel

    from . import models  # noqa: F401  (registers every table on the metadata)

    with _locked(engine) as conn:
        revision = MigrationContext.configure(conn).get_current_revision()
        _refuse_unknown(engine, revision)
        if revision is None and not inspect(conn).has_table("project"):
            SQLModel.metadata.create_all(conn)  # a new database: the tables of the code, at the head
            command.stamp(_config(conn), "head")
        elif revision != head():
            command.upgrade(_config(conn), "head")
        return head()


@contextmanager
def _locked(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that holds the migration lock; committed at the end."""
    with engine.connect() as conn:
        sqlite = engine.dialect.name == "sqlite"
        if sqlite:
            # Foreign keys off while tables are copied (a dropped parent would
            # cascade); the pragma only takes effect outside a transaction.
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            conn.exec_driver_sql("BEGIN EXCLUSIVE")  # waits (busy timeout) for another migrating process
        else:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        try:
            yield conn
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            if sqlite:
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                conn.commit()


def check_integrity(engine: Engine) -> None:
    """SQLite only: refuse a damaged file before anything writes to it."""
    if engine.dialect.name != "sqlite":
        return
    database = engine.url.database
    if not database or database == ":memory:" or not Path(database).exists():
        return
    try:
        with engine.connect() as conn:
            rows = [str(row[0]) for row in conn.exec_driver_sql("PRAGMA quick_check").fetchall()]
    except DatabaseError as exc:
        rows = [str(exc.orig or exc).splitlines()[0]]
    if rows != ["ok"]:
        raise StoreUnusable(
            f"the database {database} is damaged ({rows[0]}): "
            "restore a backup with `assetmon restore FILE` (keep a copy of the damaged file first)"
        )
