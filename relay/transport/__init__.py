"""The HTTP front end: how a connection reaches the application.

Every connection is accepted by :mod:`relay.transport.listener`, which peeks at its first
request head (read by :mod:`relay.transport.http1`, the one head parser) and picks one of
four ways to serve it:

* the gateway's WebSocket upgrade goes to :mod:`relay.transport.websocket` (wsproto on
  the raw stream: real pings and liveness, a connection that can always be cut);
* a ``POST /v1/messages`` goes to the lean path, :mod:`relay.transport.lean`, which frames
  plain HTTP/1.1 requests itself (:mod:`relay.transport.http1`, sans-IO) and writes each
  response in one ``send_all`` — the hot route, where a general HTTP stack cost as much
  CPU as the send behind it;
* everything else, and the rest of a lean connection once a request is not a plain
  send, goes to :mod:`relay.transport.h11_connection`: one task per connection driving
  h11, streaming bodies both ways;
* the application behind the last two is one ASGI app (Quart-Trio routes and plain ASGI
  handlers for the streaming and hot routes, in :mod:`relay.api`).

:mod:`relay.transport.serving` holds what the HTTP paths share: keep-alive and request
timeouts, the early-body discard, lingering closes, the ASGI scope.
"""
