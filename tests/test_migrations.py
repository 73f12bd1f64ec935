"""Migrations: a database made by the release of 2026-11-28 (commit 3e92789)
is adopted in place, with a schema identical to a fresh one and all its
data; a database newer than the code is refused; processes opening an old or
a new database at the same moment all succeed.

The old database comes from dumps in tests/fixtures/ (made once with that
commit's code, see their headers), not from git history: CI may clone
shallow."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine, make_url
from support.scenario import estate, run_to_end

from assetmon_tui.core.config import get_settings, normalise_url
from assetmon_tui.store import db, migrate
from assetmon_tui.testing import ROOT, VENV_BIN

FIXTURES = Path(__file__).parent / "fixtures"
OLD_TABLES = (
    "project",
    "target",
    "scan",
    "host",
    "dnsrecord",
    "service",
    "httpendpoint",
    "jsfile",
    "finding",
    "event",
    "snapshot",
    "schedule",
    "notifier",
    "delivery",
)


def libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def blank_database() -> str:
    """The test's database, emptied (the PostgreSQL one is a copy of a template with tables)."""
    url = normalise_url(get_settings().db_url)
    if url.startswith("sqlite"):
        Path(make_url(url).database or "").parent.mkdir(parents=True, exist_ok=True)
        return url
    import psycopg

    with psycopg.connect(libpq(url), autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    return url


def load_release_database() -> str:
    """The test's database as the release of 2026-11-28 left it."""
    url = blank_database()
    if url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(make_url(url).database or "")
        conn.executescript((FIXTURES / "release-2026-11-28.sqlite.sql").read_text())
        conn.execute("PRAGMA journal_mode=WAL")
        conn.close()
    else:
        import psycopg

        with psycopg.connect(libpq(url), autocommit=True) as conn:
            conn.execute((FIXTURES / "release-2026-11-28.postgresql.sql").read_text().encode())
    return url


def schema(engine: Engine) -> dict[str, Any]:
    """Tables, columns (type, nullability; on PostgreSQL defaults too), indexes,
    unique constraints, keys."""
    ins = inspect(engine)
    postgres = engine.dialect.name == "postgresql"
    out: dict[str, Any] = {}
    for table in sorted(ins.get_table_names()):
        if table == "alembic_version":
            continue
        out[table] = {
            "columns": {
                c["name"]: (str(c["type"]), c["nullable"]) + ((c["default"],) if postgres else ())
                for c in ins.get_columns(table)
            },
            "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in ins.get_indexes(table)),
            "unique": sorted(tuple(u["column_names"]) for u in ins.get_unique_constraints(table)),
            "pk": tuple(ins.get_pk_constraint(table)["constrained_columns"]),
            "fks": sorted(
                (tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]))
                + ((f.get("options") or {}).get("ondelete"),)
                for f in ins.get_foreign_keys(table)
            ),
        }
    return out


def fresh_schema(tmp_path: Path) -> dict[str, Any]:
    """The schema of a new database, made as a process opening it makes it."""
    url = normalise_url(get_settings().db_url)
    if url.startswith("sqlite"):
        engine = db.make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
        migrate.upgrade(engine)
        try:
            return schema(engine)
        finally:
            engine.dispose()
    import psycopg

    name = f"assetmon_fresh_{uuid.uuid4().hex[:10]}"
    admin = libpq(url).rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    engine = db.make_engine(url.rsplit("/", 1)[0] + f"/{name}")
    try:
        migrate.upgrade(engine)
        return schema(engine)
    finally:
        engine.dispose()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def row_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in OLD_TABLES}


def assert_versions_have_the_shape_of_today(project_id: int, last_scan: int) -> None:
    """What the converted versions hold at the latest snapshot is what this
    code makes of the same rows (so the next scan compares like with like)."""
    from assetmon_tui.events.items import item_of
    from assetmon_tui.store import snapshots

    with db.session() as s:
        today = {}
        for kind, rows in snapshots.seen_in(s, project_id, last_scan).items():
            for row, host in rows:
                item = item_of(kind, row, host)
                today[item.key] = (item.host, item.state)
        query = "SELECT kind, asset_id, host, state FROM snapshotitem WHERE project_id = :p AND until_seq IS NULL"
        held = {
            (r.kind, r.asset_id): (r.host, json.loads(r.state))
            for r in s.execute(text(query + " AND status != 'gone'"), {"p": project_id})
        }
    assert len(held) >= 10
    assert held == today


