"""``relay bench campaign``: a PowerAuth campaign to D devices through the durable queue
to the APNs, FCM and HMS emulators (a third of the devices each).

Set-up goes through the command line as an operator would (``relay migrate``,
``relay apps``, ``relay keys create``), the registrations are written straight into the
database (creating 100,000 devices over HTTP would measure set-up, not the campaign),
and the campaign runs over the PowerAuth API: create, add users, ``send/live``, then the
detail is polled until every device's push is sent. Reported: seconds until the pages
are queued and until every push is delivered, pushes/s, server CPU µs per push.
"""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import ExitStack
from typing import Any

import httpx
import trio
from sqlalchemy import func, select

from bench import report
from bench.processes import (
    add_database_option,
    cpu_seconds,
    emulator,
    relay_server,
    run_relay,
    scratch_run,
)
from storage.db import create_engine
from storage.ids import now_us, uuid7
from storage.repos import push_apps
from storage.schema import push_jobs, push_registrations

APP = "bench"
RUN_TIMEOUT_SECS = 1800
_USERS_PER_REQUEST = 10_000


def failure_reasons(database: str) -> dict[str, int]:
    """Why pushes failed, by reason (a campaign with failures says why in its report)."""
    engine = create_engine(database)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(push_jobs.c.reason, func.count())
                .where(push_jobs.c.state == "failed")
                .group_by(push_jobs.c.reason)
            )
            return {str(reason): int(count) for reason, count in rows}
    finally:
        engine.dispose()


