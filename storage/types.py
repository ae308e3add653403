"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import LargeBinary
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine


class UUIDType(TypeDecorator[uuid.UUID]):
    """A UUID: native ``uuid`` on PostgreSQL, a 16-byte BLOB elsewhere.

    SQLAlchemy's own ``Uuid`` stores 32 hex characters on SQLite; 16 raw bytes halve the
    index size and match the protobuf wire form of every id.
    """

    impl = LargeBinary(16)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.UUID(as_uuid=True))
        return dialect.type_descriptor(LargeBinary(16))

    def process_bind_param(self, value: uuid.UUID | None, dialect: Dialect) -> Any:
        if value is None or dialect.name == "postgresql":
            return value
        return value.bytes

    def process_result_value(self, value: Any, dialect: Dialect) -> uuid.UUID | None:
        if value is None or isinstance(value, uuid.UUID):
            return value
        return uuid.UUID(bytes=bytes(value))

    # The hot paths bind and read many ids per statement; the composed processors
    # (this decorator's, then LargeBinary's ``sqlite3.Binary`` wrapping) cost more than
    # the SQL. sqlite3 takes and returns ``bytes`` as they are, so on SQLite one direct
    # function each way does the same work.
    def bind_processor(self, dialect: Dialect) -> Any:
        if dialect.name == "postgresql":
            return super().bind_processor(dialect)
        return _uuid_bytes

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        if dialect.name == "postgresql":
            return super().result_processor(dialect, coltype)
        return _uuid_from_bytes


def _uuid_bytes(value: uuid.UUID | None) -> bytes | None:
    return None if value is None else value.bytes


def _uuid_from_bytes(value: bytes | None) -> uuid.UUID | None:
    return None if value is None else uuid.UUID(bytes=value)
