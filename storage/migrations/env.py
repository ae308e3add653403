"""Alembic environment: always driven by :mod:`storage.migrate` with a live connection."""

from __future__ import annotations

from alembic import context

from storage.schema import metadata

# Any fixed number: concurrent `relay serve` start-ups on one PostgreSQL database
# serialise on this transaction-scoped lock instead of racing the same DDL.
_MIGRATION_LOCK_ID = 0x52454C4159

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `relay migrate` (storage.migrate), not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_ID})")
    context.run_migrations()
