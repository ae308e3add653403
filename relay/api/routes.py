"""Every route of the API port, declared once.

A route is a path template (``{name}`` stands for one path segment), the endpoint of each
of its methods, how it is served, its rate-limit tier and its deadline. Everything that
needs to know the routes derives from :data:`ROUTES`:

- the Quart views register at their routes' paths (:func:`view`), and the app refuses to
  start when a Quart route of the table has no view or a view has no route;
- :class:`relay.app.ApiRouter` sends the routes of the other kinds to their handlers;
- :class:`relay.api.edge.EdgePolicy` takes tiers and deadlines from the table;
- the lean HTTP/1.1 path serves the ``LEAN`` routes, the gateway takes the ``UPGRADE`` ones;
- the OpenAPI tests check each face's document against its routes here.

Adding a route is one entry here and its view (or handler).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import TypeVar

from quart import Blueprint, Response


class Served(Enum):
    """How the requests of a route are served."""

    QUART = "quart"
    """A Quart view: small bodies read whole, the face's error handlers."""
    ASGI = "asgi"
    """A raw ASGI handler of its own: bodies streamed in both directions."""
    LEAN = "lean"
    """The lean HTTP/1.1 path (the hot path); its ASGI handler when that path is off."""
    UPGRADE = "upgrade"
    """WebSocket upgrades, taken from the accept loop; the ASGI handler answers plain HTTP."""


class Tier(Enum):
    """Per-IP rate-limit tiers."""

    AUTH = "auth"
    STANDARD = "standard"


class Deadline(Enum):
    """Which setting bounds a request, body upload included (each capped by the global)."""

    REQUEST = "request"
    ATTACHMENT = "attachment"
    BACKUP = "backup"
    GLOBAL = "global"


@dataclass(frozen=True, slots=True)
class Route:
    """One path template and what it serves."""

    path: str
    endpoints: tuple[tuple[str, str], ...]
    """(method, endpoint): ``blueprint.view`` for Quart, the handler's name otherwise."""
    served: Served
    tier: Tier | None
    deadline: Deadline

    @property
    def methods(self) -> frozenset[str]:
        """The methods the route declares (Quart adds HEAD to GET views by itself)."""
        return frozenset(method for method, _ in self.endpoints)

    @property
    def quart_rule(self) -> str:
        """The path in Werkzeug's syntax: ``{deviceId}`` becomes ``<device_id>``."""
        return _PARAMETER.sub(lambda m: f"<{_snake(m.group(1))}>", self.path)


_PARAMETER = re.compile(r"\{([A-Za-z]+)\}")


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def route(
    path: str,
    served: Served = Served.QUART,
    tier: Tier | None = None,
    deadline: Deadline = Deadline.GLOBAL,
    **endpoints: str,
) -> Route:
    """A route: ``route("/v1/devices", GET="obscura.list_devices", tier=Tier.STANDARD)``."""
    return Route(path, tuple(endpoints.items()), served, tier, deadline)


def _standard(path: str, served: Served = Served.QUART, **endpoints: str) -> Route:
    return route(path, served, Tier.STANDARD, Deadline.REQUEST, **endpoints)


def _auth(path: str, **endpoints: str) -> Route:
    return route(path, Served.QUART, Tier.AUTH, Deadline.REQUEST, **endpoints)


# Password logins of every face share the auth tier (the faces' own per-username limits
# come on top); the Obscura, Zulip and Rocket.Chat APIs share the standard tier. The
# PowerAuth API serves authenticated integrator back-ends and has no per-IP limit.
OBSCURA = (
    _auth("/v1/users", POST="obscura.register_user"),
    _standard("/v1/users/{userId}", GET="obscura.pre_key_bundles"),
    _auth("/v1/sessions", POST="obscura.login", DELETE="obscura.logout"),
    _auth("/v1/sessions/refresh", POST="obscura.refresh"),
    _standard("/v1/devices", GET="obscura.list_devices", POST="obscura.create_device"),
    _standard("/v1/devices/keys", POST="obscura.upload_keys"),
    _standard(
        "/v1/devices/{deviceId}",
        GET="obscura.get_device",
        PUT="obscura.rename_device",
        DELETE="obscura.delete_device",
    ),
    _standard("/v1/push-tokens", PUT="obscura.put_push_token"),
    _standard("/v1/gateway/ticket", POST="obscura.gateway_ticket"),
    _standard("/v1/messages", Served.LEAN, POST="messages"),
    _standard("/v1/gateway", Served.UPGRADE, GET="gateway"),
    route("/v1/attachments", Served.ASGI, deadline=Deadline.ATTACHMENT, POST="attachments"),
    route("/v1/attachments/{id}", Served.ASGI, deadline=Deadline.ATTACHMENT, GET="attachments"),
    route(
        "/v1/backup",
        Served.ASGI,
        deadline=Deadline.BACKUP,
        GET="backup",
        HEAD="backup",
        POST="backup",
    ),
    route("/openapi.yaml", GET="documents.obscura"),
)

