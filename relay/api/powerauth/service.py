"""``GET /push/service/status``."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from quart import Blueprint, Response

from relay import __version__
from relay.api.powerauth.envelope import ok
from relay.api.routes import view

_STARTED = datetime.now(UTC)


def _timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def register(bp: Blueprint) -> None:
    """Add the status route."""

    @view(bp)
    async def service_status() -> Response:
        return ok(
            {
                "applicationName": "powerauth-push",
                "applicationDisplayName": "PowerAuth Push Server (obscura-relay)",
                "applicationEnvironment": "",
                "version": __version__,
                "buildTime": _timestamp(_STARTED),
                "timestamp": _timestamp(datetime.fromtimestamp(time.time(), UTC)),
            }
        )
