"""The real ``relay`` command in a subprocess, as a user runs it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from relay.client import DeviceKeys, ObscuraClient
from tests.factories import PASSWORD, unique_username

LISTENING = re.compile(r"relay listening: API (\S+), management (\S+)")
START_TIMEOUT = 120


def _environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELAY_", "OBSCURA_"))}
    # Let the child cache bytecode: restarts are part of these tests.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(extra)
    return env


def _relay(
    *args: str, env: dict[str, str], timeout: float = START_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "relay", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )


@dataclass
class Serving:
    """A running ``relay serve`` process."""

    api: str
    management: str
    process: subprocess.Popen[str]
    startup_log: str

    def stop(self, sig: int = signal.SIGTERM) -> str:
        """Signal the process, require a clean exit, and return its whole log."""
        self.process.send_signal(sig)
        _, rest = self.process.communicate(timeout=60)
        assert self.process.returncode == 0, self.startup_log + rest
        return self.startup_log + rest


@contextmanager
def serving(env: dict[str, str], *args: str) -> Iterator[Serving]:
    """Start ``relay serve`` on free ports."""
    process = subprocess.Popen(
        [sys.executable, "-m", "relay", "serve", "--server-port", "0", "--mgmt-port", "0", *args],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert process.stderr is not None
    log: list[str] = []
    try:
        for line in process.stderr:
            log.append(line)
            match = LISTENING.search(line)
            if match:
                break
        else:
            pytest.fail("relay serve exited before listening:\n" + "".join(log))
        yield Serving(match.group(1), match.group(2), process, "".join(log))
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


async def test_embedded_server_lifecycle(tmp_path: Path) -> None:
    """Serve with the embedded defaults, use the API, restart, stop on signals."""
    env = _environment(RELAY_DATA_DIR=str(tmp_path / "data"))
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
        log = server.stop()
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
        log = server.stop(signal.SIGINT)
    assert "database migrated" not in log


def test_production_refuses_a_generated_or_default_secret(tmp_path: Path) -> None:
    base = {"RELAY_DATA_DIR": str(tmp_path), "RELAY_ENV": "production"}
    missing = _relay("serve", env=_environment(**base))
    assert missing.returncode == 2
    assert "RELAY_AUTH_JWT_SECRET must be set in production" in missing.stderr
    default = _relay(
        "serve", env=_environment(**base, OBSCURA_AUTH_JWT_SECRET="change_me_in_production")
    )
    assert default.returncode == 2
    assert "well-known default" in default.stderr
    assert not (tmp_path / "jwt-secret").exists()


def test_bad_settings_stop_start_up_naming_the_setting(tmp_path: Path) -> None:
    result = _relay("serve", "--server-port", "abc", env=_environment(RELAY_DATA_DIR=str(tmp_path)))
    assert result.returncode == 2
    assert "--server-port: invalid value 'abc'" in result.stderr
    result = _relay("serve", env=_environment(OBSCURA_WS_ACK_BATCH_SIZE="0"))
    assert result.returncode == 2
    assert "OBSCURA_WS_ACK_BATCH_SIZE: must be at least 1" in result.stderr


def test_migrate_then_serve_without_auto_migration(tmp_path: Path) -> None:
    env = _environment(RELAY_DATA_DIR=str(tmp_path))
    refused = _relay("serve", "--auto-migrate", "false", env=env)
    assert refused.returncode == 2
    assert "run `relay migrate`" in refused.stderr
    migrated = _relay("migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr
    assert "database at revision 0001 (was empty)" in migrated.stdout
    again = _relay("migrate", env=env)
    assert "(was 0001)" in again.stdout
    with serving(env, "--auto-migrate", "false") as server:
        assert "relay stopped" in server.stop()
