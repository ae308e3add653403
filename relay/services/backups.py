"""Encrypted backups (``/v1/backup``): one versioned blob per device, optimistic locking.

An upload names the version it replaces (``If-Match: "<n>"``, or ``If-None-Match: *``
for the first one, meaning version 0). It first reserves version n+1 in the device's
slot, in one transaction, then streams the body into an object of its own, then makes
that object current, if it still holds the reservation, and deletes the previous one:

* the slot holds another version: 412;
* another upload holds the reservation: 409 "Upload already in progress", unless that
  reservation is older than ``BACKUP_STALE_THRESHOLD_MINS``: then it is taken over;
* the reservation was lost while streaming (taken over): 409 "Concurrent modification".

As in the reference, an upload that fails after reserving leaves the slot reserved until
the stale threshold passes or the cleanup worker resets it; the empty slot created by a
first attempt stays even when that attempt gets a 412.
"""

from __future__ import annotations

import logging
import re
import secrets
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import Enum
from functools import partial

from sqlalchemy.engine import Connection

from relay.errors import (
    AuthenticationFailed,
    Conflict,
    InvalidInput,
    NotFound,
    PreconditionFailed,
)
from relay.services.principal import Principal
from relay.services.uploads import SizeLimits
from storage.blobs import Blob, BlobStore
from storage.db import Database
from storage.errors import StorageError
from storage.ids import MICROS_PER_SECOND, now_us
from storage.repos import backups, devices
from storage.repos.backups import BackupSlot

log = logging.getLogger("relay.backups")

_INT32 = re.compile(r"^[+-]?[0-9]+$")
_INT32_RANGE = range(-(2**31), 2**31)


class Verdict(Enum):
    """What a reservation attempt finds in the slot."""

    RESERVE = "reserve"
    TAKE_OVER = "take over"
    STALE_VERSION = "stale version"
    IN_PROGRESS = "in progress"


def judge(slot: BackupSlot, expected: int, *, stale_before: int) -> Verdict:
    """Whether an upload replacing version ``expected`` may reserve the slot. Sans-IO."""
    if slot.current_version != expected:
        return Verdict.STALE_VERSION
    if slot.state == backups.ACTIVE:
        return Verdict.RESERVE
    if slot.pending_at is not None and slot.pending_at >= stale_before:
        return Verdict.IN_PROGRESS
    return Verdict.TAKE_OVER


def parse_int32(text: str) -> int | None:
    """A decimal i32 with optional surrounding double quotes (an ETag), else None."""
    stripped = text.strip('"')
    if not _INT32.match(stripped):
        return None
    value = int(stripped)
    return value if value in _INT32_RANGE else None


def expected_version(if_match: str | None, if_none_match: str | None) -> int:
    """The version an upload replaces, from its precondition headers (400 if unusable)."""
    if if_none_match is not None:
        if if_none_match != "*":
            raise InvalidInput("Invalid If-None-Match header")
        return 0
    if if_match is None:
        raise InvalidInput("Missing If-Match or If-None-Match header")
    version = parse_int32(if_match)
    if version is None:
        raise InvalidInput("Invalid version in If-Match header")
    return version


@dataclass(frozen=True, slots=True)
class _Reservation:
    verdict: Verdict
    version: int
    abandoned_object: str | None  # the pending object of a stale upload taken over


@dataclass(frozen=True, slots=True)
class BackupContent:
    """A backup to send: ``blob`` is None when the client already has ``version``."""

    version: int
    blob: Blob | None


