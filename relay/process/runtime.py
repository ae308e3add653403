"""What ``relay serve`` prepares before the event loop starts: data directory, database,
migrations and the JWT secret; and the services a server process runs on them."""

from __future__ import annotations

import base64
import logging
import os
import secrets
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import trio

from relay.config import DEFAULT_JWT_SECRET, SettingError, Settings
from relay.crypto.sealing import new_key, parse_key
from relay.events.hub import Hub, LocalHub
from relay.events.redis_hub import RedisHub
from relay.registry import Services, build_services
from storage.db import Database, PoolOptions, create_engine, normalize_url
from storage.migrate import current_revision, head_revision, upgrade
from storage.redis.client import RedisAddress

log = logging.getLogger("relay")

DEV_SECRET_FILE = "jwt-secret"  # noqa: S105 (a file name)
PUSH_KEY_FILE = "push-credentials-key"
MIN_SECRET_BYTES = 32


@dataclass(frozen=True)
class Runtime:
    """Resolved paths and secrets for one server process."""

    data_dir: Path
    blob_root: Path
    database_url: str
    jwt_secret: bytes
    push_key: bytes


def database_url(settings: Settings, data_dir: Path) -> str:
    """The configured database, or the embedded SQLite file in the data directory."""
    url = settings.database_url or f"sqlite:///{data_dir / 'relay.db'}"
    try:
        normalize_url(url)
    except ValueError as error:
        raise SettingError(f"RELAY_DATABASE_URL: {error}") from None
    return url


def _development_secret(data_dir: Path) -> bytes:
    path = data_dir / DEV_SECRET_FILE
    if path.exists():
        return path.read_text("ascii").strip().encode("ascii")
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(secret + b"\n")
    return secret


def resolve_jwt_secret(settings: Settings, data_dir: Path) -> bytes:
    """The explicit secret; in development a generated one kept in the data directory.

    Production refuses to start without an explicit, non-default secret.
    """
    explicit = settings.auth_jwt_secret
    if explicit is None and settings.pubsub_url is not None:
        raise SettingError(
            "RELAY_PUBSUB_URL is set, so several hosts share this cluster: set the same "
            "RELAY_AUTH_JWT_SECRET on every host (a generated one is per data directory)"
        )
    if settings.is_production:
        if explicit is None:
            raise SettingError(
                "RELAY_AUTH_JWT_SECRET must be set in production (RELAY_ENV=production)"
            )
        if explicit == DEFAULT_JWT_SECRET:
            raise SettingError("RELAY_AUTH_JWT_SECRET is the well-known default; set a real secret")
    if explicit is None:
        secret = _development_secret(data_dir)
        log.warning(
            "DEVELOPMENT MODE: access tokens are signed with a generated secret kept in %s; "
            "set RELAY_AUTH_JWT_SECRET (and RELAY_ENV=production) before real use",
            data_dir / DEV_SECRET_FILE,
        )
        return secret
    if explicit == DEFAULT_JWT_SECRET:
        log.warning("RELAY_AUTH_JWT_SECRET is the well-known default: tokens can be forged")
    elif len(explicit.encode()) < MIN_SECRET_BYTES:
        log.warning("RELAY_AUTH_JWT_SECRET is shorter than %d bytes", MIN_SECRET_BYTES)
    return explicit.encode()


def resolve_push_key(settings: Settings, data_dir: Path) -> bytes:
    """The key sealing push credentials and push keys: the setting, else a key generated
    once and kept (mode 0600) in the data directory. Losing it makes stored provider
    credentials and push keys unreadable."""
    if settings.push_credentials_key is not None:
        try:
            return parse_key(settings.push_credentials_key)
        except ValueError as error:
            raise SettingError(f"RELAY_PUSH_CREDENTIALS_KEY: {error}") from None
    if settings.pubsub_url is not None:
        raise SettingError(
            "RELAY_PUBSUB_URL is set, so several hosts share this cluster: set the same "
            "RELAY_PUSH_CREDENTIALS_KEY on every host (a generated one is per data directory)"
        )
    path = data_dir / PUSH_KEY_FILE
    if path.exists():
        try:
            return parse_key(path.read_text("ascii"))
        except ValueError as error:
            raise SettingError(f"{path}: {error}") from None
    key = new_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(base64.b64encode(key).decode("ascii") + "\n")
    log.info("generated the push credentials key in %s (back it up)", path)
    return key


def check_push_ca_file(settings: Settings) -> None:
    """Refuse to start with a CA file for the providers that cannot be loaded."""
    if settings.push_ca_file is None:
        return
    try:
        ssl.create_default_context().load_verify_locations(settings.push_ca_file)
    except (OSError, ssl.SSLError) as error:
        raise SettingError(
            f"RELAY_PUSH_CA_FILE: cannot load {settings.push_ca_file}: {error}"
        ) from None


def prepare(settings: Settings) -> Runtime:
    """Create the data directory, resolve the database URL and the JWT secret."""
    check_push_ca_file(settings)
    data_dir = Path(settings.data_dir).expanduser().resolve()
    blob_root = data_dir / "blobs"
    try:
        blob_root.mkdir(parents=True, exist_ok=True)
        return Runtime(
            data_dir=data_dir,
            blob_root=blob_root,
            database_url=database_url(settings, data_dir),
            jwt_secret=resolve_jwt_secret(settings, data_dir),
            push_key=resolve_push_key(settings, data_dir),
        )
    except OSError as error:
        reason = error.strerror or str(error)
        raise SettingError(
            f"RELAY_DATA_DIR: cannot use {data_dir} ({reason}: {error.filename}); set "
            "RELAY_DATA_DIR (--data-dir) to a directory this user can create and write"
        ) from error


def open_database(settings: Settings, runtime: Runtime) -> Database:
    """Create the engine and, when enabled, bring the schema up to date."""
    pool = PoolOptions(
        max_connections=settings.database_max_connections,
        acquire_timeout_secs=settings.database_acquire_timeout_secs,
        max_lifetime_secs=settings.database_max_lifetime_secs,
    )
    engine = create_engine(runtime.database_url, pool)
    if settings.auto_migrate:
        before = current_revision(engine)
        upgrade(engine)
        if before != head_revision():
            log.info("database migrated from %s to %s", before or "empty", head_revision())
    elif current_revision(engine) != head_revision():
        raise SettingError(
            "the database schema is not current and RELAY_AUTO_MIGRATE is off: run `relay migrate`"
        )
    return Database(engine, max_concurrency=settings.database_max_connections)


def event_hub(settings: Settings) -> Hub:
    """The hub of a process that has no peer workers: on the Redis bus when
    ``RELAY_PUBSUB_URL`` is set, else in-process."""
    if settings.pubsub_url is None:
        return LocalHub()
    return RedisHub(
        LocalHub(),
        RedisAddress.parse(settings.pubsub_url),
        min_backoff=settings.pubsub_min_backoff_secs,
        max_backoff=max(settings.pubsub_max_backoff_secs, settings.pubsub_min_backoff_secs),
    )


def run_with_services(
    settings: Settings,
    runtime: Runtime,
    main: Callable[[Services], Awaitable[object]],
    *,
    hub: Hub | None = None,
) -> None:
    """Open the database, wire the services (on ``hub``, else an in-process one), run
    ``main`` with them under trio, then close the database."""
    db = open_database(settings, runtime)
    try:
        services = build_services(
            settings,
            db,
            runtime.jwt_secret,
            runtime.blob_root,
            push_key=runtime.push_key,
            hub=hub or event_hub(settings),
        )
        trio.run(main, services)
    finally:
        db.dispose()
