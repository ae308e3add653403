"""Request and response helpers shared by the Obscura routes (Quart-Trio).

Two kinds of error body exist, as in the reference server: application errors are JSON
``{"error": "..."}`` (:func:`error_response`), while rejections the reference's HTTP
framework produces before a handler runs (bad content type, malformed JSON, schema
mismatch, bad path parameter) are plain text (:class:`Rejection`).
"""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

import msgspec
from quart import Request, Response
from werkzeug.exceptions import RequestEntityTooLarge

from relay.crypto.sealing import InvalidPushKey, parse_push_key
from relay.errors import AuthenticationFailed, RelayError
from relay.services.parsing import parse_uuid

T = TypeVar("T")

JSON_BODY_LIMIT = 2 * 1024 * 1024
BODY_TOO_LARGE = "Failed to buffer the request body: length limit exceeded"
BODY_INCOMPLETE = "Request body incomplete: the client disconnected"


class Rejection(Exception):
    """A request refused before it reaches the service: plain-text body."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text

    def response(self) -> Response:
        """The plain-text response for this rejection."""
        return Response(self.text, status=self.status, content_type="text/plain; charset=utf-8")


def json_response(payload: Any, status: int = 200) -> Response:
    """A JSON response body."""
    return Response(msgspec.json.encode(payload), status=status, content_type="application/json")


def empty_response(status: int = 200) -> Response:
    """A response with no body and no content type."""
    response = Response(b"", status=status)
    del response.headers["Content-Type"]
    return response


def error_response(error: RelayError) -> Response:
    """The Obscura application-error body for a service error."""
    return json_response({"error": error.message}, status=error.status)


def bearer_token_of(authorization: str | None) -> str:
    """The token of an exact ``Authorization: Bearer <token>`` value, else 401."""
    value = authorization
    if value is None or not value.isascii() or not value.startswith("Bearer "):
        raise AuthenticationFailed()
    return value[len("Bearer ") :]


def bearer_token(request: Request) -> str:
    """The token of the request's ``Authorization: Bearer <token>`` header, else 401."""
    return bearer_token_of(request.headers.get("Authorization"))


def _is_json_content_type(value: str | None) -> bool:
    if not value:
        return False
    essence = value.split(";", 1)[0].strip().lower()
    kind, _, subtype = essence.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


async def read_body(request: Request) -> bytes:
    """The whole request body, or a plain-text 413 beyond :data:`JSON_BODY_LIMIT`."""
    try:
        return await request.get_data(cache=False, as_text=False, parse_form_data=False)
    except RequestEntityTooLarge:
        raise Rejection(413, BODY_TOO_LARGE) from None


async def read_json(request: Request, schema: type[T]) -> T:
    """Decode the JSON body into ``schema``: 415, 413, 400 (syntax) or 422 (shape)."""
    if not _is_json_content_type(request.headers.get("Content-Type")):
        raise Rejection(415, "Expected request with `Content-Type: application/json`")
    body = await read_body(request)
    try:
        return msgspec.json.decode(body, type=schema)
    except msgspec.ValidationError as error:
        raise Rejection(
            422, f"Failed to deserialize the JSON body into the target type: {error}"
        ) from None
    except (msgspec.DecodeError, UnicodeDecodeError) as error:
        raise Rejection(400, f"Failed to parse the request body as JSON: {error}") from None


def path_uuid(text: str) -> uuid.UUID:
    """A UUID path parameter, or a plain-text 400 (:class:`Rejection`)."""
    value = parse_uuid(text)
    if value is None:
        raise Rejection(400, f"Invalid URL: Cannot parse `{text}` as a UUID")
    return value


def optional_push_key(body: dict[str, Any]) -> bytes | None:
    """The secret of a body's ``pushKey``, if it has one; :class:`InvalidPushKey` when it
    is not a push key (each face answers that in its own convention)."""
    value = body.get("pushKey")
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidPushKey
    return parse_push_key(value)
