"""PowerAuth push message bodies and their mapping to provider-neutral messages.

Pure functions over a validated body (:mod:`relay.api.powerauth.schemas` validates): the
mapping of ``docs/Push-Message-Payload-Mapping.md``: title/body and their localisation
keys, badge, sound, category, icon; ``silent`` becomes a background / data-only push;
``priority`` NORMAL lowers the provider priority; ``validUntil`` becomes the APNs
expiration and FCM/HMS TTL; ``collapseKey`` the collapse id (and the APNs thread id);
``extras`` become custom data (values as strings, nulls skipped).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from providers.message import PushMessage
from relay.services.powerauth.errors import PowerAuthError

MODES = ("SYNCHRONOUS", "ASYNCHRONOUS")
PRIORITIES = ("NORMAL", "HIGH")
_MAX_BODY_JSON = 4000  # the reference's campaign message column


@dataclass(frozen=True)
class Attributes:
    """``attributes`` of a message."""

    silent: bool = False
    personal: bool = False


@dataclass(frozen=True)
class OutgoingMessage:
    """One validated ``message`` of a send: whom, how and what."""

    user_id: str
    activation_id: str | None
    priority: str
    attributes: Attributes
    body: dict[str, Any]


def _string(value: object) -> str | None:
    return value if isinstance(value, str) else None


def strings(value: object, name: str) -> tuple[str, ...]:
    """A list of strings (empty when absent)."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise PowerAuthError(f"{name} must be a list of strings.")
    return tuple(value)


def parse_valid_until(value: object) -> int | None:
    """``validUntil`` (ISO 8601) as Unix seconds."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        # Jackson also writes java.util.Date as epoch milliseconds.
        return int(value) // 1000
    if not isinstance(value, str):
        raise PowerAuthError("validUntil must be an ISO 8601 timestamp.")
    text = value.strip().replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise PowerAuthError("validUntil must be an ISO 8601 timestamp.") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def body_json(body: dict[str, Any]) -> str:
    """A campaign body as stored (the reference's 4000-character limit)."""
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    if len(text) > _MAX_BODY_JSON:
        raise PowerAuthError(f"Campaign message must not exceed {_MAX_BODY_JSON} characters.")
    return text


def _data_value(value: object) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def to_push_message(
    body: dict[str, Any], *, priority: str = "HIGH", silent: bool = False
) -> PushMessage:
    """The provider-neutral notification for a PowerAuth body."""
    extras = body.get("extras") or {}
    data = {str(key): _data_value(value) for key, value in extras.items() if value is not None}
    visible = not silent
    return PushMessage(
        data=data,
        title=_string(body.get("title")) if visible else None,
        body=_string(body.get("body")) if visible else None,
        title_loc_key=_string(body.get("titleLocKey")) if visible else None,
        title_loc_args=strings(body.get("titleLocArgs"), "titleLocArgs") if visible else (),
        body_loc_key=_string(body.get("bodyLocKey")) if visible else None,
        body_loc_args=strings(body.get("bodyLocArgs"), "bodyLocArgs") if visible else (),
        sound=_string(body.get("sound")) if visible else None,
        category=_string(body.get("category")) if visible else None,
        icon=_string(body.get("icon")) if visible else None,
        badge=body.get("badge"),
        thread_id=_string(body.get("collapseKey")),
        collapse_key=_string(body.get("collapseKey")),
        expires_at=parse_valid_until(body.get("validUntil")),
        silent=silent,
        high_priority=priority == "HIGH",
    )
