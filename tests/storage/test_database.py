"""The unit-of-work helper: transactions, thread hops, error translation, health ping."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest
import trio
from sqlalchemy import select, text, update
from sqlalchemy.engine import Connection, Engine

from storage.db import Database, PoolOptions, create_engine, normalize_url
from storage.errors import IntegrityViolation, StorageError, StorageUnavailable, UniqueViolation
from storage.ids import now_us, uuid7
from storage.repos import devices, users
from storage.repos._dialect import driver_cursor, driver_cursor_of
from storage.repos.devices import DeviceRecord
from storage.repos.users import UserRecord
from storage.schema import devices as devices_table


def _user(name: str = "counter") -> UserRecord:
    return UserRecord(uuid7(), name, "hash", now_us())


async def _counter_device(db: Database) -> DeviceRecord:
    user = _user()
    device = DeviceRecord(uuid7(), user.id, "0", now_us())

    def setup(conn: Connection) -> None:
        users.insert(conn, user)
        devices.insert(conn, device)

    await db.write(setup)
    return device


def _incrementer(device: DeviceRecord) -> Callable[[Connection], None]:
    def increment(conn: Connection) -> None:
        devices.lock(conn, device.id)
        current = conn.execute(
            select(devices_table.c.name).where(devices_table.c.id == device.id)
        ).scalar_one()
        conn.execute(
            update(devices_table)
            .where(devices_table.c.id == device.id)
            .values(name=str(int(current) + 1))
        )

    return increment


async def _counter(db: Database, device: DeviceRecord) -> str | None:
    stored = await db.read(lambda conn: devices.get_owned(conn, device.id, device.user_id))
    assert stored is not None
    return stored.name


async def test_concurrent_read_then_write_loses_no_update(db: Database) -> None:
    """Concurrent units of work from trio: queued writers (SQLite), row locks (PostgreSQL)."""
    device = await _counter_device(db)
    increment = _incrementer(device)

    async def worker() -> None:
        for _ in range(25):
            await db.write(increment)

    async with trio.open_nursery() as nursery:
        for _ in range(8):
            nursery.start_soon(worker)
    assert await _counter(db, device) == "200"


async def test_threads_sharing_the_engine_lose_no_update(db: Database) -> None:
    """Below the trio queue: SQLite needs BEGIN IMMEDIATE for this, PostgreSQL the row lock."""
    device = await _counter_device(db)
    increment = _incrementer(device)

    def worker() -> None:
        for _ in range(20):
            db.write_sync(increment)

    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(partial(trio.to_thread.run_sync, worker))
    assert await _counter(db, device) == "80"


async def test_work_is_rolled_back_on_error(db: Database) -> None:
    user = _user("rollback")

    def half_done(conn: Connection) -> None:
        users.insert(conn, user)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await db.write(half_done)
    assert await db.read(lambda conn: users.by_username(conn, "rollback")) is None


async def test_unique_violation_is_translated(db: Database) -> None:
    await db.write(lambda conn: users.insert(conn, _user("taken")))
    with pytest.raises(UniqueViolation):
        await db.write(lambda conn: users.insert(conn, _user("taken")))


async def test_foreign_key_violation_is_translated(db: Database) -> None:
    orphan = DeviceRecord(uuid7(), uuid.uuid4(), None, now_us())
    with pytest.raises(IntegrityViolation) as caught:
        await db.write(lambda conn: devices.insert(conn, orphan))
    assert not isinstance(caught.value, UniqueViolation)


def _insert_user_on_driver_cursor(conn: Connection, user: UserRecord) -> None:
    mark = "%s" if conn.dialect.name == "postgresql" else "?"
    user_id = user.id if conn.dialect.name == "postgresql" else user.id.bytes
    cursor = driver_cursor(conn)
    try:
        cursor.execute(
            f"INSERT INTO users (id, username, password_hash, created_at)"  # noqa: S608
            f" VALUES ({mark}, {mark}, {mark}, {mark})",
            (user_id, user.username, user.password_hash, user.created_at),
        )
    finally:
        cursor.close()


async def test_driver_cursor_errors_are_translated_and_rolled_back(db: Database) -> None:
    """Hot paths run SQL on the driver's cursor: its exceptions map to the same tree."""
    await db.write(partial(_insert_user_on_driver_cursor, user=_user("driver")))
    assert await db.read(lambda conn: users.by_username(conn, "driver")) is not None

    def duplicate_then_more(conn: Connection) -> None:
        users.insert(conn, _user("driver_second"))
        _insert_user_on_driver_cursor(conn, _user("driver"))

    with pytest.raises(UniqueViolation):
        await db.write(duplicate_then_more)
    assert await db.read(lambda conn: users.by_username(conn, "driver_second")) is None

    def broken(conn: Connection) -> None:
        driver_cursor(conn).execute("SELECT no_such_column FROM users")

    with pytest.raises(StorageError) as caught:
        await db.read(broken)
    assert not isinstance(caught.value, IntegrityViolation)


async def test_username_format_is_enforced_by_the_database(db: Database) -> None:
    with pytest.raises(IntegrityViolation):
        await db.write(lambda conn: users.insert(conn, _user("x")))


