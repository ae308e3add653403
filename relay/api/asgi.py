"""Minimal ASGI helpers for the parts of the server that run below Quart."""

from __future__ import annotations

from hypercorn.typing import ASGISendCallable


async def respond(
    send: ASGISendCallable,
    status: int,
    body: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Send a complete response with a ``content-length``."""
    all_headers = [*(headers or []), (b"content-length", str(len(body)).encode())]
    await send(
        {"type": "http.response.start", "status": status, "headers": all_headers, "trailers": False}
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def websocket_reject(
    send: ASGISendCallable,
    status: int,
    body: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Refuse a WebSocket handshake with a plain HTTP response (no upgrade)."""
    all_headers = [*(headers or []), (b"content-length", str(len(body)).encode())]
    await send({"type": "websocket.http.response.start", "status": status, "headers": all_headers})
    await send({"type": "websocket.http.response.body", "body": body, "more_body": False})
