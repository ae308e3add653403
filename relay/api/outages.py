"""Storage outages at the edge (the database, or an S3 blob store): 503 with
``Retry-After``, and one log line per outage.

While storage is unreachable every request that needs it fails the same way; a
line per request would bury the log (and cost as much as the request). The first
failure is logged at once, then at most one line per :data:`REPORT_EVERY_SECS` with the
count of requests refused meanwhile.
"""

from __future__ import annotations

import logging
import time

from storage.errors import BlobStoreError, StorageUnavailable

log = logging.getLogger("relay.api")

# Clients are told to come back after this many seconds.
RETRY_AFTER_SECS = 1
REPORT_EVERY_SECS = 30.0


class OutageLog:
    """Reports storage outages, throttled (see the module docstring)."""

    def __init__(self, what: str, every_secs: float = REPORT_EVERY_SECS) -> None:
        self._what = what
        self._every = every_secs
        self._last = -every_secs
        self._unreported = 0

    def report(self, error: StorageUnavailable) -> None:
        """Log ``error`` unless an outage was reported moments ago (then count it)."""
        now = time.monotonic()
        if now - self._last < self._every:
            self._unreported += 1
            return
        refused, self._unreported, self._last = self._unreported, 0, now
        log.warning(
            "%s unavailable, answering 503: %s (%d more requests refused since the last report)",
            self._what,
            error,
            refused,
        )


# The database and the blob store fail apart: each outage is reported on its own.
_DATABASE = OutageLog("database")
_BLOB_STORE = OutageLog("blob store")


def unavailable(error: StorageUnavailable) -> dict[str, str]:
    """Report the outage; the headers of the 503 that answers it."""
    (_BLOB_STORE if isinstance(error, BlobStoreError) else _DATABASE).report(error)
    return {"Retry-After": str(RETRY_AFTER_SECS)}


def unavailable_raw(error: StorageUnavailable) -> list[tuple[bytes, bytes]]:
    """:func:`unavailable` as ASGI header pairs."""
    return [(name.lower().encode(), value.encode()) for name, value in unavailable(error).items()]
