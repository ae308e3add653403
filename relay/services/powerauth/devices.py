"""``/push/device/...``: registering device tokens against PowerAuth activations.

The reference asks a PowerAuth server for each activation's user and status. This
server is standalone: it keeps a local activation table fed by
``/push/device/status/update`` (the callback a PowerAuth server makes when an activation
changes) and, as an extension, by a ``userId`` in ``device/create``. An activation it has
never heard of is treated as the reference treats a missing one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from relay.crypto.sealing import InvalidPushKey, Vault, parse_push_key
from relay.services.powerauth.errors import PowerAuthError
from relay.services.push.apps import AppService
from storage.db import Database
from storage.ids import now_us, uuid7
from storage.repos import powerauth, push_registrations
from storage.repos.push_registrations import POWERAUTH, Registration

# Deprecated platform names are accepted and treated as their successors.
PLATFORMS = {
    "apns": "apns",
    "ios": "apns",
    "fcm": "fcm",
    "android": "fcm",
    "hms": "hms",
    "huawei": "hms",
}
STATUSES = ("CREATED", "PENDING_COMMIT", "ACTIVE", "BLOCKED", "REMOVED")
_MAX_TOKEN = 4096
_MAX_ID = 255
NOT_ACTIVE = "Device registration failed because associated activation is not ACTIVE"


@dataclass(frozen=True)
class DeviceRequest:
    """A validated ``device/create`` (or ``create/multi``) request."""

    app_id: uuid.UUID
    token: str
    platform: str
    environment: str
    activation_ids: tuple[str, ...]
    user_id: str | None
    push_key: bytes | None


def _text(value: object, message: str, limit: int = _MAX_ID) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PowerAuthError(message)
    if len(value) > limit or "\x00" in value:
        raise PowerAuthError(message)
    return value


class PowerAuthDevices:
    """See the module docstring."""

    def __init__(
        self, db: Database, apps: AppService, vault: Vault, *, multiple_activations: bool
    ) -> None:
        self._db = db
        self._apps = apps
        self._vault = vault
        self._multiple = multiple_activations

    async def app(self, value: object) -> uuid.UUID:
        """The id of the app named by ``appId``."""
        if not isinstance(value, str) or not value:
            raise PowerAuthError("App ID must not be null.")
        app_id = await self._apps.app_id(value)
        if app_id is None:
            raise PowerAuthError("Application with given ID does not exist")
        return app_id

    async def _request(self, body: dict[str, Any], *, multi: bool) -> DeviceRequest:
        app_id = await self.app(body.get("appId"))
        if multi:
            ids = body.get("activationIds")
            if not isinstance(ids, list) or not ids:
                raise PowerAuthError("Activation IDs must not be empty.")
            activation_ids = tuple(
                dict.fromkeys(_text(item, "Activation ID must not be null.") for item in ids)
            )
        else:
            activation_ids = (_text(body.get("activationId"), "Activation ID must not be null."),)
        platform_name = body.get("platform")
        if platform_name is None:
            raise PowerAuthError("Platform must not be null.")
        platform = PLATFORMS.get(str(platform_name).lower())
        if platform is None:
            raise PowerAuthError("Platform must be one of apns, fcm, hms.")
        token = _text(body.get("token"), "Push token must not be null or empty.", _MAX_TOKEN)
        environment = body.get("environment")
        if environment is not None and environment not in ("development", "production"):
            raise PowerAuthError("Environment must be development or production.")
        if multi and environment is not None and platform != "apns":
            raise PowerAuthError("Environment is only allowed for the APNs platform.")
        user_id = body.get("userId")
        if user_id is not None:
            user_id = _text(user_id, "User ID must be a non-empty string.")
        push_key = None
        if body.get("pushKey") is not None:
            if not isinstance(body["pushKey"], str):
                raise PowerAuthError("Invalid pushKey")
            try:
                push_key = self._vault.seal(parse_push_key(body["pushKey"]))
            except InvalidPushKey:
                raise PowerAuthError("Invalid pushKey") from None
        return DeviceRequest(
            app_id,
            token,
            platform,
            str(environment or "production") if platform == "apns" else "production",
            activation_ids,
            user_id,
            push_key,
        )

    async def create(self, body: dict[str, Any]) -> None:
        """``/push/device/create``."""
        request = await self._request(body, multi=False)
        await self._db.write(lambda conn: self._register(conn, request, multi=False))

    async def create_multi(self, body: dict[str, Any]) -> None:
        """``/push/device/create/multi`` (only with multiple activations enabled)."""
        if not self._multiple:
            raise PowerAuthError(
                "Registration of multiple associated activations per device is not enabled."
            )
        request = await self._request(body, multi=True)
        await self._db.write(lambda conn: self._register(conn, request, multi=True))

    def _register(self, conn: Connection, request: DeviceRequest, *, multi: bool) -> None:
        now = now_us()
        known = powerauth.activations(conn, list(request.activation_ids))
        reused: set[uuid.UUID] = set()
        for activation_id in request.activation_ids:
            activation = known.get(activation_id)
            if request.user_id is not None:
                status = activation.status if activation is not None else "ACTIVE"
                activation = powerauth.Activation(activation_id, request.user_id, status)
                powerauth.put_activation(conn, activation, now=now)
            if activation is None or activation.status == "REMOVED":
                raise PowerAuthError(NOT_ACTIVE if not multi else "Device registration failed")
            self._register_one(conn, request, activation, reused, multi=multi, now=now)

    def _register_one(
        self,
        conn: Connection,
        request: DeviceRequest,
        activation: powerauth.Activation,
        reused: set[uuid.UUID],
        *,
        multi: bool,
        now: int,
    ) -> None:
        active = activation.status == "ACTIVE"
        values = {
            "app_id": request.app_id,
            "user_name": activation.user_name,
            "face_ref": activation.activation_id,
            "platform": request.platform,
            "environment": request.environment,
            "token": request.token,
            "push_key": request.push_key,
            "active": active,
            "updated_at": now,
        }
        existing = push_registrations.by_ref(conn, POWERAUTH, activation.activation_id)
        if len(existing) > 1:
            raise PowerAuthError(
                "Multiple device registrations found for activation ID. "
                "Fix the unique index on activation_id."
            )
        if existing:
            # Same activation: a repeat (same token) or a token rotation.
            push_registrations.change(conn, existing[0].id, **values)
            reused.add(existing[0].id)
            return
        by_token = [
            item
            for item in push_registrations.by_token(
                conn, request.token, app_id=request.app_id, face=POWERAUTH
            )
            if item.id not in reused
        ]
        if len(by_token) > 1 and not multi:
            raise PowerAuthError(
                "Multiple device registrations found for push token. Use the "
                "/push/device/create/multi endpoint for this scenario."
            )
        if by_token and not multi:
            # The device got a new activation: the registration moves to it.
            push_registrations.change(conn, by_token[0].id, **values)
            reused.add(by_token[0].id)
            return
        registration = Registration(
            id=uuid7(),
            created_at=now,
            face=POWERAUTH,
            **values,  # type: ignore[arg-type]
        )
        push_registrations.insert(conn, registration)
        reused.add(registration.id)

    async def delete(self, body: dict[str, Any]) -> None:
        """``/push/device/delete`` (and the documented ``/remove``): every registration of
        the token in the app; success even if there was none."""
        app_id = await self.app(body.get("appId"))
        token = _text(body.get("token"), "Push token must not be null or empty.", _MAX_TOKEN)
        await self._db.write(
            lambda conn: push_registrations.delete_token(conn, token, app_id=app_id, face=POWERAUTH)
        )

    async def update_status(self, body: dict[str, Any]) -> None:
        """``/push/device/status/update``: the activation's status decides whether its
        registrations receive ``personal`` messages (``userId`` may introduce it)."""
        activation_id = _text(body.get("activationId"), "Activation ID must not be null.")
        status = body.get("activationStatus")
        if status is None:
            raise PowerAuthError("Update device status failed because activation status is unknown")
        if status not in STATUSES:
            raise PowerAuthError(f"Activation status must be one of {', '.join(STATUSES)}.")
        user_id = body.get("userId")
        if user_id is not None:
            user_id = _text(user_id, "User ID must be a non-empty string.")

        def work(conn: Connection) -> None:
            now = now_us()
            if user_id is not None:
                activation = powerauth.Activation(activation_id, user_id, status)
                powerauth.put_activation(conn, activation, now=now)
            else:
                powerauth.set_activation_status(conn, activation_id, status, now=now)
            push_registrations.set_active(conn, POWERAUTH, activation_id, status == "ACTIVE")

        await self._db.write(work)
