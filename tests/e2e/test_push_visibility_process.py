"""Push failures are visible to an operator, against real processes (``relay serve``, the
FCM emulator, the ``relay`` command): a SYNCHRONOUS PowerAuth send is recorded like a
queued one and listed by ``relay push jobs``; an app whose credentials the provider does
not know gets one warning with a count; ``relay push test`` prints the provider's
verdict — including the underlying cause of a transport failure (an untrusted
certificate); the PowerAuth admin API lists the same jobs for the integrator."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx

from providers.emulators.standalone import fcm_emulator
from storage.db import Database
from tests.e2e.process import emulator_process, environment, relay_process, run_relay
from tests.e2e.pushing import configure_wakeup_app, push_settings


async def _register(
    http: httpx.AsyncClient, key: str, app: str, user: str, token: str
) -> httpx.Response:
    device = {
        "appId": app,
        "token": token,
        "platform": "fcm",
        "activationId": f"act-{uuid.uuid4().hex[:8]}",
        "userId": user,
    }
    return await http.post(
        "/push/device/create",
        json={"requestObject": device},
        headers={"Authorization": f"Bearer {key}"},
    )


async def test_failures_are_listed_warned_and_probed(
    tmp_path: Path, database_url: str, db: Database
) -> None:
    with emulator_process("fcm", tmp_path / "fcm") as emulator:
        configure_wakeup_app(tmp_path, database_url, emulator)
        env = environment(
            RELAY_DATA_DIR=str(tmp_path / "data"),
            RELAY_DATABASE_URL=database_url,
            RELAY_PUSH_FCM_URL=emulator.url,
            RELAY_PUSH_FCM_TOKEN_URL=f"{emulator.url}/token",
            RELAY_PUSH_CA_FILE=str(emulator.state / "emulator-cert.pem"),
        )
        # An app whose service account the provider has never heard of.
        (tmp_path / "stranger").mkdir()
        fcm_emulator(tmp_path / "stranger", f"{emulator.url}/token")
        stranger = tmp_path / "stranger" / "fcm-service-account.json"
        for command in (
            ("apps", "create", "broken"),
            ("apps", "set-fcm", "broken", "--service-account", str(stranger)),
        ):
            assert run_relay(*command, env=env).returncode == 0
        key = run_relay("keys", "create", "--name", "ops", env=env).stdout.strip()
        with relay_process(tmp_path, database_url, **push_settings(emulator)) as server:
            async with httpx.AsyncClient(base_url=server.api, timeout=30) as http:
                for app in ("relay", "broken"):
                    response = await _register(http, key, app, "client-1", f"{app}-phone-token")
                    assert response.json() == {"status": "OK"}
                for app, counts in (("relay", {"sent": 1}), ("broken", {"failed": 1})):
                    for _ in range(3 if app == "broken" else 1):
                        send = {"appId": app, "message": {"userId": "client-1", "body": {}}}
                        response = await http.post(
                            "/push/message/send",
                            json={"requestObject": send},
                            headers={"Authorization": f"Bearer {key}"},
                        )
                        fcm = response.json()["responseObject"]["fcm"]
                        assert {k: fcm[k] for k in counts} == counts
                # The same listing on the PowerAuth admin API, for the integrator.
                auth = {"Authorization": f"Bearer {key}"}
                everything = (await http.get("/admin/push/jobs", headers=auth)).json()
                assert len(everything["responseObject"]["jobs"]) == 4
                broken = await http.get(
                    "/admin/push/jobs",
                    params={"appId": "broken", "failed": "true", "since": "2020-01-01T00:00Z"},
                    headers=auth,
                )
                jobs = broken.json()["responseObject"]["jobs"]
                assert [(j["appId"], j["status"]) for j in jobs] == [("broken", "FAILED")] * 3
                assert jobs[0]["token"] == "broken…en"
                assert jobs[0]["timestampUpdated"].endswith("+00:00")
                refused = await http.get(
                    "/admin/push/jobs", params={"since": "yesterday"}, headers=auth
                )
                assert refused.status_code == 400
                assert refused.json()["status"] == "ERROR"
                assert (await http.get("/admin/push/jobs")).status_code == 401
            listed = run_relay("push", "jobs", env=env)
            failed = run_relay("push", "jobs", "--failed", "--app", "broken", env=env)
            recent = run_relay("push", "jobs", "--since", "10m", env=env)
        log = server.startup_log
    assert listed.returncode == 0, listed.stderr
    rows = [line.split("\t") for line in listed.stdout.splitlines()]
    assert sorted((row[1], row[2]) for row in rows) == [
        ("failed", "broken"),
        ("failed", "broken"),
        ("failed", "broken"),
        ("sent", "relay"),
    ]
    assert all(row[0].endswith("+00:00") for row in rows)
    assert "relay-phone-token" not in listed.stdout  # tokens are shown masked
    assert len(failed.stdout.splitlines()) == 3
    assert "credentials" in failed.stdout
    assert len(recent.stdout.splitlines()) == 4
    # Three refusals of one kind: one warning, with its count (the next comes after 60 s).
    warnings = [line for line in log.splitlines() if "via fcm: " in line]
    assert len(warnings) == 1, warnings
    assert "1 failed (credentials" in warnings[0]

    with emulator_process("fcm", tmp_path / "fcm") as emulator:
        probe_env = {**env, "RELAY_PUSH_FCM_URL": emulator.url}
        probe_env["RELAY_PUSH_FCM_TOKEN_URL"] = f"{emulator.url}/token"
        sent = run_relay(
            "push", "test", "relay", "--platform", "fcm", "--token", "any", env=probe_env
        )
        assert (sent.returncode, sent.stdout.split(":")[0]) == (0, "sent (HTTP 200)")
        refused = run_relay(
            "push", "test", "broken", "--platform", "fcm", "--token", "any", env=probe_env
        )
        assert refused.returncode == 1
        assert refused.stdout.startswith("failed")
        untrusted = {k: v for k, v in probe_env.items() if k != "RELAY_PUSH_CA_FILE"}
        broken_tls = run_relay(
            "push", "test", "relay", "--platform", "fcm", "--token", "any", env=untrusted
        )
        assert broken_tls.returncode == 1
        assert broken_tls.stdout.startswith("retry: transport:")
        assert "certificate" in broken_tls.stdout.lower()
