"""Push apps (tenants) and their provider credentials, sealed at rest.

Public settings (key id, team, bundle, project, client id) are stored as JSON and may be
shown; the secret part (the APNs ``.p8`` key, the service-account JSON, the HMS client
secret) is sealed with the server key, only opened to send, and never returned or logged.
"""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import trio
from cryptography.hazmat.primitives.asymmetric import ec

from providers import jose
from providers.apns import ApnsCredentials
from providers.errors import CredentialError
from providers.fcm import ServiceAccount
from providers.hms import HmsCredentials
from providers.message import Environment, Platform
from relay.crypto.sealing import Vault
from relay.errors import Conflict, InvalidInput, NotFound
from storage.db import Database
from storage.errors import IntegrityViolation
from storage.ids import now_us, uuid7
from storage.repos import push_apps

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_APPLE_ID = re.compile(r"^[A-Z0-9]{10}$")
# Credentials changed by another process (relay apps, another worker) are used within this.
_CACHE_SECS = 1.0


@dataclass(frozen=True)
class AppInfo:
    """An app as it may be shown: public provider settings only."""

    id: uuid.UUID
    name: str
    providers: dict[str, dict[str, Any]] = field(default_factory=dict)
    created_at: int = 0
    updated_at: int = 0


@dataclass(frozen=True)
class AppCredentials:
    """The opened credentials of one app, by platform."""

    apns: ApnsCredentials | None = None
    fcm: ServiceAccount | None = None
    hms: HmsCredentials | None = None

    def of(self, platform: Platform) -> ApnsCredentials | ServiceAccount | HmsCredentials | None:
        """The credentials for ``platform``, if configured."""
        return {Platform.APNS: self.apns, Platform.FCM: self.fcm, Platform.HMS: self.hms}[platform]


def check_name(name: str) -> str:
    """An app name: 1-100 of letters, digits, ``.``, ``_``, ``-``, starting alphanumeric."""
    if not _NAME.match(name):
        raise InvalidInput("App name must be 1-100 letters, digits, '.', '_' or '-'")
    return name


