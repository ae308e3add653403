"""The push providers' error hierarchy.

::

    ProviderError
    ├── TransportError            the request may not have reached the provider: retry
    │   ├── ConnectFailed         TCP, TLS or ALPN negotiation failed (or timed out)
    │   ├── ConnectionLost        the connection closed with the request in flight
    │   │   └── PeerProtocolError the peer broke HTTP/2, so we closed the connection
    │   ├── NotProcessed          the peer refused the stream or sent GOAWAY below it:
    │   │                         it certainly did not act on it
    │   └── ResponseTimeout       no complete response within the response timeout
    ├── InvalidNotification       the notification breaks a provider limit: never sent
    └── CredentialError           the app's provider credentials are unusable
"""

from __future__ import annotations


class ProviderError(Exception):
    """Base of every error raised by :mod:`providers`."""


class TransportError(ProviderError):
    """The exchange with the provider failed below HTTP; the request may be retried."""


class ConnectFailed(TransportError):
    """Could not open an HTTP/2 connection (TCP, TLS, ALPN or the peer's SETTINGS)."""


class ConnectionLost(TransportError):
    """The connection ended while the request was in flight."""


class PeerProtocolError(ConnectionLost):
    """The peer sent something HTTP/2 forbids; GOAWAY was sent and the connection closed."""


class NotProcessed(TransportError):
    """The peer did not process the request (GOAWAY below its stream, or REFUSED_STREAM)."""


class ResponseTimeout(TransportError):
    """The response did not complete in time; the stream was reset."""


class InvalidNotification(ProviderError):
    """The notification cannot be sent as built (too large, reserved keys, bad fields)."""


class CredentialError(ProviderError):
    """The configured key, service account or client secret cannot be used."""
