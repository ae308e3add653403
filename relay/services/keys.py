"""Signal key management: uploads (refill or takeover) and pre-key bundle fetches."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from relay.crypto import xeddsa
from relay.crypto.keys import KeyFormatError, parse_public_key, parse_signature
from relay.errors import AuthenticationFailed, InvalidInput, NotFound
from relay.events.hub import Hub
from relay.services.principal import Principal
from relay.services.push.wakeups import Wakeups
from storage.db import Database
from storage.ids import now_us
from storage.repos import keys, messages
from storage.repos.keys import DeviceBundle, Identity, OneTimePreKey, SignedPreKey


@dataclass(frozen=True, slots=True)
class SignedPreKeyInput:
    """A signed pre-key as the client sent it (base64 strings)."""

    key_id: int
    public_key: str
    signature: str


@dataclass(frozen=True, slots=True)
class PreKeyInput:
    """A one-time pre-key as the client sent it (base64 string)."""

    key_id: int
    public_key: str


@dataclass(frozen=True, slots=True)
class KeyUpload:
    """The key part of a device creation or a key upload, decoded and format-checked."""

    identity_key: bytes | None
    registration_id: int | None
    signed_pre_key: SignedPreKey
    one_time_pre_keys: list[OneTimePreKey]

    def signature_valid(self, identity_key: bytes) -> bool:
        """True if the signed pre-key is XEd25519-signed by ``identity_key``."""
        return xeddsa.verify_signed_pre_key(
            identity_key, self.signed_pre_key.public_key, self.signed_pre_key.signature
        )


@dataclass(frozen=True, slots=True)
class FetchedBundle:
    """One device's bundle with the one-time pre-key this fetch consumed (if any)."""

    bundle: DeviceBundle
    one_time_pre_key: OneTimePreKey | None
    remaining_one_time_pre_keys: int


def decode_key_upload(
    identity_key: str | None,
    registration_id: int | None,
    signed_pre_key: SignedPreKeyInput,
    one_time_pre_keys: Sequence[PreKeyInput],
) -> KeyUpload:
    """Reject duplicate pre-key ids, then decode every key (400 on the first problem)."""
    seen: set[int] = set()
    for pre_key in one_time_pre_keys:
        if pre_key.key_id in seen:
            raise InvalidInput(f"Duplicate prekey ID: {pre_key.key_id}")
        seen.add(pre_key.key_id)
    try:
        return KeyUpload(
            identity_key=None if identity_key is None else parse_public_key(identity_key),
            registration_id=registration_id,
            signed_pre_key=SignedPreKey(
                signed_pre_key.key_id,
                parse_public_key(signed_pre_key.public_key),
                parse_signature(signed_pre_key.signature),
            ),
            one_time_pre_keys=[
                OneTimePreKey(k.key_id, parse_public_key(k.public_key)) for k in one_time_pre_keys
            ],
        )
    except KeyFormatError as error:
        raise InvalidInput(str(error)) from None


def check_batch_size(upload: KeyUpload, limit: int) -> None:
    """400 when an upload carries more one-time pre-keys than a device may hold."""
    if len(upload.one_time_pre_keys) > limit:
        raise InvalidInput(f"Batch too large. Limit is {limit}")


class KeyService:
    """Uploads and serves pre-key material."""

    def __init__(
        self,
        db: Database,
        hub: Hub,
        *,
        max_pre_keys: int,
        refill_threshold: int,
        wakeups: Wakeups | None = None,
    ) -> None:
        self._db = db
        self._hub = hub
        self._wakeups = wakeups
        self._max_pre_keys = max_pre_keys
        self.refill_threshold = refill_threshold

    async def upload(
        self,
        principal: Principal,
        identity_key: str | None,
        registration_id: int | None,
        signed_pre_key: SignedPreKeyInput,
        one_time_pre_keys: Sequence[PreKeyInput],
    ) -> bool:
        """Refill keys, or take the device over when the identity key changes.

        A takeover deletes every old key and every pending message of the device and
        closes all of its open gateway sessions. Returns True for a takeover.
        """
        device_id = principal.require_device()
        if identity_key is not None and registration_id is None:
            raise InvalidInput("registrationId is required when identityKey is provided")
        upload = decode_key_upload(identity_key, registration_id, signed_pre_key, one_time_pre_keys)

        def work(conn: Connection) -> bool:
            stored = keys.get_identity(conn, device_id, lock=True)
            if stored is None:
                raise AuthenticationFailed()  # the token's device has been deleted
            takeover = (
                upload.identity_key is not None and upload.identity_key != stored.identity_key
            )
            if not upload.signature_valid(upload.identity_key or stored.identity_key):
                raise InvalidInput("Invalid signature")
            spk = upload.signed_pre_key
            if not takeover:
                current = keys.max_signed_pre_key_id(conn, device_id)
                if current is not None and spk.key_id <= current:
                    raise InvalidInput(
                        f"Signed Pre-Key ID {spk.key_id} must be greater than current ID {current}"
                    )
            check_batch_size(upload, self._max_pre_keys)
            now = now_us()
            if takeover:
                assert upload.identity_key is not None
                assert upload.registration_id is not None
                keys.delete_all_pre_keys(conn, device_id)
                keys.replace_identity(
                    conn, device_id, Identity(upload.identity_key, upload.registration_id)
                )
                messages.delete_for_device(conn, device_id)
            else:
                excess = (
                    keys.count_one_time(conn, device_id)
                    + len(upload.one_time_pre_keys)
                    - self._max_pre_keys
                )
                keys.delete_oldest_one_time(conn, device_id, excess)
            keys.rotate_signed_pre_key(conn, device_id, spk, now=now)
            keys.add_one_time(conn, device_id, upload.one_time_pre_keys, now=now)
            return takeover

        takeover = await self._db.write(work)
        if takeover:
            await self._hub.device_taken_over(device_id)
        return takeover

    async def fetch_bundles(self, principal: Principal, user_id: uuid.UUID) -> list[FetchedBundle]:
        """One bundle per device of ``user_id``, each consuming one one-time pre-key."""
        principal.require_device()

        threshold = self.refill_threshold

        def work(conn: Connection) -> list[FetchedBundle]:
            fetched = []
            for bundle in keys.bundles_for_user(conn, user_id):
                taken = keys.take_one_time(conn, bundle.device_id)
                remaining = keys.count_one_time(conn, bundle.device_id)
                fetched.append(FetchedBundle(bundle, taken, remaining))
            low = [f.bundle.device_id for f in fetched if f.remaining_one_time_pre_keys < threshold]
            if low and self._wakeups is not None:
                self._wakeups.schedule(conn, low, now=now_us())
            return fetched

        bundles = await self._db.write(work)
        if not bundles:
            raise NotFound()
        # Every fetch that leaves a device below the threshold re-prompts it (even at 0).
        low = [
            b.bundle.device_id
            for b in bundles
            if b.remaining_one_time_pre_keys < self.refill_threshold
        ]
        if low:
            await self._hub.pre_keys_low(low)
        return bundles

    async def one_time_pre_key_count(self, device_id: uuid.UUID) -> int:
        """How many one-time pre-keys the device has left."""
        return await self._db.read(lambda conn: keys.count_one_time(conn, device_id))
