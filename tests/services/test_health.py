"""The management port: /livez and /readyz (obscura-contract §7)."""

from __future__ import annotations

import shutil
from functools import partial
from pathlib import Path

import httpx
import trio

from relay.config import Settings
from relay.process.server import Listening, run_server
from relay.registry import build_services
from storage.db import Database, create_engine


async def test_livez(relay: Listening) -> None:
    async with httpx.AsyncClient(base_url=relay.management_url) as client:
        response = await client.get("/livez")
    assert response.status_code == 200
    assert response.content == b""
    assert "x-request-id" not in response.headers


async def test_readyz_reports_every_dependency(relay: Listening) -> None:
    async with httpx.AsyncClient(base_url=relay.management_url) as client:
        response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "storage": "ok", "pubsub": "ok"}


async def test_management_routes_only(relay: Listening) -> None:
    async with httpx.AsyncClient(base_url=relay.management_url) as client:
        assert (await client.get("/v1/devices")).status_code == 404
        assert (await client.post("/livez")).status_code == 405


async def test_api_port_does_not_serve_health(http: httpx.AsyncClient) -> None:
    assert (await http.get("/livez")).status_code == 404


async def _readyz(settings: Settings, db: Database, blob_root: Path) -> httpx.Response:
    services = build_services(settings, db, b"s" * 32, blob_root)
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        listening = await nursery.start(partial(run_server, settings, services, shutdown=shutdown))
        async with httpx.AsyncClient(base_url=listening.management_url) as client:
            response = await client.get("/readyz")
            assert (await client.get("/livez")).status_code == 200
        shutdown.set()
    return response


async def test_readyz_is_503_when_the_database_is_down(settings: Settings, tmp_path: Path) -> None:
    dead = Database(create_engine("postgresql://postgres@127.0.0.1:1/none"), max_concurrency=1)
    try:
        response = await _readyz(settings, dead, tmp_path)
    finally:
        dead.dispose()
    assert response.status_code == 503
    assert response.json() == {
        "status": "error",
        "database": "error",
        "storage": "ok",
        "pubsub": "ok",
    }


async def test_readyz_is_503_when_blob_storage_is_gone(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    blobs = tmp_path / "gone"
    blobs.mkdir()
    shutil.rmtree(blobs)
    response = await _readyz(settings, db, blobs)
    assert response.status_code == 503
    assert response.json()["storage"] == "error"
    assert response.json()["database"] == "ok"
