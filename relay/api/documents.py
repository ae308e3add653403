"""OpenAPI documents: the relay's (``/openapi.yaml``) and one per compatible face
(``/openapi/powerauth.yaml``, ``/openapi/zulip.yaml``, ``/openapi/rocketchat.yaml``),
each stamped with our version."""

from __future__ import annotations

from importlib import resources

from quart import Blueprint, Response

from relay import __version__

FACE_DOCUMENTS = ("powerauth", "zulip", "rocketchat")


def stamped(package: str, filename: str) -> bytes:
    """A packaged YAML document with ``version: 0.0.0`` replaced by ours."""
    text = resources.files(package).joinpath(filename).read_text("utf-8")
    return text.replace("version: 0.0.0", f"version: {__version__}", 1).encode("utf-8")


def blueprint() -> Blueprint:
    """The faces' document routes."""
    bp = Blueprint("face_documents", __name__)
    for face in FACE_DOCUMENTS:
        document = stamped("relay.api.openapi", f"{face}.yaml")

        async def serve(document: bytes = document) -> Response:
            return Response(document, content_type="text/yaml; charset=utf-8")

        bp.add_url_rule(f"/openapi/{face}.yaml", f"{face}_document", serve, methods=["GET"])
    return bp
