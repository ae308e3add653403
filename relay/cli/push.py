"""``relay push jobs``: what the push queue did (queued and synchronous sends alike);
``relay push test``: one notification to one token, and the provider's verdict."""

from __future__ import annotations

import argparse
import re
import time
import uuid
from datetime import datetime

from relay.cli.admin import open_store, run_admin
from relay.cli.command import (
    Command,
    add_apns_environment,
    add_store_flags,
    iso_time,
    required,
)
from relay.config import Settings

_RELATIVE = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str) -> int:
    """``--since``: an ISO 8601 time, or an age such as ``30m``, ``2h``, ``1d``; as µs
    since the epoch."""
    relative = _RELATIVE.match(text.strip())
    if relative:
        seconds = int(relative.group(1)) * _UNITS[relative.group(2)]
        return int((time.time() - seconds) * 1_000_000)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected an ISO 8601 time or an age like 30m, 2h, 1d"
        ) from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r}: give a time zone (Z or +hh:mm)")
    return int(moment.timestamp() * 1_000_000)


def _limit(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 1000:
        raise argparse.ArgumentTypeError(f"{text!r}: expected 1 to 1000")
    return int(text)


def _add_arguments(push: argparse.ArgumentParser) -> None:
    actions = push.add_subparsers(dest="action", required=True)
    jobs = actions.add_parser("jobs", help="list recent push jobs, newest first")
    jobs.add_argument("--app", default=None, help="only this app's jobs")
    jobs.add_argument("--failed", action="store_true", help="only jobs that failed")
    jobs.add_argument(
        "--since", type=parse_since, default=None, help="ISO 8601 time or age (30m, 2h, 1d)"
    )
    jobs.add_argument(
        "--limit", type=_limit, default=100, help="at most this many, 1-1000 (default 100)"
    )
    test = actions.add_parser("test", help="send one test notification; print the verdict")
    test.add_argument("app", help="the app whose credentials send it")
    test.add_argument("--platform", required=True, choices=("apns", "fcm", "hms"), help="provider")
    test.add_argument("--token", required=True, help="the device token")
    add_apns_environment(test, "APNs environment (default production)")
    for action in (jobs, test):
        add_store_flags(action)


def _run(args: argparse.Namespace, settings: Settings | None) -> int:
    from providers.message import Environment, Platform, Verdict
    from relay.crypto.sealing import Vault
    from relay.errors import NotFound
    from relay.registry import push_config
    from relay.services.push.apps import AppService
    from relay.services.push.queue import DueSignal, PushQueue, masked_token
    from relay.services.push.sender import probe

    configured = required(settings)
    db, push_key = open_store(configured)
    apps = AppService(db, Vault(push_key))
    queue = PushQueue(db, DueSignal(), max_attempts=configured.push_max_attempts)
    verdict: list[Verdict] = []

    async def app_named(name: str) -> uuid.UUID:
        app_id = await apps.app_id(name)
        if app_id is None:
            raise NotFound(f"no app named {name!r}")
        return app_id

    async def run() -> None:
        if args.action == "jobs":
            app_id = None if args.app is None else await app_named(args.app)
            names = {app.id: app.name for app in await apps.all()}
            jobs = await queue.recent(
                app_id=app_id,
                failed_only=args.failed,
                since=args.since,
                limit=args.limit,
            )
            for job in jobs:
                app = "wake-up" if job.app_id is None else names.get(job.app_id, str(job.app_id))
                print(
                    f"{iso_time(job.updated_at)}\t{job.state}\t{app}\t{job.platform or '-'}\t"
                    f"{masked_token(job.token)}\t{job.attempts}\t{job.reason or ''}"
                )
            return
        app_id = await app_named(args.app)
        credentials = await apps.credentials(app_id)
        target = (Platform(args.platform), Environment(args.environment), args.token)
        outcome = await probe(push_config(configured), credentials, target)
        verdict.append(outcome.verdict)
        status = f" (HTTP {outcome.status})" if outcome.status else ""
        print(f"{outcome.verdict.value}{status}: {outcome.reason}")

    code = run_admin(db, run)
    if code == 0 and verdict and verdict[0] is not Verdict.SENT:
        return 1
    return code


PUSH = Command("push", "push jobs and a test send", _add_arguments, _run)
