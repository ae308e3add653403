"""What the ``relay`` commands print when they cannot start: one line naming the setting
and what to do, an exit status, no traceback (it is logged at debug level)."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from dataclasses import dataclass

from relay.config import SettingError, Settings


@dataclass(frozen=True)
class Explained:
    """The line to print and the exit status."""

    message: str
    status: int


def _leaves(error: BaseException) -> Iterator[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            yield from _leaves(inner)
    else:
        yield error


def explain(error: BaseException, settings: Settings) -> Explained | None:
    """The explanation of a start-up failure, or None for what is a bug (re-raised)."""
    from storage.errors import StorageError, StorageUnavailable

    for leaf in _leaves(error):
        if isinstance(leaf, SettingError):
            return Explained(f"configuration error: {leaf}", 2)
        if isinstance(leaf, OSError) and leaf.errno == errno.EADDRINUSE:
            return Explained(
                f"cannot listen on {settings.server_host}: address already in use "
                f"(RELAY_SERVER_PORT={settings.server_port}, "
                f"RELAY_SERVER_MGMT_PORT={settings.server_mgmt_port}); stop what uses the "
                "port or choose another with RELAY_SERVER_PORT / RELAY_SERVER_MGMT_PORT",
                1,
            )
        if isinstance(leaf, OSError) and leaf.errno == errno.EADDRNOTAVAIL:
            return Explained(
                f"cannot listen on {settings.server_host}: no such address on this machine; "
                "set RELAY_SERVER_HOST to one of its addresses (0.0.0.0 for all)",
                1,
            )
        if isinstance(leaf, StorageUnavailable):
            return Explained(
                f"cannot reach the database: {leaf}; start it, or correct "
                "RELAY_DATABASE_URL (--database-url)",
                1,
            )
        if isinstance(leaf, StorageError):
            return Explained(f"database error: {leaf}", 1)
    return None
