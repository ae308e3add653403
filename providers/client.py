"""Sending one notification to one device through the right pool.

:class:`PushClient` keeps a pool per (provider, endpoint, credentials) — APNs allows one
team per connection, FCM and HMS bearer tokens are per project / app — plus the APNs
provider-token cache and the OAuth2 token caches, each keyed by an identity and checked
against the credentials' fingerprint, so that rotated credentials take effect at once.
:meth:`PushClient.send` never raises for a provider's answer or a transport failure: it
returns an :class:`Outcome`.
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import trio

from providers import apns, fcm, hms
from providers.errors import CredentialError, InvalidNotification, TransportError
from providers.h2pool import H2Pool, Origin, PoolConfig, Response
from providers.message import Environment, Outcome, Platform, PushMessage, Verdict
from providers.oauth import AccessToken, Fetch, TokenCache

Credentials = apns.ApnsCredentials | fcm.ServiceAccount | hms.HmsCredentials
_FORM = b"application/x-www-form-urlencoded"
_FCM_URL, _FCM_TOKEN_URL = fcm.SEND_URL, fcm.TOKEN_URL
_HMS_URL, _HMS_TOKEN_URL = hms.SEND_URL, hms.TOKEN_URL


@dataclass(frozen=True)
class Endpoints:
    """Where each provider lives; tests and the benchmark point these at the emulators."""

    apns_production: str = apns.PRODUCTION_URL
    apns_development: str = apns.DEVELOPMENT_URL
    fcm: str = _FCM_URL
    fcm_token: str = _FCM_TOKEN_URL
    hms: str = _HMS_URL
    hms_token: str = _HMS_TOKEN_URL


@dataclass(frozen=True)
class Target:
    """One device of one app on one platform."""

    platform: Platform
    token: str
    credentials: Credentials
    environment: Environment = Environment.PRODUCTION


class PushClient:
    """See the module docstring."""

    def __init__(
        self,
        nursery: trio.Nursery,
        *,
        endpoints: Endpoints | None = None,
        pool_config: PoolConfig | None = None,
        ssl_context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._nursery = nursery
        self.endpoints = endpoints or Endpoints()
        self._pool_config = pool_config or PoolConfig()
        self._ssl_context = ssl_context
        self._clock = clock
        self._pools: dict[tuple[str, ...], H2Pool] = {}
        self._oauth: dict[tuple[str, ...], tuple[bytes, TokenCache]] = {}
        self.provider_tokens = apns.ProviderTokenCache(clock)

    def pools(self) -> list[tuple[str, H2Pool]]:
        """Every pool opened so far, with what it reaches (``apns``, ``fcm``, ``hms``, or
        ``token`` for OAuth token endpoints)."""
        return [(key[0], pool) for key, pool in self._pools.items()]

    async def send(self, target: Target, message: PushMessage) -> Outcome:
        """Deliver ``message`` to ``target``; an expired provider token is renewed once."""
        try:
            outcome = await self._send_once(target, message)
            if outcome.verdict is Verdict.AUTH_EXPIRED:
                outcome = await self._send_once(target, message)
                if outcome.verdict is Verdict.AUTH_EXPIRED:
                    return Outcome(Verdict.FAILED, f"credentials refused: {outcome.reason}")
            return outcome
        except InvalidNotification as error:
            return Outcome(Verdict.FAILED, f"invalid notification: {error}")
        except CredentialError as error:
            return Outcome(Verdict.FAILED, f"credentials: {error}")
        except TransportError as error:
            return Outcome(Verdict.RETRY, f"transport: {error}")

    async def aclose(self) -> None:
        """Close every pool."""
        for pool in self._pools.values():
            await pool.aclose()

    def _pool(self, key: tuple[str, ...], url: str) -> H2Pool:
        pool = self._pools.get(key)
        if pool is None:
            pool = H2Pool(
                Origin.from_url(url),
                self._nursery,
                config=self._pool_config,
                ssl_context=self._ssl_context,
            )
            self._pools[key] = pool
        return pool

    async def _send_once(self, target: Target, message: PushMessage) -> Outcome:
        credentials = target.credentials
        now = int(self._clock())
        if isinstance(credentials, apns.ApnsCredentials):
            return await self._send_apns(target, credentials, message)
        if isinstance(credentials, fcm.ServiceAccount):
            fcm.check_data(dict(message.data))  # before spending a token request on it
            cache = self._fcm_tokens(credentials)
            access = await cache.get()
            path, headers, body = fcm.build_request(
                message,
                target.token,
                project_id=credentials.project_id,
                access_token=access,
                now=now,
            )
            pool = self._pool(
                ("fcm", self.endpoints.fcm, credentials.client_email), self.endpoints.fcm
            )
            outcome = fcm.classify(await pool.request(path, headers, body))
        else:
            hms.check_data(message)
            cache = self._hms_tokens(credentials)
            access = await cache.get()
            path, headers, body = hms.build_request(
                message, target.token, credentials=credentials, access_token=access, now=now
            )
            pool = self._pool(("hms", self.endpoints.hms, credentials.app_id), self.endpoints.hms)
            outcome = hms.classify(await pool.request(path, headers, body), target.token)
        if outcome.verdict is Verdict.AUTH_EXPIRED:
            cache.invalidate(access)
        return outcome

    async def _send_apns(
        self, target: Target, credentials: apns.ApnsCredentials, message: PushMessage
    ) -> Outcome:
        # A development app sends every token to the sandbox; a production app sends
        # tokens registered as development builds there too.
        sandbox = Environment.DEVELOPMENT in (target.environment, credentials.environment)
        url = self.endpoints.apns_development if sandbox else self.endpoints.apns_production
        provider_token = self.provider_tokens.token(credentials)
        path, headers, body = apns.build_request(
            message, target.token, topic=credentials.bundle_id, provider_token=provider_token
        )
        pool = self._pool(("apns", url, credentials.team_id, credentials.key_id), url)
        outcome = apns.classify(await pool.request(path, headers, body))
        if outcome.verdict is Verdict.AUTH_EXPIRED:
            self.provider_tokens.invalidate(credentials)
        return outcome

    def _fcm_tokens(self, account: fcm.ServiceAccount) -> TokenCache:
        token_url = self.endpoints.fcm_token

        async def fetch() -> AccessToken:
            body = fcm.token_request(account, token_url=token_url, now=int(self._clock()))
            return await self._fetch_token(token_url, body)

        key = ("fcm", token_url, account.client_email)
        return self._token_cache(key, account.fingerprint, fetch)

    def _hms_tokens(self, credentials: hms.HmsCredentials) -> TokenCache:
        token_url = self.endpoints.hms_token

        async def fetch() -> AccessToken:
            return await self._fetch_token(token_url, hms.token_request(credentials))

        key = ("hms", token_url, credentials.app_id)
        return self._token_cache(key, credentials.fingerprint, fetch)

    def _token_cache(self, key: tuple[str, ...], fingerprint: bytes, fetch: Fetch) -> TokenCache:
        """The token cache of one identity (``key``), replaced when its credentials'
        ``fingerprint`` changes: a rotated key or secret is used on the next send."""
        cached = self._oauth.get(key)
        if cached is not None and cached[0] == fingerprint:
            return cached[1]
        cache = TokenCache(fetch, self._clock)
        self._oauth[key] = (fingerprint, cache)
        return cache

    async def _fetch_token(self, url: str, body: bytes) -> AccessToken:
        pool = self._pool(("token", url), url)
        path = (urlsplit(url).path or "/").encode()
        response = await pool.request(path, [(b"content-type", _FORM)], body)
        return _access_token(response, self._clock())


def _access_token(response: Response, now: float) -> AccessToken:
    if response.status >= 500 or response.status == 429:
        raise TransportError(f"token endpoint answered {response.status}")
    try:
        data = json.loads(response.body)
    except ValueError:
        data = None
    if response.status != 200 or not isinstance(data, dict) or "access_token" not in data:
        detail = (
            data.get("error_description") or data.get("error") if isinstance(data, dict) else None
        )
        raise CredentialError(
            f"token endpoint refused the credentials ({response.status}: {detail})"
        )
    return AccessToken(str(data["access_token"]), now + float(data.get("expires_in", 3600)))
