"""Zulip request parameters: form-encoded (or in the query string), and HTTP Basic
``username:api_key`` credentials; each decoded into what the service takes."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from quart import Request

from relay.services.zulip.errors import ZulipError, missing
from relay.services.zulip.service import PushRegistration

_REGISTER_PARAMS = (
    "token_kind",
    "push_account_id",
    "push_key",
    "bouncer_public_key",
    "encrypted_push_registration",
)


async def parameters(req: Request) -> dict[str, str]:
    """Query and form parameters (the form wins)."""
    values = dict(req.args.items())
    form = await req.form
    values.update(dict(form.items()))
    return values


def required(values: dict[str, str], name: str) -> str:
    """A parameter that must be present (``REQUEST_VARIABLE_MISSING`` otherwise)."""
    if name not in values:
        raise missing(name)
    return values[name]


@dataclass(frozen=True)
class BasicCredentials:
    """The login and API key of an HTTP Basic ``Authorization`` header."""

    login: str
    api_key: str


def basic_credentials(header: str | None) -> BasicCredentials:
    """The request's HTTP Basic credentials (401 in Zulip's convention otherwise)."""
    if header is None or not header.startswith("Basic "):
        raise ZulipError(
            "UNAUTHORIZED",
            "Not logged in: API authentication or user session required",
            status=401,
        )
    try:
        login, _, api_key = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise ZulipError("INVALID_API_KEY", "Malformed API key", status=401) from None
    return BasicCredentials(login, api_key)


def push_registration(values: dict[str, str]) -> tuple[PushRegistration, list[str]]:
    """A ``mobile_push/register`` request and the parameters it ignores."""
    registration = PushRegistration(*(required(values, name) for name in _REGISTER_PARAMS))
    return registration, sorted(set(values) - set(_REGISTER_PARAMS))
