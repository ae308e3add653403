"""The Obscura relay API (``/v1/...`` and ``/openapi.yaml``), wire-compatible with the
reference server. Each module registers one group of routes on the blueprint."""

from __future__ import annotations

from quart import Blueprint

from relay.api.obscura import accounts, devices, keys, messages, push_tokens
from relay.services.registry import Services


def blueprint(services: Services) -> Blueprint:
    """All Obscura routes, bound to ``services``."""
    bp = Blueprint("obscura", __name__)
    for module in (accounts, devices, keys, push_tokens, messages):
        module.register(bp, services)
    return bp
