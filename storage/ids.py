"""Identifiers and timestamps as the database stores them.

Row ids are UUIDv7 (RFC 9562): time-ordered, so new rows land at the right-hand edge of
the primary-key index instead of at random pages. Timestamps are integer Unix
microseconds on every backend, which keeps ordering and arithmetic identical on SQLite
and PostgreSQL and avoids time-zone conversions on the hot paths.
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime

MICROS_PER_SECOND = 1_000_000
MICROS_PER_DAY = 86_400 * MICROS_PER_SECOND


def now_us() -> int:
    """Current wall-clock time in Unix microseconds."""
    return time.time_ns() // 1_000


def uuid7(timestamp_ms: int | None = None) -> uuid.UUID:
    """A new random UUIDv7 whose leading 48 bits are ``timestamp_ms`` (default: now)."""
    ms = time.time_ns() // 1_000_000 if timestamp_ms is None else timestamp_ms
    value = (ms & 0xFFFF_FFFF_FFFF) << 80 | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return uuid.UUID(int=value)


def format_rfc3339(timestamp_us: int) -> str:
    """Render Unix microseconds as RFC 3339 UTC, with a fraction only when non-zero."""
    seconds, micros = divmod(timestamp_us, MICROS_PER_SECOND)
    text = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if micros:
        text += "." + f"{micros:06d}".rstrip("0")
    return text + "Z"
