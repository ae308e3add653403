"""Assembles the API application: Quart-Trio routes behind the ASGI edge middleware."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, HTTPScope, Scope
from quart_trio import QuartTrio

from relay.api.asgi import is_websocket_upgrade, respond
from relay.api.documents import blueprint as documents
from relay.api.edge import EdgeMiddleware, EdgePolicy
from relay.api.http import JSON_BODY_LIMIT
from relay.api.obscura import blueprint as obscura_blueprint
from relay.api.obscura.attachments import AttachmentEndpoint
from relay.api.obscura.backup import BackupEndpoint
from relay.api.obscura.errors import register_error_handlers
from relay.api.obscura.gateway import GatewayHttpEndpoint, GatewayInterceptor
from relay.api.obscura.messages import MessagesEndpoint
from relay.api.powerauth import blueprint as powerauth_blueprint
from relay.api.rocketchat import blueprint as rocketchat_blueprint
from relay.api.routes import TABLE, Served, check_views
from relay.api.zulip import blueprint as zulip_blueprint
from relay.config import Settings
from relay.registry import Services

HttpHandler = Callable[[HTTPScope, ASGIReceiveCallable, ASGISendCallable], Awaitable[None]]


def create_quart_app(services: Services) -> QuartTrio:
    """The Quart-Trio application with every route and error translation."""
    app = QuartTrio("relay", static_folder=None)
    app.config.update(
        MAX_CONTENT_LENGTH=JSON_BODY_LIMIT,
        # The edge middleware owns timeouts (408, body upload included).
        BODY_TIMEOUT=None,
        RESPONSE_TIMEOUT=None,
        # The reference answers OPTIONS with 405; so do we.
        PROVIDE_AUTOMATIC_OPTIONS=False,
    )
    app.register_blueprint(
        obscura_blueprint(
            services.sessions,
            services.devices,
            services.keys,
            services.push_tokens,
            services.tickets,
        )
    )
    app.register_blueprint(powerauth_blueprint(services.powerauth))
    app.register_blueprint(zulip_blueprint(services.zulip))
    app.register_blueprint(rocketchat_blueprint(services.rocketchat))
    app.register_blueprint(documents())
    check_views(rule.endpoint for rule in app.url_map.iter_rules())

    register_error_handlers(app)
    return app


class ApiRouter:
    """Sends each request to what the route table says serves it: the gateway, attachment
    and backup handlers (they stream), the message sends (the hot path) or Quart."""

    def __init__(self, quart: QuartTrio, handlers: Mapping[str, HttpHandler]) -> None:
        self._quart = quart
        # The lean and upgrade routes' handlers answer any request of their path, a
        # stray upgrade included; the streaming ones leave upgrades to the 404 below.
        # Keyed by path template (a str hashes once; a Route would on every request).
        self._whole_path: dict[str, HttpHandler] = {}
        self._streaming: dict[str, HttpHandler] = {}
        for route in TABLE.served_by(Served.ASGI, Served.LEAN, Served.UPGRADE):
            table = self._streaming if route.served is Served.ASGI else self._whole_path
            for _, endpoint in route.endpoints:
                table[route.path] = handlers[endpoint]  # one handler per path

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] != "http":  # lifespan (the HTTP paths make no WebSocket scopes)
            await self._quart(scope, receive, send)
            return
        route = TABLE.match(scope["path"])
        template = "" if route is None else route.path
        if (handler := self._whole_path.get(template)) is not None:
            await handler(scope, receive, send)
        elif is_websocket_upgrade(scope["method"], scope["headers"]):
            await respond(send, 404)
        elif (handler := self._streaming.get(template)) is not None:
            await handler(scope, receive, send)
        else:
            await self._quart(scope, receive, send)


@dataclass(frozen=True)
class ApiApplication:
    """What the API port serves: the ASGI app, and the gateway taking its connections
    from the accept loop. Both share one rate limiter."""

    asgi: EdgeMiddleware
    gateway: GatewayInterceptor
    # Served by the lean HTTP/1.1 path (relay.transport.lean): small bodies, whole responses.
    lean_routes: frozenset[tuple[str, str]] = TABLE.lean_routes()


def create_api_app(settings: Settings, services: Services) -> ApiApplication:
    """The complete API application served on the API port."""
    edge = EdgePolicy(settings, services.shared_limits)
    router = ApiRouter(
        create_quart_app(services),
        {
            "gateway": GatewayHttpEndpoint(),
            "messages": MessagesEndpoint(services.sessions, services.messaging),
            "attachments": AttachmentEndpoint(services.sessions, services.attachments),
            "backup": BackupEndpoint(services.sessions, services.backups),
        },
    )
    return ApiApplication(
        asgi=EdgeMiddleware(router, edge),
        gateway=GatewayInterceptor(services.tickets, services.gateway, edge),
    )