def assetmon(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "assetmon"), *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_release_database_is_adopted_with_a_fresh_schema_and_all_its_data(tmp_path, no_redis, monkeypatch):
    url = load_release_database()
    raw = db.make_engine(url)
    before = row_counts(raw)
    assert (before["scan"], before["snapshot"], before["finding"], before["jsfile"]) == (4, 4, 4, 2)
    assert migrate.current(raw) is None
    raw.dispose()

    engine = db.get_engine()  # a process opening it adopts it
    assert migrate.current(engine) == migrate.head()
    assert schema(engine) == fresh_schema(tmp_path)
    assert row_counts(engine) == before

    from assetmon_tui.store import repo

    acme = repo.get_project("acme")
    assert {t.value for t in repo.list_targets(acme.id)} == {"www.scan.test", "api.scan.test"}
    assert [s.status for s in repo.list_scans(acme.id)] == ["done"] * 3
    with db.session() as s:
        secrets = s.execute(text("SELECT rule, value FROM finding WHERE kind = 'secret' ORDER BY rule")).all()
        assert [tuple(f) for f in secrets] == [
            ("aws-access-key-id", "AKIAWNM3XT6XBLV4Q7KU"),
            ("aws-secret-access-key", "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"),
        ]
        attempts = s.execute(text("SELECT scan_id, number, outcome FROM scanattempt ORDER BY scan_id")).all()
        assert [tuple(a) for a in attempts] == [(1, 1, "done"), (2, 1, "done"), (3, 1, "done"), (4, 1, "done")]
        seqs = s.execute(text("SELECT project_id, scan_id, seq, counts FROM snapshot ORDER BY scan_id")).all()
        api = s.execute(
            text(
                "SELECT status, since_seq, until_seq FROM snapshotitem WHERE entity = 'host:api.scan.test' ORDER BY id"
            )
        ).all()
        www = s.execute(text("SELECT count(*) FROM snapshotitem WHERE entity = 'host:www.scan.test'")).scalar_one()
        schedule = s.execute(text("SELECT interval_seconds FROM schedule")).scalar_one()
        notifier = s.execute(text("SELECT url FROM notifier")).scalar_one()
    assert [(p, n) for p, _, n, _ in seqs] == [(1, 1), (1, 2), (1, 3), (2, 1)]
    first, second, third, _ = (json.loads(c) for *_, c in seqs)
    assert (first["names"], first["endpoints"], first["scripts"], first["findings"], first["gone"]) == (2, 2, 2, 4, 0)
    assert (second["names"], second["endpoints"], second["scripts"]) == (1, 1, 1)  # api.scan.test went in scan 2...
    assert third["names"] == 2  # ...and came back in scan 3
    # versions: new in 1, gone from 2, reopened at 3 (its DNS status changed meanwhile)
    assert [tuple(v) for v in api] == [("new", 1, 2), ("gone", 2, 3), ("reopened", 3, None)]
    assert www == 2  # one per project: unchanged in acme's three scans, one version
    assert (schedule, notifier) == (3600, "json://127.0.0.1:9/hook")
    assert_versions_have_the_shape_of_today(acme.id, last_scan=3)

    # a real scan and an export on the upgraded database
    monkeypatch.setenv("ASSETMON_BACKEND", "thread")
    get_settings.cache_clear()
    from assetmon_tui.dispatch import Dispatcher
    from assetmon_tui.export import export

    with estate() as e:
        dispatcher = Dispatcher()
        scan = dispatcher.submit(acme.id, ["dns", "ports", "http"], e.options())
        progress, _ = run_to_end(dispatcher, scan.id)
    assert progress.state == "done", progress
    row = repo.get_scan(scan.id)
    assert row.status == "done"
    with db.session() as s:
        assert s.execute(text(f"SELECT seq FROM snapshot WHERE scan_id = {scan.id}")).scalar_one() == 4
    report = json.loads(export("acme", "json"))
    assert report
    assert "www.scan.test" in export("acme", "csv")
    old_events = {"baseline", "host_gone", "host_new", "http_status_changed"}
    with db.session() as s:
        types = {t for (t,) in s.execute(text("SELECT type FROM event WHERE project_id = :p"), {"p": acme.id})}
    assert old_events <= types


