"""Rocket.Chat push API on relay accounts: ``login``, ``push.token``, ``push.info``.

``push.token`` follows ``raix:push-update``: find the document by ``id`` when one is
given, otherwise *any* of the user's documents (the reference's quirk: a second device
registering without an ``id`` takes over the first one's document); failing that, by
``(token, appName)``; insert or update it; then delete other documents with the same
``(token, appName)`` — a device belongs to the last user who registered it. An ``id``
is looked up among the caller's documents only.

Any ``appName`` is accepted, as Rocket.Chat does (the stock apps send their own package
or bundle name): it resolves to the push app of that name, else the app with that APNs
bundle id or FCM package name, else ``RELAY_ROCKETCHAT_PUSH_APP`` (created when needed).
"""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from relay.crypto.sealing import Vault
from relay.errors import AuthenticationFailed, NotFound
from relay.services.face_logins import FaceLoginService
from relay.services.push.apps import AppService
from storage.db import Database
from storage.ids import now_us, uuid7
from storage.repos import push_registrations
from storage.repos.push_registrations import ROCKETCHAT, Registration
from storage.repos.users import UserRecord as UserRecord  # returned to the API

KINDS = {"apn": "apns", "gcm": "fcm"}
_ID_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTWXYZabcdefghijkmnopqrstuvwxyz"  # Meteor's Random.id
MAX_TOKEN_CHARS = 4096


class NotLoggedIn(AuthenticationFailed):
    """Missing or wrong ``X-Auth-Token`` / ``X-User-Id``, or a refused login."""

    default_message = "You must be logged in to do this."


@dataclass(frozen=True)
class Credentials:
    """A login's user name (without any ``@domain``) and password."""

    username: str
    password: str


@dataclass(frozen=True)
class TokenRegistration:
    """A validated ``push.token`` request."""

    platform: str
    token: str
    app_name: str
    doc_id: str | None
    push_key: bytes | None
    """The client's raw push key (sealed before it is stored)."""


@dataclass(frozen=True)
class Login:
    """What ``login`` returns."""

    auth_token: str
    user: UserRecord


def meteor_id() -> str:
    """A 17-character document id in Meteor's alphabet."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(17))


class RocketChatService:
    """See the module docstring."""

    def __init__(
        self,
        db: Database,
        logins: FaceLoginService,
        apps: AppService,
        vault: Vault,
        *,
        default_app: str,
    ) -> None:
        self._db = db
        self._logins = logins
        self._apps = apps
        self._vault = vault
        self._default_app = default_app

    async def login(self, credentials: Credentials) -> Login:
        """A new auth token for the user; :class:`NotLoggedIn` for wrong credentials,
        :class:`~relay.services.face_logins.TooManyAttempts` after too many."""
        user = await self._logins.check(credentials.username, credentials.password)
        if user is None:
            raise NotLoggedIn("Unauthorized")
        token = await self._logins.issue(user.id, ROCKETCHAT, length=43)
        return Login(token, user)

    async def authenticate(self, auth_token: str | None, user_id: str | None) -> UserRecord:
        """The user of the ``X-Auth-Token`` / ``X-User-Id`` pair."""
        if not auth_token or not user_id:
            raise NotLoggedIn()
        user = await self._logins.user_of(ROCKETCHAT, auth_token)
        if user is None or str(user.id) != user_id:
            raise NotLoggedIn()
        return user

    async def put_token(self, user: UserRecord, wanted: TokenRegistration) -> Registration:
        """``POST /api/v1/push.token``: upsert, then dedupe by ``(token, appName)``."""
        app_id = await self._apps.find(wanted.app_name) or await self._apps.ensure(
            self._default_app
        )
        sealed_key = None if wanted.push_key is None else self._vault.seal(wanted.push_key)
        doc_id, token, platform = wanted.doc_id, wanted.token, wanted.platform

        def work(conn: Connection) -> Registration:
            now = now_us()
            if doc_id:
                # Only among the caller's own documents: an id is no key to another's.
                found = next(
                    (
                        item
                        for item in push_registrations.by_ref(conn, ROCKETCHAT, doc_id)
                        if item.user_name == user.username
                    ),
                    None,
                )
            else:
                found = next(
                    iter(push_registrations.by_user(conn, ROCKETCHAT, user.username)), None
                )
            if found is None:
                found = next(
                    iter(push_registrations.by_token(conn, token, app_id=app_id, face=ROCKETCHAT)),
                    None,
                )
            values = {
                "app_id": app_id,
                "user_name": user.username,
                "platform": platform,
                "token": token,
                "push_key": sealed_key,
                "updated_at": now,
            }
            if found is None:
                saved = Registration(
                    id=uuid7(),
                    face=ROCKETCHAT,
                    face_ref=doc_id or meteor_id(),
                    environment="production",
                    active=True,
                    created_at=now,
                    **values,  # type: ignore[arg-type]
                )
                push_registrations.insert(conn, saved)
            else:
                push_registrations.change(conn, found.id, **values)
                saved = dataclasses.replace(found, **values)  # type: ignore[arg-type]
            others = [
                item.id
                for item in push_registrations.by_token(conn, token, app_id=app_id, face=ROCKETCHAT)
                if item.id != saved.id
            ]
            push_registrations.delete_ids(conn, others)
            return saved

        return await self._db.write(work)

    async def delete_token(self, user: UserRecord, token: str) -> None:
        """``DELETE /api/v1/push.token``: the caller's documents with that token
        (:class:`~relay.errors.NotFound` if there are none)."""
        removed = await self._db.write(
            lambda conn: push_registrations.delete_token(
                conn, token, face=ROCKETCHAT, user_name=user.username
            )
        )
        if not removed:
            raise NotFound("Not found")
