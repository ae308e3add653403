"""What the admin commands (``relay apps``, ``relay keys``) share: the database and the
push key without the rest of the server, and one-line errors."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from relay.config import Settings

if TYPE_CHECKING:
    from storage.db import Database


def open_store(settings: Settings) -> tuple[Database, bytes]:
    """The database and the push key (no JWT secret: admin commands issue no tokens)."""
    from relay.process.runtime import Runtime, database_url, open_database, resolve_push_key

    data_dir = Path(settings.data_dir).expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    push_key = resolve_push_key(settings, data_dir)
    runtime = Runtime(data_dir, data_dir / "blobs", database_url(settings, data_dir), b"", push_key)
    return open_database(settings, runtime), push_key


def run_admin(db: Database, run: Callable[[], Awaitable[None]]) -> int:
    """Run an admin command's work: its errors printed as one line, the database closed."""
    import trio

    from relay.errors import RelayError

    try:
        trio.run(run)
    except RelayError as error:
        print(f"relay: {error.message}", file=sys.stderr)
        return 1
    finally:
        db.dispose()
    return 0