_CAMPAIGN = "/push/campaign/{ident}"
POWERAUTH = (
    route("/push/service/status", GET="powerauth.service_status"),
    route("/push/device/create", POST="powerauth.devices_create"),
    route("/push/device/create/multi", POST="powerauth.devices_create_multi"),
    route(
        "/push/device/delete", POST="powerauth.devices_delete", DELETE="powerauth.devices_delete"
    ),
    route(
        "/push/device/remove", POST="powerauth.devices_delete", DELETE="powerauth.devices_delete"
    ),
    route(
        "/push/device/status/update",
        POST="powerauth.devices_update_status",
        PUT="powerauth.devices_update_status",
    ),
    route("/push/message/send", POST="powerauth.messages_send"),
    route("/push/message/batch/send", POST="powerauth.messages_send_batch"),
    route("/push/campaign/create", POST="powerauth.campaigns_create"),
    route("/push/campaign/list", GET="powerauth.campaigns_listing"),
    route(
        f"{_CAMPAIGN}/delete",
        POST="powerauth.campaigns_delete",
        DELETE="powerauth.campaigns_delete",
    ),
    route(f"{_CAMPAIGN}/detail", GET="powerauth.campaigns_detail"),
    route(
        f"{_CAMPAIGN}/user/add",
        POST="powerauth.campaigns_add_users",
        PUT="powerauth.campaigns_add_users",
    ),
    route(f"{_CAMPAIGN}/user/list", GET="powerauth.campaigns_list_users"),
    route(
        f"{_CAMPAIGN}/user/delete",
        POST="powerauth.campaigns_delete_users",
        DELETE="powerauth.campaigns_delete_users",
    ),
    route("/push/campaign/send/test/{ident}", POST="powerauth.campaigns_send_test"),
    route("/push/campaign/send/live/{ident}", POST="powerauth.campaigns_send_live"),
    route("/admin/app/list", GET="powerauth.admin_app_list"),
    route("/admin/app/unconfigured/list", GET="powerauth.admin_unconfigured"),
    route("/admin/app/detail", POST="powerauth.admin_detail"),
    route("/admin/app/create", POST="powerauth.admin_create"),
    route("/admin/push/jobs", GET="powerauth.admin_push_jobs"),
    *(
        entry
        for provider, old in (("apns", "ios"), ("fcm", "android"), ("hms", "huawei"))
        for entry in (
            route(
                f"/admin/app/{provider}",
                POST=f"powerauth.{provider}_update",
                PUT=f"powerauth.{provider}_update",
                DELETE=f"powerauth.{provider}_remove",
            ),
            route(
                f"/admin/app/{old}/update",
                POST=f"powerauth.{provider}_update",
                PUT=f"powerauth.{provider}_update",
            ),
            route(
                f"/admin/app/{old}/remove",
                POST=f"powerauth.{provider}_remove",
                DELETE=f"powerauth.{provider}_remove",
            ),
        )
    ),
    route("/inbox/messages", POST="powerauth.inbox_post"),
    route("/inbox/messages/list", GET="powerauth.inbox_listing"),
    route("/inbox/messages/count", GET="powerauth.inbox_count"),
    route("/inbox/messages/detail", GET="powerauth.inbox_detail"),
    route("/inbox/messages/read", POST="powerauth.inbox_read", PUT="powerauth.inbox_read"),
    route(
        "/inbox/messages/read-all",
        POST="powerauth.inbox_read_all",
        PUT="powerauth.inbox_read_all",
    ),
)

ZULIP = (
    _standard("/api/v1/server_settings", GET="zulip.server_settings"),
    _auth("/api/v1/fetch_api_key", POST="zulip.fetch_api_key"),
    _standard("/api/v1/mobile_push/register", POST="zulip.register_push_device"),
    _standard("/api/v1/mobile_push/e2ee/test_notification", POST="zulip.test_notification"),
)

ROCKETCHAT = (
    _auth("/api/v1/login", POST="rocketchat.login"),
    _standard("/api/v1/push.token", POST="rocketchat.put_token", DELETE="rocketchat.delete_token"),
    _standard("/api/v1/push.info", GET="rocketchat.info"),
)

