"""Push apps and their credentials: validation, sealing at rest, never shown, the
Obscura-compatible FCM settings, and the ``relay apps`` command."""

from __future__ import annotations

import dataclasses
import json
import logging
from functools import partial
from pathlib import Path

import pytest
import trio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sqlalchemy import select

from providers.message import Environment, Platform
from relay.config import SettingError, Settings
from relay.crypto.sealing import Vault, new_key
from relay.errors import Conflict, InvalidInput, NotFound
from relay.process.server import run_server
from relay.registry import Services, build_services
from relay.services.push.apps import AppService
from relay.services.push.queue import Delivery
from storage.db import Database
from storage.schema import push_app_credentials
from tests.e2e.process import environment, run_relay
from tests.pushkit import (
    ALERT,
    Emulators,
    Keys,
    configure_app,
    delivery,
    running_push,
    with_emulators,
)


async def test_apps_are_created_once_by_name(services: Services) -> None:
    created = await services.push_apps.create("shop-ios")
    assert (await services.push_apps.get("shop-ios")).id == created.id
    with pytest.raises(Conflict):
        await services.push_apps.create("shop-ios")
    assert [app.name for app in await services.push_apps.all()] == ["shop-ios"]
    with pytest.raises(NotFound):
        await services.push_apps.get("other")


@pytest.mark.parametrize("name", ["", "-lead", "a b", "x" * 101, "ünï", "a/b"])
async def test_bad_app_names_are_refused(services: Services, name: str) -> None:
    with pytest.raises(InvalidInput):
        await services.push_apps.create(name)


async def test_credentials_are_sealed_at_rest_and_never_shown(
    services: Services, keys: Keys, db: Database
) -> None:
    await configure_app(services.push_apps, keys, "shop")
    rows = await db.read(lambda conn: list(conn.execute(select(push_app_credentials))))
    assert {row.platform for row in rows} == {"apns", "fcm", "hms"}
    apns_pem = keys.apns_credentials().key_pem
    for row in rows:
        assert b"PRIVATE KEY" not in row.secret
        assert b"hms-client-secret" not in row.secret
        assert "PRIVATE KEY" not in row.settings
        assert "secret" not in row.settings
    info = await services.push_apps.get("shop")
    shown = json.dumps(info.providers)
    assert "PRIVATE" not in shown
    assert "hms-client-secret" not in shown
    assert info.providers["apns"] == {
        "bundle_id": "com.example.relay",
        "environment": "production",
        "key_id": "KEY1234567",
        "team_id": "TEAM123456",
    }
    opened = await services.push_apps.credentials(info.id)
    assert opened.apns is not None
    assert opened.apns.key_pem == apns_pem
    assert opened.fcm is not None
    assert opened.fcm.project_id == "relay-test"
    assert opened.hms is not None
    assert opened.hms.client_secret == "hms-client-secret"
    assert "PRIVATE" not in repr(opened)
    assert "hms-client-secret" not in repr(opened)


async def test_bad_credentials_are_400s_and_store_nothing(
    services: Services, keys: Keys, db: Database
) -> None:
    await services.push_apps.create("shop")
    rsa_pem = keys.fcm_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    good = keys.apns_credentials()

    def apns(**changes: str | bytes) -> partial[object]:
        values: dict[str, str | bytes] = {
            "key_pem": good.key_pem,
            "key_id": "KEY1234567",
            "team_id": "TEAM123456",
            "bundle_id": "b",
            **changes,
        }
        return partial(services.push_apps.set_apns, "shop", **values)

    attempts = [
        apns(key_pem=b"nope"),
        apns(key_pem=rsa_pem),
        apns(key_id="short"),
        apns(environment="staging"),
        partial(services.push_apps.set_fcm, "shop", "{}"),
        partial(services.push_apps.set_fcm, "shop", "not json"),
        partial(services.push_apps.set_hms, "shop", app_id="", client_secret="x"),
    ]
    for attempt in attempts:
        with pytest.raises(InvalidInput):
            await attempt()
    assert await db.read(lambda conn: list(conn.execute(select(push_app_credentials)))) == []


async def test_removing_credentials_and_deleting_apps(services: Services, keys: Keys) -> None:
    await configure_app(services.push_apps, keys, "shop")
    assert await services.push_apps.remove_credentials("shop", Platform.HMS)
    assert not await services.push_apps.remove_credentials("shop", Platform.HMS)
    assert set((await services.push_apps.get("shop")).providers) == {"apns", "fcm"}
    await services.push_apps.delete("shop")
    assert await services.push_apps.all() == []


async def test_credentials_sealed_with_another_key_fail_jobs_clearly(
    settings: Settings, db: Database, keys: Keys, emulators: object, tmp_path: Path
) -> None:
    first = build_services(settings, db, b"j" * 32, tmp_path, push_key=new_key())
    app_id = await configure_app(first.push_apps, keys, "shop")
    second = build_services(settings, db, b"j" * 32, tmp_path, push_key=new_key())
    async with running_push(second.push):
        [job] = await second.push.queue.enqueue(app_id, [Delivery(Platform.FCM, "t", ALERT)])

        async def failed() -> bool:
            status = (await second.push.queue.status([job]))[job]
            return status.state == "failed"

        from tests.waiting import until

        await until(failed)
    reason = (await second.push.queue.status([job]))[job].reason
    assert reason is not None
    assert "server key" in reason


