"""Sending messages: POST /v1/messages, with idempotent retries."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import partial

from sqlalchemy.engine import Connection

from obscura_proto.obscura.v1 import (
    SendMessageResponse,
    SendMessageResponseErrorCode,
    SendMessageResponseFailedSubmission,
)
from relay import wire
from relay.errors import AuthenticationFailed, InvalidInput, PayloadTooLarge, RelayError
from relay.gateway.hub import Hub
from relay.parsing import parse_uuid
from relay.services.group_commit import GroupCommit
from relay.services.principal import Principal
from relay.services.push.wakeups import Wakeups
from storage.db import Database
from storage.ids import MICROS_PER_DAY, MICROS_PER_SECOND, now_us, uuid7
from storage.repos import devices, idempotency, messages
from storage.repos.messages import NewMessage

UUID_BYTES = 16

ErrorCode = SendMessageResponseErrorCode


@dataclass(frozen=True, slots=True)
class _Failure:
    submission_id: bytes
    code: ErrorCode
    message: str

    def proto(self) -> SendMessageResponseFailedSubmission:
        return SendMessageResponseFailedSubmission(
            submission_id=self.submission_id, error_code=self.code, error_message=self.message
        )


def _structural_failure(submission: wire.Submission) -> _Failure | None:
    """The first structural rule a submission breaks, in the contract's order."""
    if len(submission.submission_id) != UUID_BYTES:
        return _Failure(
            submission.submission_id,
            ErrorCode.MALFORMED_SUBMISSION_ID,
            "Invalid submission_id UUID bytes (expected 16)",
        )
    if len(submission.device_id) != UUID_BYTES:
        return _Failure(
            submission.submission_id,
            ErrorCode.MALFORMED_DEVICE_ID,
            "Invalid device_id UUID bytes (expected 16)",
        )
    if not submission.message:
        return _Failure(
            submission.submission_id, ErrorCode.MESSAGE_MISSING, "Missing message payload"
        )
    return None


def parse_idempotency_key(value: str | None) -> uuid.UUID:
    """The ``Idempotency-Key`` header as a UUID, in any spelling; 400 otherwise."""
    if value is None:
        raise InvalidInput("Missing idempotency-key header")
    key = parse_uuid(value)
    if key is None:
        raise InvalidInput(f"Invalid idempotency-key: {value!r} is not a UUID")
    return key


class MessagingService:
    """Validates, de-duplicates and queues messages, then wakes their recipients."""

    def __init__(
        self,
        db: Database,
        hub: Hub,
        *,
        batch_limit: int,
        ttl_days: int,
        idempotency_ttl_secs: int,
        wakeups: Wakeups | None = None,
        writes: GroupCommit | None = None,
    ) -> None:
        self._db = db
        self._hub = hub
        self._wakeups = wakeups
        # Sends of concurrent requests share a transaction (one thread hop for many).
        self._writes = writes or GroupCommit(db)
        self._batch_limit = batch_limit
        self._ttl_us = ttl_days * MICROS_PER_DAY
        self._idempotency_ttl_us = idempotency_ttl_secs * MICROS_PER_SECOND

    async def send(self, principal: Principal, idempotency_key: str | None, body: bytes) -> bytes:
        """Queue a ``SendMessageRequest``; returns the encoded ``SendMessageResponse``.

        A retry with a key seen within its TTL gets the first response's exact bytes
        back, whatever its body, and queues nothing.
        """
        sender_device = principal.require_device()
        key = parse_idempotency_key(idempotency_key)
        refusal: RelayError | None = None
        submissions: list[wire.Submission] = []
        try:
            submissions = wire.decode_send_message_request(body)
        except wire.DecodeError as error:
            refusal = InvalidInput(f"Invalid SendMessageRequest protobuf: {error}")
        if refusal is None and len(submissions) > self._batch_limit:
            refusal = PayloadTooLarge()
        if refusal is not None:
            # Only a replay can turn this into a success; the body is never looked at.
            cached = await self._db.read(
                lambda conn: idempotency.lookup(conn, sender_device, key, now=now_us())
            )
            if cached is None:
                raise refusal
            return cached

        failures: list[_Failure] = []
        candidates: list[tuple[wire.Submission, uuid.UUID]] = []
        for submission in submissions:
            failure = _structural_failure(submission)
            if failure is None:
                candidates.append((submission, uuid.UUID(bytes=submission.device_id)))
            else:
                failures.append(failure)

        def work(conn: Connection) -> tuple[bytes, set[uuid.UUID]]:
            now = now_us()
            cached = idempotency.lookup(conn, sender_device, key, now=now)
            if cached is not None:
                return cached, set()
            targets = {device for _, device in candidates}
            known = devices.existing(conn, targets | {sender_device})
            if sender_device not in known:
                raise AuthenticationFailed()  # the token's device has been deleted
            queued = []
            missing = []
            for submission, device in candidates:
                if device in known:
                    queued.append(
                        NewMessage(
                            uuid7(),
                            device,
                            uuid.UUID(bytes=submission.submission_id),
                            submission.message,
                        )
                    )
                else:
                    missing.append(
                        _Failure(
                            submission.submission_id, ErrorCode.INVALID_DEVICE, "Device not found"
                        )
                    )
            woken = messages.insert_batch(
                conn,
                queued,
                sender_id=principal.user_id,
                sender_device_id=sender_device,
                created_at=now,
                expires_at=now + self._ttl_us,
            )
            if woken and self._wakeups is not None:
                self._wakeups.schedule(conn, woken, now=now)
            response = bytes(
                SendMessageResponse(failed_submissions=[f.proto() for f in failures + missing])
            )
            idempotency.store(
                conn,
                sender_device,
                key,
                response,
                now=now,
                expires_at=now + self._idempotency_ttl_us,
            )
            return response, woken

        response, woken = await self._writes.submit(work)
        if woken:
            await self._hub.messages_queued(woken)
        return response

    async def clean_up(self, *, inbox_max_size: int, batch_size: int) -> tuple[int, int]:
        """Delete expired messages and idempotency records, then cap every device's inbox
        at ``inbox_max_size`` (oldest first). Returns (expired, pruned) message counts."""
        expired = 0
        while True:
            deleted = await self._db.write(
                partial(messages.delete_expired, now=now_us(), limit=batch_size)
            )
            expired += deleted
            if deleted < batch_size:
                break
        await self._db.write(partial(idempotency.delete_expired, now=now_us()))

        def prune(conn: Connection) -> int:
            over = messages.devices_over(conn, inbox_max_size)
            return sum(messages.trim_device(conn, device, inbox_max_size) for device in over)

        return expired, await self._db.write(prune)
