"""Who is calling: the verified contents of an access token."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from relay.errors import PermissionDenied


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: a user, optionally acting as one of its devices."""

    user_id: uuid.UUID
    device_id: uuid.UUID | None

    def require_device(self) -> uuid.UUID:
        """The device id, or 403 for a user-scoped token."""
        if self.device_id is None:
            raise PermissionDenied("Device-scoped token required")
        return self.device_id
