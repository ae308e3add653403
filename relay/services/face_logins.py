"""Logins of relay users through the Zulip and Rocket.Chat faces.

Both check the relay password (argon2, as ``/v1/sessions``) and hand out an opaque
token: a Zulip API key or a Rocket.Chat auth token. Only SHA-256 digests are stored; a
user keeps its newest :data:`TOKENS_KEPT` tokens per face. Failed password attempts are
limited per username (Zulip's ``authenticate_by_username``: 5 per 30 minutes).
"""

from __future__ import annotations

import secrets
import string
import uuid

import trio
from sqlalchemy.engine import Connection

from relay.crypto.secrets import digest
from relay.services.ratelimit import FailureWindow
from relay.services.sessions import SessionService
from storage.db import Database
from storage.ids import now_us
from storage.repos import face_keys, users
from storage.repos.users import UserRecord

TOKENS_KEPT = 20
FAILED_LOGINS = 5
FAILED_LOGIN_WINDOW_SECS = 1800.0
_ALPHABET = string.ascii_letters + string.digits


class TooManyAttempts(Exception):
    """The username failed too often; retry after ``retry_after`` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__("too many failed logins")
        self.retry_after = retry_after


def new_token(length: int = 32) -> str:
    """A random alphanumeric token (Zulip API keys are 32 such characters)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


class FaceLoginService:
    """See the module docstring."""

    def __init__(self, db: Database, sessions: SessionService) -> None:
        self._db = db
        self._sessions = sessions
        self._failures = FailureWindow(FAILED_LOGINS, FAILED_LOGIN_WINDOW_SECS)

    async def check(self, username: str, password: str) -> UserRecord | None:
        """The user if the password is right; :class:`TooManyAttempts` when limited."""
        key = username.lower()
        wait = self._failures.blocked(key, trio.current_time())
        if wait is not None:
            raise TooManyAttempts(wait)
        user = await self._sessions.check_password(username, password)
        if user is None:
            self._failures.record(key, trio.current_time())
        return user

    async def issue(self, user_id: uuid.UUID, face: str, *, length: int = 32) -> str:
        """A new token for the user on ``face`` (only its digest is stored)."""
        token = new_token(length)
        await self._db.write(
            lambda conn: face_keys.add_face_token(
                conn, user_id, face, digest(token), now=now_us(), keep=TOKENS_KEPT
            )
        )
        return token

    async def user_of(self, face: str, token: str) -> UserRecord | None:
        """The user a token of ``face`` belongs to."""
        token_hash = digest(token)

        def work(conn: Connection) -> UserRecord | None:
            user_id = face_keys.face_token_user(conn, face, token_hash)
            return None if user_id is None else users.by_id(conn, user_id)

        return await self._db.read(work)
