"""The baseline of ``relay bench rest``: one bare Quart-Trio route, ``POST /bare``, served
by the relay's own HTTP server code with the relay's hypercorn configuration.

Run as ``python -m bench.bare_server``; prints ``bare listening: http://host:port``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from functools import partial

import trio
from quart import Response, request
from quart_trio import QuartTrio

from relay.config import load_settings
from relay.process.server import hypercorn_config
from relay.transport.listener import OpenConnections, serve_http


def create_app() -> QuartTrio:
    """The bare app: read the body, answer an empty protobuf."""
    app = QuartTrio("bare")

    @app.post("/bare")
    async def bare() -> Response:
        await request.get_data()
        return Response(b"", content_type="application/x-protobuf")

    return app


async def serve() -> None:
    """Serve until interrupted."""
    settings = load_settings(os.environ, {"server_port": "0"})
    config = hypercorn_config(settings, 0)
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(
            partial(
                serve_http,
                create_app(),
                config,
                OpenConnections(),
                shutdown_trigger=trio.sleep_forever,
            )
        )
        print(f"bare listening: {binds[0]}", flush=True)


def main() -> int:
    """Entry point."""
    with contextlib.suppress(KeyboardInterrupt):
        trio.run(serve)
    return 0


if __name__ == "__main__":
    sys.exit(main())
