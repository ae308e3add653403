"""Rocket.Chat request bodies, decoded and validated into the service's commands.

Bodies are JSON objects (form-encoded ones are accepted too). Every check answers as
Rocket.Chat does: ``{"success": false, "error": ..., "errorType": ...}``, 400, before any
work is done.
"""

from __future__ import annotations

from typing import Any

import msgspec
from quart import Request

from relay.api.http import optional_push_key
from relay.api.rocketchat.errors import RocketChatError
from relay.crypto.sealing import InvalidPushKey
from relay.services.rocketchat import KINDS, MAX_TOKEN_CHARS, Credentials, TokenRegistration


async def json_body(req: Request) -> dict[str, Any]:
    """A JSON object body (form-encoded bodies are accepted too)."""
    raw = await req.get_data(cache=True, as_text=False, parse_form_data=False)
    content_type = (req.headers.get("Content-Type") or "").lower()
    if content_type.startswith("application/x-www-form-urlencoded"):
        form = await req.form
        return dict(form.items())
    if not raw.strip():
        return {}
    try:
        body = msgspec.json.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError):
        raise RocketChatError("error-invalid-body", "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise RocketChatError("error-invalid-body", "The request body must be a JSON object.")
    return body


def _param(body: dict[str, Any], name: str, error_type: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise RocketChatError(
            error_type, f'The required "{name}" body param is missing or invalid. [{error_type}]'
        )
    return value


def credentials(body: dict[str, Any]) -> Credentials | None:
    """``user`` (or ``username``) and ``password`` of a login; None if either is missing
    (Rocket.Chat answers that with its 401)."""
    name = body.get("user") or body.get("username")
    password = body.get("password")
    if not isinstance(name, str) or not isinstance(password, str) or not name:
        return None
    return Credentials(name.split("@", 1)[0], password)


def token_registration(body: dict[str, Any]) -> TokenRegistration:
    """A ``POST /api/v1/push.token`` body."""
    doc_id = body.get("id")
    if doc_id is not None and (not isinstance(doc_id, str) or not doc_id or len(doc_id) > 255):
        raise RocketChatError(
            "error-id-param-not-valid", 'The required "id" body param is invalid.'
        )
    kind = _param(body, "type", "error-type-param-not-valid")
    if kind not in KINDS:
        raise RocketChatError(
            "error-type-param-not-valid",
            'The required "type" body param is missing or invalid. [error-type-param-not-valid]',
        )
    token = _param(body, "value", "error-token-param-not-valid")
    if len(token) > MAX_TOKEN_CHARS or "\x00" in token:
        raise RocketChatError("error-token-param-not-valid", "The token is not valid.")
    app_name = _param(body, "appName", "error-appName-param-not-valid")
    try:
        push_key = optional_push_key(body)
    except InvalidPushKey:
        raise RocketChatError(
            "error-pushKey-param-not-valid", "The pushKey is not a valid push key."
        ) from None
    return TokenRegistration(KINDS[kind], token, app_name, doc_id, push_key)


def token_removal(body: dict[str, Any]) -> str:
    """The token of a ``DELETE /api/v1/push.token`` body."""
    return _param(body, "token", "error-token-param-not-valid")
