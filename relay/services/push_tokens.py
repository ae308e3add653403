"""The relay's per-device push token (wake-ups are sent by the push core)."""

from __future__ import annotations

from relay.errors import AuthenticationFailed, InvalidInput
from relay.services.principal import Principal
from storage.db import Database
from storage.errors import IntegrityViolation
from storage.ids import now_us
from storage.repos import push_tokens

MAX_TOKEN_BYTES = 4096


class PushTokenService:
    """Registers the token a device wants wake-ups on."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def put(self, principal: Principal, token: str) -> None:
        """Store ``token`` (untrimmed) for the caller's device, replacing any previous one."""
        device_id = principal.require_device()
        trimmed = token.strip()
        if not trimmed:
            raise InvalidInput("Token cannot be empty")
        if len(trimmed.encode("utf-8", "surrogatepass")) > MAX_TOKEN_BYTES:
            raise InvalidInput("Token is too long (max 4096 characters)")
        if "\x00" in token:
            # PostgreSQL cannot store NUL in text; refuse it on every backend alike.
            raise InvalidInput("Token must not contain NUL characters")
        try:
            await self._db.write(lambda conn: push_tokens.put(conn, device_id, token, now=now_us()))
        except IntegrityViolation:
            raise AuthenticationFailed() from None  # the token's device has been deleted
