"""Attachments and backups in S3-compatible object storage, streamed both ways.

An upload is one ``PUT`` with its content length, its body fed chunk by chunk as the
caller writes: nothing is buffered whole. The object exists only if the ``PUT``
completes, and it completes only on :meth:`_S3Upload.commit` with every declared byte
written; an upload left uncommitted is cut off mid-body, so S3 stores nothing. Downloads
stream the ``GET`` body in chunks of :data:`~storage.blobs.CHUNK_BYTES`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

import httpx
import trio

from storage.blobs import CHUNK_BYTES, Blob, Upload, check_key
from storage.errors import BlobStoreError, BlobStoreUnavailable
from storage.s3.sigv4 import EMPTY_SHA256, Credentials, sign


@dataclass(frozen=True)
class S3Config:
    """Where the objects go (the reference's ``OBSCURA_STORAGE_*``)."""

    bucket: str
    region: str
    access_key: str
    secret_key: str
    endpoint: str | None = None
    """``https://host[:port]``; None: AWS's regional endpoint."""
    force_path_style: bool = False
    """``endpoint/bucket/key`` rather than ``bucket.endpoint/key`` (MinIO, moto...)."""


def _failure(method: str, status: int) -> BlobStoreError:
    # 5xx and throttling are passing (503 to the client, retry); anything else is ours.
    message = f"S3 {method} answered {status}"
    if status >= 500 or status == 429:
        return BlobStoreUnavailable(message)
    return BlobStoreError(message)


class _S3Upload:
    """Feeds the PUT. The last chunk written is held back until :meth:`commit`: with every
    declared byte received S3 stores the object, and it must not before the commit."""

    def __init__(self, send: trio.MemorySendChannel[bytes], size: int, done: trio.Event) -> None:
        self._send = send
        self._size = size
        self._done = done
        self._held = b""
        self.written = 0
        self.error: BlobStoreError | None = None
        self.committed = False

    async def write(self, data: bytes) -> None:
        if self.written + len(data) > self._size:
            raise BlobStoreError(f"more than the declared {self._size} bytes")
        if self._held:
            await self._feed(self._held)
        self._held = data
        self.written += len(data)

    async def _feed(self, data: bytes) -> None:
        try:
            await self._send.send(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise self.error or BlobStoreError("the upload was cut off") from None

    async def commit(self) -> None:
        if self.written != self._size:
            raise BlobStoreError(f"{self.written} of the declared {self._size} bytes")
        if self._held:
            await self._feed(self._held)
            self._held = b""
        await self._send.aclose()
        await self._done.wait()
        if self.error is not None:
            raise self.error
        self.committed = True


class _S3Blob:
    def __init__(self, response: httpx.Response, size: int) -> None:
        self._response = response
        self.size = size

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.aiter_raw(CHUNK_BYTES):
                yield chunk
        except httpx.HTTPError as error:
            raise BlobStoreUnavailable(f"S3 download failed: {error}") from None


class S3BlobStore:
    """See the module docstring. ``client`` is this store's own; :meth:`aclose` it."""

    def __init__(self, config: S3Config, client: httpx.AsyncClient | None = None) -> None:
        self._config = config
        self._credentials = Credentials(config.access_key, config.secret_key, config.region)
        endpoint = config.endpoint or f"https://s3.{config.region}.amazonaws.com"
        parts = urlsplit(endpoint.rstrip("/"))
        if config.force_path_style:
            self._base = f"{parts.scheme}://{parts.netloc}/{config.bucket}"
        else:
            self._base = f"{parts.scheme}://{config.bucket}.{parts.netloc}"
        self._client = client or httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=5.0))

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._client.aclose()

    def _url(self, key: str) -> str:
        return f"{self._base}/{quote(check_key(key), safe='/')}"

    def _signed(
        self, method: str, url: str, headers: dict[str, str] | None = None, *, empty: bool = True
    ) -> dict[str, str]:
        payload = EMPTY_SHA256 if empty else "UNSIGNED-PAYLOAD"
        now = datetime.now(UTC)
        return sign(method, url, headers or {}, self._credentials, now, payload_hash=payload)

    async def _request(self, method: str, url: str) -> httpx.Response:
        try:
            return await self._client.request(method, url, headers=self._signed(method, url))
        except httpx.HTTPError as error:
            raise BlobStoreUnavailable(f"S3 {method} failed: {error}") from None

    @asynccontextmanager
    async def upload(self, key: str, size: int) -> AsyncIterator[Upload]:
        """Write a new object of exactly ``size`` bytes; nothing is stored unless committed."""
        url = self._url(key)
        send, receive = trio.open_memory_channel[bytes](1)
        done = trio.Event()
        upload = _S3Upload(send, size, done)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._put, url, size, receive, upload, done)
                try:
                    yield upload
                finally:
                    if not upload.committed:
                        nursery.cancel_scope.cancel()  # cut off mid-body: S3 keeps nothing
                    # Not a checkpoint: the cancellation must not replace the exception
                    # on its way out.
                    send.close()
        except BaseExceptionGroup as group:
            # The PUT task never raises: what comes out is the caller's own exception,
            # which it must get as it raised it.
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise

    async def _put(
        self,
        url: str,
        size: int,
        receive: trio.MemoryReceiveChannel[bytes],
        upload: _S3Upload,
        done: trio.Event,
    ) -> None:
        async def body() -> AsyncIterator[bytes]:
            async for chunk in receive:
                yield chunk

        headers = self._signed("PUT", url, {"content-length": str(size)}, empty=False)
        try:
            response = await self._client.put(url, content=body(), headers=headers)
            if response.status_code != 200:
                upload.error = _failure("PUT", response.status_code)
        except httpx.HTTPError as error:
            upload.error = BlobStoreUnavailable(f"S3 PUT failed: {error}")
        finally:
            await receive.aclose()
            done.set()

    @asynccontextmanager
    async def open(self, key: str) -> AsyncIterator[Blob | None]:
        """Read an object, or None if there is none under ``key``."""
        url = self._url(key)
        request = self._client.build_request("GET", url, headers=self._signed("GET", url))
        try:
            response = await self._client.send(request, stream=True)
        except httpx.HTTPError as error:
            raise BlobStoreUnavailable(f"S3 GET failed: {error}") from None
        try:
            if response.status_code == 404:
                yield None
                return
            if response.status_code != 200:
                raise _failure("GET", response.status_code)
            yield _S3Blob(response, int(response.headers.get("content-length", "0")))
        finally:
            with trio.CancelScope(shield=True):
                await response.aclose()

    async def size(self, key: str) -> int | None:
        """The object's size in bytes, or None if there is none."""
        response = await self._request("HEAD", self._url(key))
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise _failure("HEAD", response.status_code)
        return int(response.headers.get("content-length", "0"))

    async def delete(self, key: str) -> bool:
        """Remove the object; False if there was none."""
        if await self.size(key) is None:
            return False
        response = await self._request("DELETE", self._url(key))
        if response.status_code not in (200, 204):
            raise _failure("DELETE", response.status_code)
        return True

    async def healthy(self) -> bool:
        """True if the bucket answers a ``HEAD`` (the reference's ``HeadBucket``)."""
        try:
            response = await self._request("HEAD", f"{self._base}/")
        except BlobStoreError:
            return False
        return response.status_code == 200
