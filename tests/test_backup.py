"""Integrity, backup and restore: a damaged SQLite file is refused (and not
written to), a backup taken while a real scan writes is consistent, and
restoring it into a fresh home brings the rows back."""

from __future__ import annotations

import hashlib
import os
import random
import stat
import subprocess
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from support.scenario import estate, make_project

from assetmon_tui.core.config import get_settings, normalise_url
from assetmon_tui.store import db, migrate, repo
from assetmon_tui.testing import ROOT, VENV_BIN, wait_for

POSTGRES = os.environ.get("DATABASE_URL", "").startswith("postgres")


def assetmon(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "assetmon"), *args], cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=120
    )


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.skipif(POSTGRES, reason="PRAGMA quick_check is SQLite's: the PostgreSQL server checks its own pages")
def test_a_damaged_sqlite_file_is_refused_in_one_line_not_written_to_and_restored(no_redis, tmp_path):
    project_id = make_project()
    with db.session() as s:  # a real database of a few hundred pages
        for i in range(3000):
            repo.upsert_host(s, project_id, f"host-{i:05d}.{'x' * 60}.scan.test", None, dns_status="ok")
        s.commit()
    path = Path(make_url(get_settings().db_url).database or "")
    engine = db.get_engine()
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    db._engines.clear()
    engine.dispose()
    saved = assetmon("backup", str(tmp_path / "before.db"))
    assert saved.returncode == 0, saved.stderr
    page = 4096
    pages = path.stat().st_size // page
    assert pages > 50
    rng = random.Random(11)
    with open(path, "r+b") as fh:  # random bytes over random pages in the middle
        for number in rng.sample(range(pages // 4, 3 * pages // 4), 8):
            fh.seek(number * page)
            fh.write(rng.randbytes(page))
    before = digest(path)
    for args in (("scan", "www.scan.test", "--modules", "dns"), ("scans",)):
        out = assetmon(*args)
        assert out.returncode == 2, (args, out.stdout, out.stderr)
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and "damaged" in lines[0] and "assetmon restore" in lines[0], out.stderr
        assert digest(path) == before
    wal = Path(f"{path}-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    current = assetmon("db", "current")
    assert current.returncode == 2 and "damaged" in current.stderr

    out = assetmon("restore", str(tmp_path / "before.db"))  # what the message says to do
    assert out.returncode == 0, out.stderr
    assert digest(path.with_name(path.name + ".damaged")) == before  # set aside, not lost
    assert assetmon("scans").returncode == 0
    db._engines.clear()
    assert len(repo.hosts(project_id)) == 3000


def fresh_home(monkeypatch, tmp_path: Path) -> str | None:
    """Point this test at a new, empty home (and, on PostgreSQL, a new database)."""
    monkeypatch.setenv("ASSETMON_HOME", str(tmp_path / "other-home"))
    name = None
    if POSTGRES:
        import psycopg

        url = normalise_url(os.environ["DATABASE_URL"])
        name = f"assetmon_restore_{uuid.uuid4().hex[:10]}"
        admin = make_url(url).set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        monkeypatch.setenv("DATABASE_URL", url.rsplit("/", 1)[0] + f"/{name}")
    get_settings.cache_clear()
    return name


def test_a_backup_during_a_running_scan_restores_into_a_fresh_home(no_redis, monkeypatch, tmp_path):
    if POSTGRES and not __import__("shutil").which("pg_dump"):
        pytest.skip("pg_dump is not installed")
    monkeypatch.setenv("ASSETMON_BACKEND", "thread")
    monkeypatch.setenv("ASSETMON_HTTP_TIMEOUT", "60")  # the slow page keeps the scan running
    get_settings.cache_clear()
    from assetmon_tui.dispatch import Dispatcher

    backup = tmp_path / "backups" / "assetmon.backup"
    backup.parent.mkdir()
    with estate(slow=True) as e:  # its web page answers after a minute: the scan is busy meanwhile
        project_id = make_project(targets=[e.url, "api.scan.test"])
        dispatcher = Dispatcher()
        scan = dispatcher.submit(project_id, ["dns", "http"], e.options())

        def probing() -> bool:
            module = dispatcher.poll(scan.id)[1].modules.get("http")
            return module is not None and module.status == "running"

        wait_for(probing, timeout=30, what="the http step to start")
        assert {"www.scan.test", "api.scan.test"} <= {h.name for h in repo.hosts(project_id)}
        assert repo.get_scan(scan.id).status == "running"
        out = assetmon("backup", str(backup))
        assert out.returncode == 0, out.stderr
        assert repo.get_scan(scan.id).status == "running"  # the copy was taken while it ran
        assert stat.S_IMODE(backup.stat().st_mode) == 0o600
        again = assetmon("backup", str(backup))
        assert again.returncode == 2 and "exists" in again.stderr  # never overwritten
        refused = assetmon("restore", str(backup))
        assert refused.returncode == 2 and "scans are active" in refused.stderr and "--force" in refused.stderr
        dispatcher.cancel(scan.id)
        wait_for(lambda: repo.get_scan(scan.id).status not in ("running", "cancelling"), timeout=30)
    hosts = {h.name for h in repo.hosts(project_id)}
    targets = repo.list_targets(project_id)

    database = fresh_home(monkeypatch, tmp_path)
    try:
        out = assetmon("restore", str(backup))
        assert out.returncode == 0, out.stderr
        assert f"revision {migrate.head()}" in out.stderr
        project = repo.get_project("acme")
        assert {t.value for t in repo.list_targets(project.id)} == {t.value for t in targets}
        assert {h.name for h in repo.hosts(project.id)} >= {"www.scan.test", "api.scan.test"}
        assert {h.name for h in repo.hosts(project.id)} <= hosts
        (restored,) = repo.list_scans(project.id)
        assert restored.id == scan.id and restored.status == "running"  # as it was at the backup
        assert migrate.current(db.get_engine()) == migrate.head()
        with db.session() as s:
            assert s.execute(text("SELECT count(*) FROM scanattempt")).scalar_one() == 1
    finally:
        if database:
            import psycopg

            for key, engine in list(db._engines.items()):
                if database in key[1]:
                    engine.dispose()
                    del db._engines[key]
            admin = make_url(normalise_url(os.environ["DATABASE_URL"]))
            admin_url = admin.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def test_restore_refuses_what_is_not_a_backup(no_redis, tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    out = assetmon("restore", str(junk))
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    missing = assetmon("restore", str(tmp_path / "nope.db"))
    assert missing.returncode == 2 and "is not a file" in missing.stderr
