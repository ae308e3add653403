"""The Rocket.Chat-compatible push API (``/api/v1/login``, ``/api/v1/push.token``,
``/api/v1/push.info``): routes in :mod:`.routes`, bodies in :mod:`.schemas`, the error
convention in :mod:`.errors`."""

from __future__ import annotations

from quart import Blueprint

from relay.api.rocketchat import errors, routes
from relay.services.rocketchat import RocketChatService


def blueprint(rocket: RocketChatService) -> Blueprint:
    """The Rocket.Chat routes, bound to the face's service."""
    bp = Blueprint("rocketchat", __name__)
    errors.register_error_handlers(bp)
    routes.register(bp, rocket)
    return bp
