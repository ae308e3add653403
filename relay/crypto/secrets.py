"""Opaque bearer secrets (refresh tokens, gateway tickets) and how they are stored.

Only a SHA-256 digest of a secret ever reaches the database: a leaked table cannot be
replayed. The secrets carry 256 (refresh tokens) or 122 (UUIDv4 tickets) bits of
entropy, so an unsalted fast hash is the right tool: there is nothing to brute-force.
"""

from __future__ import annotations

import hashlib
import secrets


def new_refresh_token() -> str:
    """32 random bytes, base64url without padding (43 characters)."""
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """The hex SHA-256 digest under which a secret is stored and looked up."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()
