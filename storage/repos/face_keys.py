"""Secrets of the compatible faces, all stored hashed or sealed: integrator API keys,
Zulip API keys and Rocket.Chat auth tokens of relay users, the bouncer's key pairs."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection

from storage.schema import api_keys, bouncer_keys, face_tokens

# --- integrator API keys --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An integrator key, by name (its digest is never shown)."""

    name: str
    created_at: int


def add_api_key(conn: Connection, name: str, key_hash: str, *, now: int) -> None:
    """Store a key's digest (IntegrityViolation if the name is taken)."""
    conn.execute(api_keys.insert().values(key_hash=key_hash, name=name, created_at=now))


def api_key_named_by_hash(conn: Connection, key_hash: str) -> str | None:
    """The name of the key with this digest."""
    row = conn.execute(select(api_keys.c.name).where(api_keys.c.key_hash == key_hash)).first()
    return row[0] if row is not None else None


def list_api_keys(conn: Connection) -> list[ApiKey]:
    """Every key, by name."""
    rows = conn.execute(select(api_keys.c.name, api_keys.c.created_at).order_by(api_keys.c.name))
    return [ApiKey(row[0], row[1]) for row in rows]


def delete_api_key(conn: Connection, name: str) -> bool:
    """Revoke a key; False if there is none by that name."""
    return conn.execute(delete(api_keys).where(api_keys.c.name == name)).rowcount > 0


# --- face tokens (Zulip API keys, Rocket.Chat auth tokens) ----------------------------


def add_face_token(
    conn: Connection, user_id: uuid.UUID, face: str, token_hash: str, *, now: int, keep: int
) -> None:
    """Store a new token of the user, keeping only its ``keep`` newest for the face."""
    conn.execute(
        face_tokens.insert().values(
            token_hash=token_hash, user_id=user_id, face=face, created_at=now
        )
    )
    stale = (
        select(face_tokens.c.token_hash)
        .where(face_tokens.c.user_id == user_id, face_tokens.c.face == face)
        .order_by(face_tokens.c.created_at.desc(), face_tokens.c.token_hash)
        .offset(keep)
    )
    conn.execute(delete(face_tokens).where(face_tokens.c.token_hash.in_(stale)))


def face_token_user(conn: Connection, face: str, token_hash: str) -> uuid.UUID | None:
    """The user a token belongs to."""
    row = conn.execute(
        select(face_tokens.c.user_id).where(
            face_tokens.c.token_hash == token_hash, face_tokens.c.face == face
        )
    ).first()
    return row[0] if row is not None else None


# --- bouncer keys ---------------------------------------------------------------------


def add_bouncer_key(conn: Connection, public_key: str, sealed_private: bytes, *, now: int) -> None:
    """Store a key pair (the private half sealed by the caller)."""
    conn.execute(
        bouncer_keys.insert().values(
            public_key=public_key, private_key=sealed_private, created_at=now
        )
    )


def bouncer_keys_all(conn: Connection) -> dict[str, bytes]:
    """Every key pair: public (Base64) to sealed private half."""
    rows = conn.execute(select(bouncer_keys.c.public_key, bouncer_keys.c.private_key))
    return {row[0]: row[1] for row in rows}


def remove_bouncer_key(conn: Connection, public_key: str) -> bool:
    """Retire a key pair; False if unknown."""
    result = conn.execute(delete(bouncer_keys).where(bouncer_keys.c.public_key == public_key))
    return result.rowcount > 0