class BackupService:
    """Uploads, serves and cleans up per-device backups."""

    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        *,
        prefix: str,
        limits: SizeLimits,
        stale_threshold_mins: int,
    ) -> None:
        self._db = db
        self._blobs = blobs
        self._prefix = prefix
        self.limits = limits
        self._stale_us = stale_threshold_mins * 60 * MICROS_PER_SECOND

    def _object_key(self, device_id: uuid.UUID, version: int) -> str:
        return f"{self._prefix}{device_id}/v{version}.{secrets.token_hex(8)}"

    async def upload(
        self,
        principal: Principal,
        *,
        if_match: str | None,
        if_none_match: str | None,
        content_length: int | None,
        body: AsyncGenerator[bytes, None],
    ) -> int:
        """Store a new version streamed from ``body``; returns its number."""
        device_id = principal.require_device()
        expected = expected_version(if_match, if_none_match)
        declared = self.limits.check_declared(content_length)
        reservation, key = await self._reserve(device_id, expected)
        if reservation.abandoned_object is not None:
            await self._delete_quietly(reservation.abandoned_object)
        async with self._blobs.upload(key, declared) as upload:
            await self.limits.copy(body, upload, declared)
            await upload.commit()
        completed, previous = await self._db.write(partial(self._complete, device_id, key))
        if not completed:
            await self._delete_quietly(key)
            raise Conflict("Concurrent modification")
        if previous is not None:
            await self._delete_quietly(previous)
        return reservation.version

    async def _reserve(self, device_id: uuid.UUID, expected: int) -> tuple[_Reservation, str]:
        def work(conn: Connection) -> tuple[_Reservation, str] | None:
            # The token may outlive its device (deleted since): that is a 401, as on
            # every other route, not a foreign-key failure.
            if not devices.lock(conn, device_id):
                return None
            now = now_us()
            backups.ensure(conn, device_id, now=now)
            slot = backups.get(conn, device_id, lock=True)
            assert slot is not None
            verdict = judge(slot, expected, stale_before=now - self._stale_us)
            version = slot.current_version + 1
            key = self._object_key(device_id, version)
            abandoned = slot.pending_object if verdict is Verdict.TAKE_OVER else None
            if verdict in (Verdict.RESERVE, Verdict.TAKE_OVER):
                backups.reserve(conn, device_id, version=version, pending_object=key, now=now)
            return _Reservation(verdict, version, abandoned), key

        # Refusals are returned, not raised, so that the empty slot is kept as the
        # reference keeps it.
        reserved = await self._db.write(work)
        if reserved is None:
            raise AuthenticationFailed()
        reservation, key = reserved
        if reservation.verdict is Verdict.STALE_VERSION:
            raise PreconditionFailed()
        if reservation.verdict is Verdict.IN_PROGRESS:
            raise Conflict("Upload already in progress")
        return reservation, key

    @staticmethod
    def _complete(device_id: uuid.UUID, key: str, conn: Connection) -> tuple[bool, str | None]:
        slot = backups.get(conn, device_id, lock=True)
        previous = None if slot is None else slot.current_object
        completed = backups.complete(conn, device_id, pending_object=key, now=now_us())
        return completed, previous

    async def discard_objects(self, keys: list[str]) -> None:
        """Delete the blobs of a slot that no longer exists (its device was deleted)."""
        for key in keys:
            await self._delete_quietly(key)

    async def _delete_quietly(self, key: str) -> None:
        try:
            await self._blobs.delete(key)
        except StorageError as error:
            log.warning("could not delete backup object %s: %s", key, error)

    async def _current(self, principal: Principal) -> BackupSlot | None:
        device_id = principal.require_device()

        def work(conn: Connection) -> tuple[bool, BackupSlot | None]:
            slot = backups.get(conn, device_id)
            return slot is not None or bool(devices.existing(conn, {device_id})), slot

        device_exists, slot = await self._db.read(work)
        if not device_exists:
            raise AuthenticationFailed()  # a token outliving its deleted device
        return slot

    @asynccontextmanager
    async def download(
        self, principal: Principal, *, if_none_match: str | None
    ) -> AsyncIterator[BackupContent]:
        """The current backup, or only its version if the client already has it."""
        slot = await self._current(principal)
        known = None if if_none_match is None else parse_int32(if_none_match)
        if slot is not None and known == slot.current_version:
            yield BackupContent(slot.current_version, None)
            return
        if slot is None or slot.current_version == 0 or slot.current_object is None:
            raise NotFound()
        async with self._blobs.open(slot.current_object) as blob:
            if blob is None:
                raise NotFound()
            yield BackupContent(slot.current_version, blob)

    async def describe(self, principal: Principal) -> tuple[int, int]:
        """(version, size in bytes) of the current backup; 404 if there is none."""
        slot = await self._current(principal)
        if slot is None or slot.current_version == 0 or slot.current_object is None:
            raise NotFound()
        size = await self._blobs.size(slot.current_object)
        if size is None:
            raise NotFound()
        return slot.current_version, size

    async def reset_stale_uploads(self, *, batch_size: int) -> int:
        """Give up uploads reserved longer than the stale threshold; returns how many."""
        reset = 0
        while True:
            now = now_us()
            stale = await self._db.write(
                partial(
                    backups.reset_stale,
                    started_before=now - self._stale_us,
                    limit=batch_size,
                    now=now,
                )
            )
            for slot in stale:
                if slot.pending_object is not None:
                    await self._delete_quietly(slot.pending_object)
            reset += len(stale)
            if len(stale) < batch_size:
                return reset
