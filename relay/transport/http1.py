"""The HTTP/1.x request-head parser (sans-IO): :func:`sniff` for the accept loop, which
only decides who serves a connection, and :func:`parse_request`, the framing of the lean
path (:mod:`relay.transport.lean`). Both read a head with the same grammar, h11's.

Only the plain case is framed here: an ``HTTP/1.1`` request in origin form with exactly
one ``Host``, a ``Content-Length`` body (or none) and no ``Transfer-Encoding``, ``Expect``
or ``Upgrade``. Anything else raises :class:`NotPlain` and the connection goes to the h11
path (:mod:`relay.transport.h11_connection`), whose parser decides (and answers errors) as
it does for every other connection. The checks follow h11's grammar, so that a request
framed here is one h11 would have accepted with the same meaning.

Responses are written as the h11 path writes them: ``HTTP/1.1 <status> `` with an
empty reason, the application's headers in its order, then the server's own (``date``),
then ``Connection: close`` (h11 title-cases the headers it sets) when the client asked
for the connection to end.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from relay.transport.types import MAX_HEAD_BYTES, Headers

_TOKEN = re.compile(rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")
# Origin form, ASCII only: hypercorn decodes the path as ASCII.
_REQUEST_LINE = re.compile(rb"([-!#$%&'*+.^_`|~0-9a-zA-Z]+) (/[\x21-\x7e]*) HTTP/1\.([01])")
# The bytes h11 allows in a head: visible ASCII, obs-text, spaces and tabs, and CR LF
# (only as line ends, checked apart).
_HEAD_BYTES = bytes([9, 10, 13, *range(0x20, 0x7F), *range(0x80, 0x100)])
# Headers that decide the framing or hand the request over; all others pass as they are.
_FRAMING = frozenset(
    (b"host", b"content-length", b"connection", b"transfer-encoding", b"expect", b"upgrade")
)
_HEAD_END = b"\r\n\r\n"


class NotPlain(Exception):
    """The request is not one the lean path frames; the h11 path takes the connection."""


@dataclass(frozen=True, slots=True)
class RequestHead:
    """The request line and headers of a connection's first request."""

    method: str
    path: str
    headers: Headers  # names lower-cased, values without surrounding whitespace

    def header(self, name: bytes) -> bytes | None:
        """The first value of header ``name`` (lower case), if present."""
        return next((value for key, value in self.headers if key == name), None)


def sniff(data: bytes) -> RequestHead | None:
    """The head at the start of ``data``: None while incomplete, and for anything h11
    would refuse (HTTP/2, TLS, a malformed head), which the h11 path then answers."""
    end = data.find(_HEAD_END, 0, MAX_HEAD_BYTES + len(_HEAD_END))
    if end < 0:
        return None
    try:
        method, target, _, headers = _read_head(data[:end])
    except NotPlain:
        return None
    return RequestHead(method.decode("ascii"), target.partition(b"?")[0].decode("ascii"), headers)


def _read_head(head: bytes) -> tuple[bytes, bytes, bytes, Headers]:
    """Method, target, minor version and headers; :class:`NotPlain` where h11 would judge."""
    lines = head.split(b"\r\n")
    breaks = len(lines) - 1
    bare_breaks = head.count(b"\r") != breaks or head.count(b"\n") != breaks
    if bare_breaks or head.translate(None, _HEAD_BYTES):
        raise NotPlain("a byte h11 would judge")
    line = _REQUEST_LINE.fullmatch(lines[0])
    if line is None:
        raise NotPlain("a request line h11 would judge")
    method, target, minor = line.groups()
    headers: Headers = []
    for field in lines[1:]:
        name, colon, value = field.partition(b":")
        if not colon or not _TOKEN.fullmatch(name):
            raise NotPlain("a header line h11 would judge")
        headers.append((name.lower(), value.strip(b" \t")))
    return method, target, minor, headers


@dataclass(frozen=True, slots=True)
class Request:
    """A framed request head; its body is ``buffer[body_start:body_end]`` once received."""

    method: str
    raw_path: bytes
    query_string: bytes
    headers: Headers  # names lower-cased, values without surrounding whitespace
    body_start: int
    body_end: int
    keep_alive: bool


def parse_request(buffer: bytes | bytearray) -> Request | None:
    """The request at the start of ``buffer``; None while its head is incomplete.

    Raises :class:`NotPlain` for a request (or a partial head) the lean path leaves to
    the h11 path.
    """
    end = buffer.find(_HEAD_END, 0, MAX_HEAD_BYTES + len(_HEAD_END))
    if end < 0:
        if len(buffer) >= MAX_HEAD_BYTES:
            raise NotPlain("request head too large")
        return None
    method, target, minor, headers = _read_head(bytes(buffer[:end]))
    if minor != b"1":
        raise NotPlain("HTTP/1.0 is for the h11 path")
    host = 0
    length: int | None = None
    keep_alive = True
    for name, value in headers:
        if name not in _FRAMING:
            continue
        if name == b"host":
            host += 1
        elif name == b"content-length":
            if length is not None or not value.isdigit():
                raise NotPlain("content-length h11 would judge")
            length = int(value)
        elif name == b"connection":
            keep_alive = _keeps_alive(value) and keep_alive
        else:
            raise NotPlain(f"{name.decode()} is for the h11 path")
    if host != 1:
        raise NotPlain("not exactly one host")
    path, _, query = target.partition(b"?")
    body_start = end + len(_HEAD_END)
    return Request(
        method.decode("ascii"),
        path,
        query,
        headers,
        body_start,
        body_start + (length or 0),
        keep_alive,
    )


def _keeps_alive(value: bytes) -> bool:
    tokens = {token.strip().lower() for token in value.split(b",")}
    if tokens - {b"close", b"keep-alive"}:
        raise NotPlain("connection options are for the h11 path")
    return b"close" not in tokens


def encode_response(
    status: int, headers: Headers, body: bytes, server_headers: Headers, *, close: bool
) -> bytes:
    """A whole response as h11 would write it; chunked if ``headers`` declare no length.

    ``close`` is for a client that asked for it: h11 then replaces any ``connection``
    header with its own.
    """
    chunked = not any(name.lower() == b"content-length" for name, _ in headers)
    lines = [b"HTTP/1.1 %d \r\n" % status]
    for name, value in (*headers, *server_headers):
        if not (close and name.lower() == b"connection"):
            lines.append(name + b": " + value + b"\r\n")
    if chunked:
        lines.append(b"Transfer-Encoding: chunked\r\n")
    if close:
        lines.append(b"Connection: close\r\n")
    lines.append(b"\r\n")
    if chunked:
        lines.append((b"%x\r\n" % len(body) + body + b"\r\n" if body else b"") + b"0\r\n\r\n")
    else:
        lines.append(body)
    return b"".join(lines)
