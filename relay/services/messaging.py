"""Sending messages: POST /v1/messages, with idempotent retries."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import partial

import trio
from sqlalchemy.engine import Connection

from obscura_proto.obscura.v1 import (
    SendMessageResponse,
    SendMessageResponseErrorCode,
    SendMessageResponseFailedSubmission,
)
from relay import wire
from relay.errors import AuthenticationFailed, InvalidInput, PayloadTooLarge, RelayError
from relay.events.hub import Hub
from relay.observability import metrics
from relay.services.parsing import parse_uuid
from relay.services.principal import Principal
from relay.services.push.wakeups import Wakeups
from storage.db import Database
from storage.group_commit import GroupCommit
from storage.ids import MICROS_PER_DAY, MICROS_PER_SECOND, now_us, uuid7
from storage.repos import devices, idempotency, messages
from storage.repos.messages import NewMessage

UUID_BYTES = 16
# Bodies up to this size decode on the event loop (a full 50-message batch is far
# smaller); larger ones in a worker thread, at most this many at a time.
_DECODE_INLINE_BYTES = 64 * 1024
_DECODE_THREADS = 2

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


@dataclass(frozen=True, slots=True)
class _Send:
    """One POST /v1/messages, checked and ready to queue."""

    sender_id: uuid.UUID
    sender_device: uuid.UUID
    key: uuid.UUID
    candidates: list[tuple[wire.Submission, uuid.UUID]]
    failures: list[_Failure]


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
        self._decode_limiter = trio.CapacityLimiter(_DECODE_THREADS)
        self._decode_body = partial(wire.decode_send_message_request, max_submissions=batch_limit)
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
            submissions = await self._decode(body)
        except wire.DecodeError as error:
            refusal = InvalidInput(f"Invalid SendMessageRequest protobuf: {error}")
        except wire.TooManySubmissions:
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

        job = _Send(principal.user_id, sender_device, key, candidates, failures)
        outcome = await self._writes.submit_item(self._queue_sends, job)
        if outcome is None:
            raise AuthenticationFailed()  # the token's device has been deleted
        response, woken = outcome
        if woken:
            await self._hub.messages_queued(woken)
        return response

    async def _decode(self, body: bytes) -> list[wire.Submission]:
        """The body's submissions, up to the batch limit; a large body is decoded in a
        worker thread so that no request holds the event loop for long (2 MiB of tiny
        fields take about a second to walk)."""
        if len(body) <= _DECODE_INLINE_BYTES:
            return self._decode_body(body)
        return await trio.to_thread.run_sync(self._decode_body, body, limiter=self._decode_limiter)

    def _queue_sends(
        self, conn: Connection, jobs: list[_Send]
    ) -> list[tuple[bytes, set[uuid.UUID]] | None]:
        """The sends of concurrent requests in a few statements for all of them: one
        lookup of their idempotency keys, one of their devices, one insert of their
        messages, one wake-up scheduling and one store of their responses.

        Per send: its response and the devices it queued for, the stored response of a
        replay (also of a key seen earlier in the same batch), or None when the sending
        device no longer exists.
        """
        messages.hold_queue_order(conn)
        now = now_us()
        stored = idempotency.lookup_many(
            conn, [(job.sender_device, job.key) for job in jobs], now=now
        )
        known = devices.existing(
            conn,
            {device for job in jobs for _, device in job.candidates}
            | {job.sender_device for job in jobs},
        )
        outcomes: list[tuple[bytes, set[uuid.UUID]] | None] = []
        rows: list[tuple[uuid.UUID, uuid.UUID, NewMessage]] = []
        targets: list[set[uuid.UUID]] = []
        new_records: list[tuple[uuid.UUID, uuid.UUID, bytes]] = []
        for job in jobs:
            replay = stored.get((job.sender_device, job.key))
            if replay is not None:
                outcomes.append((replay, set()))
                targets.append(set())
                continue
            if job.sender_device not in known:
                outcomes.append(None)
                targets.append(set())
                continue
            missing: list[_Failure] = []
            queued_for: set[uuid.UUID] = set()
            for submission, device in job.candidates:
                if device in known:
                    rows.append(
                        (
                            job.sender_id,
                            job.sender_device,
                            NewMessage(
                                uuid7(),
                                device,
                                uuid.UUID(bytes=submission.submission_id),
                                submission.message,
                            ),
                        )
                    )
                    queued_for.add(device)
                else:
                    missing.append(
                        _Failure(
                            submission.submission_id, ErrorCode.INVALID_DEVICE, "Device not found"
                        )
                    )
            failed = job.failures + missing
            response = (
                bytes(SendMessageResponse(failed_submissions=[f.proto() for f in failed]))
                if failed
                else b""  # an empty SendMessageResponse
            )
            stored[(job.sender_device, job.key)] = response  # a replay later in this batch
            new_records.append((job.sender_device, job.key, response))
            outcomes.append((response, set()))
            targets.append(queued_for)
        woken = messages.insert_from_senders(
            conn, rows, created_at=now, expires_at=now + self._ttl_us
        )
        metrics.MESSAGES_QUEUED.inc(len(rows))
        if woken and self._wakeups is not None:
            self._wakeups.schedule(conn, woken, now=now)
        idempotency.store_many(
            conn, new_records, now=now, expires_at=now + self._idempotency_ttl_us
        )
        return [
            None if outcome is None else (outcome[0], job_targets & woken)
            for outcome, job_targets in zip(outcomes, targets, strict=True)
        ]

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
