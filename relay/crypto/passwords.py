"""Password hashing with argon2id.

Parameters are the reference server's (the Rust ``argon2`` crate defaults, which are
OWASP's recommendation): 19 MiB of memory, 2 passes, 1 lane. Hashes carry their own
parameters, so a change here upgrades stored hashes on the next successful login.
Hashing is CPU-bound (tens of ms): callers run it in a worker thread.
"""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


@cache
def _dummy_hash() -> str:
    # Verified against when the username is unknown, so that a miss costs as much as a
    # hit and response times do not reveal which usernames exist.
    return _HASHER.hash("relay-timing-equaliser")


def hash_password(password: str) -> str:
    """A salted argon2id hash of ``password``."""
    return _HASHER.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True if ``password`` matches; with ``password_hash=None`` burn the same time, False."""
    try:
        return (
            _HASHER.verify(password_hash or _dummy_hash(), password) and password_hash is not None
        )
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True if the stored hash uses weaker parameters than the current ones."""
    return _HASHER.check_needs_rehash(password_hash)
