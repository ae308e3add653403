"""PowerAuth face state: activations, campaigns and their users, the message inbox."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, func, select, update
from sqlalchemy.engine import Connection

from storage.repos._dialect import insert_ignoring_conflicts, upsert
from storage.schema import (
    powerauth_activations,
    push_apps,
    push_campaign_users,
    push_campaigns,
    push_inbox,
    push_inbox_apps,
)

# --- activations ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Activation:
    """A PowerAuth activation: which user it belongs to and its status."""

    activation_id: str
    user_name: str
    status: str


def put_activation(conn: Connection, activation: Activation, *, now: int) -> None:
    """Record an activation (its user and status)."""
    upsert(
        conn,
        powerauth_activations,
        {
            "activation_id": activation.activation_id,
            "user_name": activation.user_name,
            "status": activation.status,
            "updated_at": now,
        },
        key=("activation_id",),
        update=("user_name", "status", "updated_at"),
    )


def set_activation_status(conn: Connection, activation_id: str, status: str, *, now: int) -> bool:
    """Change a known activation's status; False if unknown."""
    result = conn.execute(
        update(powerauth_activations)
        .where(powerauth_activations.c.activation_id == activation_id)
        .values(status=status, updated_at=now)
    )
    return result.rowcount > 0


def activations(conn: Connection, ids: Sequence[str]) -> dict[str, Activation]:
    """The known activations among ``ids``."""
    if not ids:
        return {}
    rows = conn.execute(
        select(powerauth_activations).where(powerauth_activations.c.activation_id.in_(ids))
    )
    return {
        row.activation_id: Activation(row.activation_id, row.user_name, row.status) for row in rows
    }


# --- campaigns ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Campaign:
    """A campaign and its sending progress."""

    id: int
    app_id: uuid.UUID
    app_name: str
    message: str
    sent: bool
    state: str
    cursor: str | None
    devices: int
    created_at: int
    sent_at: int | None
    completed_at: int | None


