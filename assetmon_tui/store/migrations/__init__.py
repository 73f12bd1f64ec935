"""Alembic migrations of the store, driven by `store.migrate` (no alembic.ini)."""
