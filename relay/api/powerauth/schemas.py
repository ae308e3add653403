"""PowerAuth request objects, validated into the services' commands with the reference's
messages (``ERROR_GENERIC``, or ``ERROR_REQUEST`` with ``violations`` for the inbox)
before any work is done. Whether a named app exists is the services' to say."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from relay.api.http import optional_push_key
from relay.crypto.sealing import InvalidPushKey
from relay.services.powerauth.admin import ApnsSettings, FcmSettings, HmsSettings
from relay.services.powerauth.campaigns import MAX_USERS_PER_REQUEST, CampaignDraft
from relay.services.powerauth.devices import (
    PLATFORMS,
    STATUSES,
    DeviceRegistration,
    DeviceRemoval,
    StatusUpdate,
)
from relay.services.powerauth.errors import InvalidRequest, PowerAuthError, Violation
from relay.services.powerauth.inbox import InboxDraft
from relay.services.powerauth.messages import MAX_BATCH, MessageSend
from relay.services.powerauth.payload import (
    MODES,
    PRIORITIES,
    Attributes,
    OutgoingMessage,
    body_json,
    parse_valid_until,
    strings,
)

_MAX_TOKEN = 4096
_MAX_ID = 255
_APP_ID = re.compile(r"^[a-zA-Z0-9_-]{3,255}$")
_INBOX_TYPES = ("text", "html")


def _text(value: object, message: str, limit: int = _MAX_ID) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PowerAuthError(message)
    if len(value) > limit or "\x00" in value:
        raise PowerAuthError(message)
    return value


def app_name(body: dict[str, Any]) -> str:
    """``appId``: a push app's name."""
    value = body.get("appId")
    if not isinstance(value, str) or not value:
        raise PowerAuthError("App ID must not be null.")
    return value


# --- devices ------------------------------------------------------------------------------


def device_registration(body: dict[str, Any], *, multi: bool) -> DeviceRegistration:
    """A ``device/create`` (or ``create/multi``) request object."""
    app = app_name(body)
    if multi:
        ids = body.get("activationIds")
        if not isinstance(ids, list) or not ids:
            raise PowerAuthError("Activation IDs must not be empty.")
        activation_ids = tuple(
            dict.fromkeys(_text(item, "Activation ID must not be null.") for item in ids)
        )
    else:
        activation_ids = (_text(body.get("activationId"), "Activation ID must not be null."),)
    platform_name = body.get("platform")
    if platform_name is None:
        raise PowerAuthError("Platform must not be null.")
    platform = PLATFORMS.get(str(platform_name).lower())
    if platform is None:
        raise PowerAuthError("Platform must be one of apns, fcm, hms.")
    token = _text(body.get("token"), "Push token must not be null or empty.", _MAX_TOKEN)
    environment = body.get("environment")
    if environment is not None and environment not in ("development", "production"):
        raise PowerAuthError("Environment must be development or production.")
    if multi and environment is not None and platform != "apns":
        raise PowerAuthError("Environment is only allowed for the APNs platform.")
    user_id = body.get("userId")
    if user_id is not None:
        user_id = _text(user_id, "User ID must be a non-empty string.")
    try:
        push_key = optional_push_key(body)
    except InvalidPushKey:
        raise PowerAuthError("Invalid pushKey") from None
    return DeviceRegistration(
        app,
        token,
        platform,
        str(environment or "production") if platform == "apns" else "production",
        activation_ids,
        user_id,
        push_key,
    )


def device_removal(body: dict[str, Any]) -> DeviceRemoval:
    """A ``device/delete`` request object."""
    app = app_name(body)
    return DeviceRemoval(
        app, _text(body.get("token"), "Push token must not be null or empty.", _MAX_TOKEN)
    )


def status_update(body: dict[str, Any]) -> StatusUpdate:
    """A ``device/status/update`` object."""
    activation_id = _text(body.get("activationId"), "Activation ID must not be null.")
    status = body.get("activationStatus")
    if status is None:
        raise PowerAuthError("Update device status failed because activation status is unknown")
    if status not in STATUSES:
        raise PowerAuthError(f"Activation status must be one of {', '.join(STATUSES)}.")
    user_id = body.get("userId")
    if user_id is not None:
        user_id = _text(user_id, "User ID must be a non-empty string.")
    return StatusUpdate(activation_id, str(status), user_id)


# --- messages and campaigns ---------------------------------------------------------------


def message_body(body: object) -> dict[str, Any]:
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
    strings(body.get("titleLocArgs"), "titleLocArgs")
    strings(body.get("bodyLocArgs"), "bodyLocArgs")
    if body.get("extras") is not None and not isinstance(body["extras"], dict):
        raise PowerAuthError("extras must be an object.")
    parse_valid_until(body.get("validUntil"))
    return body


def message(item: object) -> OutgoingMessage:
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
    body = message_body(item.get("body"))
    return OutgoingMessage(user_id, activation_id or None, str(priority), attributes, body)


def _mode(value: object) -> str:
    if value is None:
        return "SYNCHRONOUS"
    if value not in MODES:
        raise PowerAuthError("Mode must be SYNCHRONOUS or ASYNCHRONOUS.")
    return str(value)


def message_send(body: dict[str, Any]) -> MessageSend:
    """A ``/push/message/send`` request object."""
    app = app_name(body)
    mode = _mode(body.get("mode"))
    if body.get("message") is None:
        raise PowerAuthError("Message must not be empty")
    return MessageSend(app, mode, (message(body["message"]),))


