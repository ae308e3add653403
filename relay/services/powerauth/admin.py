"""``/admin/app/...``: PowerAuth's application administration over the push apps.

A PowerAuth ``appId`` is a push app's name. Credentials go through
:class:`relay.services.push.apps.AppService` (validated, sealed at rest); the detail
holds public settings only, never a key or secret.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from providers.message import Platform
from relay.errors import Conflict, InvalidInput, NotFound
from relay.services.powerauth.errors import PowerAuthError
from relay.services.push.apps import AppInfo, AppService
from relay.services.push.queue import PushQueue
from storage.repos.push_jobs import JobRecord


@dataclass(frozen=True)
class ApnsSettings:
    """Validated APNs token credentials of an app."""

    app: str
    key_pem: bytes
    key_id: str
    team_id: str
    bundle_id: str
    environment: str


@dataclass(frozen=True)
class FcmSettings:
    """A validated FCM service account of an app."""

    app: str
    project_id: str
    service_account: bytes


@dataclass(frozen=True)
class HmsSettings:
    """Validated HMS OAuth client credentials of an app."""

    app: str
    client_id: str
    client_secret: str
    project_id: str


@contextlib.contextmanager
def _as_powerauth_error() -> Iterator[None]:
    # The push core's validation messages, in PowerAuth's error convention.
    try:
        yield
    except InvalidInput as error:
        raise PowerAuthError(error.message) from None


class AdminService:
    """See the module docstring."""

    def __init__(self, apps: AppService, queue: PushQueue) -> None:
        self._apps = apps
        self._queue = queue

    async def _app(self, name: str) -> AppInfo:
        try:
            return await self._apps.get(name)
        except NotFound:
            raise PowerAuthError("Application with given ID does not exist") from None

    async def list(self, *, unconfigured: bool = False) -> list[AppInfo]:
        """Every app, or only those without any provider configured."""
        apps = await self._apps.all()
        return [app for app in apps if not app.providers] if unconfigured else apps

    async def jobs(
        self, name: str | None, *, failed_only: bool, since: int | None, limit: int
    ) -> Sequence[tuple[JobRecord, str | None]]:
        """Recent push jobs (of one app), newest first, each with its app's name."""
        app_id = None if name is None else (await self._app(name)).id
        names = {app.id: app.name for app in await self._apps.all()}
        jobs = await self._queue.recent(
            app_id=app_id, failed_only=failed_only, since=since, limit=limit
        )
        return [(job, None if job.app_id is None else names.get(job.app_id)) for job in jobs]

    async def detail(self, name: str) -> AppInfo:
        """An app and its providers' public settings."""
        return await self._app(name)

    async def create(self, name: str) -> str:
        """A new app without credentials."""
        try:
            await self._apps.create(name)
        except Conflict:
            raise PowerAuthError("Application already exists") from None
        except InvalidInput as error:
            raise PowerAuthError(error.message) from None
        return name

    async def set_apns(self, settings: ApnsSettings) -> None:
        """APNs token credentials."""
        app = await self._app(settings.app)
        with _as_powerauth_error():
            await self._apps.set_apns(
                app.name,
                key_pem=settings.key_pem,
                key_id=settings.key_id,
                team_id=settings.team_id,
                bundle_id=settings.bundle_id,
                environment=settings.environment,
            )

    async def set_fcm(self, settings: FcmSettings) -> None:
        """FCM credentials: a service-account JSON for a project."""
        app = await self._app(settings.app)
        with _as_powerauth_error():
            await self._apps.set_fcm(
                app.name, settings.service_account, project_id=settings.project_id
            )

    async def set_hms(self, settings: HmsSettings) -> None:
        """HMS credentials: the project and its OAuth client."""
        app = await self._app(settings.app)
        with _as_powerauth_error():
            await self._apps.set_hms(
                app.name,
                app_id=settings.client_id,
                client_secret=settings.client_secret,
                project_id=settings.project_id,
            )

    async def remove(self, name: str, platform: Platform) -> None:
        """Forget one provider's credentials (success when there were none)."""
        app = await self._app(name)
        await self._apps.remove_credentials(app.name, platform)
