"""``POST /v1/attachments`` and ``GET /v1/attachments/{id}``: streamed, never buffered.

Any valid token may upload or download (the id is the capability). Uploads need a
``Content-Length`` (411 otherwise) within the size limits (400 / 413, decided before the
body is read, and again while it streams). A download whose ``If-None-Match`` names the
requested id is a 304 at once: attachments never change.
"""

from __future__ import annotations

import uuid

from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, HTTPScope

from relay.api.asgi import OCTET_STREAM, StreamingRequest, method_not_allowed, run_endpoint
from relay.api.http import bearer_token_of, path_uuid
from relay.services.attachments import AttachmentService
from relay.services.parsing import parse_uuid
from relay.services.sessions import SessionService
from storage.ids import MICROS_PER_SECOND

UPLOAD_PATH = "/v1/attachments"
DOWNLOAD_PREFIX = "/v1/attachments/"


def names_attachment(if_none_match: str | None, attachment_id: uuid.UUID) -> bool:
    """True if the ``If-None-Match`` list holds ``attachment_id`` (quoted or not)."""
    if if_none_match is None:
        return False
    tags = (tag.strip().removeprefix("W/").strip('"') for tag in if_none_match.split(","))
    return any(parse_uuid(tag) == attachment_id for tag in tags)


class AttachmentEndpoint:
    """The ASGI handler of both attachment routes."""

    def __init__(self, sessions: SessionService, attachments: AttachmentService) -> None:
        self._sessions = sessions
        self._attachments = attachments

    async def __call__(
        self, scope: HTTPScope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        await run_endpoint(self._handle, scope, receive, send)

    async def _handle(self, request: StreamingRequest) -> None:
        if request.path == UPLOAD_PATH:
            if request.method != "POST":
                await method_not_allowed(request, b"POST")
                return
            await self._upload(request)
            return
        segment = request.path.removeprefix(DOWNLOAD_PREFIX)
        if "/" in segment or not segment:
            await request.complete(404)
        elif request.method not in ("GET", "HEAD"):
            await method_not_allowed(request, b"GET,HEAD")
        else:
            await self._download(request, segment)

    async def _upload(self, request: StreamingRequest) -> None:
        self._sessions.authenticate(bearer_token_of(request.header(b"authorization")))
        record = await self._attachments.upload(request.content_length(), request.body())
        expires_at = record.expires_at // MICROS_PER_SECOND
        await request.complete_json(201, {"id": str(record.id), "expiresAt": expires_at})

    async def _download(self, request: StreamingRequest, segment: str) -> None:
        self._sessions.authenticate(bearer_token_of(request.header(b"authorization")))
        attachment_id = path_uuid(segment)
        etag = f'"{attachment_id}"'.encode()
        if names_attachment(request.header(b"if-none-match"), attachment_id):
            await request.complete(304, headers=[(b"etag", etag)])
            return
        async with self._attachments.download(attachment_id) as blob:
            headers = [OCTET_STREAM, (b"content-length", str(blob.size).encode()), (b"etag", etag)]
            await request.stream(200, headers, blob.chunks())
