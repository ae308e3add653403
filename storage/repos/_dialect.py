"""The few statements whose SQL differs between SQLite and PostgreSQL, and the driver's
cursor for the hot paths that bypass SQLAlchemy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

_IGNORING: dict[tuple[str, str], Any] = {}


def driver_cursor(conn: Connection) -> Any:
    """A cursor of the DB-API connection under ``conn``, inside its transaction.

    For the few hot statements whose SQLAlchemy execution costs several times the SQL:
    the caller writes the SQL per dialect (``?`` for sqlite3, ``%s`` for psycopg), binds
    driver-level values and closes the cursor.
    """
    return conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]


def insert_ignoring_conflicts(
    conn: Connection, table: Table, rows: Sequence[dict[str, Any]]
) -> None:
    """``INSERT ... ON CONFLICT DO NOTHING`` of many rows in one executemany."""
    if not rows:
        return
    key = (conn.dialect.name, table.name)
    statement = _IGNORING.get(key)
    if statement is None:
        # One statement object per table and dialect: its compiled form is cached.
        module = postgresql if conn.dialect.name == "postgresql" else sqlite
        statement = _IGNORING[key] = module.insert(table).on_conflict_do_nothing()
    conn.execute(statement, list(rows))


def upsert(
    conn: Connection, table: Table, row: dict[str, Any], key: Sequence[str], update: Sequence[str]
) -> None:
    """Insert ``row``, or update the ``update`` columns of the row with the same ``key``."""
    module = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = module.insert(table).values(row)
    statement = statement.on_conflict_do_update(
        index_elements=list(key),
        set_={column: statement.excluded[column] for column in update},
    )
    conn.execute(statement)
