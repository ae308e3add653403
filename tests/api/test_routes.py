"""The route table: one declaration per route, from which routing, the edge and the
faces' documents derive."""

from __future__ import annotations

import re

import pytest
from quart import Blueprint, Response

from relay.api.edge import EdgePolicy
from relay.api.routes import (
    ROUTES,
    TABLE,
    Deadline,
    RouteTable,
    Served,
    Tier,
    check_views,
    route,
    view,
)
from relay.app import create_api_app, create_quart_app
from relay.config import Settings
from relay.registry import Services


def test_the_quart_app_serves_exactly_the_tables_quart_routes(services: Services) -> None:
    rules = {
        (rule.endpoint, rule.rule, frozenset(rule.methods or ()) - {"HEAD", "OPTIONS"})
        for rule in create_quart_app(services).url_map.iter_rules()
    }
    declared = {
        (endpoint, entry.quart_rule, frozenset(m for m, e in entry.endpoints if e == endpoint))
        for entry in TABLE.served_by(Served.QUART)
        for _, endpoint in entry.endpoints
    }
    assert rules == declared


def test_every_handler_route_has_its_handler(settings: Settings, services: Services) -> None:
    app = create_api_app(settings, services)
    assert app.lean_routes == {("POST", "/v1/messages")}
    kinds = {entry.path: entry.served for entry in ROUTES if entry.served is not Served.QUART}
    assert kinds == {
        "/v1/messages": Served.LEAN,
        "/v1/gateway": Served.UPGRADE,
        "/v1/attachments": Served.ASGI,
        "/v1/attachments/{id}": Served.ASGI,
        "/v1/backup": Served.ASGI,
    }


def test_a_view_outside_the_table_is_refused() -> None:
    bp = Blueprint("obscura", __name__)

    async def undeclared() -> Response:
        return Response("")

    with pytest.raises(LookupError, match=re.escape("obscura.undeclared")):
        view(bp)(undeclared)


def test_the_app_refuses_a_table_route_without_a_view() -> None:
    declared = TABLE.quart_endpoints()
    with pytest.raises(LookupError, match=re.escape("routes without a view: ['obscura.login']")):
        check_views(declared - {"obscura.login"})
    with pytest.raises(LookupError, match=re.escape("views without a route: ['obscura.extra']")):
        check_views(declared | {"obscura.extra"})
    check_views(declared)


@pytest.mark.parametrize(
    ("path", "declared"),
    [
        ("/v1/devices/keys", "/v1/devices/keys"),  # a literal path wins over a template
        ("/v1/devices/0d5f", "/v1/devices/{deviceId}"),
        ("/push/campaign/12/user/add", "/push/campaign/{ident}/user/add"),
        ("/v1/attachments/a/b", None),  # a parameter is one segment
        ("/v1/devices/", None),
        ("/v1/device", None),
    ],
)
def test_paths_find_their_route(path: str, declared: str | None) -> None:
    found = TABLE.match(path)
    assert (None if found is None else found.path) == declared


def test_every_declared_path_matches_itself() -> None:
    for entry in ROUTES:
        concrete = entry.path.replace("{deviceId}", "x").replace("{userId}", "x")
        concrete = concrete.replace("{ident}", "1").replace("{id}", "x")
        assert TABLE.match(concrete) == entry


def test_werkzeug_rules_name_parameters_in_snake_case() -> None:
    assert route("/v1/devices/{deviceId}", GET="x").quart_rule == "/v1/devices/<device_id>"


def test_a_path_declared_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="declared twice"):
        RouteTable([route("/a", GET="x.a"), route("/a", POST="x.b")])


def test_the_lean_path_takes_literal_paths_only() -> None:
    with pytest.raises(ValueError, match="literal paths only"):
        RouteTable([route("/a/{id}", Served.LEAN, POST="a")])


def test_the_edge_takes_tier_and_deadline_from_the_table() -> None:
    policy = EdgePolicy(Settings(server_request_timeout_secs=7, backup_timeout_secs=40))
    for entry in ROUTES:
        concrete = entry.path.replace("{", "").replace("}", "")
        classified = policy.classify(concrete)
        assert classified.tier == entry.tier, entry.path
        expected = {Deadline.REQUEST: 7, Deadline.BACKUP: 40}.get(entry.deadline)
        if expected is not None:
            assert classified.timeout == expected, entry.path
    assert policy.classify("/v1/sessions").tier is Tier.AUTH
