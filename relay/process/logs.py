"""Logging of the ``relay`` commands and of every server worker process: text or one
JSON object per line (``RELAY_LOG_FORMAT``), each line with the request id of the
request being served and the worker that wrote it."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from relay.config import Settings
from relay.observability.requests import REQUEST_ID

# What every LogRecord has: anything else on a record is an event field of its own.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "request_id",
    "worker",
}
# Libraries whose DEBUG lines narrate every frame: kept out even at debug level.
_CHATTY = ("h2", "hpack", "hypercorn.access", "alembic")


class _Context(logging.Filter):
    """Stamps each record with the request id being served and the worker."""

    def __init__(self, worker: int | None) -> None:
        super().__init__()
        self._worker = worker

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        record.worker = self._worker
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (ISO 8601, UTC), ``level``, ``logger``,
    ``message``, ``request_id``, ``worker``, the record's event fields, ``exception``."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
            "worker": getattr(record, "worker", None),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """``time level logger: message``, then the worker and request id when there are."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of text."""
        line = super().format(record)
        worker = getattr(record, "worker", None)
        request_id = getattr(record, "request_id", None)
        if worker is not None:
            line += f" [worker {worker}]"
        if request_id is not None:
            line += f" [request {request_id}]"
        return line


def configure_logging(settings: Settings, *, worker: int | None = None) -> None:
    """Log to standard error at ``settings.log_level`` in ``settings.log_format``
    (``worker``: this process's worker number, 1-based, when there are several)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    handler.addFilter(_Context(worker))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    # Alembic narrates every migration step at INFO (we log one summary line instead);
    # h2 and hpack every frame at DEBUG; hypercorn's access log is replaced by ours.
    quiet = max(logging.WARNING, logging.getLevelName(settings.log_level))
    for name in _CHATTY:
        logging.getLogger(name).setLevel(quiet)
