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

import socket
import ssl


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


def root_cause(error: BaseException) -> str:
    """What really went wrong beneath a connection failure, in words an operator can act
    on: TLS verification, refusal, DNS, reset, or the innermost error's own text.

    trio wraps failures (``BrokenResourceError`` around an ``SSLError``, ``OSError``
    around a group of per-address attempts); the wrappers say nothing useful.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    innermost = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        innermost = current
        described = _describe(current)
        if described is not None:
            return described
        if isinstance(current, BaseExceptionGroup) and current.exceptions:
            current = current.exceptions[0]
        else:
            current = current.__cause__ or current.__context__
    return str(innermost) or type(innermost).__name__


def _describe(error: BaseException) -> str | None:
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"TLS certificate verification failed: {error.verify_message or error.reason}"
    if isinstance(error, ssl.SSLError):
        return f"TLS failed: {error.reason or error}"
    if isinstance(error, socket.gaierror):
        return f"DNS lookup failed: {error.strerror or error}"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, ConnectionResetError):
        return "connection reset by the peer"
    if isinstance(error, TimeoutError):
        return "timed out"
    return None
