"""The gateway half of the client: a WebSocket that delivers envelopes to acknowledge."""

from __future__ import annotations

import ssl
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, wrap_client_stream

from relay import wire
from relay.client.rest import ObscuraClient


@dataclass(frozen=True, slots=True)
class Envelope:
    """A delivered message."""

    id: uuid.UUID
    sender_id: uuid.UUID
    sender_device_id: uuid.UUID
    timestamp_ms: int
    message: bytes


@dataclass(frozen=True, slots=True)
class PreKeyStatus:
    """The server asks for a refill: this many one-time pre-keys are left."""

    one_time_pre_key_count: int
    min_threshold: int


Event = list[Envelope] | PreKeyStatus


# Frames hold up to WS_MAX_BATCH_BYTES (8 MiB by default) of envelopes, and one
# envelope larger than that is sent alone.
MAX_FRAME_BYTES = 64 * 1024 * 1024
_RECEIVE_BUFFER = 64 * 1024


def gateway_url(base_url: str, ticket: str) -> str:
    """``ws(s)://<host>/v1/gateway?ticket=...`` for an ``http(s)://`` API base URL."""
    parts = urlsplit(base_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    path = parts.path.rstrip("/") + "/v1/gateway"
    return urlunsplit((scheme, parts.netloc, path, f"ticket={ticket}", ""))


class GatewayConnection:
    """An open gateway connection of one device."""

    def __init__(self, websocket: WebSocketConnection) -> None:
        self.websocket = websocket

    async def next_event(self) -> Event:
        """The next envelope batch or pre-key status; raises ``ConnectionClosed`` at the end."""
        while True:
            message = await self.websocket.get_message()
            if isinstance(message, str):
                continue
            decoded = wire.decode_server_frame(message)
            if isinstance(decoded, wire.PreKeyStatusRecord):
                return PreKeyStatus(decoded.one_time_pre_key_count, decoded.min_threshold)
            if decoded is not None:
                return [
                    Envelope(
                        id=uuid.UUID(bytes=e.id),
                        sender_id=uuid.UUID(bytes=e.sender_id),
                        sender_device_id=uuid.UUID(bytes=e.sender_device_id),
                        timestamp_ms=e.timestamp,
                        message=e.message,
                    )
                    for e in decoded
                ]

    async def batches(self) -> AsyncIterator[list[Envelope]]:
        """Envelope batches as they arrive (pre-key statuses are skipped) until closed."""
        try:
            while True:
                event = await self.next_event()
                if isinstance(event, list):
                    yield event
        except ConnectionClosed:
            return

    async def ack(self, message_ids: Sequence[uuid.UUID]) -> None:
        """Acknowledge messages in one frame; the server then deletes them."""
        await self.websocket.send_message(wire.encode_ack_frame(m.bytes for m in message_ids))


@asynccontextmanager
async def connect_gateway(
    client: ObscuraClient,
    *,
    ssl_context: ssl.SSLContext | None = None,
    max_frame_bytes: int = MAX_FRAME_BYTES,
) -> AsyncIterator[GatewayConnection]:
    """Open the gateway for the client's current device (fetching a fresh ticket).

    The gateway lives on the API's host and port; ``https`` base URLs use TLS with
    ``ssl_context`` (default: the system's trust store).
    """
    ticket = await client.gateway_ticket()
    url = urlsplit(gateway_url(str(client.http.base_url), ticket))
    if url.hostname is None:
        raise ValueError(f"no host in {client.http.base_url}")
    secure = url.scheme == "wss"
    port = url.port or (443 if secure else 80)
    tcp = await trio.open_tcp_stream(url.hostname, port)
    stream: trio.SocketStream | trio.SSLStream[trio.SocketStream] = tcp
    if secure:
        context = ssl_context or ssl.create_default_context()
        stream = trio.SSLStream(tcp, context, server_hostname=url.hostname)
    # We own the stream: trio-websocket leaves a client's socket open when the
    # server ends the connection.
    try:
        async with trio.open_nursery() as nursery:
            websocket = await wrap_client_stream(
                nursery,
                stream,
                url.netloc,
                f"{url.path}?{url.query}",
                max_message_size=max_frame_bytes,
                receive_buffer_size=_RECEIVE_BUFFER,
            )
            try:
                yield GatewayConnection(websocket)
            finally:
                with trio.CancelScope(shield=True), trio.move_on_after(5):
                    await websocket.aclose()
                nursery.cancel_scope.cancel()
    finally:
        await tcp.aclose()
