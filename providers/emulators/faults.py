"""Faults the emulators inject, per device token or at a rate.

Each emulator maps a :class:`FaultKind` to its own provider's answer (APNs 410 with a
timestamp, FCM ``UNREGISTERED``, HMS ``80300007``, ...). Connection-level faults
(GOAWAY, stalls) are carried out by the shared HTTP/2 server.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, field


class FaultKind(enum.Enum):
    """What goes wrong."""

    UNREGISTERED = "unregistered"  # APNs 410 (with timestamp), FCM 404, HMS 80300007
    BAD_TOKEN = "bad-token"  # noqa: S105 - APNs 400 BadDeviceToken, FCM INVALID_ARGUMENT on message.token
    SENDER_MISMATCH = "sender-mismatch"  # APNs DeviceTokenNotForTopic, FCM SENDER_ID_MISMATCH
    RATE_LIMITED = "rate-limited"  # 429 with Retry-After (HMS: 503 flow control)
    SERVER_ERROR = "server-error"  # 500
    UNAVAILABLE = "unavailable"  # 503
    AUTH_EXPIRED = "auth-expired"  # APNs ExpiredProviderToken, FCM/HMS expired access token
    GOAWAY = "goaway"  # GOAWAY below this request's stream, then close the connection
    STALL = "stall"  # answer only after ``seconds``


@dataclass
class Fault:
    """One fault; ``times`` limits how often it fires (None: always)."""

    kind: FaultKind
    retry_after: int | None = None
    seconds: float = 0.0
    timestamp_ms: int | None = None  # APNs 410: when the token became invalid
    times: int | None = None

    def fire(self) -> bool:
        """Consume one use; False once used up."""
        if self.times is None:
            return True
        if self.times <= 0:
            return False
        self.times -= 1
        return True


@dataclass
class FaultPlan:
    """Faults by device token, and faults drawn at a rate for every other request."""

    per_token: dict[str, Fault] = field(default_factory=dict)
    by_rate: list[tuple[float, Fault]] = field(default_factory=list)
    seed: int = 0

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)  # noqa: S311 (not security relevant)

    def pick(self, token: str) -> Fault | None:
        """The fault for a request to ``token``, if any."""
        fault = self.per_token.get(token)
        if fault is not None:
            return fault if fault.fire() else None
        if self.by_rate:
            draw = self._random.random()
            for share, candidate in self.by_rate:
                if draw < share:
                    return candidate if candidate.fire() else None
                draw -= share
        return None

    def clear(self) -> None:
        """Remove every fault."""
        self.per_token.clear()
        self.by_rate.clear()
