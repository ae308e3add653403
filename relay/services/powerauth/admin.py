"""``/admin/app/...``: PowerAuth's application administration over the push apps.

A PowerAuth ``appId`` is a push app's name. Credentials go through
:class:`relay.services.push.apps.AppService` (validated, sealed at rest); the detail
shows public settings only, never a key or secret.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from collections.abc import Iterator
from typing import Any

from providers.message import Platform
from relay.errors import Conflict, InvalidInput, NotFound
from relay.services.powerauth.errors import PowerAuthError
from relay.services.push.apps import AppInfo, AppService


def _required(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise PowerAuthError(f"{name} must not be blank.")
    return value


def _decoded(body: dict[str, Any], name: str) -> bytes:
    try:
        return base64.b64decode(_required(body, name), validate=True)
    except (binascii.Error, ValueError):
        raise PowerAuthError(f"{name} must be Base64.") from None


@contextlib.contextmanager
def _as_powerauth_error() -> Iterator[None]:
    # The push core's validation messages, in PowerAuth's error convention.
    try:
        yield
    except InvalidInput as error:
        raise PowerAuthError(error.message) from None


def summary(app: AppInfo) -> dict[str, Any]:
    """``{appId, apns, fcm, hms}``: which providers are configured."""
    return {
        "appId": app.name,
        "apns": "apns" in app.providers,
        "fcm": "fcm" in app.providers,
        "hms": "hms" in app.providers,
    }


class AdminService:
    """See the module docstring."""

    def __init__(self, apps: AppService) -> None:
        self._apps = apps

    async def _app(self, body: dict[str, Any]) -> AppInfo:
        name = body.get("appId")
        if not isinstance(name, str) or not name:
            raise PowerAuthError("App ID must not be null.")
        try:
            return await self._apps.get(name)
        except NotFound:
            raise PowerAuthError("Application with given ID does not exist") from None

    async def list(self, *, unconfigured: bool = False) -> list[AppInfo]:
        """Every app, or only those without any provider configured."""
        apps = await self._apps.all()
        return [app for app in apps if not app.providers] if unconfigured else apps

    async def detail(self, body: dict[str, Any]) -> dict[str, Any]:
        """Public settings of the requested providers."""
        app = await self._app(body)
        detail: dict[str, Any] = {"application": summary(app)}
        apns = app.providers.get("apns")
        if body.get("includeApns") and apns is not None:
            detail.update(
                apnsBundle=apns["bundle_id"],
                apnsKeyId=apns["key_id"],
                apnsTeamId=apns["team_id"],
                apnsEnvironment=apns["environment"],
            )
        fcm = app.providers.get("fcm")
        if body.get("includeFcm") and fcm is not None:
            detail["fcmProjectId"] = fcm["project_id"]
        hms = app.providers.get("hms")
        if body.get("includeHms") and hms is not None:
            detail["hmsProjectId"] = hms.get("project_id")
        return detail

    async def create(self, body: dict[str, Any]) -> str:
        """A new app without credentials."""
        name = body.get("appId")
        if not isinstance(name, str) or not name:
            raise PowerAuthError("App ID must not be null.")
        try:
            await self._apps.create(name)
        except Conflict:
            raise PowerAuthError("Application already exists") from None
        except InvalidInput as error:
            raise PowerAuthError(error.message) from None
        return name

    async def set_apns(self, body: dict[str, Any]) -> None:
        """APNs token credentials (``environment`` null means production)."""
        app = await self._app(body)
        environment = body.get("environment")
        if environment not in (None, "development", "production"):
            raise PowerAuthError("Environment must be development, production or null.")
        with _as_powerauth_error():
            await self._apps.set_apns(
                app.name,
                key_pem=_decoded(body, "privateKeyBase64"),
                key_id=_required(body, "keyId"),
                team_id=_required(body, "teamId"),
                bundle_id=_required(body, "bundle"),
                environment=str(environment or "production"),
            )

    async def set_fcm(self, body: dict[str, Any]) -> None:
        """FCM credentials: a Base64 service-account JSON for ``projectId``."""
        app = await self._app(body)
        project = _required(body, "projectId")
        account = _decoded(body, "privateKeyBase64")
        with _as_powerauth_error():
            await self._apps.set_fcm(app.name, account, project_id=project)

    async def set_hms(self, body: dict[str, Any]) -> None:
        """HMS credentials: the project and its OAuth client."""
        app = await self._app(body)
        with _as_powerauth_error():
            await self._apps.set_hms(
                app.name,
                app_id=_required(body, "clientId"),
                client_secret=_required(body, "clientSecret"),
                project_id=_required(body, "projectId"),
            )

    async def remove(self, body: dict[str, Any], platform: Platform) -> None:
        """Forget one provider's credentials (success when there were none)."""
        app = await self._app(body)
        await self._apps.remove_credentials(app.name, platform)
