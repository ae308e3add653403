"""The blob store: attachments and backups, streamed in and out, never whole in memory.

Objects are named by keys such as ``attachments/<id>`` or ``backups/<device>/v3``. An
upload goes to a temporary object that becomes visible under its key only when
committed, so a failed or abandoned upload never leaves a partial object behind::

    async with store.upload("attachments/1234", size) as upload:
        async for chunk in body:
            await upload.write(chunk)
        await upload.commit()

:class:`FilesystemBlobStore` keeps objects as files under a root directory (the data
directory by default); :class:`storage.s3.store.S3BlobStore` in S3-compatible object
storage. File I/O is blocking, so it runs in worker threads under a
limiter, in chunks of :data:`CHUNK_BYTES`: one thread hop per chunk, not per network
read.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import BinaryIO, Protocol, TypeVar, TypeVarTuple

import trio

from storage.errors import BlobStoreError

T = TypeVar("T")
Args = TypeVarTuple("Args")

CHUNK_BYTES = 256 * 1024
_KEY_SEGMENT = re.compile(r"^[A-Za-z0-9_.-]+$")
_TEMPORARY = ".uploads"


class Upload(Protocol):
    """An object being written; invisible until :meth:`commit`."""

    async def write(self, data: bytes) -> None:
        """Append ``data``."""

    async def commit(self) -> None:
        """Publish the object under its key (replacing any previous one)."""


class Blob(Protocol):
    """An object opened for reading."""

    size: int

    def chunks(self) -> AsyncIterator[bytes]:
        """The content, in order, in chunks of at most :data:`CHUNK_BYTES`."""


class BlobStore(Protocol):
    """Where attachments and backups live."""

    def upload(self, key: str, size: int) -> AbstractAsyncContextManager[Upload]:
        """Write a new object of ``size`` bytes (S3 needs the length before the first
        byte); discarded unless committed, with that many bytes, before the context ends."""

    def open(self, key: str) -> AbstractAsyncContextManager[Blob | None]:
        """Read an object, or None if there is none under ``key``."""

    async def size(self, key: str) -> int | None:
        """The object's size in bytes, or None if there is none."""

    async def delete(self, key: str) -> bool:
        """Remove the object; False if there was none."""

    async def healthy(self) -> bool:
        """True if the store can be written to right now."""

    async def aclose(self) -> None:
        """Release connections (at shutdown)."""


def check_key(key: str) -> str:
    """``key`` if it is a relative path of plain segments, else ``BlobStoreError``."""
    segments = key.split("/")
    if not all(_KEY_SEGMENT.match(s) and s not in (".", "..") for s in segments):
        raise BlobStoreError(f"invalid blob key {key!r}")
    if segments[0] == _TEMPORARY:
        raise BlobStoreError(f"reserved blob key {key!r}")
    return key


class _FileUpload:
    def __init__(self, store: FilesystemBlobStore, handle: BinaryIO, final: Path) -> None:
        self._store = store
        self._handle = handle
        self._final = final
        self._buffer = bytearray()
        self.committed = False

    async def write(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) >= CHUNK_BYTES:
            await self._flush()

    async def _flush(self) -> None:
        if self._buffer:
            chunk = bytes(self._buffer)
            self._buffer.clear()
            await self._store.run(self._handle.write, chunk)

    async def commit(self) -> None:
        await self._flush()
        await self._store.run(self._publish)
        self.committed = True

    def _publish(self) -> None:
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._handle.name, self._final)


class _FileBlob:
    def __init__(self, store: FilesystemBlobStore, handle: BinaryIO, size: int) -> None:
        self._store = store
        self._handle = handle
        self.size = size

    async def chunks(self) -> AsyncIterator[bytes]:
        while chunk := await self._store.run(self._handle.read, CHUNK_BYTES):
            yield chunk


class FilesystemBlobStore:
    """Objects as files under ``root``; ``threads`` bounds the concurrent file I/O."""

    def __init__(self, root: Path, *, threads: int = 8) -> None:
        self.root = root
        self._limiter = trio.CapacityLimiter(threads)
        self._health_limiter = trio.CapacityLimiter(1)

    async def run(self, function: Callable[[*Args], T], *args: *Args) -> T:
        """Call ``function(*args)`` in a worker thread; OS errors become ``BlobStoreError``."""
        try:
            return await trio.to_thread.run_sync(function, *args, limiter=self._limiter)
        except OSError as error:
            raise BlobStoreError(f"{type(error).__name__}: {error.strerror}") from error

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    def _open_temporary(self) -> BinaryIO:
        directory = self.root / _TEMPORARY
        directory.mkdir(parents=True, exist_ok=True)
        return (directory / uuid.uuid4().hex).open("xb")

    @staticmethod
    def _discard(handle: BinaryIO) -> None:
        handle.close()
        Path(handle.name).unlink(missing_ok=True)

    @asynccontextmanager
    async def upload(self, key: str, size: int) -> AsyncIterator[Upload]:
        """Write a new object; discarded unless committed before the context ends (the
        callers' size limits hold ``size``: a file needs no length up front)."""
        del size
        final = self._path(key)
        handle = await self.run(self._open_temporary)
        upload = _FileUpload(self, handle, final)
        try:
            yield upload
        finally:
            with trio.CancelScope(shield=True):
                if upload.committed:
                    await self.run(handle.close)
                else:
                    await self.run(self._discard, handle)

    def _open_existing(self, path: Path) -> tuple[BinaryIO, int] | None:
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            return None
        return handle, os.fstat(handle.fileno()).st_size

    @asynccontextmanager
    async def open(self, key: str) -> AsyncIterator[Blob | None]:
        """Read an object, or None if there is none under ``key``."""
        opened = await self.run(self._open_existing, self._path(key))
        if opened is None:
            yield None
            return
        handle, size = opened
        try:
            yield _FileBlob(self, handle, size)
        finally:
            with trio.CancelScope(shield=True):
                await self.run(handle.close)

    @staticmethod
    def _size(path: Path) -> int | None:
        try:
            return path.stat().st_size
        except FileNotFoundError:
            return None

    async def size(self, key: str) -> int | None:
        """The object's size in bytes, or None if there is none."""
        return await self.run(self._size, self._path(key))

    @staticmethod
    def _unlink(path: Path) -> bool:
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    async def delete(self, key: str) -> bool:
        """Remove the object; False if there was none."""
        return await self.run(self._unlink, self._path(key))

    async def aclose(self) -> None:
        """Nothing to release: files are opened per call."""
        await trio.lowlevel.checkpoint()

    def _writable(self) -> bool:
        return self.root.is_dir() and os.access(self.root, os.W_OK | os.X_OK)

    async def healthy(self) -> bool:
        """True if the root directory exists and is writable.

        Abandons its thread when cancelled, so a caller's timeout holds even if the
        file system hangs.
        """
        try:
            return await trio.to_thread.run_sync(
                self._writable, limiter=self._health_limiter, abandon_on_cancel=True
            )
        except OSError:
            return False
