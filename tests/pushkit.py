"""Provider credentials and in-process emulators over TLS, shared by the push tests."""

from __future__ import annotations

import dataclasses
import json
import ssl
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import trio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from providers.apns import ApnsCredentials
from providers.client import Endpoints
from providers.emulators import server
from providers.emulators.apns import ApnsEmulator, ApnsKey
from providers.emulators.certs import CertificatePaths, create_self_signed, server_ssl_context
from providers.emulators.fcm import FcmEmulator
from providers.emulators.fcm import ServiceAccount as TrustedAccount
from providers.emulators.hms import HmsClient, HmsEmulator
from providers.fcm import ServiceAccount
from providers.h2pool import client_ssl_context
from providers.hms import HmsCredentials
from providers.message import Environment, Platform, PushMessage
from relay.config import Settings
from relay.services.push.apps import AppService
from relay.services.push.queue import Delivery
from relay.services.push.service import PushService

APNS_TOKEN = "a1" * 32
TEAM_ID = "TEAM123456"
KEY_ID = "KEY1234567"
BUNDLE_ID = "com.example.relay"
FCM_PROJECT = "relay-test"
HMS_APP_ID = "104123456"


def _pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass(frozen=True)
class Keys:
    """Signing keys for one test session (RSA generation is slow: made once)."""

    apns_key: ec.EllipticCurvePrivateKey
    fcm_key: rsa.RSAPrivateKey
    certificate: CertificatePaths

    def apns_credentials(
        self, environment: Environment = Environment.PRODUCTION
    ) -> ApnsCredentials:
        return ApnsCredentials(_pem(self.apns_key), KEY_ID, TEAM_ID, BUNDLE_ID, environment)

    def service_account(self) -> ServiceAccount:
        return ServiceAccount(
            FCM_PROJECT, "relay@relay-test.iam.gserviceaccount.com", _pem(self.fcm_key), "kid-1"
        )

    def service_account_json(self) -> str:
        account = self.service_account()
        return json.dumps(
            {
                "type": "service_account",
                "project_id": account.project_id,
                "private_key_id": account.private_key_id,
                "private_key": account.private_key_pem.decode(),
                "client_email": account.client_email,
            }
        )

    def hms_credentials(self) -> HmsCredentials:
        return HmsCredentials(HMS_APP_ID, "hms-client-secret")

    def client_ssl(self) -> ssl.SSLContext:
        return client_ssl_context(str(self.certificate.cert))


def make_keys(directory: Path) -> Keys:
    return Keys(
        ec.generate_private_key(ec.SECP256R1()),
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        create_self_signed(directory),
    )


@dataclass
class Emulators:
    """The three emulators, listening on loopback over TLS."""

    apns: ApnsEmulator
    fcm: FcmEmulator
    hms: HmsEmulator
    apns_options: server.ServerOptions
    endpoints: Endpoints


@asynccontextmanager
async def running_emulators(
    keys: Keys, *, apns_max_streams: int = 1000
) -> AsyncIterator[Emulators]:
    """Start the emulators for ``keys`` in a nursery of their own."""
    context = server_ssl_context(keys.certificate)
    account = keys.service_account()
    apns = ApnsEmulator([ApnsKey(KEY_ID, TEAM_ID, keys.apns_key.public_key())], topics={BUNDLE_ID})
    apns_options = server.ServerOptions(
        max_concurrent_streams=apns_max_streams, drop_streams_on_reject=True
    )
    async with trio.open_nursery() as nursery:
        apns_port = await nursery.start(
            partial(server.serve, apns, ssl_context=context, options=apns_options)
        )
        fcm = FcmEmulator(
            [TrustedAccount(account.client_email, account.project_id, keys.fcm_key.public_key())],
            audience="",  # the token URL, known once the port is
        )
        fcm_port = await nursery.start(partial(server.serve, fcm, ssl_context=context))
        fcm_token_url = f"https://localhost:{fcm_port}/token"
        fcm.audience = fcm_token_url
        hms = HmsEmulator([HmsClient(HMS_APP_ID, "hms-client-secret")])
        hms_port = await nursery.start(partial(server.serve, hms, ssl_context=context))
        endpoints = Endpoints(
            apns_production=f"https://localhost:{apns_port}",
            apns_development=f"https://localhost:{apns_port}",
            fcm=f"https://localhost:{fcm_port}",
            fcm_token=fcm_token_url,
            hms=f"https://localhost:{hms_port}",
            hms_token=f"https://localhost:{hms_port}/oauth2/v3/token",
        )
        yield Emulators(apns, fcm, hms, apns_options, endpoints)
        nursery.cancel_scope.cancel()


def with_emulators(
    settings: Settings, emulators: Emulators, keys: Keys, **overrides: object
) -> Settings:
    """``settings`` pointed at the emulators, trusting their certificate, retrying fast."""
    endpoints = emulators.endpoints
    values: dict[str, object] = {
        "push_apns_production_url": endpoints.apns_production,
        "push_apns_development_url": endpoints.apns_development,
        "push_fcm_url": endpoints.fcm,
        "push_fcm_token_url": endpoints.fcm_token,
        "push_hms_url": endpoints.hms,
        "push_hms_token_url": endpoints.hms_token,
        "push_ca_file": str(keys.certificate.cert),
        "push_retry_base_ms": 20,
        "push_retry_max_secs": 1,
        "push_response_timeout_secs": 5,
        "notifications_push_delay_secs": 1,
        "notifications_invalid_token_cleanup_interval_secs": 1,
        **overrides,
    }
    return dataclasses.replace(settings, **values)  # type: ignore[arg-type]


async def configure_app(apps: AppService, keys: Keys, name: str = "relay") -> uuid.UUID:
    """An app with credentials for all three providers (the emulators' keys)."""
    app_id = await apps.ensure(name)
    credentials = keys.apns_credentials()
    await apps.set_apns(
        name,
        key_pem=credentials.key_pem,
        key_id=credentials.key_id,
        team_id=credentials.team_id,
        bundle_id=credentials.bundle_id,
    )
    await apps.set_fcm(name, keys.service_account_json())
    hms = keys.hms_credentials()
    await apps.set_hms(name, app_id=hms.app_id, client_secret=hms.client_secret)
    return app_id


@asynccontextmanager
async def running_push(push: PushService) -> AsyncIterator[trio.Event]:
    """The push workers, stopped gracefully at the end of the block."""
    stopping = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(push.run, stopping))
        yield stopping
        stopping.set()


ALERT = PushMessage(data={"kind": "test"}, title="Hi", body="there")


def delivery(platform: Platform, token: str | None = None) -> Delivery:
    """An alert to one device of ``platform`` (a token the emulators accept by default)."""
    default = {Platform.APNS: APNS_TOKEN, Platform.FCM: "fcm-1", Platform.HMS: "hms-1"}
    return Delivery(platform, token or default[platform], ALERT)
