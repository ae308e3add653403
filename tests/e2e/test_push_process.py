"""Push wake-ups end to end with real processes: ``relay emulator fcm`` over TLS,
``relay apps`` configuring the wake-up app from the emulator's credentials, and
``relay serve`` delivering — including across a restart of the server."""

from __future__ import annotations

import signal
import ssl
from pathlib import Path

import httpx
import trio

from relay.client import Outgoing
from storage.db import Database
from tests.e2e.process import Emulator, emulator_process, environment, relay_process, run_relay
from tests.factories import new_device
from tests.waiting import until


def _push_settings(emulator: Emulator) -> dict[str, str]:
    return {
        "push_fcm_url": emulator.url,
        "push_fcm_token_url": f"{emulator.url}/token",
        "push_ca_file": str(emulator.state / "emulator-cert.pem"),
        "notifications_push_delay_secs": "2",
    }


async def _received(emulator: Emulator) -> list[dict[str, object]]:
    context = ssl.create_default_context(cafile=str(emulator.state / "emulator-cert.pem"))
    async with httpx.AsyncClient(http2=True, verify=context) as client:
        response = await client.get(f"{emulator.url}/_emulator/received")
    assert response.http_version == "HTTP/2"
    received: list[dict[str, object]] = response.json()
    return received


def _configure(tmp_path: Path, database_url: str, emulator: Emulator) -> None:
    env = environment(RELAY_DATA_DIR=str(tmp_path / "data"), RELAY_DATABASE_URL=database_url)
    created = run_relay("apps", "create", "relay", env=env)
    assert created.returncode == 0, created.stderr
    account = emulator.state / "fcm-service-account.json"
    configured = run_relay("apps", "set-fcm", "relay", "--service-account", str(account), env=env)
    assert configured.returncode == 0, configured.stderr
    shown = run_relay("apps", "show", "relay", env=env)
    assert '"project_id": "relay-emulated"' in shown.stdout
    assert "PRIVATE KEY" not in shown.stdout


async def test_an_offline_device_is_woken_once_and_a_restart_loses_no_wake_up(
    tmp_path: Path, database_url: str, db: Database
) -> None:
    with emulator_process("fcm", tmp_path / "fcm") as emulator:
        _configure(tmp_path, database_url, emulator)
        with relay_process(tmp_path, database_url, **_push_settings(emulator)) as server:
            async with httpx.AsyncClient(base_url=server.api, timeout=30) as http:
                sender, recipient = await new_device(http), await new_device(http)
                await recipient.client.put_push_token("token-of-the-phone")
                for index in range(5):
                    batch = [Outgoing(recipient.id, b"%d" % index)]
                    assert await sender.client.send_messages(batch) == []

                async def one_wake_up() -> bool:
                    return len(await _received(emulator)) == 1

                await until(one_wake_up, seconds=20)
                await trio.sleep(2)
                [wake_up] = await _received(emulator)
                assert wake_up["token"] == "token-of-the-phone"
                assert wake_up["payload"]["data"] == {"action": "check"}  # type: ignore[index]

                # The next wake-up is queued, then the server stops before it is due.
                assert await sender.client.send_messages([Outgoing(recipient.id, b"x")]) == []
            log, _ = server.stop(signal.SIGTERM)
        assert "Traceback" not in log
        assert len(await _received(emulator)) == 1
        with relay_process(tmp_path, database_url, **_push_settings(emulator)):

            async def second_wake_up() -> bool:
                return len(await _received(emulator)) == 2

            await until(second_wake_up, seconds=20)
