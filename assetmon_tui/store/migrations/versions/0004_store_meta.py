"""Store facts: a table of key/value facts about the database itself; its
`id` (random, made once by the first process that asks: `store.identity`)
names its Celery queue and its workers' heartbeats. A database that has the
table already (made by `create_all` in between) is left as it is."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("store_meta"):
        return
    op.create_table(
        "store_meta",
        sa.Column("key", sa.String, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("store_meta")
