"""GET /openapi.yaml documents exactly the routes the server has."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
import yaml

from relay import __version__
from relay.api.routes import FACES
from relay.client import DeviceKeys
from relay.crypto.keys import KeyFormatError, encode_base64, parse_public_key

METHODS = {"get", "put", "post", "delete", "patch", "head"}


async def _document(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.get("/openapi.yaml")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/yaml")
    document: dict[str, Any] = yaml.safe_load(response.text)
    return document


async def test_document_carries_our_version(http: httpx.AsyncClient) -> None:
    document = await _document(http)
    assert document["openapi"].startswith("3.")
    assert document["info"]["version"] == __version__


def _normalized(operations: set[tuple[str, str]]) -> set[tuple[str, str]]:
    # Parameter names are the documents' own; only the shape of a path is routed.
    return {(method, re.sub(r"\{[^}]+\}", "{}", path)) for method, path in operations}


def _documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    """The (method, path) operations a document describes."""
    operations = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    }
    return _normalized(operations)


def _assert_references_resolve(document: dict[str, Any]) -> None:
    for reference in _references(document):
        node: Any = document
        for part in reference.removeprefix("#/").split("/"):
            node = node[part]
        assert node, reference


def _routed(face: str) -> set[tuple[str, str]]:
    """The (method, path) operations the route table gives a face."""
    operations = {(method, route.path) for route in FACES[face] for method in route.methods}
    return _normalized(operations)


async def test_documented_operations_match_the_routes(http: httpx.AsyncClient) -> None:
    document = await _document(http)
    assert _documented(document) == _routed("obscura")


def _references(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if "$ref" in node else []
        return found + [ref for value in node.values() for ref in _references(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _references(value)]
    return []


async def test_every_reference_resolves(http: httpx.AsyncClient) -> None:
    document = await _document(http)
    _assert_references_resolve(document)


async def test_every_operation_documents_401_when_it_needs_a_token(
    http: httpx.AsyncClient,
) -> None:
    document = await _document(http)
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            if operation.get("security", document["security"]):
                assert "401" in operation["responses"], (method, path)


async def test_security_schemes_are_declared(http: httpx.AsyncClient) -> None:
    document = await _document(http)
    schemes = document["components"]["securitySchemes"]
    for item in document["paths"].values():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            for requirement in operation.get("security", []):
                assert set(requirement) <= set(schemes)


@pytest.mark.parametrize("face", sorted(set(FACES) - {"obscura"}))
async def test_each_face_documents_exactly_its_routes(http: httpx.AsyncClient, face: str) -> None:
    response = await http.get(f"/openapi/{face}.yaml")
    assert response.status_code == 200
    # The documents hold UTF-8: a client must not decode them as Latin-1.
    assert response.headers["content-type"] == "text/yaml; charset=utf-8"
    document: dict[str, Any] = yaml.safe_load(response.text)
    assert document["info"]["version"] == __version__
    assert _documented(document) == _routed(face)
    _assert_references_resolve(document)


async def test_the_documented_key_formats_are_the_ones_the_server_accepts(
    http: httpx.AsyncClient,
) -> None:
    schemas = (await _document(http))["components"]["schemas"]
    key = re.compile(schemas["SignedPreKey"]["properties"]["publicKey"]["pattern"])
    signature = re.compile(schemas["SignedPreKey"]["properties"]["signature"]["pattern"])
    name = re.compile(schemas["CreateDeviceRequest"]["properties"]["name"]["pattern"])
    keys = DeviceKeys.generate()
    assert key.fullmatch(encode_base64(keys.identity.public_key))
    assert signature.fullmatch(encode_base64(keys.signed_pre_key_signature))
    for refused in (encode_base64(bytes(33)), encode_base64(b"\x05" * 32)):
        assert not key.fullmatch(refused)
        with pytest.raises(KeyFormatError):
            parse_public_key(refused)
    assert name.fullmatch("laptop")
    assert not name.fullmatch("lap\x00top")
