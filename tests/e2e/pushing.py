"""Push apps and FCM emulators for the end-to-end tests: settings that reach the
emulator, the wake-up app configured with ``relay apps``, what the emulator received."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx

from tests.e2e.process import Emulator, environment, run_relay


def push_settings(emulator: Emulator) -> dict[str, str]:
    """Settings that send FCM pushes to ``emulator`` (wake-ups after 2 s)."""
    return {
        "push_fcm_url": emulator.url,
        "push_fcm_token_url": f"{emulator.url}/token",
        "push_ca_file": str(emulator.state / "emulator-cert.pem"),
        "notifications_push_delay_secs": "2",
    }


async def received_by(emulator: Emulator) -> list[dict[str, object]]:
    """What the emulator accepted so far (asked over HTTP/2, as a provider is)."""
    context = ssl.create_default_context(cafile=str(emulator.state / "emulator-cert.pem"))
    async with httpx.AsyncClient(http2=True, verify=context) as client:
        response = await client.get(f"{emulator.url}/_emulator/received")
    assert response.http_version == "HTTP/2"
    received: list[dict[str, object]] = response.json()
    return received


def configure_wakeup_app(tmp_path: Path, database_url: str, emulator: Emulator) -> None:
    """``relay apps create relay`` and ``set-fcm`` with the emulator's service account."""
    env = environment(RELAY_DATA_DIR=str(tmp_path / "data"), RELAY_DATABASE_URL=database_url)
    created = run_relay("apps", "create", "relay", env=env)
    assert created.returncode == 0, created.stderr
    account = emulator.state / "fcm-service-account.json"
    configured = run_relay("apps", "set-fcm", "relay", "--service-account", str(account), env=env)
    assert configured.returncode == 0, configured.stderr
    shown = run_relay("apps", "show", "relay", env=env)
    assert '"project_id": "relay-emulated"' in shown.stdout
    assert "PRIVATE KEY" not in shown.stdout
