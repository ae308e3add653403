"""Running one emulator as its own process (``relay emulator apns|fcm|hms``).

The state directory holds the TLS certificate and the provider credentials the emulator
trusts, generated on first use and reused afterwards, so that a relay (or the benchmark)
can be configured with exactly those credentials:

* ``emulator-cert.pem`` / ``emulator-key.pem`` — trust the certificate with
  ``RELAY_PUSH_CA_FILE``;
* APNs: ``apns-key.p8`` and ``apns.json`` (``key_id``, ``team_id``, ``bundle_id``);
* FCM: ``fcm-service-account.json`` (a service-account file, private key included);
* HMS: ``hms.json`` (``app_id``, ``client_secret``).
"""

from __future__ import annotations

import json
import secrets
import string
from functools import partial
from pathlib import Path

import trio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from providers import jose
from providers.emulators import server
from providers.emulators.apns import ApnsEmulator, ApnsKey
from providers.emulators.base import EmulatorBase
from providers.emulators.certs import (
    CertificatePaths,
    create_self_signed,
    names_of,
    server_ssl_context,
)
from providers.emulators.fcm import TOKEN_PATH, FcmEmulator, ServiceAccount
from providers.emulators.hms import HmsClient, HmsEmulator

KINDS = ("apns", "fcm", "hms")
_ID_ALPHABET = string.ascii_uppercase + string.digits


def _pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write_private(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600)


def certificate(state: Path, host: str = "127.0.0.1") -> CertificatePaths:
    """The state directory's TLS certificate for ``host``, created on first use (and
    again when the emulator moves to an address the certificate does not name)."""
    paths = CertificatePaths(state / "emulator-cert.pem", state / "emulator-key.pem")
    if paths.cert.exists() and paths.key.exists() and host in names_of(paths):
        return paths
    return create_self_signed(state, host=host)


def _apple_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(10))


def apns_emulator(state: Path) -> ApnsEmulator:
    """An APNs emulator trusting the state directory's key (created on first use)."""
    key_file, info_file = state / "apns-key.p8", state / "apns.json"
    if not key_file.exists():
        _write_private(key_file, _pem(ec.generate_private_key(ec.SECP256R1())))
        info = {"key_id": _apple_id(), "team_id": _apple_id(), "bundle_id": "com.example.relay"}
        info_file.write_text(json.dumps(info, indent=2))
    info = json.loads(info_file.read_text())
    key = jose.load_private_key(key_file.read_bytes())
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return ApnsEmulator(
        [ApnsKey(info["key_id"], info["team_id"], key.public_key())], topics={info["bundle_id"]}
    )


def fcm_emulator(state: Path, token_url: str) -> FcmEmulator:
    """An FCM emulator trusting the state directory's service account."""
    account_file = state / "fcm-service-account.json"
    if not account_file.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        account = {
            "type": "service_account",
            "project_id": "relay-emulated",
            "private_key_id": secrets.token_hex(20),
            "private_key": _pem(key).decode(),
            "client_email": "relay@relay-emulated.iam.gserviceaccount.com",
            "token_uri": token_url,
        }
        _write_private(account_file, json.dumps(account, indent=2).encode())
    data = json.loads(account_file.read_text())
    private = jose.load_private_key(data["private_key"].encode())
    assert isinstance(private, rsa.RSAPrivateKey)
    trusted = ServiceAccount(data["client_email"], data["project_id"], private.public_key())
    return FcmEmulator([trusted], audience=token_url)


def hms_emulator(state: Path) -> HmsEmulator:
    """An HMS emulator trusting the state directory's OAuth client."""
    info_file = state / "hms.json"
    if not info_file.exists():
        info = {"app_id": "10" + "".join(secrets.choice(string.digits) for _ in range(7))}
        info["client_secret"] = secrets.token_hex(32)
        _write_private(info_file, json.dumps(info, indent=2).encode())
    info = json.loads(info_file.read_text())
    return HmsEmulator([HmsClient(info["app_id"], info["client_secret"])])


def build(kind: str, state: Path, *, host: str, port: int) -> EmulatorBase:
    """The emulator of ``kind`` for a listener on ``host:port``."""
    state.mkdir(parents=True, exist_ok=True)
    if kind == "apns":
        return apns_emulator(state)
    if kind == "fcm":
        return fcm_emulator(state, f"https://{host}:{port}{TOKEN_PATH}")
    if kind == "hms":
        return hms_emulator(state)
    raise ValueError(f"unknown emulator {kind!r} (expected one of {', '.join(KINDS)})")


async def serve_emulator(
    kind: str,
    state: Path,
    *,
    host: str = "127.0.0.1",
    port: int,
    max_streams: int = 1000,
    record: bool = True,
    check_headers: bool = True,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve one emulator over TLS until cancelled (``record=False`` keeps no record of
    what it accepts and ``check_headers=False`` skips h2's header checks, for benchmarks)."""
    emulator = build(kind, state, host=host, port=port)
    if not check_headers:
        server.remember_huffman_decoding()
    emulator.record = record
    options = server.ServerOptions(
        max_concurrent_streams=max_streams,
        drop_streams_on_reject=kind == "apns",
        check_headers=check_headers,
    )
    context = server_ssl_context(certificate(state, host))
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(
            partial(
                server.serve, emulator, host=host, port=port, ssl_context=context, options=options
            )
        )
        if isinstance(emulator, FcmEmulator):
            emulator.audience = f"https://{host}:{bound}{TOKEN_PATH}"
        task_status.started(bound)
