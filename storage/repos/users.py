"""Accounts: one row per user, shared by every API face."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from storage.schema import users


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A stored account."""

    id: uuid.UUID
    username: str
    password_hash: str
    created_at: int


def insert(conn: Connection, user: UserRecord) -> None:
    """Create an account; raises ``UniqueViolation`` if the username is taken."""
    conn.execute(
        users.insert().values(
            id=user.id,
            username=user.username,
            password_hash=user.password_hash,
            created_at=user.created_at,
        )
    )


def by_username(conn: Connection, username: str) -> UserRecord | None:
    """The account with this (already lower-cased) username."""
    row = conn.execute(
        select(users.c.id, users.c.username, users.c.password_hash, users.c.created_at).where(
            users.c.username == username
        )
    ).first()
    return None if row is None else UserRecord(*row)


def by_id(conn: Connection, user_id: uuid.UUID) -> UserRecord | None:
    """The account with this id."""
    row = conn.execute(
        select(users.c.id, users.c.username, users.c.password_hash, users.c.created_at).where(
            users.c.id == user_id
        )
    ).first()
    return None if row is None else UserRecord(*row)


def lock(conn: Connection, user_id: uuid.UUID) -> bool:
    """Lock the account row until commit (PostgreSQL); False if it does not exist.

    Serialises per-user read-then-write work such as the device-limit check.
    """
    statement = select(users.c.id).where(users.c.id == user_id).with_for_update()
    return conn.execute(statement).first() is not None


def set_password_hash(conn: Connection, user_id: uuid.UUID, password_hash: str) -> None:
    """Replace the stored hash (used to upgrade hashing parameters on login)."""
    conn.execute(update(users).where(users.c.id == user_id).values(password_hash=password_hash))
