"""Refresh tokens, stored as SHA-256 digests, rotated on every use."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection

from storage.schema import refresh_tokens


@dataclass(frozen=True, slots=True)
class RefreshGrant:
    """Who a refresh token was issued to."""

    user_id: uuid.UUID
    device_id: uuid.UUID | None


def insert(
    conn: Connection,
    token_hash: str,
    grant: RefreshGrant,
    *,
    expires_at: int,
    now: int,
) -> None:
    """Store a new refresh token's digest."""
    conn.execute(
        refresh_tokens.insert().values(
            token_hash=token_hash,
            user_id=grant.user_id,
            device_id=grant.device_id,
            expires_at=expires_at,
            created_at=now,
        )
    )


def consume(conn: Connection, token_hash: str, *, now: int) -> RefreshGrant | None:
    """Delete the token and return its grant if it had not expired.

    The delete happens whatever the expiry, so an expired token is used up by the
    attempt, and two concurrent rotations of one token cannot both succeed.
    """
    statement = (
        delete(refresh_tokens)
        .where(refresh_tokens.c.token_hash == token_hash)
        .returning(
            refresh_tokens.c.user_id, refresh_tokens.c.device_id, refresh_tokens.c.expires_at
        )
    )
    row = conn.execute(statement).first()
    if row is None or row.expires_at <= now:
        return None
    return RefreshGrant(row.user_id, row.device_id)


def delete_owned(conn: Connection, token_hash: str, user_id: uuid.UUID) -> None:
    """Revoke a token, but only if it belongs to ``user_id``."""
    conn.execute(
        delete(refresh_tokens).where(
            refresh_tokens.c.token_hash == token_hash, refresh_tokens.c.user_id == user_id
        )
    )


def delete_expired(conn: Connection, *, now: int, limit: int) -> int:
    """Delete up to ``limit`` expired tokens; returns how many went."""
    expired = (
        select(refresh_tokens.c.token_hash).where(refresh_tokens.c.expires_at <= now).limit(limit)
    )
    statement = delete(refresh_tokens).where(refresh_tokens.c.token_hash.in_(expired))
    return conn.execute(statement).rowcount
