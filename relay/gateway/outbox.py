"""The queue between a session's producers (pump, pre-key reporter) and its writer.

Bounded twice: in frames (``WS_OUTBOUND_BUFFER_SIZE``, as the reference) and in bytes
(``WS_OUTBOUND_BUFFER_BYTES``), counting the frame being written. With frames of up to
8 MiB, a frame count alone would let one stalled client pin 32 x 8 MiB of server memory;
with both bounds a slow client only slows its own delivery. A frame larger than the byte
bound is still sent, alone. Nothing is ever dropped: producers wait.
"""

from __future__ import annotations

from collections import deque

import trio


class Outbox:
    """Frames waiting for the writer; :meth:`put` waits while the outbox is full."""

    def __init__(self, *, max_frames: int, max_bytes: int) -> None:
        self._queue: deque[bytes] = deque()
        self._max_frames = max_frames
        self._max_bytes = max_bytes
        self._bytes = 0  # queued, plus the frame being written
        self._writing = False
        self._changed = trio.Event()

    @property
    def buffered_bytes(self) -> int:
        """Bytes queued or being written."""
        return self._bytes

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def _fits(self, size: int) -> bool:
        if not self._queue and not self._writing:
            return True
        return len(self._queue) < self._max_frames and self._bytes + size <= self._max_bytes

    async def put(self, frame: bytes) -> None:
        """Queue ``frame``, waiting for room."""
        while not self._fits(len(frame)):
            await self._changed.wait()
        self._queue.append(frame)
        self._bytes += len(frame)
        self._notify()

    async def take(self) -> bytes:
        """The next frame to write; call :meth:`written` once it is sent."""
        while not self._queue:
            await self._changed.wait()
        self._writing = True
        frame = self._queue.popleft()
        self._notify()
        return frame

    def written(self, frame: bytes) -> None:
        """The frame from :meth:`take` has left (or will never leave): free its room."""
        self._writing = False
        self._bytes -= len(frame)
        self._notify()
