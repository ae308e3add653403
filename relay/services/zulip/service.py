"""Zulip (feature level 406) push API on relay accounts.

``fetch_api_key`` checks the relay password and issues an API key; authenticated calls use
HTTP Basic ``username:api_key``. ``mobile_push/register`` does what Zulip's server and
bouncer do together, inline: the registration is opened and validated at once and its
errors come back synchronously with Zulip's codes (a success is ``active`` at once).
Idempotent on ``(user, push_account_id)``: a repeated registration changes nothing.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from providers.message import Platform, PushMessage
from relay.crypto.sealing import InvalidPushKey, Vault, parse_push_key
from relay.services.face_logins import FaceLoginService, TooManyAttempts
from relay.services.push.apps import AppService
from relay.services.registrations import RegistrationSender
from relay.services.zulip.bouncer import open_registration
from relay.services.zulip.errors import ZulipError, bad_request
from relay.services.zulip.keys import BouncerKeys
from storage.db import Database
from storage.errors import IntegrityViolation
from storage.ids import now_us, uuid7
from storage.repos import push_registrations
from storage.repos.push_registrations import ZULIP, Registration
from storage.repos.users import UserRecord as UserRecord  # returned to the API

log = logging.getLogger("relay.zulip")

_INT64 = (-(1 << 63), (1 << 63) - 1)


@dataclass(frozen=True)
class ZulipConfig:
    """What the Zulip face needs to know about this server."""

    app: str
    realm_name: str


@dataclass(frozen=True)
class PushRegistration:
    """The parameters of ``mobile_push/register``, as the client sent them."""

    token_kind: str
    push_account_id: str
    push_key: str
    bouncer_public_key: str
    encrypted_push_registration: str


@dataclass(frozen=True)
class ApiKey:
    """``fetch_api_key``'s answer."""

    api_key: str
    email: str
    user_id: int


def zulip_user_id(user: UserRecord) -> int:
    """A stable positive integer id for a relay user (Zulip ids are integers)."""
    return int.from_bytes(uuid.UUID(str(user.id)).bytes[-6:], "big") or 1


def _push_account_id(text: str) -> int:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, int) or isinstance(value, bool) or not _INT64[0] <= value <= _INT64[1]:
        raise bad_request("push_account_id is not an integer")
    return value


