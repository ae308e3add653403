"""``relay apps``: push apps and their APNs, FCM and HMS credentials."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from relay.cli.admin import open_store, run_admin
from relay.cli.command import (
    Command,
    add_apns_environment,
    add_store_flags,
    iso_time,
    required,
)
from relay.config import Settings

_FILES = ("key_file", "service_account", "client_secret_file")


@dataclass(frozen=True)
class AppsOptions:
    """The arguments of one ``relay apps`` action (those it does not take are None)."""

    action: str
    name: str
    key_id: str | None = None
    team_id: str | None = None
    bundle_id: str | None = None
    environment: str = "production"
    package_name: str | None = None
    app_id: str | None = None
    project_id: str | None = None
    platform: str | None = None

    @classmethod
    def of(cls, args: argparse.Namespace) -> AppsOptions:
        """The options in parsed arguments."""
        given = vars(args)
        fields = cls.__dataclass_fields__
        values = {key: given[key] for key in fields if given.get(key) is not None}
        return cls(**{**values, "name": str(given.get("name") or "")})


def _add_arguments(apps: argparse.ArgumentParser) -> None:
    actions = apps.add_subparsers(dest="action", required=True)
    for name, text in (
        ("list", "list apps"),
        ("create", "create an app"),
        ("show", "show an app's public settings"),
        ("delete", "delete an app with its credentials and queued pushes"),
    ):
        action = actions.add_parser(name, help=text)
        if name != "list":
            action.add_argument("name", help="the app's name (PowerAuth appId)")
        add_store_flags(action)
    apns = actions.add_parser("set-apns", help="token-based APNs credentials (.p8 key)")
    apns.add_argument("name", help="the app's name")
    apns.add_argument("--key-file", required=True, help="the .p8 signing key")
    apns.add_argument("--key-id", required=True, help="the key's 10-character id")
    apns.add_argument("--team-id", required=True, help="the Apple developer team id")
    apns.add_argument("--bundle-id", required=True, help="the apns-topic")
    add_apns_environment(
        apns, "the APNs environment of tokens that do not say (default: production)"
    )
    fcm = actions.add_parser("set-fcm", help="FCM HTTP v1 credentials (service account)")
    fcm.add_argument("name", help="the app's name")
    fcm.add_argument("--service-account", required=True, help="service-account JSON file")
    fcm.add_argument("--package-name", default=None, help="the Android app's package name")
    hms = actions.add_parser("set-hms", help="HMS Push Kit credentials (OAuth client)")
    hms.add_argument("name", help="the app's name")
    hms.add_argument("--app-id", required=True, help="the HMS app id (OAuth client id)")
    hms.add_argument("--client-secret-file", required=True, help="file holding the secret")
    hms.add_argument("--project-id", default=None, help="the HMS project id, if any")
    remove = actions.add_parser("remove", help="remove one provider's credentials")
    remove.add_argument("name", help="the app's name")
    remove.add_argument("platform", choices=("apns", "fcm", "hms"), help="the provider")
    for action in (apns, fcm, hms, remove):
        add_store_flags(action)


def _run(args: argparse.Namespace, settings: Settings | None) -> int:
    from providers.message import Platform
    from relay.crypto.sealing import Vault
    from relay.errors import NotFound
    from relay.services.push.apps import AppService

    options = AppsOptions.of(args)
    name = options.name
    try:
        # Read before the database is opened: a wrong path changes nothing.
        files = {key: Path(path).read_bytes() for key in _FILES if (path := vars(args).get(key))}
    except OSError as error:
        print(f"relay: {error}", file=sys.stderr)
        return 1
    db, push_key = open_store(required(settings))
    apps = AppService(db, Vault(push_key))

    async def run() -> None:
        if options.action == "list":
            for app in await apps.all():
                print(f"{app.name}\t{app.id}\t{','.join(sorted(app.providers)) or '-'}")
        elif options.action == "create":
            print((await apps.create(name)).id)
            print(f"created app {name!r}", file=sys.stderr)
        elif options.action == "show":
            app = await apps.get(name)
            shown = {
                "id": str(app.id),
                "name": app.name,
                "providers": app.providers,
                "created": iso_time(app.created_at),
                "updated": iso_time(app.updated_at),
            }
            print(json.dumps(shown, indent=2))
        elif options.action == "delete":
            await apps.delete(name)
            print(f"deleted app {name!r} with its credentials and queued pushes")
        elif options.action == "set-apns":
            await apps.set_apns(
                name,
                key_pem=files["key_file"],
                key_id=str(options.key_id),
                team_id=str(options.team_id),
                bundle_id=str(options.bundle_id),
                environment=options.environment,
            )
        elif options.action == "set-fcm":
            await apps.set_fcm(name, files["service_account"], package_name=options.package_name)
        elif options.action == "set-hms":
            await apps.set_hms(
                name,
                app_id=str(options.app_id),
                client_secret=files["client_secret_file"].decode().strip(),
                project_id=options.project_id,
            )
        elif options.action == "remove":
            platform = Platform(options.platform)
            if not await apps.remove_credentials(name, platform):
                raise NotFound(f"app {name!r} has no {platform.value} credentials")
            print(f"removed the {platform.value} credentials of app {name!r}")
        if options.action.startswith("set-"):
            provider = options.action.removeprefix("set-").upper()
            print(f"set the {provider} credentials of app {name!r} (stored sealed)")

    return run_admin(db, run)


APPS = Command("apps", "manage push apps and their credentials", _add_arguments, _run)
