"""One client process of ``relay bench gateway-idle``: holds the gateway connections of
the devices it is given (``python -m bench.idle_holder``).

A process can hold only as many connections as its open-file limit allows, so the
scenario spreads its devices over several of these. Standard input: one JSON line,
``{"api": URL, "sessions": [[token, refresh_token, expires_at, device_id], ...]}``;
its end tells the holder to close everything and exit. Standard output: ``connected``
once every device's gateway is open, then ``received`` once every device has received
(and acknowledged) at least one message.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import uuid

import httpx
import trio

from relay.client import ObscuraClient, Session, connect_gateway

CONNECT_CONCURRENCY = 32
CONNECTED = "connected"
RECEIVED = "received"


def _say(line: str) -> None:
    os.write(sys.stdout.fileno(), (line + "\n").encode())


async def hold(api: str, sessions: list[Session]) -> None:
    """Connect every session's device and keep it until standard input ends."""
    connected = 0
    waiting = {session.device_id for session in sessions}
    limiter = trio.CapacityLimiter(CONNECT_CONCURRENCY)

    async def one(http: httpx.AsyncClient, session: Session) -> None:
        nonlocal connected
        client = ObscuraClient(http, session)
        async with limiter:
            context = connect_gateway(client)
            gateway = await context.__aenter__()
        try:
            connected += 1
            if connected == len(sessions):
                _say(CONNECTED)
            async for envelopes in gateway.batches():
                await gateway.ack([envelope.id for envelope in envelopes])
                if session.device_id in waiting:
                    waiting.discard(session.device_id)
                    if not waiting:
                        _say(RECEIVED)
        finally:
            with trio.CancelScope(shield=True), contextlib.suppress(Exception):
                await context.__aexit__(None, None, None)

    limits = httpx.Limits(max_connections=CONNECT_CONCURRENCY)
    async with (
        httpx.AsyncClient(base_url=api, timeout=120, limits=limits) as http,
        trio.open_nursery() as nursery,
    ):
        for session in sessions:
            nursery.start_soon(one, http, session)
        async with trio.lowlevel.FdStream(os.dup(sys.stdin.fileno())) as stdin:
            while await stdin.receive_some():
                pass
        nursery.cancel_scope.cancel()


def main() -> int:
    """Read the plan line, then hold until standard input ends."""
    plan = json.loads(sys.stdin.buffer.readline())
    sessions = [
        Session(token, refresh, int(expires), uuid.UUID(device))
        for token, refresh, expires, device in plan["sessions"]
    ]
    trio.run(hold, plan["api"], sessions)
    return 0


if __name__ == "__main__":
    sys.exit(main())
