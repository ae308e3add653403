"""``/push/message/send`` and ``/push/message/batch/send``.

A SYNCHRONOUS answer carries the document's ``result`` object and, as the reference's
model class does, the same counts flat next to ``mode``.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, request

from providers.message import Platform
from relay.api.powerauth import schemas
from relay.api.powerauth.envelope import ok, request_dict
from relay.api.routes import view
from relay.services.powerauth import PowerAuth
from relay.services.push.sender import PlatformCounts


def send_result(mode: str, counts: dict[Platform, PlatformCounts] | None) -> dict[str, Any]:
    """``{mode[, result, apns, fcm, hms]}``."""
    body: dict[str, Any] = {"mode": mode}
    if counts is None:
        return body
    per_platform = {
        platform.value: {
            "sent": item.sent,
            "pending": item.pending,
            "failed": item.failed,
            "total": item.total,
        }
        for platform, item in counts.items()
    }
    return {**body, "result": per_platform, **per_platform}


def register(bp: Blueprint, powerauth: PowerAuth) -> None:
    """Add the message routes."""
    messages = powerauth.messages

    @view(bp)
    async def messages_send() -> Response:
        wanted = schemas.message_send(await request_dict(request))
        return ok(send_result(wanted.mode, await messages.send(wanted)))

    @view(bp)
    async def messages_send_batch() -> Response:
        wanted = schemas.message_batch(await request_dict(request))
        return ok(send_result(wanted.mode, await messages.send(wanted)))