class ZulipService:
    """See the module docstring."""

    def __init__(
        self,
        db: Database,
        logins: FaceLoginService,
        apps: AppService,
        sender: RegistrationSender,
        vault: Vault,
        keys: BouncerKeys,
        config: ZulipConfig,
    ) -> None:
        self._db = db
        self._logins = logins
        self._apps = apps
        self._sender = sender
        self._vault = vault
        self._keys = keys
        self.config = config

    async def push_configured(self) -> bool:
        """Whether this server can accept E2EE registrations and send to them: a bouncer
        key exists and the face's push app has credentials of some provider."""
        if not await self._keys.keys():
            return False
        app_id = await self._apps.app_id(self.config.app)
        if app_id is None:
            return False
        credentials = await self._apps.credentials(app_id)
        return any(credentials.of(platform) is not None for platform in Platform)

    async def fetch_api_key(self, username: str, password: str) -> ApiKey:
        """A new API key for the user with these credentials."""
        name = username.split("@", 1)[0] if "@" in username else username
        try:
            user = await self._logins.check(name, password)
        except TooManyAttempts as limited:
            retry_after = max(1, int(limited.retry_after + 0.999))
            raise ZulipError(
                "RATE_LIMIT_HIT",
                "API usage exceeded rate limit",
                status=429,
                **{"retry-after": retry_after},
            ) from None
        if user is None:
            raise ZulipError(
                "AUTHENTICATION_FAILED", "Your username or password is incorrect", status=401
            )
        key = await self._logins.issue(user.id, ZULIP)
        return ApiKey(key, user.username, zulip_user_id(user))

    async def authenticate(self, login: str, api_key: str) -> UserRecord:
        """The user of an HTTP Basic ``username:api_key`` pair."""
        if len(api_key) != 32 or not api_key.isalnum() or not api_key.isascii():
            raise ZulipError("INVALID_API_KEY", "Malformed API key", status=401)
        user = await self._logins.user_of(ZULIP, api_key)
        name = login.split("@", 1)[0].lower()
        if user is None or user.username != name:
            raise ZulipError("INVALID_API_KEY", "Invalid API key", status=401)
        return user

    async def register(self, user: UserRecord, wanted: PushRegistration) -> None:
        """``POST /api/v1/mobile_push/register``: checked here, in Zulip's order (the
        server's configuration first)."""
        token_kind, push_key = wanted.token_kind, wanted.push_key
        keys = await self._keys.keys()
        if not keys:
            raise ZulipError(
                "PUSH_SERVICE_NOT_CONFIGURED",
                "Server is not configured to use push notification service.",
            )
        if token_kind not in ("fcm", "apns"):
            raise bad_request("Invalid token_kind")
        account = _push_account_id(wanted.push_account_id)
        try:
            secret = parse_push_key(push_key)
        except InvalidPushKey:
            raise bad_request("Invalid `push_key`") from None
        ref = str(account)
        existing = await self._db.read(
            lambda conn: [
                item
                for item in push_registrations.by_user(conn, ZULIP, user.username)
                if item.face_ref == ref
            ]
        )
        if existing:
            return  # pending or active already: nothing to do (Zulip's idempotency)
        registration = open_registration(
            keys,
            wanted.bouncer_public_key,
            wanted.encrypted_push_registration,
            now=int(time.time()),
        )
        if registration.token_kind != token_kind:
            raise bad_request("Invalid encrypted_push_registration")
        app_id = await self._apps.ensure(self.config.app)
        sealed_key = self._vault.seal(secret)

        def work(conn: Connection) -> None:
            now = now_us()
            push_registrations.insert(
                conn,
                Registration(
                    id=uuid7(),
                    app_id=app_id,
                    user_name=user.username,
                    face=ZULIP,
                    face_ref=ref,
                    platform=registration.token_kind,
                    environment="production",
                    token=registration.token,
                    push_key=sealed_key,
                    active=True,
                    created_at=now,
                    updated_at=now,
                ),
            )

        try:
            await self._db.write(work)
        except IntegrityViolation:
            return  # the same registration, committed by a concurrent request

    async def test_notification(
        self, user: UserRecord, *, push_account_id: str | None, realm_url: str
    ) -> None:
        """``POST /api/v1/mobile_push/e2ee/test_notification``: an encrypted ``test``
        notification to the user's registered devices (or the one given)."""
        wanted = None if push_account_id is None else str(_push_account_id(push_account_id))
        registrations = [
            item
            for item in await self._db.read(
                lambda conn: push_registrations.by_user(conn, ZULIP, user.username)
            )
            if wanted is None or item.face_ref == wanted
        ]
        if not registrations:
            raise ZulipError("NO_ACTIVE_PUSH_DEVICE", "No active registered push device")
        content = {
            "realm_name": self.config.realm_name,
            "realm_url": realm_url,
            "user_id": zulip_user_id(user),
            "type": "test",
            "time": int(time.time()),
        }
        message = PushMessage(
            plaintext=json.dumps(content, separators=(",", ":")), high_priority=True
        )
        by_app: dict[uuid.UUID, list[Registration]] = {}
        for item in registrations:
            credentials = await self._apps.credentials(item.app_id)
            if credentials.of(Platform(item.platform)) is not None:
                by_app.setdefault(item.app_id, []).append(item)
        if not by_app:
            log.warning(
                "Zulip test notification for %s: push app %r has no %s credentials",
                user.username,
                self.config.app,
                "/".join(sorted({item.platform for item in registrations})),
            )
            raise ZulipError(
                "PUSH_SERVICE_NOT_CONFIGURED",
                "Server is not configured to use push notification service.",
            )
        for app_id, items in by_app.items():
            await self._sender.push.sender.send_now(app_id, self._sender.deliveries(items, message))
