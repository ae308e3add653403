"""The lean path's HTTP/1.1 framing: what it frames, what it leaves to hypercorn, and
responses written as h11 writes them."""

from __future__ import annotations

import pytest

from relay.transport.http1 import NotPlain, encode_response, parse_request
from relay.transport.types import MAX_HEAD_BYTES

_SEND = b"POST /v1/messages?x=1 HTTP/1.1\r\nHost: relay\r\nContent-Length: 5\r\n"


def test_a_plain_request_is_framed() -> None:
    data = _SEND + b"Authorization:  Bearer t \r\nX-Empty:\r\n\r\nhelloPOST /next"
    request = parse_request(data)
    assert request is not None
    assert (request.method, request.raw_path, request.query_string) == (
        "POST",
        b"/v1/messages",
        b"x=1",
    )
    assert request.headers == [
        (b"host", b"relay"),
        (b"content-length", b"5"),
        (b"authorization", b"Bearer t"),
        (b"x-empty", b""),
    ]
    assert data[request.body_start : request.body_end] == b"hello"
    assert request.keep_alive


def test_no_content_length_is_an_empty_body() -> None:
    request = parse_request(b"POST /a HTTP/1.1\r\nHost: x\r\n\r\n")
    assert request is not None
    assert request.body_start == request.body_end


@pytest.mark.parametrize(
    ("value", "keep_alive"),
    [(b"close", False), (b"keep-alive", True), (b"Keep-Alive, close", False)],
)
def test_connection_close_ends_keep_alive(value: bytes, keep_alive: bool) -> None:
    request = parse_request(_SEND + b"Connection: " + value + b"\r\n\r\n")
    assert request is not None
    assert request.keep_alive is keep_alive


@pytest.mark.parametrize("data", [b"", b"POST /v1/messages HTTP/1.1\r\nHost: x\r\n"])
def test_an_incomplete_head_needs_more(data: bytes) -> None:
    assert parse_request(data) is None


@pytest.mark.parametrize(
    "data",
    [
        b"POST /a HTTP/1.0\r\nHost: x\r\n\r\n",
        b"POST /a HTTP/1.1\r\n\r\n",
        b"POST /a HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
        b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST /a HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n",
        b"POST /a HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n",
        b"POST /a HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\n\r\n",
        b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
        b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        b"POST /a HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n",
        b"POST /a HTTP/1.1\r\nHost: x\r\nX: a\r\n folded\r\n\r\n",
        b"POST /a HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n",
        b"POST /a HTTP/1.1\r\nHost: x\r\nX: a\x7fb\r\n\r\n",
        b"POST /a HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n",
        b"POST /a HTTP/1.1\r\nHost: x\nX: a\r\n\r\n",
        b"POST /a HTTP/1.1\r\nHost: x\r\nno colon\r\n\r\n",
        b"POST http://x/a HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST  /a HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\r\nPOST /a HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /a HTTP/1.1\r\nHost: x\r\nX: " + b"a" * MAX_HEAD_BYTES,
    ],
)
def test_anything_h11_would_judge_goes_to_hypercorn(data: bytes) -> None:
    with pytest.raises(NotPlain):
        parse_request(data)


def test_a_response_is_written_as_h11_writes_it() -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", b"2")]
    date = [(b"date", b"Wed, 02 Dec 2026 20:25:27 GMT")]
    assert encode_response(401, headers, b"{}", date, close=False) == (
        b"HTTP/1.1 401 \r\ncontent-type: application/json\r\ncontent-length: 2\r\n"
        b"date: Wed, 02 Dec 2026 20:25:27 GMT\r\n\r\n{}"
    )
    assert encode_response(200, [], b"abc", date, close=True) == (
        b"HTTP/1.1 200 \r\ndate: Wed, 02 Dec 2026 20:25:27 GMT\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    )
