"""Device provisioning and management."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.engine import Connection

from relay.errors import AuthenticationFailed, InvalidInput, NotFound, PermissionDenied
from relay.services.backups import BackupService
from relay.services.keys import (
    PreKeyInput,
    SignedPreKeyInput,
    check_batch_size,
    decode_key_upload,
)
from relay.services.principal import Principal
from relay.services.sessions import Session, SessionIssuer
from storage.db import Database
from storage.ids import now_us, uuid7
from storage.repos import backups as backups_repo
from storage.repos import devices, keys, users
from storage.repos.devices import DeviceRecord as DeviceRecord  # returned to the API
from storage.repos.keys import Identity
from storage.repos.refresh_tokens import RefreshGrant

MAX_DEVICE_NAME_CHARS = 100


def _check_name(name: str | None) -> None:
    # The reference lets the database reject these with a 500; we say 400.
    if name is None:
        return
    if len(name) > MAX_DEVICE_NAME_CHARS:
        raise InvalidInput(f"Device name must be at most {MAX_DEVICE_NAME_CHARS} characters")
    if "\x00" in name:
        raise InvalidInput("Device name must not contain NUL characters")


class DeviceService:
    """Create, list, rename and delete a user's devices."""

    def __init__(
        self,
        db: Database,
        issuer: SessionIssuer,
        *,
        backups: BackupService,
        max_devices_per_user: int,
        max_pre_keys: int,
    ) -> None:
        self._db = db
        self._backups = backups
        self._issuer = issuer
        self._max_devices = max_devices_per_user
        self._max_pre_keys = max_pre_keys

    async def create(
        self,
        principal: Principal,
        name: str | None,
        identity_key: str,
        registration_id: int,
        signed_pre_key: SignedPreKeyInput,
        one_time_pre_keys: Sequence[PreKeyInput],
    ) -> Session:
        """Provision a device with its keys and return a session scoped to it."""
        upload = decode_key_upload(identity_key, registration_id, signed_pre_key, one_time_pre_keys)
        _check_name(name)
        assert upload.identity_key is not None
        identity = Identity(upload.identity_key, registration_id)

        def work(conn: Connection) -> Session:
            if not users.lock(conn, principal.user_id):
                raise AuthenticationFailed()
            if devices.count_for_user(conn, principal.user_id) >= self._max_devices:
                raise PermissionDenied(
                    f"Device limit reached. Maximum allowed is {self._max_devices}."
                )
            if not upload.signature_valid(identity.identity_key):
                raise InvalidInput("Invalid signature")
            check_batch_size(upload, self._max_pre_keys)
            now = now_us()
            device = DeviceRecord(uuid7(), principal.user_id, name, now)
            devices.insert(conn, device)
            keys.insert_identity(conn, device.id, identity)
            keys.rotate_signed_pre_key(conn, device.id, upload.signed_pre_key, now=now)
            keys.add_one_time(conn, device.id, upload.one_time_pre_keys, now=now)
            return self._issuer.issue(conn, RefreshGrant(principal.user_id, device.id), now=now)

        return await self._db.write(work)

    async def list_owned(self, principal: Principal) -> list[DeviceRecord]:
        """The caller's devices, oldest first."""
        return await self._db.read(lambda conn: devices.list_for_user(conn, principal.user_id))

    async def get(self, principal: Principal, device_id: uuid.UUID) -> DeviceRecord:
        """One of the caller's devices; 404 for anyone else's."""
        device = await self._db.read(
            lambda conn: devices.get_owned(conn, device_id, principal.user_id)
        )
        if device is None:
            raise NotFound()
        return device

    async def rename(
        self, principal: Principal, device_id: uuid.UUID, name: str | None
    ) -> DeviceRecord:
        """Set (or clear, with None) the name of one of the caller's devices."""
        _check_name(name)
        device = await self._db.write(
            lambda conn: devices.rename_owned(conn, device_id, principal.user_id, name)
        )
        if device is None:
            raise NotFound()
        return device

    async def delete(self, principal: Principal, device_id: uuid.UUID) -> None:
        """Delete one of the caller's devices and everything it owns."""

        def work(conn: Connection) -> tuple[bool, list[str]]:
            # The rows cascade; the backup's blobs are named by its row, read first.
            objects = backups_repo.objects_of(conn, device_id)
            return devices.delete_owned(conn, device_id, principal.user_id), objects

        deleted, objects = await self._db.write(work)
        if not deleted:
            raise NotFound()
        await self._backups.discard_objects(objects)
