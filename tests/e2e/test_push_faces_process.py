"""The compatible faces against real processes: ``relay keys create`` and ``relay keys
bouncer add`` from the command line, ``relay serve``, the official ``zulip`` client, and
``relay emulator fcm`` receiving what the PowerAuth and Zulip faces send."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import nacl.secret

from storage.db import Database
from tests.e2e.process import emulator_process, environment, relay_process, run_relay
from tests.e2e.pushing import configure_wakeup_app, push_settings, received_by
from tests.faces.zulipkit import (
    PUSH_KEY,
    call_endpoint,
    official_client,
    register_request,
    sealed_registration,
)
from tests.factories import PASSWORD, new_account, unique_username
from tests.waiting import until


async def test_keys_from_the_command_line_open_the_faces(
    tmp_path: Path, database_url: str, db: Database
) -> None:
    env = environment(RELAY_DATA_DIR=str(tmp_path / "data"), RELAY_DATABASE_URL=database_url)
    created = run_relay("keys", "create", "--name", "backend", env=env)
    assert created.returncode == 0, created.stderr
    integrator_key = created.stdout.strip()
    listed = run_relay("keys", "list", env=env)
    assert listed.stdout.startswith("backend\t")
    assert integrator_key not in listed.stdout
    added = run_relay("keys", "bouncer", "add", env=env)
    assert added.returncode == 0, added.stderr
    bouncer_public = added.stdout.strip()
    assert run_relay("keys", "bouncer", "list", env=env).stdout.split() == [bouncer_public]

    with emulator_process("fcm", tmp_path / "fcm") as emulator:
        configure_wakeup_app(tmp_path, database_url, emulator)
        settings = {**push_settings(emulator), "zulip_push_app": "relay"}
        with relay_process(tmp_path, database_url, **settings) as server:
            async with httpx.AsyncClient(base_url=server.api, timeout=30) as http:
                headers = {"Authorization": f"Bearer {integrator_key}"}
                assert (await http.get("/admin/app/list")).status_code == 401
                listed_apps = (await http.get("/admin/app/list", headers=headers)).json()
                assert listed_apps["responseObject"]["applicationList"][0]["fcm"] is True
                device = {
                    "appId": "relay",
                    "token": "powerauth-phone",
                    "platform": "fcm",
                    "activationId": "act-1",
                    "userId": "client-42",
                }
                response = await http.post(
                    "/push/device/create", json={"requestObject": device}, headers=headers
                )
                assert response.json() == {"status": "OK"}
                send = {
                    "appId": "relay",
                    "message": {"userId": "client-42", "body": {"title": "Hi"}},
                }
                response = await http.post(
                    "/push/message/send", json={"requestObject": send}, headers=headers
                )
                assert response.json()["responseObject"]["fcm"]["sent"] == 1

                username = unique_username()
                await new_account(http, username)
            anonymous = await official_client(server.api, username, "x" * 32)
            key = await call_endpoint(
                anonymous, "fetch_api_key", {"username": username, "password": PASSWORD}
            )
            client = await official_client(server.api, username, key["api_key"])
            request = register_request(
                bouncer_public_key=bouncer_public,
                encrypted_push_registration=sealed_registration(public_key=bouncer_public),
            )
            assert (await call_endpoint(client, "mobile_push/register", request))["result"] == (
                "success"
            )
            result = await call_endpoint(client, "mobile_push/e2ee/test_notification")
            assert result["result"] == "success", result

            async def both_sent() -> bool:
                return len(await received_by(emulator)) == 2

            await until(both_sent, seconds=20)
            first, second = await received_by(emulator)
            assert first["token"] == "powerauth-phone"
            data = second["payload"]["data"]  # type: ignore[index]
            sealed = base64.b64decode(data["encrypted_data"])
            assert json.loads(nacl.secret.SecretBox(PUSH_KEY).decrypt(sealed))["type"] == "test"
