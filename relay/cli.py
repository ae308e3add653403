"""The ``relay`` command.

``relay serve``     run the API and management listeners (embedded SQLite by default)
``relay migrate``   bring the database schema up to date and exit
``relay apps``      manage push apps and their provider credentials
``relay keys``      integrator keys (PowerAuth API) and Zulip bouncer key pairs
``relay emulator``  run a local APNs, FCM or HMS emulator (tests, benchmarks)
``relay bench``     run a benchmark scenario and write its report to bench-results/

Every setting is a flag of both commands (``relay serve --help`` lists them with their
environment variables); see :mod:`relay.config`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from relay import __version__
from relay.config import SETTINGS, SettingError, Settings, load_settings, unknown_variables
from relay.process.logs import configure_logging

# The server stack (trio, Quart, SQLAlchemy, Alembic) is imported by the commands that
# need it, so that `--help`, `--version` and configuration errors answer at once.

log = logging.getLogger("relay")


def _add_setting_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("settings (flag, then RELAY_*, then OBSCURA_*)")
    for spec in SETTINGS:
        default = "hidden" if spec.secret else spec.default
        if isinstance(default, tuple):
            default = ",".join(str(item) for item in default)
        help_text = f"{spec.help} [env {spec.env_names[0]}; default: {default}]"
        is_bool = spec.default is True or spec.default is False
        group.add_argument(
            *spec.flags,
            dest=spec.name,
            metavar="VALUE",
            help=help_text.replace("%", "%%"),
            default=argparse.SUPPRESS,
            nargs="?" if is_bool else None,
            const="true" if is_bool else None,
        )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="relay", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"relay {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the server")
    _add_setting_flags(serve)
    migrate = commands.add_parser("migrate", help="apply database migrations and exit")
    _add_setting_flags(migrate)
    _add_apps_parser(commands)
    _add_keys_parser(commands)
    bench = commands.add_parser("bench", help="run a benchmark scenario (see bench/)")
    # The product does not depend on the benchmark harness: its scenarios are looked up
    # when `relay bench` runs.
    bench.add_argument("scenario", help="push, relay-live, relay-drain, gateway-idle, rest, ...")
    bench.add_argument("options", nargs=argparse.REMAINDER, help="the scenario's options")
    emulator = commands.add_parser("emulator", help="run a push provider emulator over TLS")
    emulator.add_argument("kind", choices=("apns", "fcm", "hms"))
    emulator.add_argument("--port", type=int, required=True, help="TCP port (0: pick one)")
    emulator.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    emulator.add_argument(
        "--state-dir",
        default="./emulator-state",
        help="certificate and trusted credentials (created on first use)",
    )
    emulator.add_argument("--max-streams", type=int, default=1000, help="MAX_CONCURRENT_STREAMS")
    emulator.add_argument(
        "--no-record", action="store_true", help="keep no record of accepted notifications"
    )
    emulator.add_argument(
        "--no-header-checks",
        action="store_true",
        help="skip h2's per-request header checks (benchmarks)",
    )
    return parser


def _add_apps_parser(commands: Any) -> None:
    apps = commands.add_parser("apps", help="manage push apps and their credentials")
    actions = apps.add_subparsers(dest="action", required=True)
    for name, text in (
        ("list", "list apps"),
        ("create", "create an app"),
        ("show", "show an app's public settings"),
        ("delete", "delete an app with its credentials and queued pushes"),
    ):
        action = actions.add_parser(name, help=text)
        if name != "list":
            action.add_argument("name")
        _add_setting_flags(action)
    apns = actions.add_parser("set-apns", help="token-based APNs credentials (.p8 key)")
    apns.add_argument("name")
    apns.add_argument("--key-file", required=True, help="the .p8 signing key")
    apns.add_argument("--key-id", required=True)
    apns.add_argument("--team-id", required=True)
    apns.add_argument("--bundle-id", required=True, help="the apns-topic")
    apns.add_argument("--environment", default="production", choices=("production", "development"))
    fcm = actions.add_parser("set-fcm", help="FCM HTTP v1 credentials (service account)")
    fcm.add_argument("name")
    fcm.add_argument("--service-account", required=True, help="service-account JSON file")
    fcm.add_argument("--package-name", default=None, help="the Android app's package name")
    hms = actions.add_parser("set-hms", help="HMS Push Kit credentials (OAuth client)")
    hms.add_argument("name")
    hms.add_argument("--app-id", required=True)
    hms.add_argument("--client-secret-file", required=True, help="file holding the secret")
    hms.add_argument("--project-id", default=None)
    remove = actions.add_parser("remove", help="remove one provider's credentials")
    remove.add_argument("name")
    remove.add_argument("platform", choices=("apns", "fcm", "hms"))
    for action in (apns, fcm, hms, remove):
        _add_setting_flags(action)


def _add_keys_parser(commands: Any) -> None:
    keys = commands.add_parser(
        "keys", help="integrator keys of the PowerAuth API; Zulip bouncer key pairs"
    )
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create an integrator key (printed once)")
    create.add_argument("--name", required=True)
    listing = actions.add_parser("list", help="list integrator keys by name")
    revoke = actions.add_parser("revoke", help="revoke an integrator key")
    revoke.add_argument("--name", required=True)
    bouncer = actions.add_parser("bouncer", help="Zulip bouncer registration-encryption keys")
    pairs = bouncer.add_subparsers(dest="bouncer_action", required=True)
    add = pairs.add_parser("add", help="generate a key pair; prints its public key")
    pair_list = pairs.add_parser("list", help="list the stored public keys")
    remove = pairs.add_parser("remove", help="retire a key pair")
    remove.add_argument("public_key")
    for action in (create, listing, revoke, add, pair_list, remove):
        _add_setting_flags(action)


def _serve(settings: Settings) -> int:
    import trio

    from relay.process.runtime import prepare, run_with_services
    from relay.process.server import run_server

    if settings.server_workers > 1:
        from relay.process.supervisor import serve_workers

        return serve_workers(settings)
    serve = partial(run_server, settings, shutdown=trio.Event(), handle_signals=True)
    run_with_services(settings, prepare(settings), serve)
    return 0


def _migrate(settings: Settings) -> int:
    from relay.process.runtime import database_url
    from storage.db import create_engine
    from storage.migrate import current_revision, head_revision, upgrade

    data_dir = Path(settings.data_dir).expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(database_url(settings, data_dir))
    try:
        before = current_revision(engine)
        upgrade(engine)
        print(f"database at revision {head_revision()} (was {before or 'empty'})")
    finally:
        engine.dispose()
    return 0


def _emulator(args: dict[str, Any]) -> int:
    import trio

    from providers.emulators.standalone import serve_emulator

    state = Path(args["state_dir"]).expanduser().resolve()

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            port = await nursery.start(
                partial(
                    serve_emulator,
                    args["kind"],
                    state,
                    host=args["host"],
                    port=args["port"],
                    max_streams=args["max_streams"],
                    record=not args["no_record"],
                    check_headers=not args["no_header_checks"],
                )
            )
            print(
                f"{args['kind']} emulator on https://{args['host']}:{port} "
                f"(certificate and credentials in {state})",
                flush=True,
            )

    with contextlib.suppress(KeyboardInterrupt):
        trio.run(run)
    return 0


def _open_store(settings: Settings) -> tuple[Any, bytes]:
    # Only what the admin commands need: the database and the push key (no JWT secret).
    from relay.process.runtime import Runtime, database_url, open_database, resolve_push_key

    data_dir = Path(settings.data_dir).expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    push_key = resolve_push_key(settings, data_dir)
    runtime = Runtime(data_dir, data_dir / "blobs", database_url(settings, data_dir), b"", push_key)
    return open_database(settings, runtime), push_key


def _run_admin(db: Any, run: Callable[[], Awaitable[None]]) -> int:
    # An admin command's work: its errors printed as one line, the database closed.
    import trio

    from relay.errors import RelayError

    try:
        trio.run(run)
    except RelayError as error:
        print(f"relay: {error.message}", file=sys.stderr)
        return 1
    finally:
        db.dispose()
    return 0


def _keys(settings: Settings, args: dict[str, Any]) -> int:
    from relay.crypto.sealing import Vault
    from relay.services.api_keys import ApiKeyService
    from relay.services.zulip.keys import BouncerKeys

    db, push_key = _open_store(settings)
    integrators = ApiKeyService(db)
    bouncer = BouncerKeys(db, Vault(push_key), {})

    async def run() -> None:
        action = args["action"]
        if action == "create":
            key = await integrators.create(args["name"])
            print(key)
            print("(shown once: only its digest is stored)", file=sys.stderr)
        elif action == "list":
            for item in await integrators.all():
                print(f"{item.name}\t{item.created_at}")
        elif action == "revoke":
            await integrators.revoke(args["name"])
        elif args["bouncer_action"] == "add":
            print(await bouncer.add())
        elif args["bouncer_action"] == "list":
            for public in await bouncer.stored():
                print(public)
        else:
            await bouncer.remove(args["public_key"])

    return _run_admin(db, run)


def _apps(settings: Settings, args: dict[str, Any]) -> int:

    from providers.message import Platform
    from relay.crypto.sealing import Vault
    from relay.errors import NotFound
    from relay.services.push.apps import AppService

    action, name = args["action"], str(args.get("name") or "")
    try:
        files = {
            key: Path(args[key]).read_bytes()
            for key in ("key_file", "service_account", "client_secret_file")
            if args.get(key)
        }
    except OSError as error:
        print(f"relay: {error}", file=sys.stderr)
        return 1
    db, push_key = _open_store(settings)
    apps = AppService(db, Vault(push_key))

    async def run() -> None:
        if action == "list":
            for app in await apps.all():
                print(f"{app.name}\t{app.id}\t{','.join(sorted(app.providers)) or '-'}")
        elif action == "create":
            print((await apps.create(name)).id)
        elif action == "show":
            app = await apps.get(name)
            shown = {"id": str(app.id), "name": app.name, "providers": app.providers}
            print(json.dumps(shown, indent=2))
        elif action == "delete":
            await apps.delete(name)
        elif action == "set-apns":
            await apps.set_apns(
                name,
                key_pem=files["key_file"],
                key_id=args["key_id"],
                team_id=args["team_id"],
                bundle_id=args["bundle_id"],
                environment=args["environment"],
            )
        elif action == "set-fcm":
            await apps.set_fcm(name, files["service_account"], package_name=args["package_name"])
        elif action == "set-hms":
            await apps.set_hms(
                name,
                app_id=args["app_id"],
                client_secret=files["client_secret_file"].decode().strip(),
                project_id=args["project_id"],
            )
        elif action == "remove" and not await apps.remove_credentials(
            name, Platform(args["platform"])
        ):
            raise NotFound(f"app {name!r} has no {args['platform']} credentials")

    return _run_admin(db, run)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``relay`` console script."""
    args = vars(_parser().parse_args(argv))
    command = args.pop("command")
    if command == "bench":
        from bench import scenarios

        if args["scenario"] not in scenarios.SCENARIOS:
            names = ", ".join(scenarios.SCENARIOS)
            print(
                f"relay bench: no scenario {args['scenario']!r} (one of {names})", file=sys.stderr
            )
            return 2
        return scenarios.run(args["scenario"], args["options"])
    if command == "emulator":
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
        return _emulator(args)
    # What is not a setting belongs to the command (e.g. ``relay apps`` arguments).
    setting_names = {spec.name for spec in SETTINGS}
    extra = {key: args.pop(key) for key in list(args) if key not in setting_names}
    try:
        settings = load_settings(os.environ, args)
    except SettingError as error:
        print(f"relay: configuration error: {error}", file=sys.stderr)
        return 2
    configure_logging(settings)
    for name in unknown_variables(os.environ):
        log.warning("ignoring unknown setting %s", name)
    from storage.errors import StorageError

    try:
        if command == "serve":
            return _serve(settings)
        if command == "apps":
            return _apps(settings, extra)
        if command == "keys":
            return _keys(settings, extra)
        return _migrate(settings)
    except SettingError as error:
        print(f"relay: configuration error: {error}", file=sys.stderr)
        return 2
    except StorageError as error:
        print(f"relay: database error: {error}", file=sys.stderr)
        return 1
