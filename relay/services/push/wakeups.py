"""Relay wake-ups (obscura-contract §5.2): a content-free push that tells an offline
device to connect and fetch.

Scheduling runs inside the caller's transaction (the one that queued the messages or
took the pre-key), so a wake-up exists exactly when its cause does. One pending wake-up
per device: a burst of messages yields one push, due ``delay`` after the first. A
session starting or an acknowledgement cancels it.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection

from sqlalchemy.engine import Connection

from providers.message import PushMessage
from relay.crypto.sealing import Vault
from relay.services.push.e2ee import encrypted
from storage.ids import MICROS_PER_SECOND
from storage.repos import push_jobs, push_tokens

ACTION = {"action": "check"}
COLLAPSE_KEY = "obscura_check"


class Wakeups:
    """Schedules and cancels wake-up jobs; builds the wake-up notification."""

    def __init__(self, vault: Vault, *, delay_secs: int, ttl_secs: int, max_attempts: int) -> None:
        self._vault = vault
        self._delay_us = delay_secs * MICROS_PER_SECOND
        self._ttl_secs = ttl_secs
        self._max_attempts = max_attempts

    def schedule(self, conn: Connection, device_ids: Collection[uuid.UUID], *, now: int) -> None:
        """Queue one wake-up for each of these devices that has a push token."""
        with_tokens = push_tokens.devices_with_tokens(conn, list(device_ids))
        due = now + self._delay_us
        push_jobs.schedule_wakeups(
            conn,
            with_tokens,
            now=now,
            due=due,
            expires_at=due + self._ttl_secs * MICROS_PER_SECOND,
            max_attempts=self._max_attempts,
        )

    def cancel(self, conn: Connection, device_ids: Collection[uuid.UUID]) -> int:
        """Drop these devices' pending wake-ups (they are online)."""
        return push_jobs.cancel_wakeups(conn, list(device_ids))

    def message(self, *, now_secs: int) -> PushMessage:
        """The content-free wake-up: FCM data message, APNs background push."""
        return PushMessage(
            data=ACTION,
            silent=True,
            high_priority=True,
            collapse_key=COLLAPSE_KEY,
            expires_at=now_secs + self._ttl_secs,
        )

    def message_for(self, sealed_push_key: bytes | None, *, now_secs: int) -> PushMessage:
        """A device's wake-up, end-to-end encrypted when it registered a push key.

        Raises :class:`~relay.crypto.sealing.SealingError` if that key does not open.
        """
        message = self.message(now_secs=now_secs)
        if sealed_push_key is None:
            return message
        return encrypted(message, self._vault.open(sealed_push_key))
