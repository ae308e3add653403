"""The relay's per-device push token (wake-ups are sent by the push core).

Beyond the reference's ``{"token"}``, a registration may name its ``platform`` (``fcm``
by default, ``apns``, ``hms``), its APNs ``environment`` and an end-to-end ``pushKey``
(Zulip format); the push key is sealed with the server key before it is stored.
"""

from __future__ import annotations

from relay.crypto.sealing import InvalidPushKey, Vault, parse_push_key
from relay.errors import AuthenticationFailed, InvalidInput
from relay.services.principal import Principal
from storage.db import Database
from storage.errors import IntegrityViolation
from storage.ids import now_us
from storage.repos import push_tokens

MAX_TOKEN_BYTES = 4096
PLATFORMS = ("fcm", "apns", "hms")
ENVIRONMENTS = ("production", "development")


class PushTokenService:
    """Registers the token a device wants wake-ups on."""

    def __init__(self, db: Database, vault: Vault) -> None:
        self._db = db
        self._vault = vault

    async def put(
        self,
        principal: Principal,
        token: str,
        *,
        platform: str | None = None,
        environment: str | None = None,
        push_key: str | None = None,
    ) -> None:
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
        platform = platform or "fcm"
        if platform not in PLATFORMS:
            raise InvalidInput("platform must be one of fcm, apns, hms")
        environment = environment or "production"
        if environment not in ENVIRONMENTS:
            raise InvalidInput("environment must be production or development")
        sealed: bytes | None = None
        if push_key is not None:
            try:
                sealed = self._vault.seal(parse_push_key(push_key))
            except InvalidPushKey as error:
                raise InvalidInput(f"Invalid pushKey: {error}") from None
        try:
            await self._db.write(
                lambda conn: push_tokens.put(
                    conn,
                    device_id,
                    token,
                    now=now_us(),
                    platform=platform,
                    environment=environment,
                    push_key=sealed,
                )
            )
        except IntegrityViolation:
            raise AuthenticationFailed() from None  # the token's device has been deleted
