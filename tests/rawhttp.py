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


class HeldRequest:
    """A request sent by hand, piece by piece, with the response read when asked for."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream

    @classmethod
    async def start(cls, api_url: str, head: bytes) -> HeldRequest:
        """Connect and send ``head`` (request line and headers, up to the blank line)."""
        url = urllib.parse.urlsplit(api_url)
        assert url.hostname is not None
        assert url.port is not None
        request = cls(await trio.open_tcp_stream(url.hostname, url.port))
        await request.stream.send_all(head)
        return request

    async def send(self, data: bytes) -> None:
        """Send part of the body."""
        await self.stream.send_all(data)

    async def response(self) -> tuple[int, bytes]:
        """The status code and body of the (Content-Length framed) response."""
        data = b""
        with trio.fail_after(10):
            while b"\r\n\r\n" not in data:
                chunk = await self.stream.receive_some()
                assert chunk, f"connection closed before a response: {data!r}"
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in lines
                if line.lower().startswith(b"content-length:")
            )
            while len(body) < length:
                chunk = await self.stream.receive_some()
                assert chunk, "connection closed mid-body"
                body += chunk
        return int(lines[0].split(b" ")[1]), body

    async def aclose(self) -> None:
        """Drop the connection."""
        await self.stream.aclose()


def upload_head(path: str, headers: dict[str, str]) -> bytes:
    """A POST request head for ``path`` with ``headers``."""
    lines = [f"POST {path} HTTP/1.1", "Host: relay", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()
