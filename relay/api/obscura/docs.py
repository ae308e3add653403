"""``GET /openapi.yaml``: the OpenAPI document of this API, stamped with our version."""

from __future__ import annotations

from quart import Blueprint, Response

from relay.api.documents import stamped
from relay.services.registry import Services


def openapi_document() -> bytes:
    """The packaged ``openapi.yaml`` with ``version: 0.0.0`` replaced by ours."""
    return stamped(__package__ or "relay.api.obscura", "openapi.yaml")


def register(bp: Blueprint, services: Services) -> None:
    """Add the document route to ``bp``."""
    del services  # the document is static
    document = openapi_document()

    @bp.get("/openapi.yaml")
    async def openapi() -> Response:
        return Response(document, content_type="text/yaml")
