"""`assetmon backup FILE` and `assetmon restore FILE`.

- SQLite: SQLite's online backup API (`sqlite3.Connection.backup`) copies a
  consistent image of the database while workers write to it (each step sees
  one committed state; a write during the copy restarts the copy of what
  changed). FILE is itself a SQLite database, 0600. Restore copies it back
  the same way, so processes that still have the database open see either
  the old or the new contents, never a half-written file.
- PostgreSQL: `pg_dump --format=custom` (one consistent snapshot, whatever
  writes meanwhile) and `pg_restore --clean --if-exists --single-transaction`.
  Both need the PostgreSQL client tools on PATH; without them the command
  says so (a dump by the server's own tools is the one to trust).

A restored database is then checked and brought to this code's schema
(`migrate.upgrade`), so a backup made by an older release can be restored.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path

from sqlalchemy.engine import make_url

from ..core.config import get_settings, normalise_url
from . import db, migrate, repo


class BackupError(RuntimeError):
    """One line: what went wrong and what to do."""


def _url() -> str:
    return normalise_url(get_settings().db_url)


def _sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    return Path(parsed.database or "") if parsed.get_backend_name() == "sqlite" else None


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _private(path: Path) -> None:
    os.chmod(path, 0o600)


def backup(dest: Path) -> str:
    """Write a consistent copy of the database to `dest`; return where from."""
    url = _url()
    if dest.exists():
        raise BackupError(f"{dest} exists: choose a new file name (a backup never overwrites one)")
    if not dest.parent.is_dir():
        raise BackupError(f"{dest.parent} is not a folder: create it first")
    path = _sqlite_path(url)
    if path is None:
        _run("pg_dump", ["--format=custom", "--no-owner", f"--file={dest}", _libpq(url)])
        _private(dest)
        return migrate.where(db.make_engine(url))
    if not path.exists():
        raise BackupError(f"there is no database at {path} yet: nothing to back up")
    fd, tmp = tempfile.mkstemp(prefix=".backup-", suffix=".db", dir=dest.parent)
    os.close(fd)
    try:
        _private(Path(tmp))
        source = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        target = sqlite3.connect(tmp)
        try:
            source.backup(target, pages=1024)
            target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        finally:
            target.close()
            source.close()
        os.replace(tmp, dest)
    except sqlite3.Error as exc:
        raise BackupError(f"could not back up {path}: {exc}") from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return str(path)


def active_scans() -> list[int] | None:
    """Ids of queued or running scans in the current database (None: it cannot be read)."""
    try:
        return [scan.id for scan in repo.active_scans() if scan.id is not None]
    except migrate.StoreUnusable:
        return None


def restore(src: Path) -> str:
    """Replace the database with the backup `src`, then upgrade it; return its revision."""
    url = _url()
    if not src.is_file():
        raise BackupError(f"{src} is not a file")
    path = _sqlite_path(url)
    _forget(url)
    if path is None:
        _run(
            "pg_restore",
            ["--clean", "--if-exists", "--no-owner", "--single-transaction", f"--dbname={_libpq(url)}", str(src)],
        )
    else:
        _restore_sqlite(src, path)
    _forget(url)
    engine = db.make_engine(url)
    try:
        migrate.check_integrity(engine)
        return migrate.upgrade(engine)
    finally:
        engine.dispose()


def _restore_sqlite(src: Path, path: Path) -> None:
    try:
        source = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
        try:
            check = source.execute("PRAGMA quick_check").fetchone()
            tables = {row[0] for row in source.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"{src} is not a usable SQLite database ({exc})") from exc
        if not check or check[0] != "ok":
            raise BackupError(f"{src} is damaged ({check[0] if check else 'no answer'}): choose another backup")
        if "project" not in tables:
            raise BackupError(f"{src} is not an AssetMon database (no project table)")
        path.parent.mkdir(parents=True, exist_ok=True)
        damaged = path.exists() and not _readable(path)
        if damaged:  # the backup API cannot write over a file SQLite cannot read: set it aside
            aside = path.with_name(path.name + ".damaged")
            for suffix in ("", "-wal", "-shm"):
                old = Path(str(path) + suffix)
                if old.exists():
                    os.replace(old, Path(str(aside) + suffix))
        target = sqlite3.connect(path, timeout=30)
        try:
            source.backup(target)
        finally:
            target.close()
            source.close()
        _private(path)
    except sqlite3.Error as exc:
        raise BackupError(f"could not restore {src} into {path}: {exc}") from exc


def _readable(path: Path) -> bool:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return bool(conn.execute("PRAGMA quick_check").fetchone() == ("ok",))
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return False


def _forget(url: str) -> None:
    """Close this process's connections to the database being replaced."""
    for key, engine in list(db._engines.items()):
        if key[1] == url:
            engine.dispose()
            del db._engines[key]


def _run(tool: str, args: list[str]) -> None:
    exe = shutil.which(tool)
    if exe is None:
        raise BackupError(
            f"{tool} is not on PATH: install the PostgreSQL client tools (e.g. apt install postgresql-client)"
        )
    done = subprocess.run([exe, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise BackupError(f"{tool} failed: {lines[-1] if lines else f'exit {done.returncode}'}")
