"""Shared fixtures: a real database (SQLite, or PostgreSQL via RELAY_TEST_DATABASE_URL),
settings per test (``@pytest.mark.settings(...)``), and a real server on free ports."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from functools import partial
from pathlib import Path

import httpx
import pytest
import trio
from sqlalchemy.engine import Engine

from bench.backing import RedisServer, moto_server, new_bucket, running_redis
from relay.config import Settings
from relay.process.server import Listening, run_server
from relay.registry import Services, build_services
from storage import migrate
from storage.db import Database, PoolOptions, create_engine
from storage.s3.store import S3Config
from storage.schema import metadata
from tests.pushkit import Emulators, Keys, make_keys, running_emulators

TEST_JWT_SECRET = "relay-test-secret-0123456789abcdef0123456789"
UNLIMITED = 1_000_000


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The database under test: PostgreSQL when RELAY_TEST_DATABASE_URL is set."""
    configured = os.environ.get("RELAY_TEST_DATABASE_URL")
    if configured:
        return configured
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'relay.db'}"


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    """One engine per session, on a schema built by the real migrations."""
    engine = create_engine(database_url, PoolOptions(max_connections=20))
    if migrate.current_revision(engine) is not None:
        migrate.downgrade(engine, "base")
    metadata.drop_all(engine)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


def wipe(engine: Engine) -> None:
    """Delete every row of every relay table."""
    # DELETE beats TRUNCATE here: the tables are tiny, and TRUNCATE on PostgreSQL
    # swaps files and syncs them (~0.8 s per test on the project machines).
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture
def db(engine: Engine) -> Database:
    """An empty database."""
    wipe(engine)
    return Database(engine, max_concurrency=20)


@pytest.fixture
def is_postgresql(engine: Engine) -> bool:
    """True when the suite runs against PostgreSQL."""
    return engine.dialect.name == "postgresql"


@pytest.fixture
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Test settings: free ports, a fixed secret, no rate limits unless a test sets them."""
    values: dict[str, object] = {
        "data_dir": str(tmp_path),
        "server_port": 0,
        "server_mgmt_port": 0,
        "auth_jwt_secret": TEST_JWT_SECRET,
        "auto_migrate": False,
        "rate_limit_per_second": UNLIMITED,
        "rate_limit_burst": UNLIMITED,
        "rate_limit_auth_per_second": UNLIMITED,
        "rate_limit_auth_burst": UNLIMITED,
        "server_shutdown_timeout_secs": 2,
        # Cheap hashes keep the suite fast; tests/crypto checks the production parameters.
        "auth_password_hash_memory_kib": 64,
        "auth_password_hash_iterations": 1,
    }
    marker = request.node.get_closest_marker("settings")
    if marker is not None:
        values.update(marker.kwargs)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def blob_root(tmp_path: Path) -> Path:
    """The test server's blob directory."""
    root = tmp_path / "blobs"
    root.mkdir(exist_ok=True)
    return root


@pytest.fixture
def services(settings: Settings, db: Database, blob_root: Path) -> Services:
    """Services wired to the test database."""
    assert settings.auth_jwt_secret is not None
    return build_services(settings, db, settings.auth_jwt_secret.encode(), blob_root)


@pytest.fixture
async def relay(
    nursery: trio.Nursery, settings: Settings, services: Services
) -> AsyncIterator[Listening]:
    """A running server (API and management listeners) for the test."""
    shutdown = trio.Event()
    listening: Listening = await nursery.start(
        partial(run_server, settings, services, shutdown=shutdown)
    )
    yield listening
    shutdown.set()


@pytest.fixture
async def http(relay: Listening) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client bound to the server's API port."""
    async with httpx.AsyncClient(base_url=relay.api_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    """Provider signing keys and the emulators' TLS certificate (made once)."""
    return make_keys(tmp_path_factory.mktemp("push-keys"))


@pytest.fixture
async def emulators(keys: Keys) -> AsyncIterator[Emulators]:
    """APNs, FCM and HMS emulators on loopback over TLS."""
    async with running_emulators(keys) as running:
        yield running


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server the test may stop and start again."""
    with running_redis(tmp_path / "redis") as server:
        yield server


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server for the whole session."""
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> S3Config:
    """A bucket of this test's own on the session's S3 server."""
    return new_bucket(s3_endpoint)