async def test_secrets_are_never_logged(
    services: Services, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app_id = await configure_app(services.push_apps, keys, "shop")
    async with running_push(services.push):
        await services.push.sender.send_now(app_id, [Delivery(Platform.HMS, "t", ALERT)])
    text = caplog.text + repr(await services.push_apps.credentials(app_id))
    assert "PRIVATE KEY" not in text
    assert "hms-client-secret" not in text


async def test_obscura_fcm_settings_configure_the_wake_up_app(
    settings: Settings, services: Services, keys: Keys, tmp_path: Path
) -> None:
    path = tmp_path / "service-account.json"
    path.write_text(keys.service_account_json())
    configured = dataclasses.replace(
        settings, fcm_credentials_file=str(path), fcm_project_id="relay-test"
    )
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(run_server, configured, services, shutdown=shutdown))
        shutdown.set()
    app = await services.push_apps.get("relay")
    assert app.providers["fcm"]["project_id"] == "relay-test"


@pytest.mark.parametrize(
    ("content", "project", "message"),
    [
        (None, None, "cannot read"),
        ("{}", None, "not a service-account JSON file"),
        ("SERVICE_ACCOUNT", "other-project", "belongs to 'relay-test'"),
    ],
)
async def test_bad_obscura_fcm_settings_stop_start_up(
    settings: Settings,
    services: Services,
    keys: Keys,
    tmp_path: Path,
    content: str | None,
    project: str | None,
    message: str,
) -> None:
    path = tmp_path / "service-account.json"
    if content is not None:
        path.write_text(keys.service_account_json() if content == "SERVICE_ACCOUNT" else content)
    configured = dataclasses.replace(
        settings, fcm_credentials_file=str(path), fcm_project_id=project
    )
    with pytest.raises(SettingError, match=message):
        await run_server(configured, services, shutdown=trio.Event())


def test_the_apps_command_manages_apps(
    tmp_path: Path, database_url: str, keys: Keys, db: Database
) -> None:
    env = environment(RELAY_DATA_DIR=str(tmp_path / "data"), RELAY_DATABASE_URL=database_url)
    assert run_relay("apps", "create", "cli-app", env=env).returncode == 0
    duplicate = run_relay("apps", "create", "cli-app", env=env)
    assert duplicate.returncode == 1
    assert "already exists" in duplicate.stderr
    secret = tmp_path / "secret"
    secret.write_text("hms-client-secret\n")
    hms = run_relay(
        "apps",
        "set-hms",
        "cli-app",
        "--app-id",
        "104123456",
        "--client-secret-file",
        str(secret),
        env=env,
    )
    assert hms.returncode == 0, hms.stderr
    key = tmp_path / "key.p8"
    key.write_bytes(keys.apns_credentials().key_pem)
    apns = run_relay(
        "apps",
        "set-apns",
        "cli-app",
        "--key-file",
        str(key),
        "--key-id",
        "KEY1234567",
        "--team-id",
        "TEAM123456",
        "--bundle-id",
        "com.example.cli",
        "--environment",
        "development",
        env=env,
    )
    assert apns.returncode == 0, apns.stderr
    listed = run_relay("apps", "list", env=env)
    assert "cli-app" in listed.stdout
    assert "apns,hms" in listed.stdout
    shown = json.loads(run_relay("apps", "show", "cli-app", env=env).stdout)
    assert shown["providers"]["apns"]["environment"] == Environment.DEVELOPMENT.value
    assert "hms-client-secret" not in json.dumps(shown)
    assert run_relay("apps", "remove", "cli-app", "hms", env=env).returncode == 0
    assert run_relay("apps", "remove", "cli-app", "hms", env=env).returncode == 1
    missing = run_relay("apps", "set-fcm", "cli-app", "--service-account", "/nonexistent", env=env)
    assert missing.returncode == 1
    assert run_relay("apps", "delete", "cli-app", env=env).returncode == 0
    assert "cli-app" not in run_relay("apps", "list", env=env).stdout


def test_vaults_with_different_keys_cannot_read_each_other() -> None:
    from relay.crypto.sealing import SealingError

    sealed = Vault(new_key()).seal(b"secret")
    with pytest.raises(SealingError):
        Vault(new_key()).open(sealed)
    assert AppService  # the service is the only reader of sealed credentials


def _pkcs8(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


async def test_corrected_credentials_of_the_same_identity_work_on_the_next_send(
    settings: Settings, db: Database, keys: Keys, emulators: Emulators, tmp_path: Path
) -> None:
    # A key rotation keeps the identity (APNs key id, FCM client_email, HMS app id) and
    # changes the secret: token caches must not keep signing with the old one.
    services = build_services(
        with_emulators(settings, emulators, keys), db, b"j" * 32, tmp_path, push_key=new_key()
    )
    app_id = await services.push_apps.ensure("shop")
    apns = keys.apns_credentials()
    await services.push_apps.set_apns(
        "shop",
        key_pem=_pkcs8(ec.generate_private_key(ec.SECP256R1())),
        key_id=apns.key_id,
        team_id=apns.team_id,
        bundle_id=apns.bundle_id,
    )
    account = json.loads(keys.service_account_json())
    account["private_key"] = _pkcs8(rsa.generate_private_key(65537, 2048)).decode()
    await services.push_apps.set_fcm("shop", json.dumps(account))
    hms = keys.hms_credentials()
    await services.push_apps.set_hms("shop", app_id=hms.app_id, client_secret="an old secret")
    deliveries = [delivery(platform) for platform in Platform]
    async with running_push(services.push):
        counts = await services.push.sender.send_now(app_id, deliveries)
        assert [counts[platform].failed for platform in Platform] == [1, 1, 1]
        await configure_app(services.push_apps, keys, "shop")  # the right keys, same ids
        counts = await services.push.sender.send_now(app_id, deliveries)
        assert [counts[platform].sent for platform in Platform] == [1, 1, 1]
