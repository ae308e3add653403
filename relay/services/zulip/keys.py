"""The bouncer's registration-encryption key pairs.

Two sources, merged: the setting ``RELAY_PUSH_REGISTRATION_ENCRYPTION_KEYS`` (a JSON
object as in Zulip's secrets file) and pairs managed with ``relay keys bouncer
add|list|remove``, whose private halves are sealed with the server key in the database.
"""

from __future__ import annotations

import trio

from relay.crypto.sealing import SealingError, Vault
from relay.errors import NotFound
from relay.services.zulip.bouncer import generate_key_pair
from storage.db import Database
from storage.ids import now_us
from storage.repos import face_keys

CACHE_SECS = 10.0


class BouncerKeys:
    """See the module docstring."""

    def __init__(self, db: Database, vault: Vault, configured: dict[str, str]) -> None:
        self._db = db
        self._vault = vault
        self._configured = dict(configured)
        self._cache: tuple[float, dict[str, str]] | None = None

    async def keys(self) -> dict[str, str]:
        """Every valid pair, ``public_b64 -> private_b64``."""
        now = trio.current_time()
        if self._cache is not None and now - self._cache[0] < CACHE_SECS:
            return self._cache[1]
        stored = await self._db.read(face_keys.bouncer_keys_all)
        merged = dict(self._configured)
        for public, sealed in stored.items():
            try:
                merged[public] = self._vault.open(sealed).decode()
            except SealingError:
                continue  # sealed under another server key: unusable here
        self._cache = (now, merged)
        return merged

    async def add(self) -> str:
        """Generate and store a new pair; returns its public half (for the app build)."""
        public, private = generate_key_pair()
        sealed = self._vault.seal(private.encode())
        await self._db.write(
            lambda conn: face_keys.add_bouncer_key(conn, public, sealed, now=now_us())
        )
        self._cache = None
        return public

    async def stored(self) -> list[str]:
        """Public halves of the pairs in the database."""
        return sorted(await self._db.read(face_keys.bouncer_keys_all))

    async def remove(self, public: str) -> None:
        """Retire a stored pair (404 if unknown)."""
        if not await self._db.write(lambda conn: face_keys.remove_bouncer_key(conn, public)):
            raise NotFound(f"No bouncer key {public!r}")
        self._cache = None
