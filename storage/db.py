"""Engine set-up and the one way to run database work from trio.

SQLAlchemy's engine is synchronous, so every unit of work runs in a worker thread.
A thread hop costs ~120 µs on the project machines, more than most single statements,
so callers pass a *whole unit of work* (a function of one ``Connection``) and it runs in
one hop, inside one transaction, under a :class:`trio.CapacityLimiter` sized to the
connection pool::

    async def rename(db: Database, device_id: UUID, name: str) -> bool:
        def work(conn: Connection) -> bool:
            return devices_repo.rename(conn, device_id, name)
        return await db.write(work)

SQLite: WAL, ``synchronous=NORMAL``, foreign keys on, and the ``BEGIN IMMEDIATE``
recipe for writers. Python 3.11's sqlite3 module does not start a transaction before a
``SELECT``, so read-then-write work silently loses updates under concurrency unless the
write lock is taken up front; read-only work uses a plain deferred ``BEGIN`` so readers
never queue behind writers. SQLite admits one writer at a time anyway, so the process
queues its writers on a fair :class:`trio.Lock` instead of letting threads fight over the
file lock: SQLite's busy handler polls with growing sleeps, and under load one unlucky
writer could starve past the busy timeout ("database is locked"). Between the worker
processes of one server the same holds, so a write also takes an exclusive ``flock`` on a
file beside the database (``<database>-writer.lock``): the kernel wakes the next writer
the moment the lock is released, where SQLite's busy handler would poll with sleeps of up
to 100 ms. PostgreSQL uses
psycopg 3 and ``READ COMMITTED``; repositories take row locks (``FOR UPDATE [SKIP
LOCKED]``) where they read-then-write.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

import sqlalchemy
import trio
from sqlalchemy import event, exc
from sqlalchemy.engine import URL, Connection, Engine, make_url

from storage.errors import IntegrityViolation, StorageError, StorageUnavailable, UniqueViolation

T = TypeVar("T")

_READ_ONLY = "relay_read_only"
_SQLITE_BUSY_TIMEOUT_MS = 5000
# SQLite's default checkpoints the WAL every 1,000 pages inside whichever commit crosses
# the mark, fsync included, while that writer holds the write lock. The relay checkpoints
# in the background instead (Database.checkpoint); this larger automatic mark (~40 MB of
# WAL) only bounds the file for processes that never do.
_SQLITE_AUTOCHECKPOINT_PAGES = 10_000


@dataclass(frozen=True, kw_only=True)
class PoolOptions:
    """Connection-pool sizing (the ``DATABASE_*`` settings)."""

    max_connections: int = 20
    acquire_timeout_secs: float = 3.0
    max_lifetime_secs: float = 1800.0


def normalize_url(url: str) -> URL:
    """Parse a database URL, mapping ``postgres://`` / ``postgresql://`` to psycopg 3.

    Raises ``ValueError`` for anything that is neither SQLite nor PostgreSQL.
    """
    try:
        parsed = make_url(url)
    except exc.ArgumentError as error:
        raise ValueError(f"not a database URL: {error}") from None
    backend = parsed.get_backend_name()
    if backend in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise ValueError("SQLite needs a file path (sqlite:///path/to/relay.db)")
    else:
        raise ValueError(f"unsupported database {backend!r}: use sqlite:/// or postgresql://")
    return parsed


def create_engine(url: str, pool: PoolOptions | None = None) -> Engine:
    """Create the engine for ``url`` with the pragmas and pool this project relies on.

    Statement parameters are hidden from error messages: they can hold password hashes
    and token digests, which must never reach a log.
    """
    pool = pool or PoolOptions()
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        assert parsed.database is not None
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sqlalchemy.create_engine(
            parsed,
            hide_parameters=True,
            pool_size=pool.max_connections,
            max_overflow=0,
            pool_timeout=pool.acquire_timeout_secs,
            connect_args={"timeout": _SQLITE_BUSY_TIMEOUT_MS / 1000},
        )
        _install_sqlite_recipe(engine)
        return engine
    return sqlalchemy.create_engine(
        parsed,
        hide_parameters=True,
        pool_size=pool.max_connections,
        max_overflow=0,
        pool_timeout=pool.acquire_timeout_secs,
        pool_recycle=pool.max_lifetime_secs,
        connect_args={"connect_timeout": max(1, int(pool.acquire_timeout_secs))},
    )


def _install_sqlite_recipe(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        # Hand transaction control to the "begin" hook below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute(f"PRAGMA wal_autocheckpoint={_SQLITE_AUTOCHECKPOINT_PAGES}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = "DEFERRED" if conn.get_execution_options().get(_READ_ONLY) else "IMMEDIATE"
        conn.exec_driver_sql(f"BEGIN {mode}")


def translate_errors(error: exc.SQLAlchemyError) -> StorageError:
    """Map a SQLAlchemy/driver error to the storage error tree."""
    message = str(error).splitlines()[0]
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return StorageUnavailable(message, connection_lost=True)
    if isinstance(error, exc.IntegrityError):
        return _integrity_violation(error.orig)
    if isinstance(error, exc.OperationalError | exc.InterfaceError | exc.TimeoutError):
        return StorageUnavailable(message)
    return StorageError(message)


def translate_driver_error(
    error: Exception, dbapi: Any, *, connection_lost: bool = False
) -> StorageError:
    """Map an error raised by the DB-API driver itself (statements run on its cursor,
    bypassing SQLAlchemy) to the storage error tree."""
    message = str(error).splitlines()[0]
    if connection_lost:
        return StorageUnavailable(message, connection_lost=True)
    if isinstance(error, dbapi.IntegrityError):
        return _integrity_violation(error)
    if isinstance(error, dbapi.OperationalError | dbapi.InterfaceError):
        return StorageUnavailable(message)
    return StorageError(message)


def _integrity_violation(original: BaseException | None) -> IntegrityViolation:
    sqlstate = getattr(original, "sqlstate", None)
    if sqlstate == "23505" or "UNIQUE constraint failed" in str(original):
        return UniqueViolation(str(original))
    return IntegrityViolation(str(original))


_writer_files: dict[str, int] = {}
_writer_files_lock = threading.Lock()


def _writer_file(database: str) -> int:
    """The process's descriptor of the database's writer lock file, opened once: the
    lock excludes other processes (their own descriptors), never this one's threads,
    which the writer lock of :class:`Database` already queues."""
    path = os.path.abspath(f"{database}-writer.lock")
    with _writer_files_lock:
        if path not in _writer_files:
            _writer_files[path] = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        return _writer_files[path]


class DatabaseObserver(Protocol):
    """What the database reports to whoever watches it (the server's metrics)."""

    def waited(self, seconds: float) -> None:
        """A call waited ``seconds`` (locks, limiter, thread start) before its work ran."""

    def write_batch(self, units: int) -> None:
        """The group-commit writer committed ``units`` units of work together."""


class Database:
    """The engine plus the limiter that bounds how many threads use it at once."""

    observer: DatabaseObserver | None = None

    def __init__(self, engine: Engine, *, max_concurrency: int) -> None:
        self.engine = engine
        self.dialect_name = engine.dialect.name
        # Hot paths run statements on the driver's cursor: its errors are translated too.
        assert engine.dialect.dbapi is not None
        self._dbapi = engine.dialect.dbapi
        self._driver_error: type[Exception] = self._dbapi.Error
        self._limiter = trio.CapacityLimiter(max_concurrency)
        self._health_limiter = trio.CapacityLimiter(1)
        self._maintenance_limiter = trio.CapacityLimiter(1)
        self._writer_lock = trio.Lock() if self.dialect_name == "sqlite" else None
        database = engine.url.database
        self._writer_file = (
            _writer_file(database)
            if self.dialect_name == "sqlite" and database and database != ":memory:"
            else None
        )

    @property
    def is_postgresql(self) -> bool:
        """True on PostgreSQL, False on SQLite."""
        return self.dialect_name == "postgresql"

    @contextmanager
    def _translated(self, conn: Connection | None = None) -> Iterator[None]:
        """The storage boundary: SQLAlchemy's and the driver's errors leave as
        :class:`StorageError`.

        SQLAlchemy discards a pooled connection that died under its own statements; one
        that died under the driver's cursor (``conn``) is discarded here.
        """
        try:
            yield
        except exc.SQLAlchemyError as error:
            raise translate_errors(error) from error
        except self._driver_error as error:
            lost = conn is not None and self._discard_if_dead(conn, error)
            raise translate_driver_error(error, self._dbapi, connection_lost=lost) from error

    def _discard_if_dead(self, conn: Connection, error: Exception) -> bool:
        if conn.invalidated or conn.closed:
            return True
        dbapi_connection = conn.connection.dbapi_connection
        if not self.engine.dialect.is_disconnect(cast("Any", error), dbapi_connection, None):
            return False
        conn.invalidate(error)
        return True

    def write_sync(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one read-write transaction on the calling thread."""
        with (
            self._between_processes(),
            self._translated(),
            self.engine.begin() as conn,
            self._translated(conn),
        ):
            return work(conn)

    @contextmanager
    def _between_processes(self) -> Iterator[None]:
        """Hold the writer lock file (SQLite): one writing process at a time."""
        if self._writer_file is None:
            yield
            return
        fcntl.flock(self._writer_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._writer_file, fcntl.LOCK_UN)

    def read_sync(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one read-only transaction on the calling thread.

        A read whose pooled connection had died (the database restarted, or killed the
        session) is run once more on a new connection: reading twice changes nothing.
        """
        try:
            return self._read_once(work)
        except StorageUnavailable as error:
            if not error.connection_lost:
                raise
            return self._read_once(work)

    def _read_once(self, work: Callable[[Connection], T]) -> T:
        with self._translated(), self.engine.connect() as conn, self._translated(conn):
            conn = conn.execution_options(**{_READ_ONLY: True})
            with conn.begin():
                return work(conn)

    async def write(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one read-write transaction, in one worker-thread hop."""
        work = self._timed(work)
        if self._writer_lock is None:
            return await trio.to_thread.run_sync(self.write_sync, work, limiter=self._limiter)
        async with self._writer_lock:
            return await trio.to_thread.run_sync(self.write_sync, work, limiter=self._limiter)

    async def read(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one read-only transaction, in one worker-thread hop."""
        return await trio.to_thread.run_sync(
            self.read_sync, self._timed(work), limiter=self._limiter
        )

    def _timed(self, work: Callable[[Connection], T]) -> Callable[[Connection], T]:
        """``work``, reporting to the observer how long it waited to start."""
        observer = self.observer
        if observer is None:
            return work
        called = time.perf_counter()

        def timed(conn: Connection) -> T:
            observer.waited(time.perf_counter() - called)
            return work(conn)

        return timed

    async def ping(self) -> bool:
        """``SELECT 1``; False on any storage error.

        Runs under its own limiter and abandons its thread when cancelled, so callers can
        bound it with a timeout and a hung database cannot pile up health checks or
        starve real work.
        """

        def select_one(conn: Connection) -> bool:
            return conn.exec_driver_sql("SELECT 1").scalar() == 1

        try:
            return await trio.to_thread.run_sync(
                self.read_sync, select_one, limiter=self._health_limiter, abandon_on_cancel=True
            )
        except StorageError:
            return False

    async def checkpoint(self) -> int:
        """Copy SQLite's write-ahead log into the database file without blocking readers
        or writers (a ``PASSIVE`` checkpoint, in a worker thread of its own); returns how
        many logged pages it could not copy yet (readers still using them). Does nothing
        on PostgreSQL."""
        if self.is_postgresql:
            return 0

        def passive() -> int:
            # On the driver connection, outside any transaction: SQLAlchemy would begin
            # one first, and a checkpoint cannot pass the connection's own snapshot.
            with self._translated(), self.engine.connect() as conn:
                driver = conn.connection.dbapi_connection
                assert driver is not None
                row = driver.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            log_pages, copied = int(row[1]), int(row[2])
            return max(log_pages - copied, 0)

        return await trio.to_thread.run_sync(passive, limiter=self._maintenance_limiter)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