async def test_ping(db: Database) -> None:
    assert await db.ping()


async def test_unreachable_database_is_unavailable() -> None:
    dead = Database(create_engine("postgresql://postgres@127.0.0.1:1/none"), max_concurrency=1)
    try:
        assert not await dead.ping()
        with pytest.raises(StorageUnavailable):
            await dead.read(lambda conn: users.by_username(conn, "x"))
    finally:
        dead.dispose()


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("postgres://u@h/db", "postgresql+psycopg"),
        ("postgresql://u@h/db", "postgresql+psycopg"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg"),
        ("sqlite:///x.db", "sqlite"),
    ],
)
def test_urls_are_normalised(url: str, driver: str) -> None:
    assert normalize_url(url).drivername == driver


@pytest.mark.parametrize("url", ["mysql://u@h/db", "sqlite://", "sqlite:///:memory:", "nonsense"])
def test_unsupported_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 (each message is specific to the URL)
        normalize_url(url)


async def test_checkpoint_copies_the_log_into_the_database_file(db: Database) -> None:
    """The relay checkpoints SQLite's WAL in the background instead of inside commits."""
    name = f"ckpt_{uuid.uuid4().hex[:12]}"
    await db.write(lambda conn: users.insert(conn, _user(name)))
    main_file = None if db.is_postgresql else Path(str(db.engine.url.database))
    if main_file is not None:
        assert name.encode() not in main_file.read_bytes()  # only in the log so far
    assert await db.checkpoint() == 0  # no reader holds the logged pages: all copied
    if main_file is not None:
        assert name.encode() in main_file.read_bytes()
    assert await db.read(lambda conn: users.by_username(conn, name)) is not None


_HOLD_WRITER_LOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
print(time.time_ns() // 1000, flush=True)
"""


async def test_sqlite_writes_wait_for_another_process_holding_the_writer_lock(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    # Another process (as another server worker) holds the lock for a while.
    lock = tmp_path / "postgresql-has-none.lock"
    if not db.is_postgresql:
        lock = Path(f"{normalize_url(database_url).database}-writer.lock")
    process = await trio.lowlevel.open_process(
        [sys.executable, "-c", _HOLD_WRITER_LOCK, str(lock), "0.4"],
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    output = b""
    while b"held\n" not in output:
        output += await process.stdout.receive_some()
    await _counter_device(db)  # a write
    wrote_at = now_us()
    while output.count(b"\n") < 2:
        output += await process.stdout.receive_some()
    await process.wait()
    released_at = int(output.split(b"\n")[1])
    if db.is_postgresql:
        assert wrote_at < released_at  # no lock file: PostgreSQL orders its writers itself
    else:
        assert wrote_at >= released_at


def _select_one(conn: Connection) -> int:
    return int(conn.execute(text("SELECT 1")).scalar_one())


def _select_one_on_the_driver(conn: Connection) -> int:
    with driver_cursor_of(conn) as cursor:
        cursor.execute("SELECT 1")
        return int(cursor.fetchone()[0])


def _kill_the_pooled_connection(engine: Engine, database_url: str) -> None:
    """End the session of the one connection resting in ``engine``'s pool, as a
    database restart or an operator's ``pg_terminate_backend`` does."""
    raw = engine.raw_connection()
    dbapi_connection = raw.dbapi_connection
    assert dbapi_connection is not None
    backend = dbapi_connection.info.backend_pid if engine.dialect.name == "postgresql" else None
    raw.close()  # back to the pool, alive
    if backend is None:
        dbapi_connection.close()
        return
    admin = create_engine(database_url)
    try:
        with admin.begin() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
        for _ in range(100):
            with admin.connect() as conn:
                query = text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid")
                if conn.execute(query, {"pid": backend}).scalar_one() == 0:
                    return
            time.sleep(0.05)
    finally:
        admin.dispose()


@pytest.mark.parametrize("work", [_select_one, _select_one_on_the_driver])
async def test_a_read_whose_pooled_connection_died_is_retried_on_a_new_one(
    database_url: str, work: Callable[[Connection], int]
) -> None:
    engine = create_engine(database_url, PoolOptions(max_connections=1))
    db = Database(engine, max_concurrency=1)
    try:
        assert await db.read(work) == 1  # the pool now holds one connection
        await trio.to_thread.run_sync(_kill_the_pooled_connection, engine, database_url)
        assert await db.read(work) == 1
        assert await db.read(work) == 1
    finally:
        engine.dispose()


async def test_a_write_whose_connection_died_is_unavailable_and_the_next_one_works(
    database_url: str,
) -> None:
    engine = create_engine(database_url, PoolOptions(max_connections=1))
    db = Database(engine, max_concurrency=1)
    try:
        await db.write(_select_one)
        await trio.to_thread.run_sync(_kill_the_pooled_connection, engine, database_url)
        # A write is not repeated (its outcome could be unknown): the caller learns it.
        with pytest.raises(StorageUnavailable) as raised:
            await db.write(_select_one_on_the_driver)
        assert raised.value.connection_lost
        assert await db.write(_select_one) == 1
    finally:
        engine.dispose()
