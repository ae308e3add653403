"""PowerAuth push message bodies and their mapping to provider-neutral messages.

Pure functions over decoded JSON: validation with the reference's messages, then the
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


def _strings(value: object, name: str) -> tuple[str, ...]:
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


def check_body(body: object) -> dict[str, Any]:
    """A push message ``body`` object, checked field by field."""
    if not isinstance(body, dict):
        raise PowerAuthError("Push message payload (body) must not be null.")
    for name in ("title", "titleLocKey", "body", "bodyLocKey", "sound", "icon", "category"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise PowerAuthError(f"{name} must be a string.")
    if body.get("collapseKey") is not None and not isinstance(body["collapseKey"], str):
        raise PowerAuthError("collapseKey must be a string.")
    badge = body.get("badge")
    if badge is not None and (not isinstance(badge, int) or isinstance(badge, bool) or badge < 0):
        raise PowerAuthError("badge must be a non-negative integer.")
    _strings(body.get("titleLocArgs"), "titleLocArgs")
    _strings(body.get("bodyLocArgs"), "bodyLocArgs")
    if body.get("extras") is not None and not isinstance(body["extras"], dict):
        raise PowerAuthError("extras must be an object.")
    parse_valid_until(body.get("validUntil"))
    return body


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
        title_loc_args=_strings(body.get("titleLocArgs"), "titleLocArgs") if visible else (),
        body_loc_key=_string(body.get("bodyLocKey")) if visible else None,
        body_loc_args=_strings(body.get("bodyLocArgs"), "bodyLocArgs") if visible else (),
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


def parse_message(item: object) -> OutgoingMessage:
    """One ``message`` of ``/push/message/send`` or of a batch."""
    if not isinstance(item, dict):
        raise PowerAuthError("Message must not be empty")
    user_id = item.get("userId")
    if not isinstance(user_id, str) or not user_id:
        raise PowerAuthError("Push message must contain a user ID.")
    activation_id = item.get("activationId")
    if activation_id is not None and not isinstance(activation_id, str):
        raise PowerAuthError("Activation ID must be a string.")
    priority = item.get("priority") or "HIGH"
    if priority not in PRIORITIES:
        raise PowerAuthError("Priority must be NORMAL or HIGH.")
    raw = item.get("attributes") or {}
    if not isinstance(raw, dict):
        raise PowerAuthError("attributes must be an object.")
    attributes = Attributes(silent=raw.get("silent") is True, personal=raw.get("personal") is True)
    body = check_body(item.get("body"))
    return OutgoingMessage(user_id, activation_id or None, priority, attributes, body)


def parse_mode(value: object) -> str:
    """``mode``: SYNCHRONOUS unless ASYNCHRONOUS is asked for."""
    if value is None:
        return "SYNCHRONOUS"
    if value not in MODES:
        raise PowerAuthError("Mode must be SYNCHRONOUS or ASYNCHRONOUS.")
    return str(value)
