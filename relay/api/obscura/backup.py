"""``GET``/``HEAD``/``POST /v1/backup``: the device's encrypted backup, streamed.

Device-scoped. Versions travel as quoted ETags (``"3"``): a download's
``If-None-Match`` naming the current version is a 304; an upload names the version it
replaces with ``If-Match`` (or ``If-None-Match: *`` for the first) and gets the new one
back. See :mod:`relay.services.backups` for the rules.
"""

from __future__ import annotations

from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, HTTPScope

from relay.api.asgi import OCTET_STREAM, StreamingRequest, method_not_allowed, run_endpoint
from relay.api.http import bearer_token_of
from relay.services.backups import BackupService
from relay.services.principal import Principal
from relay.services.sessions import SessionService

BACKUP_PATH = "/v1/backup"


def _etag(version: int) -> tuple[bytes, bytes]:
    return (b"etag", f'"{version}"'.encode())


class BackupEndpoint:
    """The ASGI handler of ``/v1/backup``."""

    def __init__(self, sessions: SessionService, backups: BackupService) -> None:
        self._sessions = sessions
        self._backups = backups

    async def __call__(
        self, scope: HTTPScope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        await run_endpoint(self._handle, scope, receive, send)

    async def _handle(self, request: StreamingRequest) -> None:
        if request.method not in ("GET", "HEAD", "POST"):
            await method_not_allowed(request, b"GET,HEAD,POST")
            return
        principal = self._sessions.authenticate(bearer_token_of(request.header(b"authorization")))
        if request.method == "POST":
            await self._upload(request, principal)
        elif request.method == "HEAD":
            version, size = await self._backups.describe(principal)
            headers = [OCTET_STREAM, (b"content-length", str(size).encode()), _etag(version)]
            await request.start(200, headers)
            await request.send_body(b"", more=False)
        else:
            await self._download(request, principal)

    async def _upload(self, request: StreamingRequest, principal: Principal) -> None:
        version = await self._backups.upload(
            principal,
            if_match=request.header(b"if-match"),
            if_none_match=request.header(b"if-none-match"),
            content_length=request.content_length(),
            body=request.body(),
        )
        await request.complete(200, headers=[_etag(version)])

    async def _download(self, request: StreamingRequest, principal: Principal) -> None:
        if_none_match = request.header(b"if-none-match")
        async with self._backups.download(principal, if_none_match=if_none_match) as content:
            if content.blob is None:
                await request.complete(304, headers=[_etag(content.version)])
                return
            blob = content.blob
            headers = [OCTET_STREAM, (b"content-length", str(blob.size).encode())]
            await request.stream(200, [*headers, _etag(content.version)], blob.chunks())
