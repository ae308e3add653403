"""Accounts and sessions: register, log in, rotate refresh tokens, log out, authenticate."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import trio
from sqlalchemy.engine import Connection

from relay.crypto.jwt import InvalidToken, JwtCodec
from relay.crypto.passwords import PasswordHashing
from relay.crypto.secrets import digest, new_refresh_token
from relay.errors import AuthenticationFailed, Conflict, InvalidInput
from relay.services.principal import Principal
from storage.db import Database
from storage.errors import UniqueViolation
from storage.ids import MICROS_PER_DAY, MICROS_PER_SECOND, now_us, uuid7
from storage.repos import devices, refresh_tokens, users
from storage.repos.refresh_tokens import RefreshGrant

_USERNAME = re.compile(r"[a-zA-Z0-9_]{3,50}")
_STORED_USERNAME = re.compile(r"[a-z0-9_]{3,50}")
MIN_PASSWORD_BYTES = 12


@dataclass(frozen=True, slots=True)
class Session:
    """A freshly issued access token and refresh token."""

    token: str
    refresh_token: str
    expires_at: int
    device_id: uuid.UUID | None


class SessionIssuer:
    """Mints access tokens and stores refresh tokens; used inside units of work."""

    def __init__(self, jwt: JwtCodec, *, token_ttl_secs: int, refresh_ttl_days: int) -> None:
        self.jwt = jwt
        self._token_ttl_secs = token_ttl_secs
        self._refresh_ttl_us = refresh_ttl_days * MICROS_PER_DAY

    def issue(self, conn: Connection, grant: RefreshGrant, *, now: int) -> Session:
        """Store a new refresh token for ``grant`` and sign a matching access token."""
        refresh = new_refresh_token()
        refresh_tokens.insert(
            conn, digest(refresh), grant, expires_at=now + self._refresh_ttl_us, now=now
        )
        expires_at = now // MICROS_PER_SECOND + self._token_ttl_secs
        token = self.jwt.encode(grant.user_id, grant.device_id, expires_at)
        return Session(token, refresh, expires_at, grant.device_id)


def validate_registration(username: str, password: str) -> None:
    """The registration rules, in the contract's order (400 on the first failure)."""
    if not username.strip():
        raise InvalidInput("Username cannot be empty")
    if not _USERNAME.fullmatch(username):
        raise InvalidInput(
            "Username must be between 3 and 50 characters and can only contain letters, "
            "numbers, and underscores"
        )
    if len(password.encode("utf-8", "surrogatepass")) < MIN_PASSWORD_BYTES:
        raise InvalidInput("Password must be at least 12 characters long")


class SessionService:
    """Everything that creates or ends a session."""

    def __init__(
        self,
        db: Database,
        issuer: SessionIssuer,
        passwords: PasswordHashing,
        *,
        hash_limiter: trio.CapacityLimiter,
    ) -> None:
        self._db = db
        self._issuer = issuer
        self._passwords = passwords
        self._hash_limiter = hash_limiter

    def authenticate(self, token: str) -> Principal:
        """Verify an access token (stateless: no database access)."""
        try:
            claims = self._issuer.jwt.decode(token, now=now_us() // MICROS_PER_SECOND)
        except InvalidToken:
            raise AuthenticationFailed() from None
        return Principal(claims.user_id, claims.device_id)

    async def register(self, username: str, password: str) -> Session:
        """Create an account and a user-scoped session; 409 if the name is taken."""
        validate_registration(username, password)
        password_hash = await trio.to_thread.run_sync(
            self._passwords.hash, password, limiter=self._hash_limiter
        )
        user = users.UserRecord(uuid7(), username.lower(), password_hash, now_us())

        def work(conn: Connection) -> Session:
            users.insert(conn, user)
            return self._issuer.issue(conn, RefreshGrant(user.id, None), now=user.created_at)

        try:
            return await self._db.write(work)
        except UniqueViolation:
            raise Conflict("Username already exists") from None

    async def login(self, username: str, password: str, device_id: str | None) -> Session:
        """Check credentials; device-scoped when ``device_id`` names one of the user's devices."""
        requested_device = None
        if device_id is not None:
            try:
                requested_device = uuid.UUID(device_id)
            except ValueError:
                raise InvalidInput("Invalid device_id") from None
        user, rehashed = await self._verify(username, password)
        if user is None:
            raise AuthenticationFailed()

        def work(conn: Connection) -> Session:
            if rehashed is not None:
                users.set_password_hash(conn, user.id, rehashed)
            scope = None
            if requested_device is not None and devices.owner_of(conn, requested_device) == user.id:
                scope = requested_device
            return self._issuer.issue(conn, RefreshGrant(user.id, scope), now=now_us())

        return await self._db.write(work)

    async def check_password(self, username: str, password: str) -> users.UserRecord | None:
        """The account if ``password`` is its password (for the other faces' logins)."""
        user, rehashed = await self._verify(username, password)
        if user is not None and rehashed is not None:
            await self._db.write(lambda conn: users.set_password_hash(conn, user.id, rehashed))
        return user

    async def _verify(
        self, username: str, password: str
    ) -> tuple[users.UserRecord | None, str | None]:
        # The account and, when its hash uses old parameters, a fresh hash to store.
        name = username.lower()
        user = None
        # A name no account can have (say, with a NUL byte) is not worth a query.
        if _STORED_USERNAME.fullmatch(name):
            user = await self._db.read(lambda conn: users.by_username(conn, name))
        stored_hash = None if user is None else user.password_hash
        verified = await trio.to_thread.run_sync(
            self._passwords.verify, stored_hash, password, limiter=self._hash_limiter
        )
        if user is None or not verified:
            return None, None
        rehashed = None
        if self._passwords.needs_rehash(user.password_hash):
            rehashed = await trio.to_thread.run_sync(
                self._passwords.hash, password, limiter=self._hash_limiter
            )
        return user, rehashed

    async def refresh(self, refresh_token: str) -> Session:
        """Rotate a refresh token: the presented one is spent, a new pair is issued."""
        token_hash = digest(refresh_token)

        def work(conn: Connection) -> Session | None:
            now = now_us()
            grant = refresh_tokens.consume(conn, token_hash, now=now)
            return None if grant is None else self._issuer.issue(conn, grant, now=now)

        session = await self._db.write(work)
        if session is None:
            raise AuthenticationFailed()
        return session

    async def logout(self, principal: Principal, refresh_token: str) -> None:
        """Revoke the caller's own refresh token; anything else is silently ignored."""
        token_hash = digest(refresh_token)
        await self._db.write(
            lambda conn: refresh_tokens.delete_owned(conn, token_hash, principal.user_id)
        )

    async def delete_expired_refresh_tokens(self, *, batch_size: int) -> int:
        """Delete expired refresh tokens in batches; returns how many went."""
        total = 0
        while True:
            deleted = await self._db.write(
                lambda conn: refresh_tokens.delete_expired(conn, now=now_us(), limit=batch_size)
            )
            total += deleted
            if deleted < batch_size:
                return total
