"""Signal key material: identity keys, signed pre-keys and one-time pre-keys."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Connection

from storage.repos._dialect import insert_ignoring_conflicts
from storage.schema import devices, identity_keys, one_time_pre_keys, signed_pre_keys


@dataclass(frozen=True, slots=True)
class SignedPreKey:
    """A signed pre-key as stored and served."""

    key_id: int
    public_key: bytes
    signature: bytes


@dataclass(frozen=True, slots=True)
class OneTimePreKey:
    """A one-time pre-key as stored and served."""

    key_id: int
    public_key: bytes


@dataclass(frozen=True, slots=True)
class Identity:
    """A device's long-term identity."""

    identity_key: bytes
    registration_id: int


@dataclass(frozen=True, slots=True)
class DeviceBundle:
    """What a sender needs to start a session with one device (pre-key taken separately)."""

    device_id: uuid.UUID
    identity: Identity
    signed_pre_key: SignedPreKey


def get_identity(conn: Connection, device_id: uuid.UUID, *, lock: bool = False) -> Identity | None:
    """The device's identity, locking its row until commit when ``lock`` (PostgreSQL)."""
    statement = select(identity_keys.c.identity_key, identity_keys.c.registration_id).where(
        identity_keys.c.device_id == device_id
    )
    if lock:
        statement = statement.with_for_update()
    row = conn.execute(statement).first()
    return None if row is None else Identity(bytes(row[0]), row[1])


def insert_identity(conn: Connection, device_id: uuid.UUID, identity: Identity) -> None:
    """Store a new device's identity."""
    conn.execute(
        identity_keys.insert().values(
            device_id=device_id,
            identity_key=identity.identity_key,
            registration_id=identity.registration_id,
        )
    )


def replace_identity(conn: Connection, device_id: uuid.UUID, identity: Identity) -> None:
    """Overwrite an existing device's identity (takeover)."""
    conn.execute(
        update(identity_keys)
        .where(identity_keys.c.device_id == device_id)
        .values(identity_key=identity.identity_key, registration_id=identity.registration_id)
    )


def max_signed_pre_key_id(conn: Connection, device_id: uuid.UUID) -> int | None:
    """The highest stored signed pre-key id, or None when there is none."""
    statement = select(func.max(signed_pre_keys.c.key_id)).where(
        signed_pre_keys.c.device_id == device_id
    )
    value = conn.execute(statement).scalar()
    return None if value is None else int(value)


def rotate_signed_pre_key(
    conn: Connection, device_id: uuid.UUID, key: SignedPreKey, *, now: int
) -> None:
    """Store ``key`` and drop every signed pre-key with a smaller id."""
    conn.execute(
        delete(signed_pre_keys).where(
            signed_pre_keys.c.device_id == device_id, signed_pre_keys.c.key_id < key.key_id
        )
    )
    insert_ignoring_conflicts(
        conn,
        signed_pre_keys,
        [
            {
                "device_id": device_id,
                "key_id": key.key_id,
                "public_key": key.public_key,
                "signature": key.signature,
                "created_at": now,
            }
        ],
    )


def delete_all_pre_keys(conn: Connection, device_id: uuid.UUID) -> None:
    """Remove every signed and one-time pre-key of the device (takeover)."""
    conn.execute(delete(signed_pre_keys).where(signed_pre_keys.c.device_id == device_id))
    conn.execute(delete(one_time_pre_keys).where(one_time_pre_keys.c.device_id == device_id))


def count_one_time(conn: Connection, device_id: uuid.UUID) -> int:
    """How many one-time pre-keys the device has left."""
    statement = (
        select(func.count())
        .select_from(one_time_pre_keys)
        .where(one_time_pre_keys.c.device_id == device_id)
    )
    return int(conn.execute(statement).scalar_one())


def delete_oldest_one_time(conn: Connection, device_id: uuid.UUID, count: int) -> None:
    """Delete the ``count`` oldest one-time pre-keys of the device."""
    if count <= 0:
        return
    oldest = (
        select(one_time_pre_keys.c.key_id)
        .where(one_time_pre_keys.c.device_id == device_id)
        .order_by(one_time_pre_keys.c.created_at, one_time_pre_keys.c.key_id)
        .limit(count)
    )
    conn.execute(
        delete(one_time_pre_keys).where(
            one_time_pre_keys.c.device_id == device_id, one_time_pre_keys.c.key_id.in_(oldest)
        )
    )


def add_one_time(
    conn: Connection, device_id: uuid.UUID, keys: Sequence[OneTimePreKey], *, now: int
) -> None:
    """Insert one-time pre-keys in one batch, skipping ids the device already has."""
    insert_ignoring_conflicts(
        conn,
        one_time_pre_keys,
        [
            {
                "device_id": device_id,
                "key_id": k.key_id,
                "public_key": k.public_key,
                "created_at": now,
            }
            for k in keys
        ],
    )


def bundles_for_user(conn: Connection, user_id: uuid.UUID) -> list[DeviceBundle]:
    """One bundle per device of the user that has an identity and a signed pre-key."""
    statement = (
        select(
            devices.c.id,
            identity_keys.c.identity_key,
            identity_keys.c.registration_id,
            signed_pre_keys.c.key_id,
            signed_pre_keys.c.public_key,
            signed_pre_keys.c.signature,
        )
        .join(identity_keys, identity_keys.c.device_id == devices.c.id)
        .join(signed_pre_keys, signed_pre_keys.c.device_id == devices.c.id)
        .where(devices.c.user_id == user_id)
        .order_by(
            devices.c.created_at,
            devices.c.id,
            signed_pre_keys.c.created_at.desc(),
            signed_pre_keys.c.key_id.desc(),
        )
    )
    bundles: dict[uuid.UUID, DeviceBundle] = {}
    for row in conn.execute(statement):
        if row[0] not in bundles:  # rows are newest-first per device
            bundles[row[0]] = DeviceBundle(
                device_id=row[0],
                identity=Identity(bytes(row[1]), row[2]),
                signed_pre_key=SignedPreKey(row[3], bytes(row[4]), bytes(row[5])),
            )
    return list(bundles.values())


def take_one_time(conn: Connection, device_id: uuid.UUID) -> OneTimePreKey | None:
    """Atomically remove and return one of the device's one-time pre-keys, if any.

    On PostgreSQL the candidate row is locked with ``SKIP LOCKED``, so concurrent
    fetches each take a different key instead of queueing on (or sharing) one.
    """
    candidate = (
        select(one_time_pre_keys.c.key_id)
        .where(one_time_pre_keys.c.device_id == device_id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    statement = (
        delete(one_time_pre_keys)
        .where(one_time_pre_keys.c.device_id == device_id, one_time_pre_keys.c.key_id == candidate)
        .returning(one_time_pre_keys.c.key_id, one_time_pre_keys.c.public_key)
    )
    row = conn.execute(statement).first()
    return None if row is None else OneTimePreKey(row[0], bytes(row[1]))
