"""``GET /openapi.yaml``: the OpenAPI document of this API, stamped with our version."""

from __future__ import annotations

from importlib import resources

from quart import Blueprint, Response

from relay import __version__
from relay.services.registry import Services


def openapi_document() -> bytes:
    """The packaged ``openapi.yaml`` with ``version: 0.0.0`` replaced by ours."""
    text = resources.files(__package__).joinpath("openapi.yaml").read_text("utf-8")
    return text.replace("version: 0.0.0", f"version: {__version__}", 1).encode("utf-8")


def register(bp: Blueprint, services: Services) -> None:
    """Add the document route to ``bp``."""
    del services  # the document is static
    document = openapi_document()

    @bp.get("/openapi.yaml")
    async def openapi() -> Response:
        return Response(document, content_type="text/yaml")
