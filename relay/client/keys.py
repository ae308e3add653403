"""Client-side Signal key material: generation and the JSON the API expects."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from typing import Any

from relay.crypto import xeddsa
from relay.crypto.keys import encode_base64


@dataclass(frozen=True)
class KeyPair:
    """A Curve25519 key pair; ``public_key`` is the 33-byte serialised form."""

    private_key: bytes
    public_key: bytes

    @classmethod
    def generate(cls) -> KeyPair:
        """A fresh random key pair."""
        private = xeddsa.clamp(os.urandom(32))
        return cls(private, xeddsa.public_key(private))


@dataclass
class DeviceKeys:
    """A device's identity plus the pre-keys it publishes."""

    identity: KeyPair
    registration_id: int
    signed_pre_key_id: int
    signed_pre_key: KeyPair
    signed_pre_key_signature: bytes
    one_time_pre_keys: dict[int, KeyPair] = field(default_factory=dict)
    next_one_time_id: int = 1

    @classmethod
    def generate(cls, *, one_time_pre_keys: int = 0, signed_pre_key_id: int = 1) -> DeviceKeys:
        """A new identity with a signed pre-key and ``one_time_pre_keys`` one-time pre-keys."""
        identity = KeyPair.generate()
        signed = KeyPair.generate()
        keys = cls(
            identity=identity,
            registration_id=secrets.randbelow(16380) + 1,
            signed_pre_key_id=signed_pre_key_id,
            signed_pre_key=signed,
            signed_pre_key_signature=xeddsa.sign(identity.private_key, signed.public_key),
        )
        keys.add_one_time_pre_keys(one_time_pre_keys)
        return keys

    def add_one_time_pre_keys(self, count: int) -> list[int]:
        """Generate ``count`` new one-time pre-keys; returns their ids."""
        ids = list(range(self.next_one_time_id, self.next_one_time_id + count))
        for key_id in ids:
            self.one_time_pre_keys[key_id] = KeyPair.generate()
        self.next_one_time_id += count
        return ids

    def rotate_signed_pre_key(self, key_id: int | None = None) -> None:
        """Replace the signed pre-key (default id: the current one plus one)."""
        self.signed_pre_key_id = self.signed_pre_key_id + 1 if key_id is None else key_id
        self.signed_pre_key = KeyPair.generate()
        self.signed_pre_key_signature = xeddsa.sign(
            self.identity.private_key, self.signed_pre_key.public_key
        )

    def signed_pre_key_json(self) -> dict[str, Any]:
        """The ``signedPreKey`` object."""
        return {
            "keyId": self.signed_pre_key_id,
            "publicKey": encode_base64(self.signed_pre_key.public_key),
            "signature": encode_base64(self.signed_pre_key_signature),
        }

    def one_time_pre_keys_json(self, ids: list[int] | None = None) -> list[dict[str, Any]]:
        """``oneTimePreKeys`` entries for ``ids`` (default: all)."""
        chosen = sorted(self.one_time_pre_keys) if ids is None else ids
        return [
            {"keyId": key_id, "publicKey": encode_base64(self.one_time_pre_keys[key_id].public_key)}
            for key_id in chosen
        ]

    def create_device_json(self, name: str | None = None) -> dict[str, Any]:
        """The ``POST /v1/devices`` body."""
        body: dict[str, Any] = {
            "identityKey": encode_base64(self.identity.public_key),
            "registrationId": self.registration_id,
            "signedPreKey": self.signed_pre_key_json(),
            "oneTimePreKeys": self.one_time_pre_keys_json(),
        }
        if name is not None:
            body["name"] = name
        return body

    def upload_json(
        self, one_time_ids: list[int] | None = None, *, include_identity: bool = False
    ) -> dict[str, Any]:
        """A ``POST /v1/devices/keys`` body (a takeover when the identity is new)."""
        body: dict[str, Any] = {
            "signedPreKey": self.signed_pre_key_json(),
            "oneTimePreKeys": self.one_time_pre_keys_json(one_time_ids or []),
        }
        if include_identity:
            body["identityKey"] = encode_base64(self.identity.public_key)
            body["registrationId"] = self.registration_id
        return body
