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
from typing import Any

from sqlalchemy.engine import Connection

from relay.crypto.sealing import InvalidPushKey, Vault, parse_push_key
from relay.errors import RelayError
from relay.services.face_logins import FaceLoginService, TooManyAttempts
from relay.services.push.apps import AppService
from storage.db import Database
from storage.ids import format_rfc3339, now_us, uuid7
from storage.repos import push_registrations
from storage.repos.push_registrations import ROCKETCHAT, Registration
from storage.repos.users import UserRecord

KINDS = {"apn": "apns", "gcm": "fcm"}
_KIND_OF = {value: key for key, value in KINDS.items()}
_ID_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTWXYZabcdefghijkmnopqrstuvwxyz"  # Meteor's Random.id
MAX_TOKEN_CHARS = 4096


class RocketChatError(RelayError):
    """A Rocket.Chat error: ``errorType`` and message (``{success:false, ...}``)."""

    def __init__(self, error_type: str, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.status = status


class NotLoggedIn(RelayError):
    """Missing or wrong ``X-Auth-Token`` / ``X-User-Id``."""

    status = 401
    default_message = "You must be logged in to do this."


@dataclass(frozen=True)
class Login:
    """What ``login`` returns."""

    auth_token: str
    user: UserRecord


def meteor_id() -> str:
    """A 17-character document id in Meteor's alphabet."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(17))


def _param(body: dict[str, Any], name: str, error_type: str, *, required: bool = True) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise RocketChatError(
            error_type, f'The required "{name}" body param is missing or invalid. [{error_type}]'
        )
    return value


def document(registration: Registration, app_name: str, user_id: str) -> dict[str, Any]:
    """The stored document as ``push.token`` returns it (never the auth token)."""
    return {
        "_id": registration.face_ref,
        "token": {_KIND_OF[registration.platform]: registration.token},
        "appName": app_name,
        "userId": user_id,
        "enabled": registration.active,
        "createdAt": format_rfc3339(registration.created_at),
        "updatedAt": format_rfc3339(registration.updated_at),
    }


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

    async def login(self, body: dict[str, Any]) -> Login:
        """``user`` or ``username`` with ``password``; 401 otherwise."""
        name = body.get("user") or body.get("username")
        password = body.get("password")
        if not isinstance(name, str) or not isinstance(password, str) or not name:
            raise NotLoggedIn("Unauthorized")
        try:
            user = await self._logins.check(name.split("@", 1)[0], password)
        except TooManyAttempts:
            raise RocketChatError(
                "error-too-many-requests", "Too many failed login attempts", status=429
            ) from None
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

    async def put_token(self, user: UserRecord, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /api/v1/push.token``: upsert, then dedupe by ``(token, appName)``."""
        doc_id = body.get("id")
        if doc_id is not None and (not isinstance(doc_id, str) or not doc_id or len(doc_id) > 255):
            raise RocketChatError(
                "error-id-param-not-valid", 'The required "id" body param is invalid.'
            )
        kind = _param(body, "type", "error-type-param-not-valid")
        if kind not in KINDS:
            raise RocketChatError(
                "error-type-param-not-valid",
                'The required "type" body param is missing or invalid. '
                "[error-type-param-not-valid]",
            )
        token = _param(body, "value", "error-token-param-not-valid")
        if len(token) > MAX_TOKEN_CHARS or "\x00" in token:
            raise RocketChatError("error-token-param-not-valid", "The token is not valid.")
        app_name = _param(body, "appName", "error-appName-param-not-valid")
        app_id = await self._apps.find(app_name) or await self._apps.ensure(self._default_app)
        sealed_key = None
        if body.get("pushKey") is not None:
            try:
                if not isinstance(body["pushKey"], str):
                    raise InvalidPushKey
                sealed_key = self._vault.seal(parse_push_key(body["pushKey"]))
            except InvalidPushKey:
                raise RocketChatError(
                    "error-pushKey-param-not-valid", "The pushKey is not a valid push key."
                ) from None
        platform = KINDS[kind]

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

        return document(await self._db.write(work), app_name, str(user.id))

    async def delete_token(self, user: UserRecord, body: dict[str, Any]) -> None:
        """``DELETE /api/v1/push.token``: the caller's documents with that token (404 if
        there are none)."""
        token = _param(body, "token", "error-token-param-not-valid")
        removed = await self._db.write(
            lambda conn: push_registrations.delete_token(
                conn, token, face=ROCKETCHAT, user_name=user.username
            )
        )
        if not removed:
            raise RocketChatError("error-not-found", "Not found", status=404)
