"""Baseline: adopt a database made by the release of 2026-11-28 (commit
3e92789), or by any commit since, in place.

A fresh database never runs this: `store.migrate` creates the tables of the
code and stamps the head. An existing one without a revision gets, where
missing (so a database made part-way between that release and this revision
is adopted too):

- the columns added since: scan (submitter, queued_at, lease_until, attempts,
  checkpoint, sources), project.settings, event (host, fingerprint, quiet);
- the tables scanattempt (one closed attempt per scan that ever started) and
  eventrule;
- snapshot.seq (1, 2, ... per project, in scan order) and snapshot.counts;
- snapshotitem as versions: the old table held one row per (scan, item).
  Walking each project's snapshots in scan order, an item whose state is
  unchanged continues its version; a changed one ends it and starts an "open"
  one; an item absent from a snapshot ends its version there and starts a
  "gone" one (how the new model remembers it, so a return is "reopened", not
  "new"). Each snapshot's counts are computed from the versions holding at it,
  as `events.items.inventory` counts them.

The tables here are frozen copies of the models as of this revision: later
model changes belong in later revisions, never here.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_meta = sa.MetaData()
_str = sa.String
# the parents the new tables reference (there already: never created here)
sa.Table("project", _meta, sa.Column("id", sa.Integer, primary_key=True))
sa.Table("scan", _meta, sa.Column("id", sa.Integer, primary_key=True))

scanattempt = sa.Table(
    "scanattempt",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("scan_id", sa.Integer, sa.ForeignKey("scan.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("runner", _str, nullable=False),
    sa.Column("backend", _str, nullable=False),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("ended_at", sa.DateTime, nullable=True),
    sa.Column("outcome", _str, nullable=False),
    sa.Column("reason", _str, nullable=False),
    sa.UniqueConstraint("scan_id", "number"),
)

eventrule = sa.Table(
    "eventrule",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("project.id", ondelete="CASCADE"), nullable=True, index=True),
    sa.Column("action", _str, nullable=False),
    sa.Column("event_type", _str, nullable=False),
    sa.Column("host", _str, nullable=False),
    sa.Column("fingerprint", _str, nullable=False),
    sa.Column("note", _str, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

snapshotitem = sa.Table(
    "snapshotitem",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("project.id", ondelete="CASCADE"), nullable=False),
    sa.Column("kind", _str, nullable=False),
    sa.Column("asset_id", sa.Integer, nullable=False),
    sa.Column("host", _str, nullable=False),
    sa.Column("entity", _str, nullable=False),
    sa.Column("state", sa.Text, nullable=True),
    sa.Column("status", _str, nullable=False),
    sa.Column("misses", sa.Integer, nullable=False),
    sa.Column("since_seq", sa.Integer, nullable=False),
    sa.Column("until_seq", sa.Integer, nullable=True),
    sa.Index("ix_snapshotitem_current", "project_id", "until_seq"),
    sa.Index("ix_snapshotitem_asset", "kind", "asset_id"),
)

# table -> (column, type, nullable, default for existing rows)
_NEW_COLUMNS: dict[str, list[tuple[str, Any, bool, str | None]]] = {
    "project": [("settings", sa.Text(), True, "'{}'")],
    "scan": [
        ("submitter", _str(), False, "''"),
        ("queued_at", sa.DateTime(), True, None),
        ("lease_until", sa.DateTime(), True, None),
        ("attempts", sa.Integer(), False, "0"),
        ("checkpoint", sa.Text(), True, "'{}'"),
        ("sources", sa.Text(), True, "'[]'"),
    ],
    "event": [
        ("host", _str(), False, "''"),
        ("fingerprint", _str(), False, "''"),
        ("quiet", sa.Boolean(), False, "false"),
    ],
}


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    tables = set(inspector.get_table_names())
    if "project" not in tables:
        raise RuntimeError("the baseline adopts an existing database; a new one is created by store.migrate")
    for table, columns in _NEW_COLUMNS.items():
        have = {c["name"] for c in inspector.get_columns(table)}
        for name, type_, nullable, default in columns:
            if name in have:
                continue
            server_default = sa.text(default) if default is not None else None
            op.add_column(table, sa.Column(name, type_, nullable=nullable, server_default=server_default))
            if server_default is not None and bind.dialect.name != "sqlite":  # (SQLite would copy the table)
                op.alter_column(table, name, server_default=None)  # the models give no server defaults
            if table == "scan" and name == "queued_at":
                op.execute("UPDATE scan SET queued_at = created_at WHERE status = 'queued'")
            if table == "scan" and name == "attempts":
                op.execute("UPDATE scan SET attempts = 1 WHERE started_at IS NOT NULL")
    if "scanattempt" not in tables:
        scanattempt.create(bind)
        op.execute(
            "INSERT INTO scanattempt (scan_id, number, runner, backend, started_at, ended_at, outcome, reason) "
            "SELECT id, 1, owner, backend, started_at, finished_at, "
            "CASE WHEN status IN ('done', 'failed', 'cancelled') THEN status ELSE '' END, '' "
            "FROM scan WHERE started_at IS NOT NULL"
        )
    if "eventrule" not in tables:
        eventrule.create(bind)
    if "seq" not in {c["name"] for c in inspector.get_columns("snapshot")}:
        _versioned_snapshots(bind, inspector)


def _versioned_snapshots(bind: sa.Connection, inspector: Any) -> None:
    old_items: dict[int, list[dict[str, Any]]] = {}
    if "scan_id" in {c["name"] for c in inspector.get_columns("snapshotitem")}:
        rows = bind.execute(sa.text("SELECT scan_id, kind, asset_id, host, entity, state FROM snapshotitem"))
        for row in rows:
            old_items.setdefault(row.scan_id, []).append(dict(row._mapping))
        op.drop_table("snapshotitem")
        snapshotitem.create(bind)
    with op.batch_alter_table("snapshot") as batch:
        batch.add_column(sa.Column("seq", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("counts", sa.Text(), nullable=True, server_default=sa.text("'{}'")))
    snapshots = bind.execute(sa.text("SELECT scan_id, project_id FROM snapshot ORDER BY project_id, scan_id")).all()
    by_project: dict[int, list[int]] = {}
    for scan_id, project_id in snapshots:
        by_project.setdefault(project_id, []).append(scan_id)
    findings = {
        row.id: {"location": row.location or "", "fingerprint": row.fingerprint}
        for row in bind.execute(sa.text("SELECT id, location, fingerprint FROM finding"))
    }
    for items in old_items.values():
        for item in items:
            item["state"] = json.dumps(_modern(item, findings), sort_keys=True)
    for project_id, scan_ids in by_project.items():
        versions = _walk(project_id, [old_items.get(scan_id, []) for scan_id in scan_ids])
        if versions:
            bind.execute(snapshotitem.insert(), versions)
        for seq, scan_id in enumerate(scan_ids, start=1):
            holding = [
                v for v in versions if v["since_seq"] <= seq and (v["until_seq"] is None or v["until_seq"] > seq)
            ]
            bind.execute(
                sa.text("UPDATE snapshot SET seq = :seq, counts = :counts WHERE scan_id = :scan_id"),
                {"seq": seq, "counts": json.dumps(_counts(holding)), "scan_id": scan_id},
            )
    with op.batch_alter_table("snapshot") as batch:
        batch.alter_column("seq", existing_type=sa.Integer(), nullable=False)
        if bind.dialect.name != "sqlite":
            batch.alter_column("counts", existing_type=sa.Text(), server_default=None)
        batch.create_unique_constraint("snapshot_project_id_seq_key", ["project_id", "seq"])


def _walk(project_id: int, snapshots: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Versions of a project's items from its old per-snapshot rows (in scan order)."""
    versions: list[dict[str, Any]] = []
    current: dict[tuple[str, int], dict[str, Any]] = {}  # the version holding now, per (kind, asset id)

    def start(row: dict[str, Any], seq: int, status: str, misses: int = 0) -> None:
        version = {
            "project_id": project_id,
            "kind": row["kind"],
            "asset_id": row["asset_id"],
            "host": row["host"] or "",
            "entity": row["entity"] or "",
            "state": _canonical(row["state"]),
            "status": status,
            "misses": misses,
            "since_seq": seq,
            "until_seq": None,
        }
        versions.append(version)
        current[(version["kind"], version["asset_id"])] = version

    for seq, rows in enumerate(snapshots, start=1):
        seen = set()
        for row in rows:
            key = (row["kind"], row["asset_id"])
            seen.add(key)
            old = current.get(key)
            if old is None:
                start(row, seq, "new")
            elif old["status"] == "gone":
                old["until_seq"] = seq
                start(row, seq, "reopened")
            elif (old["state"], old["host"], old["entity"]) != (
                _canonical(row["state"]),
                row["host"] or "",
                row["entity"] or "",
            ):
                old["until_seq"] = seq
                start(row, seq, "open")
        for key, old in list(current.items()):
            if key not in seen and old["status"] != "gone":  # absent: the old release called it gone
                old["until_seq"] = seq
                start(old, seq, "gone", misses=1)
    return versions


