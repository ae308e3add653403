"""The Zulip-compatible API (``/api/v1/server_settings``, ``fetch_api_key``,
``mobile_push/register``, ``mobile_push/e2ee/test_notification``): routes in
:mod:`.routes`, parameters and credentials in :mod:`.schemas`, the error convention in
:mod:`.errors`."""

from __future__ import annotations

from quart import Blueprint

from relay.api.zulip import errors, routes
from relay.services.zulip.service import ZulipService


def blueprint(zulip: ZulipService) -> Blueprint:
    """The Zulip routes, bound to the face's service."""
    bp = Blueprint("zulip", __name__)
    errors.register_error_handlers(bp)
    routes.register(bp, zulip)
    return bp
