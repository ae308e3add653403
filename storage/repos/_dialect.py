"""The few statements whose SQL differs between SQLite and PostgreSQL, and the driver's
cursor for the hot paths that bypass SQLAlchemy."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

_IGNORING: dict[tuple[str, str], Any] = {}

# Values per IN list or multi-row VALUES on the driver's cursor: far below SQLite's and
# PostgreSQL's limits on bound parameters, whatever else the statement binds.
DRIVER_CHUNK = 500


@dataclass(frozen=True, slots=True)
class DriverValues:
    """How one dialect's driver is spoken to: its placeholder, and UUIDs as it binds and
    returns them (SQLite: the 16 bytes; PostgreSQL: ``uuid``). ``bind_raw_id`` binds an
    id held as its 16 bytes."""

    mark: str
    bind_uuid: Callable[[uuid.UUID], Any]
    load_uuid: Callable[[Any], uuid.UUID]
    bind_raw_id: Callable[[bytes], Any]


def _uuid_of(raw: bytes) -> uuid.UUID:
    return uuid.UUID(bytes=raw)


def _same(value: Any) -> Any:
    return value


DRIVER_VALUES = {
    "sqlite": DriverValues("?", attrgetter("bytes"), _uuid_of, bytes),
    "postgresql": DriverValues("%s", _same, _same, _uuid_of),
}


def driver_values(conn: Connection) -> DriverValues:
    """The :class:`DriverValues` of the database under ``conn``."""
    return DRIVER_VALUES[conn.dialect.name]


def driver_cursor(conn: Connection, *, binary_results: bool = False) -> Any:
    """A cursor of the DB-API connection under ``conn``, inside its transaction.

    For the few hot statements whose SQLAlchemy execution costs several times the SQL:
    the caller writes the SQL per dialect (:func:`driver_values`), binds driver-level
    values and closes the cursor (or uses :func:`driver_cursor_of`). With
    ``binary_results``, PostgreSQL sends rows in its binary format: ``bytea`` arrives as
    it is stored instead of as hex text twice its size, to be decoded again.
    """
    dbapi_connection: Any = conn.connection.dbapi_connection
    if binary_results and conn.dialect.name == "postgresql":
        return dbapi_connection.cursor(binary=True)
    return dbapi_connection.cursor()


@contextmanager
def driver_cursor_of(conn: Connection, *, binary_results: bool = False) -> Iterator[Any]:
    """:func:`driver_cursor`, closed when the block ends."""
    cursor = driver_cursor(conn, binary_results=binary_results)
    try:
        yield cursor
    finally:
        cursor.close()


@functools.lru_cache(maxsize=256)
def marks(mark: str, count: int) -> str:
    """``count`` comma-separated placeholders, for an IN list."""
    return ", ".join([mark] * count)


def present_uuids(
    conn: Connection, table: Table, column: str, ids: Collection[uuid.UUID]
) -> set[uuid.UUID]:
    """Which of ``ids`` appear in the UUID ``column`` of ``table`` (every send asks this
    of its devices and of their push tokens: on the driver's cursor)."""
    values = driver_values(conn)
    bound = [values.bind_uuid(value) for value in ids]
    found: set[uuid.UUID] = set()
    # Names from the schema, values as placeholders: nothing user-supplied in the SQL.
    select = f"SELECT {column} FROM {table.name} WHERE {column} IN ({{}})"  # noqa: S608
    with driver_cursor_of(conn) as cursor:
        for start in range(0, len(bound), DRIVER_CHUNK):
            chunk = bound[start : start + DRIVER_CHUNK]
            cursor.execute(select.format(marks(values.mark, len(chunk))), chunk)
            found.update(values.load_uuid(value) for (value,) in cursor.fetchall())
    return found


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
