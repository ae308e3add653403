"""Password hashing with argon2id.

The default parameters are the reference server's (the Rust ``argon2`` crate defaults,
which are OWASP's recommendation): 19 MiB of memory, 2 passes, 1 lane. Operators may
tune them; hashes carry their own parameters, so a change upgrades stored hashes on the
next successful login (:meth:`PasswordHashing.needs_rehash`). Hashing is CPU-bound
(tens of ms): callers run it in a worker thread.
"""

from __future__ import annotations

from functools import cached_property

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

DEFAULT_MEMORY_KIB = 19456
DEFAULT_ITERATIONS = 2


class PasswordHashing:
    """argon2id with fixed parameters."""

    def __init__(
        self, *, memory_kib: int = DEFAULT_MEMORY_KIB, iterations: int = DEFAULT_ITERATIONS
    ) -> None:
        self._hasher = PasswordHasher(time_cost=iterations, memory_cost=memory_kib, parallelism=1)

    @cached_property
    def _dummy_hash(self) -> str:
        # Verified against when the username is unknown, so that a miss costs as much
        # as a hit and response times do not reveal which usernames exist.
        return self._hasher.hash("relay-timing-equaliser")

    def hash(self, password: str) -> str:
        """A salted argon2id hash of ``password``."""
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """True if ``password`` matches; with ``password_hash=None`` burn the same time."""
        try:
            matched = self._hasher.verify(password_hash or self._dummy_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return matched and password_hash is not None

    def needs_rehash(self, password_hash: str) -> bool:
        """True if the stored hash was made with other parameters than the current ones."""
        return self._hasher.check_needs_rehash(password_hash)