class AppService:
    """Creates apps, stores their credentials and opens them for the senders."""

    def __init__(self, db: Database, vault: Vault) -> None:
        self._db = db
        self._vault = vault
        self._cache: dict[uuid.UUID, tuple[float, AppCredentials]] = {}
        self._ids: dict[str, tuple[float, uuid.UUID | None]] = {}

    async def create(self, name: str) -> AppInfo:
        """A new app without credentials (409 if the name is taken)."""
        check_name(name)
        app_id, now = uuid7(), now_us()
        try:
            await self._db.write(lambda conn: push_apps.create(conn, app_id, name, now=now))
        except IntegrityViolation:
            raise Conflict(f"An app named {name!r} already exists") from None
        self._forget(app_id, name)  # a cached "no such app" must not outlive the app
        return AppInfo(app_id, name, {}, now, now)

    async def ensure(self, name: str) -> uuid.UUID:
        """The id of the app called ``name``, creating it if needed."""
        existing = await self._db.read(lambda conn: push_apps.by_name(conn, name))
        if existing is not None:
            return existing.id
        try:
            return (await self.create(name)).id
        except Conflict:
            again = await self._db.read(lambda conn: push_apps.by_name(conn, name))
            assert again is not None
            return again.id

    async def all(self) -> list[AppInfo]:
        """Every app, by name, with public settings."""

        def work(conn: Any) -> list[AppInfo]:
            return [self._info(conn, row) for row in push_apps.list_all(conn)]

        return await self._db.read(work)

    async def find(self, client_name: str) -> uuid.UUID | None:
        """The app a client's own name for its app means: the push app of that name, else
        the one whose APNs bundle id or FCM package name it is."""
        app_id = await self.app_id(client_name)
        if app_id is not None:
            return app_id
        for app in await self.all():
            apns, fcm = app.providers.get("apns", {}), app.providers.get("fcm", {})
            if client_name in (apns.get("bundle_id"), fcm.get("package_name")):
                return app.id
        return None

    async def get(self, name: str) -> AppInfo:
        """The app called ``name`` (404 otherwise)."""

        def work(conn: Any) -> AppInfo | None:
            row = push_apps.by_name(conn, name)
            return self._info(conn, row) if row is not None else None

        info = await self._db.read(work)
        if info is None:
            raise NotFound(f"No app named {name!r}")
        return info

    async def delete(self, name: str) -> None:
        """Delete the app, its credentials and its queued jobs."""
        app = await self.get(name)
        await self._db.write(lambda conn: push_apps.delete_app(conn, app.id))
        self._forget(app.id, name)

    async def set_apns(
        self,
        name: str,
        *,
        key_pem: bytes,
        key_id: str,
        team_id: str,
        bundle_id: str,
        environment: str = "production",
    ) -> None:
        """Token-based APNs credentials: the ``.p8`` key, its key id, the team and topic."""
        if not _APPLE_ID.match(key_id) or not _APPLE_ID.match(team_id):
            raise InvalidInput("APNs key id and team id are 10 upper-case letters or digits")
        if not bundle_id or len(bundle_id) > 255:
            raise InvalidInput("APNs bundle id is required")
        env = _environment(environment)
        try:
            key = jose.load_private_key(key_pem)
        except CredentialError as error:
            raise InvalidInput(f"APNs key: {error}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise InvalidInput("APNs key must be a P-256 (.p8) key")
        settings = {
            "key_id": key_id,
            "team_id": team_id,
            "bundle_id": bundle_id,
            "environment": env,
        }
        await self._store(name, Platform.APNS, settings, key_pem)

    async def set_fcm(
        self,
        name: str,
        service_account_json: str | bytes,
        *,
        project_id: str | None = None,
        package_name: str | None = None,
    ) -> None:
        """FCM HTTP v1 credentials: a service-account JSON file, sending for its own
        project or for ``project_id`` (an account may be granted another project);
        ``package_name``, the Android app's, lets faces that name apps by package find
        this one."""
        try:
            account = ServiceAccount.from_json(service_account_json)
        except CredentialError as error:
            raise InvalidInput(f"FCM service account: {error}") from None
        raw = (
            service_account_json.encode()
            if isinstance(service_account_json, str)
            else service_account_json
        )
        settings = {
            "project_id": project_id or account.project_id,
            "client_email": account.client_email,
            "private_key_id": account.private_key_id,
        }
        if package_name:
            settings["package_name"] = package_name
        await self._store(name, Platform.FCM, settings, raw)

    async def set_hms(
        self, name: str, *, app_id: str, client_secret: str, project_id: str | None = None
    ) -> None:
        """HMS Push Kit credentials: the OAuth client (app id and secret)."""
        if not app_id or not client_secret:
            raise InvalidInput("HMS app id and client secret are required")
        settings = {"app_id": app_id, "project_id": project_id}
        await self._store(name, Platform.HMS, settings, client_secret.encode())

    async def remove_credentials(self, name: str, platform: Platform) -> bool:
        """Forget one provider's credentials; False if there were none."""
        app = await self.get(name)
        removed = await self._db.write(
            lambda conn: push_apps.remove_credentials(conn, app.id, platform.value)
        )
        self._forget(app.id, name)
        return removed

    async def app_id(self, name: str) -> uuid.UUID | None:
        """The id of the app called ``name`` (cached briefly)."""
        now = trio.current_time()
        cached = self._ids.get(name)
        if cached is not None and now - cached[0] < _CACHE_SECS:
            return cached[1]
        row = await self._db.read(lambda conn: push_apps.by_name(conn, name))
        app_id = row.id if row is not None else None
        self._ids[name] = (now, app_id)
        return app_id

    async def credentials(self, app_id: uuid.UUID) -> AppCredentials:
        """The app's opened credentials (cached briefly: every job needs them)."""
        now = trio.current_time()
        cached = self._cache.get(app_id)
        if cached is not None and now - cached[0] < _CACHE_SECS:
            return cached[1]
        rows = await self._db.read(lambda conn: push_apps.credentials(conn, app_id))
        opened = self._open(rows)
        self._cache[app_id] = (now, opened)
        return opened

    def _open(self, rows: list[push_apps.CredentialRow]) -> AppCredentials:
        values: dict[str, Any] = {}
        for row in rows:
            settings = json.loads(row.settings)
            secret = self._vault.open(row.secret)
            if row.platform == Platform.APNS.value:
                values["apns"] = ApnsCredentials(
                    secret,
                    settings["key_id"],
                    settings["team_id"],
                    settings["bundle_id"],
                    Environment(settings["environment"]),
                )
            elif row.platform == Platform.FCM.value:
                account = ServiceAccount.from_json(secret)
                values["fcm"] = dataclasses.replace(account, project_id=settings["project_id"])
            else:
                values["hms"] = HmsCredentials(
                    settings["app_id"], secret.decode(), settings.get("project_id")
                )
        return AppCredentials(**values)

    async def _store(
        self, name: str, platform: Platform, settings: dict[str, Any], secret: bytes
    ) -> None:
        app = await self.get(name)
        sealed = self._vault.seal(secret)
        text = json.dumps(settings, sort_keys=True)
        await self._db.write(
            lambda conn: push_apps.put_credentials(
                conn, app.id, platform.value, text, sealed, now=now_us()
            )
        )
        self._forget(app.id, name)

    def _forget(self, app_id: uuid.UUID, name: str) -> None:
        self._cache.pop(app_id, None)
        self._ids.pop(name, None)

    @staticmethod
    def _info(conn: Any, row: push_apps.AppRow) -> AppInfo:
        providers = {
            item.platform: json.loads(item.settings) for item in push_apps.credentials(conn, row.id)
        }
        return AppInfo(row.id, row.name, providers, row.created_at, row.updated_at)


def _environment(value: str) -> str:
    try:
        return Environment(value).value
    except ValueError:
        raise InvalidInput("environment must be production or development") from None
