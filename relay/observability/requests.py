"""The request being served, for every log line written while serving it: the edge sets
the request id in a context variable; trio hands it to the request's child tasks and
worker threads, and the log formatter reads it."""

from __future__ import annotations

from contextvars import ContextVar

REQUEST_ID: ContextVar[str | None] = ContextVar("relay_request_id", default=None)
