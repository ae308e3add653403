"""The real ``relay`` command in a subprocess, as a user runs it."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx

from relay.client import DeviceKeys, ObscuraClient
from storage.migrate import head_revision
from tests.e2e.process import environment, relay_process, run_relay, serving
from tests.factories import PASSWORD, unique_username


async def test_embedded_server_lifecycle(tmp_path: Path) -> None:
    """Serve with the embedded defaults, use the API, restart, stop on signals."""
    env = environment(RELAY_DATA_DIR=str(tmp_path / "data"))
    username = unique_username()
    with serving(env) as server:
        async with httpx.AsyncClient(base_url=server.api) as http:
            alice = ObscuraClient(http)
            await alice.register(username, PASSWORD)
            await alice.create_device(DeviceKeys.generate(one_time_pre_keys=3), name="laptop")
            bob = ObscuraClient(http)
            await bob.register(unique_username(), PASSWORD)
            await bob.create_device(DeviceKeys.generate())
            assert alice.session is not None
            bundles = await bob.fetch_bundles(alice.session.user_id)
            assert bundles[0]["oneTimePreKey"] is not None
        async with httpx.AsyncClient(base_url=server.management) as ops:
            assert (await ops.get("/readyz")).json()["status"] == "ok"
        log, _ = server.stop()
    assert "DEVELOPMENT MODE" in log
    assert "relay stopped" in log
    secret_file = tmp_path / "data" / "jwt-secret"
    assert secret_file.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "data" / "relay.db").exists()

    # The development secret and the data survive a restart: the old token still works.
    with serving(env) as server:
        async with httpx.AsyncClient(base_url=server.api) as http:
            response = await http.get("/v1/devices", headers=alice.auth_headers)
            assert response.status_code == 200
            assert [d["name"] for d in response.json()["devices"]] == ["laptop"]
            await ObscuraClient(http).login(username, PASSWORD)
        log, _ = server.stop(signal.SIGINT)
    assert "database migrated" not in log


def test_production_refuses_a_generated_or_default_secret(tmp_path: Path) -> None:
    base = {"RELAY_DATA_DIR": str(tmp_path), "RELAY_ENV": "production"}
    missing = run_relay("serve", env=environment(**base))
    assert missing.returncode == 2
    assert "RELAY_AUTH_JWT_SECRET must be set in production" in missing.stderr
    default = run_relay(
        "serve", env=environment(**base, OBSCURA_AUTH_JWT_SECRET="change_me_in_production")
    )
    assert default.returncode == 2
    assert "well-known default" in default.stderr
    assert not (tmp_path / "jwt-secret").exists()


def test_bad_settings_stop_start_up_naming_the_setting(tmp_path: Path) -> None:
    result = run_relay(
        "serve", "--server-port", "abc", env=environment(RELAY_DATA_DIR=str(tmp_path))
    )
    assert result.returncode == 2
    assert "--server-port: invalid value 'abc'" in result.stderr
    result = run_relay("serve", env=environment(OBSCURA_WS_ACK_BATCH_SIZE="0"))
    assert result.returncode == 2
    assert "OBSCURA_WS_ACK_BATCH_SIZE: must be at least 1" in result.stderr


def test_migrate_then_serve_without_auto_migration(tmp_path: Path) -> None:
    env = environment(RELAY_DATA_DIR=str(tmp_path))
    refused = run_relay("serve", "--auto-migrate", "false", env=env)
    assert refused.returncode == 2
    assert "run `relay migrate`" in refused.stderr
    migrated = run_relay("migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr
    head = head_revision()
    assert f"database at revision {head} (was empty)" in migrated.stdout
    again = run_relay("migrate", env=env)
    assert f"(was {head})" in again.stdout
    with serving(env, "--auto-migrate", "false") as server:
        assert "relay stopped" in server.stop()[0]


def test_the_readme_client_example_runs(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text("utf-8")
    example = readme.split("```python\n", 1)[1].split("```", 1)[0]
    env = environment(RELAY_DATA_DIR=str(tmp_path / "data"))
    with serving(env) as server:
        script = example.replace("http://127.0.0.1:3000", server.api)
        result = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        server.stop()
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[b'ciphertext 1', b'ciphertext 2']", "b'encrypted file'"]


def test_an_unreadable_push_ca_file_stops_start_up(tmp_path: Path) -> None:
    refused = run_relay(
        "serve",
        env=environment(RELAY_DATA_DIR=str(tmp_path), RELAY_PUSH_CA_FILE=str(tmp_path / "no.pem")),
    )
    assert refused.returncode == 2
    assert "RELAY_PUSH_CA_FILE: cannot load" in refused.stderr


_LOG_TIME = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*?(received SIGTERM|relay stopped)"
)


def test_an_idle_server_stops_within_a_second(tmp_path: Path, database_url: str) -> None:
    with relay_process(tmp_path, database_url) as server:
        time.sleep(1)  # every background worker is in its wait
        log, _ = server.stop()
    stamps = {
        match.group(2): datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f")
        for match in map(_LOG_TIME.match, log.splitlines())
        if match
    }
    # From the signal to the end of the root nursery, by the server's own clock.
    assert (stamps["relay stopped"] - stamps["received SIGTERM"]).total_seconds() < 1.0
