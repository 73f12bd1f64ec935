"""Finding verification: the state of a secret's live check (verified,
invalid, unknown or "" for never checked), when it was last definitive, and
why. Columns a database has already (made by `create_all` in between) are
left as they are."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# (column, type, nullable, default for existing rows)
_COLUMNS = (
    ("verified", sa.String(), False, "''"),
    ("verified_at", sa.DateTime(), True, None),
    ("verify_reason", sa.String(), False, "''"),
)


def upgrade() -> None:
    bind = op.get_bind()
    have = {c["name"] for c in sa.inspect(bind).get_columns("finding")}
    for name, type_, nullable, default in _COLUMNS:
        if name in have:
            continue
        server_default = sa.text(default) if default is not None else None
        op.add_column("finding", sa.Column(name, type_, nullable=nullable, server_default=server_default))
        if server_default is not None and bind.dialect.name != "sqlite":  # (SQLite would copy the table)
            op.alter_column("finding", name, server_default=None)  # the models give no server defaults


def downgrade() -> None:
    with op.batch_alter_table("finding") as batch:
        for name, *_ in reversed(_COLUMNS):
            batch.drop_column(name)
