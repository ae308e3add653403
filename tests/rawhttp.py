"""HTTP/1.1 by hand, for requests httpx will not send (dripped or withheld bodies)."""

from __future__ import annotations

import urllib.parse

import trio


async def raw_request(api_url: str, head: bytes, body_parts: list[tuple[float, bytes]]) -> bytes:
    """Send ``head``, then each body part after its delay; return the response head.

    The response is read concurrently with the body, so a server that answers before
    the body is complete (408, 413) is observed as it happens.
    """
    url = urllib.parse.urlsplit(api_url)
    assert url.hostname is not None
    assert url.port is not None
    stream = await trio.open_tcp_stream(url.hostname, url.port)
    async with stream:
        await stream.send_all(head)
        response = b""
        with trio.move_on_after(10):
            async with trio.open_nursery() as nursery:

                async def drip() -> None:
                    for delay, part in body_parts:
                        await trio.sleep(delay)
                        try:
                            await stream.send_all(part)
                        except trio.BrokenResourceError:
                            return

                nursery.start_soon(drip)
                while b"\r\n\r\n" not in response:
                    chunk = await stream.receive_some()
                    if not chunk:
                        break
                    response += chunk
                nursery.cancel_scope.cancel()
        return response
