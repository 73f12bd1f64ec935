"""Alembic environment: `store.migrate` hands over a connection it holds the
migration lock on; batch mode lets SQLite alter tables by copying them."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from assetmon_tui.store import models  # noqa: F401  (registers the tables on the metadata)

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    transaction_per_migration=False,
)
with context.begin_transaction():
    context.run_migrations()
