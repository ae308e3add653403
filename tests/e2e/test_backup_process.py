"""``relay backup`` while the server runs, ``relay restore`` into a new data directory,
``relay serve`` on it: accounts, sessions (the generated JWT secret came along), queued
messages, attachments, backups and push apps (sealed with the generated push key) are
all there. A damaged backup and a non-empty target are refused."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import httpx

from providers.emulators.standalone import fcm_emulator
from relay.client import ObscuraClient, Outgoing, connect_gateway
from tests.conftest import UNLIMITED
from tests.e2e.process import environment, run_relay, serving
from tests.factories import Device, new_device
from tests.messaging import numbered, receive_envelopes


def _env(data_dir: Path) -> dict[str, str]:
    # The data directory's own SQLite database and generated secrets: what a backup holds.
    return environment(
        RELAY_DATA_DIR=str(data_dir),
        RELAY_RATE_LIMIT_PER_SECOND=str(UNLIMITED),
        RELAY_RATE_LIMIT_BURST=str(UNLIMITED),
        RELAY_RATE_LIMIT_AUTH_PER_SECOND=str(UNLIMITED),
        RELAY_RATE_LIMIT_AUTH_BURST=str(UNLIMITED),
        RELAY_AUTH_PASSWORD_HASH_MEMORY_KIB="64",
        RELAY_AUTH_PASSWORD_HASH_ITERATIONS="1",
    )


def _through(http: httpx.AsyncClient, device: Device) -> Device:
    return dataclasses.replace(device, client=ObscuraClient(http, device.client.session))


async def test_a_backup_taken_while_serving_restores_into_a_new_data_directory(
    tmp_path: Path,
) -> None:
    original, restored, copy = tmp_path / "original", tmp_path / "restored", tmp_path / "copy"
    env = _env(original)
    (tmp_path / "fcm").mkdir()
    fcm_emulator(tmp_path / "fcm", "https://127.0.0.1:9/token")  # writes a service account
    account = tmp_path / "fcm" / "fcm-service-account.json"
    for command in (
        ("apps", "create", "relay"),
        ("apps", "set-fcm", "relay", "--service-account", str(account)),
    ):
        done = run_relay(*command, env=env)
        assert done.returncode == 0, done.stderr
    content = bytes(range(256)) * 300
    with serving(env, "--server-port", "0", "--mgmt-port", "0") as server:
        async with httpx.AsyncClient(base_url=server.api, timeout=30) as http:
            alice, bob = await new_device(http), await new_device(http)
            for index in range(3):
                await bob.client.send_messages([Outgoing(alice.id, numbered(index))])
            attachment = await alice.client.upload_attachment(content)
            version = await alice.client.upload_backup(b"state" * 10, replaces=None)
            done = run_relay("backup", str(copy), env=env)
            assert done.returncode == 0, done.stderr
            assert done.stdout.startswith(f"backed up into {copy}: database sqlite; 2 blobs")
            # Sent after the backup: not in it.
            await bob.client.send_messages([Outgoing(alice.id, b"later")])
        server.stop()

    done = run_relay("restore", str(copy), env=_env(restored))
    assert done.returncode == 0, done.stderr
    assert "secrets: jwt-secret, push-credentials-key" in done.stdout
    with serving(_env(restored), "--server-port", "0", "--mgmt-port", "0") as server:
        async with httpx.AsyncClient(base_url=server.api, timeout=30) as http:
            alice_again = _through(http, alice)  # her token, signed before the backup
            async with connect_gateway(alice_again.client) as gateway:
                batches = await receive_envelopes(gateway, 3, seconds=10)
            assert [e.message for b in batches for e in b] == [numbered(i) for i in range(3)]
            assert await alice_again.client.download_attachment(attachment.id) == content
            backup = await alice_again.client.download_backup()
            assert backup is not None
            assert (backup.version, backup.data) == (version, b"state" * 10)
        server.stop()
    shown = run_relay("apps", "show", "relay", env=_env(restored))
    assert '"project_id": "relay-emulated"' in shown.stdout  # the push key opens it

    again = run_relay("restore", str(copy), env=_env(restored))
    assert again.returncode == 2
    assert "is not empty: restore into a new one" in again.stderr

    blob = next(path for path in (copy / "blobs").rglob("*") if path.is_file())
    blob.write_bytes(b"tampered" + blob.read_bytes()[8:])
    damaged = run_relay("restore", str(copy), env=_env(tmp_path / "elsewhere"))
    assert damaged.returncode == 2
    assert "is missing or damaged (checksum)" in damaged.stderr
    assert not (tmp_path / "elsewhere").exists() or not any((tmp_path / "elsewhere").iterdir())
    shutil.rmtree(copy)
