"""Logs of a real ``relay serve``: with ``RELAY_LOG_FORMAT=json`` every line is one JSON
object (time, level, logger, message, request id, worker, event fields); the access log
writes one line per request, the lean send path and the gateway upgrade included, never
twice; a line logged while serving a request carries its id; reference settings this
server lacks are named at start-up."""

from __future__ import annotations

import json
import signal
import uuid
from pathlib import Path
from typing import Any

import httpx

from relay.client import Outgoing, connect_gateway
from tests.e2e.process import environment, relay_process, run_relay
from tests.factories import new_device
from tests.messaging import receive_envelopes


def _lines(log: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in log.splitlines() if line.strip()]
    for line in lines:
        assert {"time", "level", "logger", "message", "request_id", "worker"} <= line.keys()
        assert line["time"].endswith("+00:00")
    return lines


async def test_json_lines_one_access_line_per_request_with_its_id(
    tmp_path: Path, database_url: str
) -> None:
    env = environment(RELAY_DATA_DIR=str(tmp_path / "data"), RELAY_DATABASE_URL=database_url)
    app = f"logs-{uuid.uuid4().hex[:8]}"
    assert run_relay("apps", "create", app, env=env).returncode == 0
    key = run_relay("keys", "create", "--name", app, env=env).stdout.strip()
    settings = {
        "log_format": "json",
        "access_log": "true",
        "server_workers": "2",
    }
    with relay_process(tmp_path, database_url, **settings) as server:
        async with httpx.AsyncClient(base_url=server.api, timeout=30) as http:
            alice, bob = await new_device(http), await new_device(http)
            # The send takes the lean HTTP/1.1 path.
            http.headers["x-request-id"] = "send-1"
            assert await bob.client.send_messages([Outgoing(alice.id, b"hi")]) == []
            del http.headers["x-request-id"]
            async with connect_gateway(alice.client) as gateway:
                await receive_envelopes(gateway, 1, seconds=10)
            for index in range(3):
                response = await http.get(
                    f"/v1/users/{uuid.uuid4()}", headers={"x-request-id": f"probe-{index}"}
                )
                assert response.status_code == 401
            send = {"appId": app, "message": {"userId": "nobody", "body": {"title": "x"}}}
            response = await http.post(
                "/push/message/send",
                json={"requestObject": send},
                headers={"Authorization": f"Bearer {key}", "x-request-id": "powerauth-1"},
            )
            assert response.status_code == 200
        log, _ = server.stop(signal.SIGTERM)
    lines = _lines(log)
    access = [line for line in lines if line["logger"] == "relay.access"]
    by_id: dict[str, list[dict[str, Any]]] = {}
    for line in access:
        by_id.setdefault(line["request_id"], []).append(line)
    assert all(len(found) == 1 for found in by_id.values()), by_id  # never twice
    [sent] = by_id["send-1"]
    assert (sent["method"], sent["route"], sent["status"]) == ("POST", "/v1/messages", 200)
    assert sent["duration_ms"] > 0
    for index in range(3):
        [probe] = by_id[f"probe-{index}"]
        assert (probe["route"], probe["status"]) == ("/v1/users/{userId}", 401)
        assert probe["bytes"] > 0
    assert {line["worker"] for line in access} <= {1, 2}
    # The gateway upgrade is a request of the access log too.
    upgrades = [line for line in access if line["route"] == "/v1/gateway"]
    assert [(line["method"], line["status"]) for line in upgrades] == [("GET", 101)]
    # A line the PowerAuth face logged while serving that request carries its id.
    [warning] = [line for line in lines if "no device registered" in line["message"]]
    assert (warning["level"], warning["request_id"]) == ("WARNING", "powerauth-1")
    assert not [line for line in lines if line["logger"].startswith(("h2", "hpack"))]


def test_reference_settings_this_server_lacks_are_named(tmp_path: Path, database_url: str) -> None:
    env = environment(
        RELAY_DATA_DIR=str(tmp_path / "data"),
        RELAY_DATABASE_URL=database_url,
        OBSCURA_TELEMETRY_OTLP_ENDPOINT="http://collector:4317",
        OBSCURA_TELEMETRY_LOG_FORMAT="json",
    )
    done = run_relay("migrate", env=env)
    assert done.returncode == 0, done.stderr
    lines = _lines(done.stderr)  # the alias chose JSON
    [warning] = [line for line in lines if "OBSCURA_TELEMETRY_OTLP_ENDPOINT" in line["message"]]
    assert warning["level"] == "WARNING"
    assert "not a setting of this server" in warning["message"]
    assert not [line for line in lines if "OBSCURA_TELEMETRY_LOG_FORMAT" in line["message"]]
