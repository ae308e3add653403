"""The REST half of the client: accounts, devices, keys, messages, attachments, backups."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from obscura_proto.obscura.v1 import (
    SendMessageRequest,
    SendMessageRequestSubmission,
    SendMessageResponse,
    SendMessageResponseFailedSubmission,
)
from relay.client.keys import DeviceKeys


class ApiError(Exception):
    """A non-success response; ``error`` is the JSON ``error`` field or the plain text."""

    def __init__(self, status: int, error: str) -> None:
        super().__init__(f"{status}: {error}")
        self.status = status
        self.error = error


@dataclass(frozen=True)
class Session:
    """Tokens of the current session."""

    token: str
    refresh_token: str
    expires_at: int
    device_id: uuid.UUID | None

    @property
    def user_id(self) -> uuid.UUID:
        """The user id, read from the token's ``sub`` claim (no endpoint returns it)."""
        payload = self.token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return uuid.UUID(claims["sub"])


@dataclass(frozen=True)
class Attachment:
    """An uploaded attachment: share ``id`` (inside an encrypted message) to grant access."""

    id: uuid.UUID
    expires_at: int  # Unix seconds


@dataclass(frozen=True)
class Backup:
    """A downloaded backup and its version."""

    version: int
    data: bytes


Body = bytes | AsyncIterable[bytes]


@dataclass(frozen=True)
class Outgoing:
    """One message to send: ciphertext for one device."""

    device_id: uuid.UUID
    message: bytes
    submission_id: uuid.UUID = field(default_factory=uuid.uuid4)


