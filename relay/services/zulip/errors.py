"""Zulip errors: ``{"result":"error","msg":...,"code":...}`` plus per-error fields."""

from __future__ import annotations

from typing import Any

from relay.errors import RelayError


class ZulipError(RelayError):
    """A Zulip-convention error (``code`` and HTTP status)."""

    status = 400

    def __init__(self, code: str, msg: str, *, status: int = 400, **fields: Any) -> None:
        super().__init__(msg)
        self.code = code
        self.status = status
        self.fields = fields


def bad_request(msg: str, **fields: Any) -> ZulipError:
    """``BAD_REQUEST`` (400): Zulip's generic validation error."""
    return ZulipError("BAD_REQUEST", msg, **fields)


def missing(name: str) -> ZulipError:
    """A required parameter is absent."""
    return ZulipError("REQUEST_VARIABLE_MISSING", f"Missing '{name}' argument", var_name=name)
