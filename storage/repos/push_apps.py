"""Push apps (tenants) and their per-provider credentials.

The ``secret`` column holds whatever the service sealed; storage never sees plaintext.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection

from storage.repos._dialect import upsert
from storage.schema import push_app_credentials, push_apps


@dataclass(frozen=True, slots=True)
class AppRow:
    """An app."""

    id: uuid.UUID
    name: str
    created_at: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class CredentialRow:
    """One provider's credentials of an app: public settings JSON and the sealed secret."""

    app_id: uuid.UUID
    platform: str
    settings: str
    secret: bytes
    updated_at: int


def create(conn: Connection, app_id: uuid.UUID, name: str, *, now: int) -> None:
    """Insert an app (IntegrityViolation if the name is taken)."""
    conn.execute(push_apps.insert().values(id=app_id, name=name, created_at=now, updated_at=now))


def _app(row: object) -> AppRow:
    return AppRow(row.id, row.name, row.created_at, row.updated_at)  # type: ignore[attr-defined]


def by_name(conn: Connection, name: str) -> AppRow | None:
    """The app called ``name``."""
    row = conn.execute(select(push_apps).where(push_apps.c.name == name)).first()
    return _app(row) if row is not None else None


def by_id(conn: Connection, app_id: uuid.UUID) -> AppRow | None:
    """The app with ``app_id``."""
    row = conn.execute(select(push_apps).where(push_apps.c.id == app_id)).first()
    return _app(row) if row is not None else None


def list_all(conn: Connection) -> list[AppRow]:
    """Every app, by name."""
    return [_app(row) for row in conn.execute(select(push_apps).order_by(push_apps.c.name))]


def delete_app(conn: Connection, app_id: uuid.UUID) -> bool:
    """Delete an app with its credentials and jobs; False if it did not exist."""
    return conn.execute(delete(push_apps).where(push_apps.c.id == app_id)).rowcount > 0


def put_credentials(
    conn: Connection, app_id: uuid.UUID, platform: str, settings: str, secret: bytes, *, now: int
) -> None:
    """Set (or replace) one provider's credentials."""
    upsert(
        conn,
        push_app_credentials,
        {
            "app_id": app_id,
            "platform": platform,
            "settings": settings,
            "secret": secret,
            "updated_at": now,
        },
        key=("app_id", "platform"),
        update=("settings", "secret", "updated_at"),
    )
    conn.execute(update(push_apps).where(push_apps.c.id == app_id).values(updated_at=now))


def remove_credentials(conn: Connection, app_id: uuid.UUID, platform: str) -> bool:
    """Remove one provider's credentials; False if there were none."""
    result = conn.execute(
        delete(push_app_credentials).where(
            push_app_credentials.c.app_id == app_id, push_app_credentials.c.platform == platform
        )
    )
    return result.rowcount > 0


def credentials(conn: Connection, app_id: uuid.UUID) -> list[CredentialRow]:
    """Every provider configured for the app."""
    rows = conn.execute(select(push_app_credentials).where(push_app_credentials.c.app_id == app_id))
    return [
        CredentialRow(row.app_id, row.platform, row.settings, row.secret, row.updated_at)
        for row in rows
    ]
