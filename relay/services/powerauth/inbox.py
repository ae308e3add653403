"""The message inbox: messages stored per user and application, read later.

Validation (:mod:`relay.api.powerauth.schemas`) follows the reference's bean
constraints (``ERROR_REQUEST`` with ``violations``): ``userId`` 1-255, ``type`` text or
html, ``subject`` and ``summary`` 8-255, ``body`` 8-65536, ``applications`` non-empty ids
matching ``[a-zA-Z0-9_-]{3,255}``.
The inbox never sends a push itself.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from relay.services.powerauth.errors import AppNotFound, MessageNotFound
from relay.services.push.apps import AppService
from storage.db import Database
from storage.ids import now_us, uuid7
from storage.repos import powerauth
from storage.repos.powerauth import InboxMessage as InboxMessage  # returned to the API

MAX_PAGE_SIZE = 1000


@dataclass(frozen=True)
class InboxDraft:
    """A validated ``POST /inbox/messages``."""

    user_id: str
    kind: str
    subject: str
    summary: str
    body: str
    applications: tuple[str, ...]


class InboxService:
    """See the module docstring."""

    def __init__(self, db: Database, apps: AppService) -> None:
        self._db = db
        self._apps = apps

    async def _app_ids(self, names: list[str]) -> list[uuid.UUID]:
        ids = []
        for name in names:
            app_id = await self._apps.app_id(name)
            if app_id is None:
                raise AppNotFound(f"Application not found: {name}")
            ids.append(app_id)
        return ids

    async def post(self, draft: InboxDraft) -> InboxMessage:
        """Store a message for a user in the given applications."""
        names = list(draft.applications)
        app_ids = await self._app_ids(names)
        message = InboxMessage(
            uuid7(),
            draft.user_id,
            draft.kind,
            draft.subject,
            draft.summary,
            draft.body,
            False,
            now_us(),
            None,
            tuple(names),
        )
        await self._db.write(lambda conn: powerauth.post_message(conn, message, app_ids))
        return message

    async def list(
        self, user_id: str, applications: list[str], *, only_unread: bool, page: int, size: int
    ) -> list[InboxMessage]:
        """A page of the user's messages in any of the applications, newest first."""
        app_ids = await self._app_ids(applications)
        return await self._db.read(
            lambda conn: powerauth.messages(
                conn, user_id, app_ids, only_unread=only_unread, page=page, size=size
            )
        )

    async def count_unread(self, user_id: str, app_name: str) -> int:
        """Unread messages of the user in one application."""
        (app_id,) = await self._app_ids([app_name])
        return await self._db.read(lambda conn: powerauth.count_unread(conn, user_id, app_id))

    async def detail(self, inbox_id: str, *, user_id: str | None = None) -> InboxMessage:
        """One message (only the user's own when ``user_id`` is given)."""
        try:
            key = uuid.UUID(inbox_id)
        except ValueError:
            raise MessageNotFound("Inbox message not found") from None
        found = await self._db.read(lambda conn: powerauth.message(conn, key))
        if found is None or (user_id is not None and found.user_name != user_id):
            raise MessageNotFound("Inbox message not found")
        return found

    async def read(self, inbox_id: str, *, user_id: str | None = None) -> InboxMessage:
        """Mark a message read (no-op when it already is); the message as it is now."""
        found = await self.detail(inbox_id, user_id=user_id)
        await self._db.write(lambda conn: powerauth.mark_read(conn, found.id, now=now_us()))
        return await self.detail(inbox_id)

    async def read_all(self, user_id: str, app_name: str) -> int:
        """Mark every unread message of the user in the application read."""
        (app_id,) = await self._app_ids([app_name])

        def work(conn: Connection) -> int:
            return powerauth.mark_all_read(conn, user_id, app_id, now=now_us())

        return await self._db.write(work)