def message_batch(body: dict[str, Any]) -> MessageSend:
    """A ``/push/message/batch/send`` request object (up to 20 messages)."""
    app = app_name(body)
    mode = _mode(body.get("mode"))
    batch = body.get("batch")
    if not isinstance(batch, list) or not batch:
        raise PowerAuthError("Push message batch must not be empty.")
    if len(batch) > MAX_BATCH:
        raise PowerAuthError(
            "Too many messages in batch - do no send more than 20 messages at once "
            "to avoid server congestion."
        )
    messages = []
    for index, item in enumerate(batch):
        try:
            messages.append(message(item))
        except PowerAuthError as error:
            raise PowerAuthError(
                f"Push message at index: {index} is not valid. Nested error is: {error.message}"
            ) from None
    return MessageSend(app, mode, tuple(messages))


def campaign_draft(body: dict[str, Any]) -> CampaignDraft:
    """A ``/push/campaign/create`` request object."""
    return CampaignDraft(app_name(body), body_json(message_body(body.get("message"))))


def test_user(body: dict[str, Any]) -> str:
    """The ``userId`` of a campaign's test send."""
    user_id = body.get("userId")
    if not isinstance(user_id, str) or not user_id:
        raise PowerAuthError("Push message must contain a user ID.")
    return user_id


def user_list(body: object) -> list[str]:
    """The user ids of a campaign's ``user/add`` or ``user/delete``."""
    if not isinstance(body, list) or not all(
        isinstance(item, str) and 0 < len(item) <= 255 for item in body
    ):
        raise PowerAuthError("User list must be a list of user ID strings.")
    if len(body) > MAX_USERS_PER_REQUEST:
        raise PowerAuthError(f"Do not send more than {MAX_USERS_PER_REQUEST} users at once.")
    return list(body)


# --- inbox --------------------------------------------------------------------------------


def _length(violations: list[Violation], name: str, value: object, low: int, high: int) -> str:
    if not isinstance(value, str) or not low <= len(value) <= high:
        violations.append(Violation(name, value, f"size must be between {low} and {high}"))
        return ""
    return value


def inbox_draft(body: dict[str, Any]) -> InboxDraft:
    """A ``POST /inbox/messages`` body (the reference's bean constraints)."""
    violations: list[Violation] = []
    user = _length(violations, "userId", body.get("userId"), 1, 255)
    kind = body.get("type")
    if kind not in _INBOX_TYPES:
        violations.append(Violation("type", kind, "must be text or html"))
    subject = _length(violations, "subject", body.get("subject"), 8, 255)
    summary = _length(violations, "summary", body.get("summary"), 8, 255)
    text = _length(violations, "body", body.get("body"), 8, 65536)
    applications = body.get("applications")
    if not isinstance(applications, list) or not applications:
        violations.append(Violation("applications", applications, "must not be empty"))
        applications = []
    for index, name in enumerate(applications):
        if not isinstance(name, str) or not _APP_ID.match(name):
            violations.append(
                Violation(f"applications[{index}]", name, f"must match {_APP_ID.pattern}")
            )
    if violations:
        raise InvalidRequest(tuple(violations))
    names = tuple(dict.fromkeys(applications))
    return InboxDraft(user, str(kind), subject, summary, text, names)


# --- administration -----------------------------------------------------------------------


def _required(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise PowerAuthError(f"{name} must not be blank.")
    return value


def _decoded(body: dict[str, Any], name: str) -> bytes:
    try:
        return base64.b64decode(_required(body, name), validate=True)
    except (binascii.Error, ValueError):
        raise PowerAuthError(f"{name} must be Base64.") from None


def apns_settings(body: dict[str, Any]) -> ApnsSettings:
    """``/admin/app/apns/update``: token credentials (``environment`` null: production)."""
    app = app_name(body)
    environment = body.get("environment")
    if environment not in (None, "development", "production"):
        raise PowerAuthError("Environment must be development, production or null.")
    return ApnsSettings(
        app,
        key_pem=_decoded(body, "privateKeyBase64"),
        key_id=_required(body, "keyId"),
        team_id=_required(body, "teamId"),
        bundle_id=_required(body, "bundle"),
        environment=str(environment or "production"),
    )


def fcm_settings(body: dict[str, Any]) -> FcmSettings:
    """``/admin/app/fcm/update``: a Base64 service-account JSON for ``projectId``."""
    app = app_name(body)
    return FcmSettings(app, _required(body, "projectId"), _decoded(body, "privateKeyBase64"))


def hms_settings(body: dict[str, Any]) -> HmsSettings:
    """``/admin/app/hms/update``: the project and its OAuth client."""
    app = app_name(body)
    return HmsSettings(
        app,
        client_id=_required(body, "clientId"),
        client_secret=_required(body, "clientSecret"),
        project_id=_required(body, "projectId"),
    )


@dataclass(frozen=True)
class JobsQuery:
    """``GET /admin/push/jobs`` parameters: ``appId``, ``failed``, ``since`` (ISO 8601),
    ``limit`` (1-1000, default 100)."""

    app: str | None
    failed_only: bool
    since: int | None
    limit: int


def jobs_query(args: Mapping[str, str]) -> JobsQuery:
    """Validated listing parameters."""
    since = None
    if args.get("since"):
        try:
            moment = datetime.fromisoformat(args["since"])
        except ValueError:
            raise PowerAuthError("since must be an ISO 8601 time with a time zone.") from None
        if moment.tzinfo is None:
            raise PowerAuthError("since must be an ISO 8601 time with a time zone.")
        since = int(moment.timestamp() * 1_000_000)
    limit = args.get("limit", "100")
    if not (limit.isascii() and limit.isdigit()) or not 1 <= int(limit) <= 1000:
        raise PowerAuthError("limit must be 1 to 1000.")
    failed = args.get("failed", "false").lower()
    if failed not in ("true", "false"):
        raise PowerAuthError("failed must be true or false.")
    return JobsQuery(args.get("appId") or None, failed == "true", since, int(limit))
