"""The unified push registrations written by the PowerAuth, Zulip and Rocket.Chat faces."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection

from storage.repos.push_tokens import Removal, compare_and_clear
from storage.schema import push_campaign_users, push_registrations

POWERAUTH, ZULIP, ROCKETCHAT = "powerauth", "zulip", "rocketchat"


@dataclass(frozen=True, slots=True)
class Registration:
    """One device registration of one user for one app."""

    id: uuid.UUID
    app_id: uuid.UUID
    user_name: str
    face: str
    face_ref: str
    platform: str
    environment: str
    token: str
    push_key: bytes | None
    active: bool
    created_at: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class CampaignTarget:
    """One distinct device of a campaign page."""

    platform: str
    environment: str
    token: str
    push_key: bytes | None
    face: str
    face_ref: str


def _row(row: object) -> Registration:
    return Registration(*(getattr(row, c.name) for c in push_registrations.columns))


def insert(conn: Connection, registration: Registration) -> None:
    """Store a new registration."""
    conn.execute(
        push_registrations.insert().values(
            {c.name: getattr(registration, c.name) for c in push_registrations.columns}
        )
    )


def change(conn: Connection, registration_id: uuid.UUID, **values: object) -> None:
    """Update columns of one registration."""
    conn.execute(
        update(push_registrations).where(push_registrations.c.id == registration_id).values(values)
    )


def by_ref(conn: Connection, face: str, face_ref: str) -> list[Registration]:
    """Registrations a face knows under ``face_ref`` (any user)."""
    rows = conn.execute(
        select(push_registrations).where(
            push_registrations.c.face == face, push_registrations.c.face_ref == face_ref
        )
    )
    return [_row(row) for row in rows]


def by_user(conn: Connection, face: str, user_name: str) -> list[Registration]:
    """A user's registrations made through one face, oldest first."""
    rows = conn.execute(
        select(push_registrations)
        .where(push_registrations.c.face == face, push_registrations.c.user_name == user_name)
        .order_by(push_registrations.c.created_at)
    )
    return [_row(row) for row in rows]


def by_token(
    conn: Connection, token: str, *, app_id: uuid.UUID | None = None, face: str | None = None
) -> list[Registration]:
    """Registrations of a token, optionally within one app or one face."""
    query = select(push_registrations).where(push_registrations.c.token == token)
    if app_id is not None:
        query = query.where(push_registrations.c.app_id == app_id)
    if face is not None:
        query = query.where(push_registrations.c.face == face)
    return [_row(row) for row in conn.execute(query)]


def of_user(
    conn: Connection,
    app_id: uuid.UUID | None,
    user_name: str,
    *,
    activation_id: str | None = None,
) -> list[Registration]:
    """The registrations a message to ``user_name`` reaches (every face); within one app
    unless ``app_id`` is None, narrowed to one PowerAuth activation if given."""
    query = select(push_registrations).where(push_registrations.c.user_name == user_name)
    if app_id is not None:
        query = query.where(push_registrations.c.app_id == app_id)
    if activation_id is not None:
        query = query.where(
            push_registrations.c.face == POWERAUTH,
            push_registrations.c.face_ref == activation_id,
        )
    return [_row(row) for row in conn.execute(query.order_by(push_registrations.c.created_at))]


def delete_ids(conn: Connection, ids: Sequence[uuid.UUID]) -> int:
    """Delete registrations by id."""
    if not ids:
        return 0
    result = conn.execute(delete(push_registrations).where(push_registrations.c.id.in_(ids)))
    return max(result.rowcount, 0)


def delete_token(
    conn: Connection,
    token: str,
    *,
    app_id: uuid.UUID | None = None,
    face: str | None = None,
    user_name: str | None = None,
) -> int:
    """Delete the registrations of a token (within an app, face and user when given)."""
    statement = delete(push_registrations).where(push_registrations.c.token == token)
    if app_id is not None:
        statement = statement.where(push_registrations.c.app_id == app_id)
    if face is not None:
        statement = statement.where(push_registrations.c.face == face)
    if user_name is not None:
        statement = statement.where(push_registrations.c.user_name == user_name)
    return max(conn.execute(statement).rowcount, 0)


def set_active(conn: Connection, face: str, face_ref: str, active: bool) -> int:
    """Mark every registration of ``face_ref`` (in)active (not a renewal of the token:
    ``updated_at`` stays, so a later dead-token signal still compares correctly)."""
    result = conn.execute(
        update(push_registrations)
        .where(push_registrations.c.face == face, push_registrations.c.face_ref == face_ref)
        .values(active=active)
    )
    return max(result.rowcount, 0)


def campaign_page(
    conn: Connection, campaign_id: int, app_id: uuid.UUID, *, after: str | None, limit: int
) -> list[CampaignTarget]:
    """The campaign's users' devices in its app, in token order after ``after``: at most
    ``limit`` registrations read, each token once however many users share it (the rest
    of a token cut off by the limit is skipped by the next page's ``> after``)."""
    r = push_registrations
    query = (
        select(r.c.token, r.c.platform, r.c.environment, r.c.push_key, r.c.face, r.c.face_ref)
        .join(push_campaign_users, push_campaign_users.c.user_name == r.c.user_name)
        .where(push_campaign_users.c.campaign_id == campaign_id, r.c.app_id == app_id)
        .order_by(r.c.token, r.c.id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(r.c.token > after)
    page: list[CampaignTarget] = []
    for row in conn.execute(query):
        if not page or page[-1].token != row.token:
            page.append(
                CampaignTarget(
                    row.platform, row.environment, row.token, row.push_key, row.face, row.face_ref
                )
            )
    return page


def remove_unless_renewed(conn: Connection, removals: Sequence[Removal]) -> list[Removal]:
    """Compare-and-clear: delete registrations of each token not renewed since ``before``;
    the removals that deleted something."""
    return compare_and_clear(conn, push_registrations, removals)
