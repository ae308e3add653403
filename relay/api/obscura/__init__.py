"""The Obscura relay API (``/v1/...``), wire-compatible with the reference server. Each
module registers one group of routes on the blueprint with the services it uses."""

from __future__ import annotations

from quart import Blueprint

from relay.api.obscura import accounts, devices, keys, messages, push_tokens
from relay.services.devices import DeviceService
from relay.services.keys import KeyService
from relay.services.push_tokens import PushTokenService
from relay.services.sessions import SessionService
from relay.services.tickets import TicketService


def blueprint(
    sessions: SessionService,
    device_service: DeviceService,
    key_service: KeyService,
    push_token_service: PushTokenService,
    tickets: TicketService,
) -> Blueprint:
    """The Obscura routes Quart serves (the streaming ones have handlers of their own)."""
    bp = Blueprint("obscura", __name__)
    accounts.register(bp, sessions)
    devices.register(bp, sessions, device_service)
    keys.register(bp, sessions, key_service)
    push_tokens.register(bp, sessions, push_token_service)
    messages.register(bp, sessions, tickets)
    return bp
