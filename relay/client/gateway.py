"""The gateway half of the client: a WebSocket that delivers envelopes to acknowledge."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

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
async def connect_gateway(client: ObscuraClient) -> AsyncIterator[GatewayConnection]:
    """Open the gateway for the client's current device (fetching a fresh ticket)."""
    ticket = await client.gateway_ticket()
    url = gateway_url(str(client.http.base_url), ticket)
    async with open_websocket_url(url) as websocket:
        yield GatewayConnection(websocket)
