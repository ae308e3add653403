"""Integrator API keys for the PowerAuth face (which the reference leaves open).

A key is shown once at creation and stored as a SHA-256 digest (256 random bits: nothing
to brute-force). Verified keys are cached briefly, so a busy integrator costs no query per
request; a revoked key stops working at once in the process that revoked it and within
:data:`CACHE_SECS` (half a second) in every other.
"""

from __future__ import annotations

import secrets

import trio

from relay.crypto.secrets import digest
from relay.errors import Conflict, InvalidInput, NotFound
from relay.services.push.apps import check_name
from storage.db import Database
from storage.errors import IntegrityViolation
from storage.ids import now_us
from storage.repos import face_keys
from storage.repos.face_keys import ApiKey

# A key revoked from another process (relay keys revoke) stops working within this.
CACHE_SECS = 0.5
PREFIX = "rk_"


class ApiKeyService:
    """See the module docstring."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._cache: dict[str, tuple[float, str | None]] = {}

    async def create(self, name: str) -> str:
        """A new key called ``name``; the key itself is returned only here."""
        try:
            check_name(name)
        except InvalidInput:
            raise InvalidInput("Key name must be 1-100 letters, digits, '.', '_' or '-'") from None
        key = PREFIX + secrets.token_urlsafe(32)
        try:
            await self._db.write(
                lambda conn: face_keys.add_api_key(conn, name, digest(key), now=now_us())
            )
        except IntegrityViolation:
            raise Conflict(f"A key named {name!r} already exists") from None
        return key

    async def all(self) -> list[ApiKey]:
        """Every key's name and creation time."""
        return await self._db.read(face_keys.list_api_keys)

    async def revoke(self, name: str) -> None:
        """Delete a key (404 if there is none by that name)."""
        if not await self._db.write(lambda conn: face_keys.delete_api_key(conn, name)):
            raise NotFound(f"No key named {name!r}")
        self._cache.clear()

    async def verify(self, key: str) -> str | None:
        """The name of the key, or None if it is not a key of ours."""
        key_hash = digest(key)
        now = trio.current_time()
        cached = self._cache.get(key_hash)
        if cached is not None and now - cached[0] < CACHE_SECS:
            return cached[1]
        name = await self._db.read(lambda conn: face_keys.api_key_named_by_hash(conn, key_hash))
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key_hash] = (now, name)
        return name