FACES: dict[str, tuple[Route, ...]] = {
    "obscura": OBSCURA,
    "powerauth": POWERAUTH,
    "zulip": ZULIP,
    "rocketchat": ROCKETCHAT,
}
"""Each face's routes: what its OpenAPI document describes."""

DOCUMENTS = tuple(
    route(f"/openapi/{face}.yaml", GET=f"documents.{face}") for face in FACES if face != "obscura"
)

ROUTES: tuple[Route, ...] = (*OBSCURA, *POWERAUTH, *ZULIP, *ROCKETCHAT, *DOCUMENTS)


class RouteTable:
    """Finds the route of a request path: literal paths first, as Werkzeug does."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self._literal: dict[str, Route] = {}
        self._templates: list[tuple[re.Pattern[str], Route]] = []
        seen: set[str] = set()
        for entry in routes:
            if entry.path in seen:
                raise ValueError(f"{entry.path} is declared twice")
            seen.add(entry.path)
            if _PARAMETER.search(entry.path):
                if entry.served is Served.LEAN:
                    raise ValueError(f"the lean path serves literal paths only: {entry.path}")
                self._templates.append((_template_pattern(entry.path), entry))
            else:
                self._literal[entry.path] = entry
        self._routes = tuple(self._literal.values()) + tuple(r for _, r in self._templates)
        self._quart_rules = _quart_rules(self.served_by(Served.QUART))

    def __iter__(self) -> Iterator[Route]:
        return iter(self._routes)

    def match(self, path: str) -> Route | None:
        """The route serving ``path``, or None."""
        found = self._literal.get(path)
        if found is not None:
            return found
        for pattern, entry in self._templates:
            if pattern.fullmatch(path):
                return entry
        return None

    def served_by(self, *kinds: Served) -> list[Route]:
        """The routes served in one of these ways."""
        return [entry for entry in self._routes if entry.served in kinds]

    def lean_routes(self) -> frozenset[tuple[str, str]]:
        """(method, path) of every route the lean HTTP/1.1 path serves."""
        lean = self.served_by(Served.LEAN)
        return frozenset((method, entry.path) for entry in lean for method in entry.methods)

    def quart_rules(self, endpoint: str) -> list[tuple[str, frozenset[str]]]:
        """(rule, methods) of each path a Quart endpoint serves."""
        return self._quart_rules.get(endpoint, [])

    def quart_endpoints(self) -> frozenset[str]:
        """Every Quart endpoint of the table."""
        return frozenset(self._quart_rules)


def _template_pattern(path: str) -> re.Pattern[str]:
    # split() alternates literal text and parameter names.
    parts = _PARAMETER.split(path)
    return re.compile("".join(re.escape(p) if i % 2 == 0 else "[^/]+" for i, p in enumerate(parts)))


def _quart_rules(routes: Iterable[Route]) -> dict[str, list[tuple[str, frozenset[str]]]]:
    rules: dict[str, list[tuple[str, frozenset[str]]]] = {}
    for entry in routes:
        by_endpoint: dict[str, set[str]] = {}
        for method, endpoint in entry.endpoints:
            by_endpoint.setdefault(endpoint, set()).add(method)
        for endpoint, methods in by_endpoint.items():
            rules.setdefault(endpoint, []).append((entry.quart_rule, frozenset(methods)))
    return rules


TABLE = RouteTable(ROUTES)

View = TypeVar("View", bound=Callable[..., Awaitable[Response]])


def view(bp: Blueprint, name: str | None = None) -> Callable[[View], View]:
    """Registers a Quart view at every path the table gives its endpoint
    (``blueprint.name``, the function's name unless ``name`` is given)."""

    def register(func: View) -> View:
        endpoint = name or getattr(func, "__name__", "")
        rules = TABLE.quart_rules(f"{bp.name}.{endpoint}")
        if not rules:
            raise LookupError(f"{bp.name}.{endpoint} is not in relay.api.routes")
        for rule, methods in rules:
            bp.add_url_rule(rule, endpoint, func, methods=sorted(methods))
        return func

    return register


def check_views(registered: Iterable[str]) -> None:
    """Raises unless the Quart endpoints ``registered`` are exactly the table's."""
    declared, registered = TABLE.quart_endpoints(), set(registered)
    if declared != registered:
        raise LookupError(
            f"routes without a view: {sorted(declared - registered)}; "
            f"views without a route: {sorted(registered - declared)}"
        )
