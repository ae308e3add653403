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

from sqlalchemy.engine import Connection

from relay.crypto.sealing import Vault
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
NOT_ACTIVE = "Device registration failed because associated activation is not ACTIVE"


@dataclass(frozen=True)
class DeviceRegistration:
    """A validated ``device/create`` (or ``create/multi``) request."""

    app: str
    token: str
    platform: str
    environment: str
    activation_ids: tuple[str, ...]
    user_id: str | None
    push_key: bytes | None
    """The client's raw push key (sealed before it is stored)."""


@dataclass(frozen=True)
class DeviceRemoval:
    """A validated ``device/delete`` request."""

    app: str
    token: str


@dataclass(frozen=True)
class StatusUpdate:
    """A validated ``device/status/update`` callback."""

    activation_id: str
    status: str
    user_id: str | None


@dataclass(frozen=True)
class _Registering:
    """A registration with its app resolved and its push key sealed."""

    app_id: uuid.UUID
    wanted: DeviceRegistration
    sealed_key: bytes | None


class PowerAuthDevices:
    """See the module docstring."""

    def __init__(
        self, db: Database, apps: AppService, vault: Vault, *, multiple_activations: bool
    ) -> None:
        self._db = db
        self._apps = apps
        self._vault = vault
        self._multiple = multiple_activations

    async def app(self, name: str) -> uuid.UUID:
        """The id of the app named by ``appId``."""
        app_id = await self._apps.app_id(name)
        if app_id is None:
            raise PowerAuthError("Application with given ID does not exist")
        return app_id

    def require_multiple(self) -> None:
        """``create/multi`` is refused unless multiple activations are enabled."""
        if not self._multiple:
            raise PowerAuthError(
                "Registration of multiple associated activations per device is not enabled."
            )

    async def _resolved(self, wanted: DeviceRegistration) -> _Registering:
        app_id = await self.app(wanted.app)
        sealed = None if wanted.push_key is None else self._vault.seal(wanted.push_key)
        return _Registering(app_id, wanted, sealed)

    async def create(self, wanted: DeviceRegistration) -> None:
        """``/push/device/create``."""
        request = await self._resolved(wanted)
        await self._db.write(lambda conn: self._register(conn, request, multi=False))

    async def create_multi(self, wanted: DeviceRegistration) -> None:
        """``/push/device/create/multi`` (only with multiple activations enabled)."""
        self.require_multiple()
        request = await self._resolved(wanted)
        await self._db.write(lambda conn: self._register(conn, request, multi=True))

    def _register(self, conn: Connection, request: _Registering, *, multi: bool) -> None:
        now = now_us()
        wanted = request.wanted
        known = powerauth.activations(conn, list(wanted.activation_ids))
        reused: set[uuid.UUID] = set()
        for activation_id in wanted.activation_ids:
            activation = known.get(activation_id)
            if wanted.user_id is not None:
                status = activation.status if activation is not None else "ACTIVE"
                activation = powerauth.Activation(activation_id, wanted.user_id, status)
                powerauth.put_activation(conn, activation, now=now)
            if activation is None or activation.status == "REMOVED":
                raise PowerAuthError(NOT_ACTIVE if not multi else "Device registration failed")
            self._register_one(conn, request, activation, reused, multi=multi, now=now)

    def _register_one(
        self,
        conn: Connection,
        request: _Registering,
        activation: powerauth.Activation,
        reused: set[uuid.UUID],
        *,
        multi: bool,
        now: int,
    ) -> None:
        active = activation.status == "ACTIVE"
        wanted = request.wanted
        values = {
            "app_id": request.app_id,
            "user_name": activation.user_name,
            "face_ref": activation.activation_id,
            "platform": wanted.platform,
            "environment": wanted.environment,
            "token": wanted.token,
            "push_key": request.sealed_key,
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
                conn, wanted.token, app_id=request.app_id, face=POWERAUTH
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

    async def delete(self, removal: DeviceRemoval) -> None:
        """``/push/device/delete`` (and the documented ``/remove``): every registration of
        the token in the app; success even if there was none."""
        app_id = await self.app(removal.app)
        await self._db.write(
            lambda conn: push_registrations.delete_token(
                conn, removal.token, app_id=app_id, face=POWERAUTH
            )
        )

    async def update_status(self, update: StatusUpdate) -> None:
        """``/push/device/status/update``: the activation's status decides whether its
        registrations receive ``personal`` messages (``userId`` may introduce it)."""
        activation_id, status, user_id = update.activation_id, update.status, update.user_id

        def work(conn: Connection) -> None:
            now = now_us()
            if user_id is not None:
                activation = powerauth.Activation(activation_id, user_id, status)
                powerauth.put_activation(conn, activation, now=now)
            else:
                powerauth.set_activation_status(conn, activation_id, status, now=now)
            push_registrations.set_active(conn, POWERAUTH, activation_id, status == "ACTIVE")

        await self._db.write(work)