def create_campaign(conn: Connection, app_id: uuid.UUID, message: str, *, now: int) -> int:
    """A new, unsent campaign; returns its id."""
    result = conn.execute(
        push_campaigns.insert().values(
            app_id=app_id, message=message, sent=False, state="new", devices=0, created_at=now
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def _campaigns_query() -> Select[Any]:
    return select(push_campaigns, push_apps.c.name.label("app_name")).join(
        push_apps, push_apps.c.id == push_campaigns.c.app_id
    )


def _campaign(row: object) -> Campaign:
    return Campaign(
        *(
            getattr(row, name)
            for name in (
                "id",
                "app_id",
                "app_name",
                "message",
                "sent",
                "state",
                "cursor",
                "devices",
                "created_at",
                "sent_at",
                "completed_at",
            )
        )
    )


def campaign(conn: Connection, campaign_id: int) -> Campaign | None:
    """One campaign."""
    row = conn.execute(_campaigns_query().where(push_campaigns.c.id == campaign_id)).first()
    return _campaign(row) if row is not None else None


def campaigns(conn: Connection, *, only_sent: bool) -> list[Campaign]:
    """Every campaign, or only the sent ones."""
    query = _campaigns_query().order_by(push_campaigns.c.id)
    if only_sent:
        query = query.where(push_campaigns.c.sent.is_(True))
    return [_campaign(row) for row in conn.execute(query)]


def sending_campaigns(conn: Connection) -> list[int]:
    """Campaigns whose pages are still being queued (resumed after a restart)."""
    rows = conn.execute(
        select(push_campaigns.c.id)
        .where(push_campaigns.c.state == "sending")
        .order_by(push_campaigns.c.id)
    )
    return [row[0] for row in rows]


def delete_campaign(conn: Connection, campaign_id: int) -> bool:
    """Delete a campaign and its users; False if it did not exist."""
    conn.execute(
        delete(push_campaign_users).where(push_campaign_users.c.campaign_id == campaign_id)
    )
    result = conn.execute(delete(push_campaigns).where(push_campaigns.c.id == campaign_id))
    return result.rowcount > 0


def start_campaign(conn: Connection, campaign_id: int, *, now: int) -> bool:
    """Begin (or restart) sending; False if the campaign is already being sent."""
    result = conn.execute(
        update(push_campaigns)
        .where(push_campaigns.c.id == campaign_id, push_campaigns.c.state != "sending")
        .values(state="sending", cursor=None, devices=0, sent_at=now, completed_at=None)
    )
    return result.rowcount > 0


def advance_campaign(
    conn: Connection, campaign_id: int, *, expected: str | None, cursor: str, queued: int
) -> bool:
    """Move the cursor from ``expected`` to ``cursor`` (compare-and-set); False if another
    worker moved it first (then this page must not be queued)."""
    result = conn.execute(
        update(push_campaigns)
        .where(
            push_campaigns.c.id == campaign_id,
            push_campaigns.c.state == "sending",
            push_campaigns.c.cursor.is_not_distinct_from(expected),
        )
        .values(cursor=cursor, devices=push_campaigns.c.devices + queued)
    )
    return result.rowcount > 0


def finish_campaign(conn: Connection, campaign_id: int, *, expected: str | None, now: int) -> None:
    """Every page is queued: the campaign is sent (unless another worker moved on)."""
    conn.execute(
        update(push_campaigns)
        .where(
            push_campaigns.c.id == campaign_id,
            push_campaigns.c.state == "sending",
            push_campaigns.c.cursor.is_not_distinct_from(expected),
        )
        .values(state="sent", sent=True, completed_at=now)
    )


def add_campaign_users(
    conn: Connection, campaign_id: int, user_names: Sequence[str], *, now: int
) -> None:
    """Add users (duplicates are skipped)."""
    rows = [
        {"campaign_id": campaign_id, "user_name": name, "created_at": now}
        for name in dict.fromkeys(user_names)
    ]
    insert_ignoring_conflicts(conn, push_campaign_users, rows)


def delete_campaign_users(conn: Connection, campaign_id: int, user_names: Sequence[str]) -> int:
    """Remove users from a campaign."""
    if not user_names:
        return 0
    result = conn.execute(
        delete(push_campaign_users).where(
            push_campaign_users.c.campaign_id == campaign_id,
            push_campaign_users.c.user_name.in_(list(user_names)),
        )
    )
    return max(result.rowcount, 0)


def campaign_users(conn: Connection, campaign_id: int, *, page: int, size: int) -> list[str]:
    """One page of a campaign's users, in the order they were added."""
    rows = conn.execute(
        select(push_campaign_users.c.user_name)
        .where(push_campaign_users.c.campaign_id == campaign_id)
        .order_by(push_campaign_users.c.created_at, push_campaign_users.c.user_name)
        .offset(page * size)
        .limit(size)
    )
    return [row[0] for row in rows]


# --- inbox ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InboxMessage:
    """A message in a user's inbox."""

    id: uuid.UUID
    user_name: str
    type: str
    subject: str
    summary: str
    body: str
    read: bool
    created_at: int
    read_at: int | None
    applications: tuple[str, ...]


def post_message(conn: Connection, message: InboxMessage, app_ids: Sequence[uuid.UUID]) -> None:
    """Store an inbox message for its applications."""
    conn.execute(
        push_inbox.insert().values(
            id=message.id,
            user_name=message.user_name,
            type=message.type,
            subject=message.subject,
            summary=message.summary,
            body=message.body,
            read=False,
            created_at=message.created_at,
            read_at=None,
        )
    )
    conn.execute(
        push_inbox_apps.insert(), [{"inbox_id": message.id, "app_id": app} for app in app_ids]
    )


def _apps_of(conn: Connection, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, tuple[str, ...]]:
    if not ids:
        return {}
    rows = conn.execute(
        select(push_inbox_apps.c.inbox_id, push_apps.c.name)
        .join(push_apps, push_apps.c.id == push_inbox_apps.c.app_id)
        .where(push_inbox_apps.c.inbox_id.in_(list(ids)))
        .order_by(push_apps.c.name)
    )
    found: dict[uuid.UUID, list[str]] = {}
    for inbox_id, name in rows:
        found.setdefault(inbox_id, []).append(name)
    return {key: tuple(value) for key, value in found.items()}


def _messages(conn: Connection, rows: Sequence[object]) -> list[InboxMessage]:
    apps = _apps_of(conn, [row.id for row in rows])  # type: ignore[attr-defined]
    return [
        InboxMessage(
            **{c.name: getattr(row, c.name) for c in push_inbox.columns},
            applications=apps.get(row.id, ()),  # type: ignore[attr-defined]
        )
        for row in rows
    ]


def _in_apps(app_ids: Sequence[uuid.UUID]) -> ColumnElement[bool]:
    return push_inbox.c.id.in_(
        select(push_inbox_apps.c.inbox_id).where(push_inbox_apps.c.app_id.in_(list(app_ids)))
    )


def message(conn: Connection, inbox_id: uuid.UUID) -> InboxMessage | None:
    """One inbox message."""
    rows = conn.execute(select(push_inbox).where(push_inbox.c.id == inbox_id)).all()
    found = _messages(conn, rows)
    return found[0] if found else None


def messages(
    conn: Connection,
    user_name: str,
    app_ids: Sequence[uuid.UUID],
    *,
    only_unread: bool,
    page: int,
    size: int,
) -> list[InboxMessage]:
    """A page of a user's messages in any of the apps, newest first."""
    query = select(push_inbox).where(push_inbox.c.user_name == user_name, _in_apps(app_ids))
    if only_unread:
        query = query.where(push_inbox.c.read.is_(False))
    query = (
        query.order_by(push_inbox.c.created_at.desc(), push_inbox.c.id.desc())
        .offset(page * size)
        .limit(size)
    )
    return _messages(conn, conn.execute(query).all())


def count_unread(conn: Connection, user_name: str, app_id: uuid.UUID) -> int:
    """How many unread messages the user has in the app."""
    query = (
        select(func.count())
        .select_from(push_inbox)
        .where(
            push_inbox.c.user_name == user_name,
            push_inbox.c.read.is_(False),
            _in_apps([app_id]),
        )
    )
    return int(conn.execute(query).scalar_one())


def mark_read(conn: Connection, inbox_id: uuid.UUID, *, now: int) -> None:
    """Mark one message read (a no-op when it already is)."""
    conn.execute(
        update(push_inbox)
        .where(push_inbox.c.id == inbox_id, push_inbox.c.read.is_(False))
        .values(read=True, read_at=now)
    )


def mark_all_read(conn: Connection, user_name: str, app_id: uuid.UUID, *, now: int) -> int:
    """Mark every unread message of the user in the app read."""
    result = conn.execute(
        update(push_inbox)
        .where(
            push_inbox.c.user_name == user_name,
            push_inbox.c.read.is_(False),
            _in_apps([app_id]),
        )
        .values(read=True, read_at=now)
    )
    return max(result.rowcount, 0)
