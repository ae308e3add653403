"""Attachments (``/v1/attachments``): encrypted blobs anyone holding the id may fetch.

Attachments have no owner: the id is the capability, handed from sender to recipients
inside end-to-end encrypted messages. They expire after ``TTL_DAYS``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from relay.errors import NotFound
from relay.services.uploads import SizeLimits
from storage.blobs import Blob, BlobStore
from storage.db import Database
from storage.errors import StorageError
from storage.ids import MICROS_PER_DAY, now_us
from storage.repos import attachments
from storage.repos.attachments import AttachmentRecord

log = logging.getLogger("relay.attachments")


class AttachmentService:
    """Stores, serves and expires attachments."""

    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        *,
        prefix: str,
        limits: SizeLimits,
        ttl_days: int,
    ) -> None:
        self._db = db
        self._blobs = blobs
        self._prefix = prefix
        self.limits = limits
        self._ttl_us = ttl_days * MICROS_PER_DAY

    def _key(self, attachment_id: uuid.UUID) -> str:
        return f"{self._prefix}{attachment_id}"

    async def upload(
        self, content_length: int | None, body: AsyncGenerator[bytes, None]
    ) -> AttachmentRecord:
        """Store a new attachment streamed from ``body``."""
        declared = self.limits.check_declared(content_length)
        attachment_id = uuid.uuid4()
        key = self._key(attachment_id)
        async with self._blobs.upload(key, declared) as upload:
            size = await self.limits.copy(body, upload, declared)
            await upload.commit()
        now = now_us()
        record = AttachmentRecord(attachment_id, size, now, now + self._ttl_us)
        try:
            await self._db.write(lambda conn: attachments.insert(conn, record))
        except StorageError:
            await self._blobs.delete(key)
            raise
        return record

    @asynccontextmanager
    async def download(self, attachment_id: uuid.UUID) -> AsyncIterator[Blob]:
        """The attachment's content; 404 if unknown, expired or its blob is missing."""
        now = now_us()
        record = await self._db.read(
            lambda conn: attachments.get_unexpired(conn, attachment_id, now=now)
        )
        if record is None:
            raise NotFound()
        async with self._blobs.open(self._key(attachment_id)) as blob:
            if blob is None:
                raise NotFound()
            yield blob

    async def delete_expired(self, *, batch_size: int) -> int:
        """Delete expired attachments, blob first, row only once its blob is gone."""
        deleted = 0
        while True:
            expired = await self._db.read(
                partial(attachments.expired, now=now_us(), limit=batch_size)
            )
            gone = []
            for attachment_id in expired:
                try:
                    await self._blobs.delete(self._key(attachment_id))
                except StorageError as error:
                    log.warning("could not delete attachment %s: %s", attachment_id, error)
                    continue
                gone.append(attachment_id)
            if gone:
                deleted += await self._db.write(partial(attachments.delete_many, ids=gone))
            if len(expired) < batch_size or not gone:
                return deleted
