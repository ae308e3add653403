"""Request envelopes, success bodies and integrator authentication of the PowerAuth face."""

from __future__ import annotations

from typing import Any

import msgspec
from quart import Request, Response
from werkzeug.exceptions import RequestEntityTooLarge

from relay.api.http import json_response
from relay.api.powerauth.errors import Unauthorized, UnsupportedContentType
from relay.services.powerauth import PowerAuth
from relay.services.powerauth.errors import InvalidRequest, PowerAuthError, Violation

_BEARER = "Bearer "


def ok(response_object: Any = None, **top: Any) -> Response:
    """``{"status": "OK"[, "responseObject": ...]}`` plus top-level paging fields."""
    body: dict[str, Any] = {"status": "OK", **top}
    if response_object is not None:
        body["responseObject"] = response_object
    return json_response(body)


async def verify_integrator(face: PowerAuth, authorization: str | None) -> None:
    """Require a valid integrator key unless the face is open."""
    if face.open:
        return
    if authorization is None or not authorization.startswith(_BEARER):
        raise Unauthorized("Missing integrator key: send Authorization: Bearer <key>")
    # Looked up by SHA-256 digest: no comparison of the secret itself can leak timing.
    if await face.api_keys.verify(authorization[len(_BEARER) :]) is None:
        raise Unauthorized("Invalid integrator key")


async def read_json(request: Request) -> object:
    """The decoded JSON body (None when empty)."""
    try:
        raw = await request.get_data(cache=False, as_text=False, parse_form_data=False)
    except RequestEntityTooLarge:
        raise PowerAuthError("Request body too large") from None
    if not raw.strip():
        return None
    content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if content_type and content_type != "application/json" and not content_type.endswith("+json"):
        raise UnsupportedContentType("Content type must be application/json")
    try:
        return msgspec.json.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError):
        raise InvalidRequest(
            (Violation("requestObject", None, "the body is not valid JSON"),)
        ) from None


async def request_object(request: Request, *, wrapped: bool | None = True) -> Any:
    """The ``requestObject`` of the body. ``wrapped=None`` accepts the object either
    inside the envelope or bare (the reference's unwrapped endpoints)."""
    body = await read_json(request)
    if isinstance(body, dict) and "requestObject" in body:
        return body["requestObject"]
    if wrapped is None:
        return body
    raise (
        PowerAuthError("Request object must not be null.")
        if wrapped
        else PowerAuthError("Request body must not be null.")
    )


async def request_dict(request: Request, *, wrapped: bool | None = True) -> dict[str, Any]:
    """A ``requestObject`` that must be a JSON object."""
    value = await request_object(request, wrapped=wrapped)
    if not isinstance(value, dict):
        raise PowerAuthError("Request object must not be null.")
    return value


def query_int(request: Request, name: str, default: int, *, maximum: int | None = None) -> int:
    """A non-negative integer query parameter (``ERROR_REQUEST`` otherwise)."""
    text = request.args.get(name)
    if text is None or text == "":
        return default
    if not text.isdigit() or (maximum is not None and int(text) > maximum):
        hint = "must be a non-negative integer" + (f" up to {maximum}" if maximum else "")
        raise InvalidRequest((Violation(name, text, hint),))
    return int(text)


def query_bool(request: Request, name: str) -> bool:
    """A boolean query parameter (absent means false)."""
    text = (request.args.get(name) or "false").lower()
    if text not in ("true", "false"):
        raise InvalidRequest((Violation(name, text, "must be true or false"),))
    return text == "true"


def campaign_id(text: str) -> int:
    """A campaign id path parameter."""
    if not text.isdigit() or len(text) > 18:
        raise PowerAuthError("Campaign with entered ID does not exist")
    return int(text)
