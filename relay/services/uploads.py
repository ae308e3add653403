"""Size limits of streamed uploads (attachments, backups), checked twice.

Once from the declared ``Content-Length`` before any byte is read (411 without one, 400
below the minimum, 413 above the maximum), and again while the body streams into the
blob store, so a body that does not match its declaration is refused and never
committed.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass

from relay.errors import InvalidInput, LengthRequired, PayloadTooLarge
from storage.blobs import Upload


@dataclass(frozen=True, slots=True)
class SizeLimits:
    """Smallest and largest accepted body, and the 400 message for a small one."""

    minimum: int
    maximum: int
    too_small: str

    def check_declared(self, content_length: int | None) -> int:
        """The declared length, if acceptable."""
        if content_length is None:
            raise LengthRequired()
        if content_length < self.minimum:
            raise InvalidInput(self.too_small)
        if content_length > self.maximum:
            raise PayloadTooLarge()
        return content_length

    async def copy(self, body: AsyncGenerator[bytes, None], upload: Upload, declared: int) -> int:
        """Stream ``body`` into ``upload``, enforcing the limits and the declared length.

        The body is closed even when a limit stops the copy half-way.
        """
        total = 0
        async with aclosing(body):
            async for chunk in body:
                total += len(chunk)
                if total > self.maximum:
                    raise PayloadTooLarge()
                if total > declared:
                    raise InvalidInput("Request body does not match its Content-Length")
                await upload.write(chunk)
        if total < self.minimum:
            raise InvalidInput(self.too_small)
        if total != declared:
            raise InvalidInput("Request body does not match its Content-Length")
        return total