def _modern(row: dict[str, Any], findings: dict[int, dict[str, str]]) -> dict[str, Any]:
    """An old item's watched values in the shape this revision's code gives
    them (`events.items.item_of`): web endpoints and scripts carry their URL,
    findings their location and fingerprint. So the first scan after the
    upgrade compares like with like, and starts no version for nothing."""
    try:
        state = json.loads(row["state"] or "{}")
    except ValueError:
        state = {}
    if not isinstance(state, dict):
        state = {}
    kind, entity = row["kind"], row["entity"] or ""
    if kind in ("http", "js"):
        state.setdefault("url", entity.split(":", 1)[1] if ":" in entity else entity)
    elif kind.startswith("finding:"):
        state.update(findings.get(row["asset_id"], {}))
    return state


def _canonical(state: str | None) -> str:
    try:
        return json.dumps(json.loads(state or "{}"), sort_keys=True)
    except ValueError:
        return "{}"


def _counts(holding: list[dict[str, Any]]) -> dict[str, int]:
    """The inventory's counts, as `events.items.inventory` makes them (the
    store cannot import the events layer)."""
    present = [v for v in holding if v["status"] != "gone"]
    states = [json.loads(v["state"]) for v in present]
    named = {
        s.get("value")
        for v, s in zip(present, states, strict=True)
        if v["kind"] == "dns" and s.get("rtype") in ("A", "AAAA")
    }
    by_kind: dict[str, int] = {}
    for v in present:
        kind = "finding" if v["kind"].startswith("finding:") else v["kind"]
        by_kind[kind] = by_kind.get(kind, 0) + 1
    bare = sum(1 for v in present if v["kind"] == "ip" and v["host"] not in named)
    return {
        "hosts": by_kind.get("host", 0) + bare,
        "names": by_kind.get("host", 0),
        "addresses": by_kind.get("ip", 0),
        "services": by_kind.get("service", 0),
        "endpoints": by_kind.get("http", 0),
        "scripts": by_kind.get("js", 0),
        "findings": by_kind.get("finding", 0),
        "unconfirmed": 0,
        "gone": len(holding) - len(present),
    }
