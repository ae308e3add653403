"""Identifiers and timestamps as the database stores them.

Row ids are UUIDv7 (RFC 9562): time-ordered, so new rows land at the right-hand edge of
the primary-key index instead of at random pages, and monotonic within the process, so
rows created together (the messages of one request) keep their order. Timestamps are integer Unix
microseconds on every backend, which keeps ordering and arithmetic identical on SQLite
and PostgreSQL and avoids time-zone conversions on the hot paths.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from datetime import UTC, datetime

MICROS_PER_SECOND = 1_000_000
MICROS_PER_DAY = 86_400 * MICROS_PER_SECOND


def now_us() -> int:
    """Current wall-clock time in Unix microseconds."""
    return time.time_ns() // 1_000


_COUNTER_MAX = 0xFFF
_lock = threading.Lock()
_last_ms = 0
_counter = 0


def _next_counter(ms: int) -> tuple[int, int]:
    """RFC 9562 method 1: a 12-bit counter in ``rand_a``, seeded randomly each millisecond."""
    global _last_ms, _counter  # process-wide monotonic state
    with _lock:
        if ms > _last_ms:
            _last_ms = ms
            _counter = int.from_bytes(os.urandom(2), "big") & 0x7FF  # room to count up
        else:
            _counter += 1
            if _counter > _COUNTER_MAX:  # over ~2000 ids in one millisecond: borrow the next
                _last_ms += 1
                _counter = 0
        return _last_ms, _counter


def uuid7(timestamp_ms: int | None = None) -> uuid.UUID:
    """A new UUIDv7 with ``timestamp_ms`` (default: now) in the leading 48 bits.

    Without an explicit timestamp, ids are strictly increasing within the process.
    """
    if timestamp_ms is None:
        ms, counter = _next_counter(time.time_ns() // 1_000_000)
    else:
        ms, counter = timestamp_ms, int.from_bytes(os.urandom(2), "big") & _COUNTER_MAX
    random_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | counter << 64 | 0x2 << 62 | random_b
    return uuid.UUID(int=value)


def format_rfc3339(timestamp_us: int) -> str:
    """Render Unix microseconds as RFC 3339 UTC, with a fraction only when non-zero."""
    seconds, micros = divmod(timestamp_us, MICROS_PER_SECOND)
    text = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if micros:
        text += "." + f"{micros:06d}".rstrip("0")
    return text + "Z"
