"""JSON request bodies of the Obscura API (decoded with msgspec).

Unknown fields are ignored, as the reference does; a missing required field, a wrong
JSON type or an integer outside ``int32`` is a schema mismatch (422).
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from relay.services.keys import PreKeyInput, SignedPreKeyInput

Int32 = Annotated[int, msgspec.Meta(ge=-(2**31), le=2**31 - 1)]


class Credentials(msgspec.Struct, kw_only=True):
    """``POST /v1/users``."""

    username: str
    password: str


class LoginRequest(msgspec.Struct, kw_only=True, rename="camel"):
    """``POST /v1/sessions``."""

    username: str
    password: str
    device_id: str | None = None


class RefreshTokenRequest(msgspec.Struct, kw_only=True, rename="camel"):
    """``POST /v1/sessions/refresh`` and ``DELETE /v1/sessions``."""

    refresh_token: str


class SignedPreKeyBody(msgspec.Struct, kw_only=True, rename="camel"):
    """A signed pre-key."""

    key_id: Int32
    public_key: str
    signature: str


class OneTimePreKeyBody(msgspec.Struct, kw_only=True, rename="camel"):
    """A one-time pre-key."""

    key_id: Int32
    public_key: str


class KeyMaterialBody(msgspec.Struct, kw_only=True, rename="camel"):
    """The pre-key fields shared by device creation and key upload."""

    signed_pre_key: SignedPreKeyBody
    one_time_pre_keys: list[OneTimePreKeyBody]

    def signed_pre_key_input(self) -> SignedPreKeyInput:
        """The signed pre-key as the key service takes it."""
        spk = self.signed_pre_key
        return SignedPreKeyInput(spk.key_id, spk.public_key, spk.signature)

    def one_time_pre_key_inputs(self) -> list[PreKeyInput]:
        """The one-time pre-keys as the key service takes them."""
        return [PreKeyInput(k.key_id, k.public_key) for k in self.one_time_pre_keys]


class CreateDeviceRequest(KeyMaterialBody, kw_only=True, rename="camel"):
    """``POST /v1/devices``."""

    name: str | None = None
    identity_key: str
    registration_id: Int32


class UpdateDeviceRequest(msgspec.Struct, kw_only=True):
    """``PUT /v1/devices/{id}``: an absent name clears it."""

    name: str | None = None


class PreKeyUploadRequest(KeyMaterialBody, kw_only=True, rename="camel"):
    """``POST /v1/devices/keys``."""

    identity_key: str | None = None
    registration_id: Int32 | None = None


class PushTokenRequest(msgspec.Struct, kw_only=True, rename="camel"):
    """``PUT /v1/push-tokens`` (``platform``, ``environment``, ``pushKey``: our additions)."""

    token: str
    platform: str | None = None
    environment: str | None = None
    push_key: str | None = None
