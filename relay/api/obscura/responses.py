"""JSON response bodies of the Obscura API."""

from __future__ import annotations

from typing import Any

from relay.crypto.keys import encode_base64
from relay.services.devices import DeviceRecord
from relay.services.keys import FetchedBundle
from relay.services.sessions import Session
from storage.ids import format_rfc3339


def auth_response(session: Session) -> dict[str, Any]:
    """``AuthResponse``: ``deviceId`` only for device-scoped sessions."""
    body: dict[str, Any] = {
        "token": session.token,
        "refreshToken": session.refresh_token,
        "expiresAt": session.expires_at,
    }
    if session.device_id is not None:
        body["deviceId"] = str(session.device_id)
    return body


def device_response(device: DeviceRecord) -> dict[str, Any]:
    """``DeviceResponse``."""
    return {
        "deviceId": str(device.id),
        "name": device.name,
        "createdAt": format_rfc3339(device.created_at),
    }


def bundle_response(fetched: FetchedBundle) -> dict[str, Any]:
    """``PreKeyBundleResponse``: ``oneTimePreKey`` is null once the device ran out."""
    bundle = fetched.bundle
    spk = bundle.signed_pre_key
    otpk = fetched.one_time_pre_key
    return {
        "deviceId": str(bundle.device_id),
        "registrationId": bundle.identity.registration_id,
        "identityKey": encode_base64(bundle.identity.identity_key),
        "signedPreKey": {
            "keyId": spk.key_id,
            "publicKey": encode_base64(spk.public_key),
            "signature": encode_base64(spk.signature),
        },
        "oneTimePreKey": None
        if otpk is None
        else {"keyId": otpk.key_id, "publicKey": encode_base64(otpk.public_key)},
    }
