"""What every part of the HTTP front end speaks in: header lists, addresses, limits."""

from __future__ import annotations

# Header names lower-cased, values as sent; ASGI's shape.
Headers = list[tuple[bytes, bytes]]
# (host, port) of a peer or of the server, as ASGI's ``client`` and ``server``.
Address = tuple[str, int]

# h11 stops buffering an incomplete request head at this size (hypercorn's default).
MAX_HEAD_BYTES = 16 * 1024
RECEIVE_BYTES = 64 * 1024
# A request's head, once begun, must arrive within this (the first head too).
REQUEST_TIMEOUT_SECS = 10.0
# A body the application answered without reading is drained up to this size so the
# connection stays usable (an expired token's 401 is the common case); beyond it, or if
# the body is chunked, the connection is closed after the response.
DISCARD_LIMIT_BYTES = 1024 * 1024
# After our FIN: how long, and how much, the peer may still send before the close.
LINGER_SECS = 2.0
LINGER_BYTES = 1024 * 1024
