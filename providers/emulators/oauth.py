"""Access tokens handed out by the emulated OAuth2 token endpoints (FCM, HMS)."""

from __future__ import annotations

import secrets
import time
from urllib.parse import parse_qs

from providers.emulators.server import Request


class TokenIssuer:
    """Issues bearer tokens for a subject and checks them."""

    def __init__(self, lifetime_secs: int = 3600) -> None:
        self.lifetime_secs = lifetime_secs
        self._tokens: dict[str, tuple[str, float]] = {}
        self.issued = 0

    def issue(self, subject: str) -> tuple[str, int]:
        """A new token for ``subject`` and its lifetime in seconds."""
        token = secrets.token_urlsafe(32)
        self._tokens[token] = (subject, time.time() + self.lifetime_secs)
        self.issued += 1
        return token, self.lifetime_secs

    def subject(self, authorization: str | None) -> str | None:
        """The subject of a live ``Bearer`` token, else None."""
        if not authorization or not authorization.startswith("Bearer "):
            return None
        entry = self._tokens.get(authorization[len("Bearer ") :])
        if entry is None or entry[1] < time.time():
            return None
        return entry[0]

    def expire_all(self) -> None:
        """Make every issued token invalid (the provider rotated or expired them)."""
        self._tokens.clear()


def form(request: Request) -> dict[str, str]:
    """The first value of each field of a form-encoded body."""
    try:
        fields = parse_qs(request.body.decode("ascii"), strict_parsing=False)
    except UnicodeDecodeError:
        return {}
    return {key: values[0] for key, values in fields.items()}
