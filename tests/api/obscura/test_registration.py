"""POST /v1/users (obscura-contract §2.1)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from relay.process.server import Listening
from tests.factories import PASSWORD, jwt_claims, unique_username
from tests.rawhttp import raw_request

USERNAME_RULE = (
    "Username must be between 3 and 50 characters and can only contain letters, numbers, "
    "and underscores"
)


async def register(
    http: httpx.AsyncClient, username: str, password: str = PASSWORD
) -> httpx.Response:
    return await http.post("/v1/users", json={"username": username, "password": password})


async def test_registration_returns_a_user_scoped_session(http: httpx.AsyncClient) -> None:
    response = await register(http, unique_username())
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"token", "refreshToken", "expiresAt"}
    assert len(body["refreshToken"]) == 43
    claims = jwt_claims(body["token"])
    assert set(claims) == {"sub", "exp"}
    assert uuid.UUID(claims["sub"])
    assert claims["exp"] == body["expiresAt"]


@pytest.mark.parametrize(
    ("username", "password", "message"),
    [
        ("", PASSWORD, "Username cannot be empty"),
        ("   ", PASSWORD, "Username cannot be empty"),
        ("ab", PASSWORD, USERNAME_RULE),
        ("a" * 51, PASSWORD, USERNAME_RULE),
        ("bad-name", PASSWORD, USERNAME_RULE),
        ("naïve_user", PASSWORD, USERNAME_RULE),
        ("valid_name", "short", "Password must be at least 12 characters long"),
        ("valid_name", "x" * 11, "Password must be at least 12 characters long"),
    ],
)
async def test_invalid_registrations(
    http: httpx.AsyncClient, username: str, password: str, message: str
) -> None:
    response = await register(http, username, password)
    assert response.status_code == 400
    assert response.json() == {"error": message}


async def test_password_length_counts_utf8_bytes(http: httpx.AsyncClient) -> None:
    # Four 3-byte characters are 12 bytes.
    assert (await register(http, unique_username(), "€€€€")).status_code == 201
    assert (await register(http, unique_username(), "x" * 12)).status_code == 201


async def test_usernames_are_case_insensitive(http: httpx.AsyncClient) -> None:
    name = unique_username("Mixed")
    assert (await register(http, name)).status_code == 201
    duplicate = await register(http, name.upper())
    assert duplicate.status_code == 409
    assert duplicate.json() == {"error": "Username already exists"}
    # Stored lower-cased: logging in with the lower-cased name works.
    login = await http.post("/v1/sessions", json={"username": name.lower(), "password": PASSWORD})
    assert login.status_code == 200


async def test_unknown_fields_are_ignored(http: httpx.AsyncClient) -> None:
    body = {"username": unique_username(), "password": PASSWORD, "identityKey": "x", "extra": [1]}
    assert (await http.post("/v1/users", json=body)).status_code == 201


@pytest.mark.parametrize(
    ("headers", "content", "status"),
    [
        ({}, b'{"username":"abc","password":"xxxxxxxxxxxx"}', 415),
        ({"content-type": "text/plain"}, b'{"username":"abc","password":"xxxxxxxxxxxx"}', 415),
        ({"content-type": "application/json"}, b'{"username": "abc",', 400),
        ({"content-type": "application/json"}, b"", 400),
        ({"content-type": "application/json"}, b'{"username":"abc"}', 422),
        ({"content-type": "application/json"}, b'{"username":1,"password":"xxxxxxxxxxxx"}', 422),
        ({"content-type": "application/json"}, b"[]", 422),
    ],
)
async def test_framework_rejections_are_plain_text(
    http: httpx.AsyncClient, headers: dict[str, str], content: bytes, status: int
) -> None:
    response = await http.post("/v1/users", headers=headers, content=content)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/plain")


async def test_json_content_type_variants_are_accepted(http: httpx.AsyncClient) -> None:
    for content_type in ("application/json; charset=utf-8", "application/vnd.relay+json"):
        body = f'{{"username":"{unique_username()}","password":"{PASSWORD}"}}'
        response = await http.post(
            "/v1/users", headers={"content-type": content_type}, content=body
        )
        assert response.status_code == 201


async def test_declared_body_over_two_mebibytes_is_413_before_upload(relay: Listening) -> None:
    head = (
        b"POST /v1/users HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Content-Length: 2097153\r\n\r\n"
    )
    # No body is ever sent: the answer comes from the declared length alone.
    response = await raw_request(relay.api_url, head, [])
    assert response.startswith(b"HTTP/1.1 413")


async def test_streamed_body_over_two_mebibytes_is_413(relay: Listening) -> None:
    head = (
        b"POST /v1/users HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"x" * 65536
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    response = await raw_request(relay.api_url, head, [(0.0, frame)] * 40)
    assert response.startswith(b"HTTP/1.1 413")