def _raise_for_status(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        error = str(response.json()["error"])
    except (ValueError, KeyError, TypeError):
        error = response.text
    raise ApiError(response.status_code, error)


def _upload_headers(body: Body, size: int | None) -> dict[str, str]:
    """``Content-Length`` for an upload: the server refuses chunked ones (411)."""
    if isinstance(body, bytes):
        return {"Content-Length": str(len(body)), "Content-Type": "application/octet-stream"}
    if size is None:
        raise ValueError("a streamed upload needs its size")
    return {"Content-Length": str(size), "Content-Type": "application/octet-stream"}


def _version(response: httpx.Response) -> int:
    return int(response.headers["etag"].strip('"'))


def _session(body: dict[str, Any]) -> Session:
    device = body.get("deviceId")
    return Session(
        token=body["token"],
        refresh_token=body["refreshToken"],
        expires_at=body["expiresAt"],
        device_id=None if device is None else uuid.UUID(device),
    )


class ObscuraClient:
    """One account's view of the API over a shared ``httpx.AsyncClient``."""

    def __init__(self, http: httpx.AsyncClient, session: Session | None = None) -> None:
        self.http = http
        self.session = session

    @property
    def auth_headers(self) -> dict[str, str]:
        """``Authorization`` for the current session."""
        if self.session is None:
            raise RuntimeError("not logged in")
        return {"Authorization": f"Bearer {self.session.token}"}

    async def _call(self, method: str, path: str, *, auth: bool = True, **kwargs: Any) -> Any:
        headers = self.auth_headers if auth else {}
        response = await self.http.request(method, path, headers=headers, **kwargs)
        _raise_for_status(response)
        return response.json() if response.content else None

    async def _start_session(
        self, method: str, path: str, body: dict[str, Any], *, auth: bool
    ) -> Session:
        self.session = _session(await self._call(method, path, auth=auth, json=body))
        return self.session

    async def register(self, username: str, password: str) -> Session:
        """Create an account; the client is then logged in user-scoped."""
        body = {"username": username, "password": password}
        return await self._start_session("POST", "/v1/users", body, auth=False)

    async def login(
        self, username: str, password: str, device_id: uuid.UUID | None = None
    ) -> Session:
        """Log in, device-scoped when ``device_id`` is one of the account's devices."""
        body: dict[str, Any] = {"username": username, "password": password}
        if device_id is not None:
            body["deviceId"] = str(device_id)
        return await self._start_session("POST", "/v1/sessions", body, auth=False)

    async def refresh(self) -> Session:
        """Rotate the refresh token."""
        if self.session is None:
            raise RuntimeError("not logged in")
        body = {"refreshToken": self.session.refresh_token}
        return await self._start_session("POST", "/v1/sessions/refresh", body, auth=False)

    async def logout(self) -> None:
        """Revoke the current refresh token."""
        if self.session is None:
            raise RuntimeError("not logged in")
        await self._call(
            "DELETE", "/v1/sessions", json={"refreshToken": self.session.refresh_token}
        )

    async def create_device(self, keys: DeviceKeys, name: str | None = None) -> Session:
        """Provision a device; the client then acts as that device."""
        return await self._start_session(
            "POST", "/v1/devices", keys.create_device_json(name), auth=True
        )

    async def list_devices(self) -> list[dict[str, Any]]:
        """The account's devices."""
        body = await self._call("GET", "/v1/devices")
        return list(body["devices"])

    async def get_device(self, device_id: uuid.UUID) -> dict[str, Any]:
        """One device of the account."""
        return dict(await self._call("GET", f"/v1/devices/{device_id}"))

    async def rename_device(self, device_id: uuid.UUID, name: str | None) -> dict[str, Any]:
        """Set or clear a device's name."""
        return dict(await self._call("PUT", f"/v1/devices/{device_id}", json={"name": name}))

    async def delete_device(self, device_id: uuid.UUID) -> None:
        """Delete a device."""
        await self._call("DELETE", f"/v1/devices/{device_id}")

    async def upload_keys(self, body: dict[str, Any]) -> None:
        """``POST /v1/devices/keys`` (see :meth:`DeviceKeys.upload_json`)."""
        await self._call("POST", "/v1/devices/keys", json=body)

    async def refill_keys(self, keys: DeviceKeys, count: int) -> list[int]:
        """Publish ``count`` fresh one-time pre-keys (with a new signed pre-key, which the
        server requires on every refill); returns the new key ids."""
        ids = keys.add_one_time_pre_keys(count)
        keys.rotate_signed_pre_key()
        await self.upload_keys(keys.upload_json(ids))
        return ids

    async def fetch_bundles(self, user_id: uuid.UUID) -> list[dict[str, Any]]:
        """Pre-key bundles of every device of ``user_id`` (consumes one-time pre-keys)."""
        return list(await self._call("GET", f"/v1/users/{user_id}"))

    async def put_push_token(
        self,
        token: str,
        *,
        platform: str | None = None,
        environment: str | None = None,
        push_key: str | None = None,
    ) -> None:
        """Register the current device's push token (``platform`` ``fcm``, ``apns`` or
        ``hms``; ``push_key`` makes its wake-ups end-to-end encrypted)."""
        body = {"token": token}
        for name, value in (
            ("platform", platform),
            ("environment", environment),
            ("pushKey", push_key),
        ):
            if value is not None:
                body[name] = value
        await self._call("PUT", "/v1/push-tokens", json=body)

    async def send_messages(
        self, batch: Sequence[Outgoing], *, idempotency_key: uuid.UUID | None = None
    ) -> list[SendMessageResponseFailedSubmission]:
        """Queue ``batch`` in one request; returns the submissions that were refused.

        Retrying with the same ``idempotency_key`` is safe: the server replays its first
        answer and queues nothing new.
        """
        request = SendMessageRequest(
            messages=[
                SendMessageRequestSubmission(
                    submission_id=item.submission_id.bytes,
                    device_id=item.device_id.bytes,
                    message=item.message,
                )
                for item in batch
            ]
        )
        key = idempotency_key or uuid.uuid4()
        response = await self.http.post(
            "/v1/messages",
            content=bytes(request),
            headers={
                **self.auth_headers,
                "Idempotency-Key": str(key),
                "Content-Type": "application/x-protobuf",
            },
        )
        _raise_for_status(response)
        return list(SendMessageResponse.parse(response.content).failed_submissions)

    async def gateway_ticket(self) -> str:
        """A single-use ticket for the gateway (see :func:`relay.client.connect_gateway`)."""
        body = await self._call("POST", "/v1/gateway/ticket")
        return str(body["ticket"])

    async def upload_attachment(self, body: Body, *, size: int | None = None) -> Attachment:
        """Upload an (already encrypted) attachment: bytes, or chunks of ``size`` bytes."""
        headers = {**self.auth_headers, **_upload_headers(body, size)}
        response = await self.http.post("/v1/attachments", content=body, headers=headers)
        _raise_for_status(response)
        payload = response.json()
        return Attachment(uuid.UUID(payload["id"]), int(payload["expiresAt"]))

    async def download_attachment(self, attachment_id: uuid.UUID) -> bytes:
        """An attachment's content (held in memory: see :meth:`stream_attachment`)."""
        async with self.stream_attachment(attachment_id) as chunks:
            return b"".join([chunk async for chunk in chunks])

    @asynccontextmanager
    async def stream_attachment(
        self, attachment_id: uuid.UUID
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        """An attachment's content as it arrives, for large files."""
        request = self.http.build_request(
            "GET", f"/v1/attachments/{attachment_id}", headers=self.auth_headers
        )
        response = await self.http.send(request, stream=True)
        try:
            if not response.is_success:
                await response.aread()
                _raise_for_status(response)
            yield response.aiter_bytes()
        finally:
            await response.aclose()

    async def upload_backup(
        self, body: Body, *, replaces: int | None, size: int | None = None
    ) -> int:
        """Upload a new backup version; returns its number.

        ``replaces`` is the version this one supersedes (from :meth:`download_backup`),
        or None for the first backup. A 412 means another version is current, a 409
        that another upload is in progress.
        """
        precondition = {"If-None-Match": "*"} if replaces is None else {"If-Match": f'"{replaces}"'}
        headers = {**self.auth_headers, **_upload_headers(body, size), **precondition}
        response = await self.http.post("/v1/backup", content=body, headers=headers)
        _raise_for_status(response)
        return _version(response)

    async def download_backup(self, *, have: int | None = None) -> Backup | None:
        """The device's backup; None if the client already ``have`` s the current version."""
        headers = dict(self.auth_headers)
        if have is not None:
            headers["If-None-Match"] = f'"{have}"'
        response = await self.http.get("/v1/backup", headers=headers)
        if response.status_code == 304:
            return None
        _raise_for_status(response)
        return Backup(_version(response), response.content)

    async def backup_info(self) -> tuple[int, int] | None:
        """(version, size) of the device's backup, or None if it has none."""
        response = await self.http.head("/v1/backup", headers=self.auth_headers)
        if response.status_code == 404:
            return None
        _raise_for_status(response)
        return _version(response), int(response.headers["content-length"])
