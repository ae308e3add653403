"""The feedback webhook's durable queue: events waiting to be POSTed, leased by pushing
their next attempt into the future, deleted once delivered or given up."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Connection

from storage.ids import uuid7
from storage.schema import push_feedback


@dataclass(frozen=True, slots=True)
class FeedbackEvent:
    """One event to deliver."""

    id: uuid.UUID
    body: str
    attempts: int


def add(conn: Connection, bodies: Sequence[str], *, now: int, max_pending: int) -> int:
    """Queue events, due now, as long as fewer than ``max_pending`` wait; how many were
    queued (the rest are dropped: a receiver that is down must not fill the disk)."""
    if not bodies:
        return 0
    waiting = conn.execute(select(func.count()).select_from(push_feedback)).scalar_one()
    room = max(0, max_pending - int(waiting))
    rows = [
        {"id": uuid7(), "body": body, "attempts": 0, "next_attempt_at": now, "created_at": now}
        for body in bodies[:room]
    ]
    if rows:
        conn.execute(push_feedback.insert(), rows)
    return len(rows)


def lease(conn: Connection, *, now: int, limit: int, hold_us: int) -> list[FeedbackEvent]:
    """Take up to ``limit`` due events for ``hold_us`` (another process skips them)."""
    due = (
        select(push_feedback.c.id, push_feedback.c.body, push_feedback.c.attempts)
        .where(push_feedback.c.next_attempt_at <= now)
        .order_by(push_feedback.c.next_attempt_at)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    events = [FeedbackEvent(*row) for row in conn.execute(due)]
    if events:
        conn.execute(
            update(push_feedback)
            .where(push_feedback.c.id.in_([event.id for event in events]))
            .values(next_attempt_at=now + hold_us)
        )
    return events


def delivered(conn: Connection, ids: Sequence[uuid.UUID]) -> None:
    """Forget delivered (or given-up) events."""
    if ids:
        conn.execute(delete(push_feedback).where(push_feedback.c.id.in_(list(ids))))


def retry(conn: Connection, event_id: uuid.UUID, *, attempts: int, at: int) -> None:
    """Count a failed attempt; try again at ``at``."""
    conn.execute(
        update(push_feedback)
        .where(push_feedback.c.id == event_id)
        .values(attempts=attempts, next_attempt_at=at)
    )


def next_due(conn: Connection) -> int | None:
    """When the next event is due, if any waits."""
    value = conn.execute(select(func.min(push_feedback.c.next_attempt_at))).scalar_one()
    return None if value is None else int(value)
