"""When to try a failed delivery again (sans-IO)."""

from __future__ import annotations

import random
from dataclasses import dataclass

# A provider asking for more than an hour is treated as asking for an hour.
_MAX_RETRY_AFTER_SECS = 3600.0


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with jitter that honours ``Retry-After``."""

    base_secs: float = 1.0
    cap_secs: float = 300.0
    max_attempts: int = 5

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait after the ``attempt``-th attempt (1-based) failed transiently.

        "Equal jitter": half the exponential step is fixed, half random, so retries of
        many jobs spread out but none comes back immediately.
        """
        step = min(self.cap_secs, self.base_secs * 2.0 ** (attempt - 1))
        delay: float = step / 2 + rng.random() * step / 2
        if retry_after is not None:
            delay = max(delay, min(retry_after, _MAX_RETRY_AFTER_SECS))
        return delay
