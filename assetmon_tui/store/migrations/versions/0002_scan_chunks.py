"""Scan chunks: the parts of a fanned-out step that any worker may run.

A database that has the table already (made by `create_all` in between) is
left as it is. The table is a frozen copy of `models.ScanChunk` as of this revision."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("scanchunk"):
        return  # made by create_all between the baseline and this revision
    op.create_table(
        "scanchunk",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("scan_id", sa.Integer, sa.ForeignKey("scan.id", ondelete="CASCADE"), nullable=False),
        sa.Column("step", sa.String, nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("items", sa.Text),
        sa.Column("units", sa.Integer, nullable=False),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("owner", sa.String, nullable=False),
        sa.Column("worker", sa.String, nullable=False),
        sa.Column("task_id", sa.String, nullable=False),
        sa.Column("lease_until", sa.DateTime, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("seconds", sa.Float, nullable=False),
        sa.Column("result", sa.Text),
        sa.Column("queued_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime, nullable=True),
        sa.UniqueConstraint("scan_id", "step", "number"),
    )
    op.create_index("ix_scanchunk_scan_id", "scanchunk", ["scan_id"])


def downgrade() -> None:
    op.drop_table("scanchunk")