def register_devices(database: str, count: int) -> list[str]:
    """``count`` users with one registration each, platforms in turn; their names."""
    engine = create_engine(database)
    try:
        with engine.begin() as conn:
            app = push_apps.by_name(conn, APP)
            assert app is not None
            now = now_us()
            users = [f"user{index:07d}" for index in range(count)]
            rows = []
            for index, user in enumerate(users):
                platform = ("apns", "fcm", "hms")[index % 3]
                rows.append(
                    {
                        "id": uuid7(),
                        "app_id": app.id,
                        "user_name": user,
                        "face": "powerauth",
                        "face_ref": f"activation-{index}",
                        "platform": platform,
                        "environment": "production",
                        "token": f"{index:064x}" if platform == "apns" else f"{platform}-{index}",
                        "push_key": None,
                        "active": True,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
            for start in range(0, len(rows), 5000):
                conn.execute(push_registrations.insert(), rows[start : start + 5000])
    finally:
        engine.dispose()
    return users


async def one_run(api: str, key: str, pid: int, users: list[str]) -> dict[str, float]:
    """Create the campaign, add its users, send it, wait until every push is sent."""
    headers = {"Authorization": f"Bearer {key}"}
    body = {"title": "Spring sale", "body": "Everything is 20% off today", "extras": {"id": "42"}}
    async with httpx.AsyncClient(base_url=api, headers=headers, timeout=300) as http:
        created = await http.post(
            "/push/campaign/create", json={"requestObject": {"appId": APP, "message": body}}
        )
        campaign = created.json()["responseObject"]["id"]
        for start in range(0, len(users), _USERS_PER_REQUEST):
            added = await http.put(
                f"/push/campaign/{campaign}/user/add",
                json={"requestObject": users[start : start + _USERS_PER_REQUEST]},
            )
            assert added.status_code == 200, added.text
        cpu, started = cpu_seconds(pid), time.perf_counter()
        sent = await http.post(f"/push/campaign/send/live/{campaign}")
        assert sent.status_code == 200, sent.text
        queued_at = None
        with trio.fail_after(RUN_TIMEOUT_SECS):
            while True:
                detail = (await http.get(f"/push/campaign/{campaign}/detail")).json()
                progress = detail["responseObject"]["progress"]
                if queued_at is None and progress["state"] == "sent":
                    queued_at = time.perf_counter() - started
                if queued_at is not None and progress["pending"] == 0:
                    break
                await trio.sleep(0.25)
        elapsed, used = time.perf_counter() - started, cpu_seconds(pid) - cpu
    assert progress["devices"] == len(users), progress
    return {
        "devices": float(len(users)),
        "seconds_to_queue": queued_at,
        "seconds_to_deliver": elapsed,
        "pushes_per_s": progress["sent"] / elapsed,
        "failed": float(progress["failed"]),
        "server_cpu_us_per_push": used / len(users) * 1e6,
    }


DESCRIPTION = (
    "A PowerAuth campaign to D devices through the durable queue to the APNs, FCM and HMS "
    "emulators."
)


def command_line() -> argparse.ArgumentParser:
    """The scenario's options."""
    parser = argparse.ArgumentParser(prog="relay bench campaign", description=DESCRIPTION)
    parser.add_argument("--devices", type=int, default=100_000, help="devices in the campaign")
    parser.add_argument("--concurrency", type=int, default=500, help="pushes in flight")
    report.add_run_options(parser, repetitions=1)
    add_database_option(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the scenario and write the report."""
    parser = command_line()
    args = parser.parse_args(argv)
    if args.quick:
        args.devices, args.repetitions = 300, 1
    if not 3 <= args.devices <= 1_000_000:
        parser.error("devices must be 3..1000000")
    with ExitStack() as stack:
        root, database = stack.enter_context(scratch_run(args.database_url))
        # One state directory: the three emulators share its certificate (one CA file).
        state = root / "emulators"
        emulators = {
            kind: stack.enter_context(emulator(kind, state)) for kind in ("apns", "fcm", "hms")
        }
        settings = {
            "data_dir": str(root / "data"),
            "database_url": database,
            "push_apns_production_url": emulators["apns"].url,
            "push_fcm_url": emulators["fcm"].url,
            "push_fcm_token_url": f"{emulators['fcm'].url}/token",
            "push_hms_url": emulators["hms"].url,
            "push_hms_token_url": f"{emulators['hms'].url}/oauth2/v3/token",
            "push_ca_file": emulators["apns"].ca_file,
            "notifications_worker_concurrency": str(args.concurrency),
        }
        run_relay("migrate", settings=settings)
        run_relay("apps", "create", APP, settings=settings)
        apns = emulators["apns"].credentials("apns")
        run_relay(
            "apps", "set-apns", APP,
            "--key-file", str(state / "apns-key.p8"),
            "--key-id", apns["key_id"], "--team-id", apns["team_id"],
            "--bundle-id", apns["bundle_id"], settings=settings,
        )  # fmt: skip
        account = state / "fcm-service-account.json"
        run_relay("apps", "set-fcm", APP, "--service-account", str(account), settings=settings)
        hms = emulators["hms"].credentials("hms")
        secret = root / "hms-secret.txt"
        secret.write_text(hms["client_secret"])
        run_relay(
            "apps", "set-hms", APP, "--app-id", hms["app_id"],
            "--client-secret-file", str(secret), settings=settings,
        )  # fmt: skip
        key = run_relay("keys", "create", "--name", "bench", settings=settings).strip()
        users = register_devices(database, args.devices)
        samples: list[dict[str, Any]] = []
        with (
            relay_server(settings) as server,
            report.progress("campaign", args.repetitions) as step,
        ):
            for repetition in range(args.repetitions):
                sample = trio.run(one_run, server.api, key, server.pid, users)
                reasons = failure_reasons(database)
                samples.append(
                    {
                        "variant": f"{args.devices} devices",
                        "repetition": repetition,
                        **sample,
                        "failure_reasons": reasons,
                    }
                )
                step.advance(f"{sample['pushes_per_s']:,.0f} pushes/s")
    results = report.by_variant(samples)
    report.write(
        args.output,
        "campaign",
        parameters=vars(args),
        results=results,
        samples=samples,
        panels=(
            report.Panel("campaign pushes/s", "pushes/s", report.bars(results, "pushes_per_s")),
            report.Panel("time to deliver all", "s", report.bars(results, "seconds_to_deliver")),
        ),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