def test_a_database_newer_than_the_code_is_refused_in_one_line(no_redis):
    engine = db.get_engine()
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    db._engines.clear()
    engine.dispose()
    for args in (("scans",), ("db", "upgrade"), ("db", "current")):
        out = assetmon(*args)
        assert out.returncode == 2, (args, out.stdout, out.stderr)
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and "9999_from_the_future" in lines[0] and "newer AssetMon" in lines[0], out.stderr


def test_db_current_and_upgrade_and_init_db(no_redis):
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        path = Path(make_url(get_settings().db_url).database or "")
        assert "no database yet" in assetmon("db", "current").stdout and not path.exists()
    load_release_database()
    current = assetmon("db", "current")
    assert current.returncode == 0 and "no revision" in current.stdout, current.stderr
    raw = db.make_engine(get_settings().db_url)
    assert migrate.current(raw) is None  # looking changed nothing
    raw.dispose()
    upgraded = assetmon("db", "upgrade")
    assert upgraded.returncode == 0 and f"revision {migrate.head()} (head)" in upgraded.stdout, upgraded.stderr
    assert f"revision {migrate.head()} (head)" in assetmon("db", "current").stdout
    assert f"(revision {migrate.head()})" in assetmon("init-db").stdout


@pytest.mark.parametrize("start", ["release", "new"])
def test_processes_opening_the_database_at_the_same_moment_all_succeed(start, no_redis):
    if start == "release":
        load_release_database()
    else:
        blank_database()
    procs = [
        subprocess.Popen(
            [str(VENV_BIN / "assetmon"), command],
            cwd=ROOT,
            env=dict(os.environ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for command in ("init-db", "scans", "init-db", "scans")
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    engine = db.get_engine()
    assert migrate.current(engine) == migrate.head()
    with engine.connect() as conn:
        versions = conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one()
        items = conn.execute(text("SELECT count(*) FROM snapshotitem")).scalar_one()
    assert versions == 1
    assert items == (28 if start == "release" else 0)  # converted once


def test_a_database_made_since_the_release_without_migrations_is_adopted_as_it_is(tmp_path, no_redis):
    """Commits between the release and migrations made today's tables with create_all: nothing to change."""
    from sqlmodel import SQLModel

    from assetmon_tui.store import repo

    url = blank_database()
    raw = db.make_engine(url)
    SQLModel.metadata.create_all(raw)
    with raw.begin() as conn:
        conn.execute(text("INSERT INTO project (name, created_at, settings) VALUES ('acme', '2026-11-30', '{}')"))
    assert migrate.current(raw) is None
    raw.dispose()
    engine = db.get_engine()
    assert migrate.current(engine) == migrate.head()
    assert schema(engine) == fresh_schema(tmp_path)
    assert [p.name for p in repo.list_projects()] == ["acme"]


def test_the_head_constant_is_the_newest_migration():
    """`migrate.HEAD` lets an up-to-date database be opened without importing
    Alembic: it must name the head of migrations/versions."""
    assert migrate.head() == migrate.HEAD
    assert migrate.HEAD in migrate.known_revisions()


def test_opening_a_database_at_the_head_imports_no_alembic(no_redis):
    """The cheap path: a process opening an up-to-date database reads the
    revision with plain SQL; Alembic is for databases that must change."""
    db.get_engine()  # creates the database at the head
    code = "import sys; from assetmon_tui.store import db; db.get_engine(); print('alembic' in sys.modules)"
    out = subprocess.run([str(VENV_BIN / "python"), "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
