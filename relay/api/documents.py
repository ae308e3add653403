"""OpenAPI documents, all in ``relay/api/openapi/``: the relay's (``/openapi.yaml``) and
one per compatible face (``/openapi/powerauth.yaml``, ``/openapi/zulip.yaml``,
``/openapi/rocketchat.yaml``), each stamped with our version."""

from __future__ import annotations

from importlib import resources

from quart import Blueprint, Response

from relay import __version__
from relay.api.routes import view

FACE_DOCUMENTS = ("powerauth", "zulip", "rocketchat")


def stamped(face: str) -> bytes:
    """A face's packaged YAML document with ``version: 0.0.0`` replaced by ours."""
    text = resources.files("relay.api.openapi").joinpath(f"{face}.yaml").read_text("utf-8")
    return text.replace("version: 0.0.0", f"version: {__version__}", 1).encode("utf-8")


def blueprint() -> Blueprint:
    """The document routes."""
    bp = Blueprint("documents", __name__)
    obscura = stamped("obscura")

    @view(bp, "obscura")
    async def serve_obscura() -> Response:
        return Response(obscura, content_type="text/yaml")

    for face in FACE_DOCUMENTS:
        document = stamped(face)

        async def serve(document: bytes = document) -> Response:
            return Response(document, content_type="text/yaml; charset=utf-8")

        view(bp, face)(serve)
    return bp
