"""POST /v1/messages: validation, de-duplication, limits and idempotency (§2.12, §4.1)."""

from __future__ import annotations

import uuid

import httpx
import pytest
import trio
from sqlalchemy import select

from obscura_proto.obscura.v1 import (
    SendMessageRequest,
    SendMessageRequestSubmission,
    SendMessageResponse,
    SendMessageResponseErrorCode,
)
from relay.client import Outgoing
from relay.process.server import Listening
from storage.db import Database
from storage.ids import MICROS_PER_DAY
from storage.schema import messages
from tests.factories import Device, new_account, new_device
from tests.messaging import pending
from tests.rawhttp import raw_request, upload_head

Code = SendMessageResponseErrorCode


def _request(*items: tuple[bytes, bytes, bytes]) -> bytes:
    return bytes(
        SendMessageRequest(
            messages=[
                SendMessageRequestSubmission(submission_id=s, device_id=d, message=m)
                for s, d, m in items
            ]
        )
    )


async def post(
    http: httpx.AsyncClient, sender: Device, body: bytes, key: str | None = None
) -> httpx.Response:
    headers = dict(sender.headers)
    if key is not None:
        headers["Idempotency-Key"] = key
    return await http.post("/v1/messages", content=body, headers=headers)


async def test_message_is_queued_with_server_stamped_fields(
    http: httpx.AsyncClient, db: Database
) -> None:
    sender, recipient = await new_device(http), await new_device(http)
    submission = uuid.uuid4()
    response = await post(
        http,
        sender,
        _request((submission.bytes, recipient.id.bytes, b"ciphertext")),
        str(uuid.uuid4()),
    )
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-type"] == "application/octet-stream"
    row = await db.read(
        lambda conn: conn.execute(
            select(messages).where(messages.c.device_id == recipient.id)
        ).one()
    )
    assert row.sender_id == sender.user_id
    assert row.sender_device_id == sender.id
    assert row.submission_id == submission
    assert bytes(row.content) == b"ciphertext"
    assert row.expires_at - row.created_at == 30 * MICROS_PER_DAY
    assert row.id.version == 7


async def test_structural_failures_come_first_then_unknown_devices(
    http: httpx.AsyncClient, db: Database
) -> None:
    sender, recipient = await new_device(http), await new_device(http)
    ok = uuid.uuid4().bytes
    unknown_target = uuid.uuid4().bytes
    items = [
        (uuid.uuid4().bytes, unknown_target, b"lost"),
        (b"short", recipient.id.bytes, b"x"),
        (uuid.uuid4().bytes, b"\x01" * 15, b"x"),
        (uuid.uuid4().bytes, recipient.id.bytes, b""),
        (ok, recipient.id.bytes, b"fine"),
    ]
    response = await post(http, sender, _request(*items), str(uuid.uuid4()))
    assert response.status_code == 200
    failed = SendMessageResponse.parse(response.content).failed_submissions
    assert [(f.submission_id, f.error_code, f.error_message) for f in failed] == [
        (b"short", Code.MALFORMED_SUBMISSION_ID, "Invalid submission_id UUID bytes (expected 16)"),
        (items[2][0], Code.MALFORMED_DEVICE_ID, "Invalid device_id UUID bytes (expected 16)"),
        (items[3][0], Code.MESSAGE_MISSING, "Missing message payload"),
        (items[0][0], Code.INVALID_DEVICE, "Device not found"),
    ]
    assert await pending(db, recipient) == 1


async def test_partial_success_in_a_large_batch(http: httpx.AsyncClient, db: Database) -> None:
    sender, recipient = await new_device(http), await new_device(http)
    batch = [Outgoing(recipient.id, f"m{i}".encode()) for i in range(49)]
    batch.append(Outgoing(uuid.uuid4(), b"nobody"))
    failed = await sender.client.send_messages(batch)
    assert [f.error_code for f in failed] == [Code.INVALID_DEVICE]
    assert await pending(db, recipient) == 49


async def test_any_users_device_and_own_devices_are_targets(
    http: httpx.AsyncClient, db: Database
) -> None:
    sender = await new_device(http)
    sibling = await new_device(http, account=sender.client)
    assert (
        await sender.client.send_messages([Outgoing(sibling.id, b"a"), Outgoing(sender.id, b"b")])
        == []
    )
    assert await pending(db, sibling) == 1
    assert await pending(db, sender) == 1


async def test_duplicate_submissions_are_skipped_silently(
    http: httpx.AsyncClient, db: Database
) -> None:
    sender, first, second = await new_device(http), await new_device(http), await new_device(http)
    repeated = uuid.uuid4()
    assert (
        await sender.client.send_messages(
            [Outgoing(first.id, b"a", repeated), Outgoing(first.id, b"b", repeated)]
        )
        == []
    )
    # Across requests and across targets, the (sender device, submission id) pair is spent.
    assert await sender.client.send_messages([Outgoing(second.id, b"c", repeated)]) == []
    assert await pending(db, first) == 1
    assert await pending(db, second) == 0
    # Another sending device may use the same submission id.
    other = await new_device(http)
    await other.client.send_messages([Outgoing(second.id, b"d", repeated)])
    assert await pending(db, second) == 1


@pytest.mark.settings(messaging_send_batch_limit=3)
async def test_batch_limit_is_413_json(http: httpx.AsyncClient, db: Database) -> None:
    sender, recipient = await new_device(http), await new_device(http)
    items = [(uuid.uuid4().bytes, recipient.id.bytes, b"x") for _ in range(4)]
    response = await post(http, sender, _request(*items), str(uuid.uuid4()))
    assert response.status_code == 413
    assert response.json() == {"error": "Payload too large"}
    assert await pending(db, recipient) == 0
    response = await post(http, sender, _request(*items[:3]), str(uuid.uuid4()))
    assert response.status_code == 200


async def test_a_million_empty_submissions_are_413_and_queue_nothing(
    http: httpx.AsyncClient, db: Database
) -> None:
    sender, recipient = await new_device(http), await new_device(http)
    response = await post(http, sender, b"\x0a\x00" * 1_000_000, str(uuid.uuid4()))
    assert response.status_code == 413
    assert response.json() == {"error": "Payload too large"}
    assert await pending(db, recipient) == 0


async def test_a_large_send_decoded_off_the_event_loop_is_queued(
    http: httpx.AsyncClient, db: Database
) -> None:
    sender, recipient = await new_device(http), await new_device(http)
    items = [(uuid.uuid4().bytes, recipient.id.bytes, b"c" * 4096) for _ in range(40)]
    response = await post(http, sender, _request(*items), str(uuid.uuid4()))
    assert response.status_code == 200
    assert await pending(db, recipient) == 40


async def test_body_over_two_mebibytes_is_413(relay: Listening, http: httpx.AsyncClient) -> None:
    sender = await new_device(http)
    headers = {**sender.headers, "Idempotency-Key": str(uuid.uuid4())}
    head = upload_head("/v1/messages", {**headers, "Content-Length": str(2 * 1024 * 1024 + 1)})
    # Sent by hand: the answer comes before the body is through, which httpx dislikes.
    response = await raw_request(relay.api_url, head, [(0.0, b"\x00" * (2 * 1024 * 1024 + 1))])
    assert response.startswith(b"HTTP/1.1 413")


async def test_a_chunked_body_over_two_mebibytes_is_413_and_queues_nothing(
    relay: Listening, http: httpx.AsyncClient, db: Database
) -> None:
    sender, recipient = await new_device(http), await new_device(http)
    headers = {**sender.headers, "Idempotency-Key": str(uuid.uuid4())}
    head = upload_head("/v1/messages", {**headers, "Transfer-Encoding": "chunked"})
    # No declared length: the limit is found while reading. A real message leads the body.
    message = _request((uuid.uuid4().bytes, recipient.id.bytes, b"x"))
    chunk = message + b"\x00" * (1024 * 1024)
    encoded = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    response = await raw_request(relay.api_url, head, [(0.0, encoded)] * 3)
    assert response.startswith(b"HTTP/1.1 413")
    assert b"text/plain" in response
    assert await pending(db, recipient) == 0


async def test_other_methods_are_405_naming_post(http: httpx.AsyncClient) -> None:
    sender = await new_device(http)
    for method in ("GET", "PUT", "DELETE", "HEAD", "OPTIONS"):
        response = await http.request(method, "/v1/messages", headers=sender.headers)
        assert (response.status_code, response.headers["allow"]) == (405, "POST"), method
        assert response.content == b""


async def test_malformed_protobuf_is_400(http: httpx.AsyncClient) -> None:
    sender = await new_device(http)
    response = await post(http, sender, b"\x00\x01\x02", str(uuid.uuid4()))
    assert response.status_code == 400
    assert response.json()["error"].startswith("Invalid SendMessageRequest protobuf: ")


async def test_empty_batch_is_an_empty_200(http: httpx.AsyncClient) -> None:
    sender = await new_device(http)
    response = await post(http, sender, b"", str(uuid.uuid4()))
    assert response.status_code == 200
    assert response.content == b""


async def test_content_type_is_not_checked(http: httpx.AsyncClient, db: Database) -> None:
    sender, recipient = await new_device(http), await new_device(http)
    headers = {**sender.headers, "Idempotency-Key": str(uuid.uuid4()), "Content-Type": "text/plain"}
    body = _request((uuid.uuid4().bytes, recipient.id.bytes, b"x"))
    assert (await http.post("/v1/messages", content=body, headers=headers)).status_code == 200
    assert await pending(db, recipient) == 1


async def test_auth_scope_and_header_checks_in_order(http: httpx.AsyncClient) -> None:
    assert (await http.post("/v1/messages", content=b"")).status_code == 401
    account = await new_account(http)
    user_scoped = await http.post("/v1/messages", content=b"", headers=account.auth_headers)
    assert user_scoped.status_code == 403
    sender = await new_device(http)
    missing = await post(http, sender, b"")
    assert missing.status_code == 400
    assert missing.json() == {"error": "Missing idempotency-key header"}
    invalid = await post(http, sender, b"\x00\x01", "not-a-uuid")
    assert invalid.status_code == 400
    assert invalid.json()["error"].startswith("Invalid idempotency-key: ")


async def test_replay_returns_the_first_answer_and_queues_nothing(
    http: httpx.AsyncClient, db: Database
) -> None:
    sender, recipient = await new_device(http), await new_device(http)
    key = str(uuid.uuid4())
    body = _request(
        (uuid.uuid4().bytes, recipient.id.bytes, b"x"),
        (uuid.uuid4().bytes, uuid.uuid4().bytes, b"y"),
    )
    first = await post(http, sender, body, key)
    assert first.status_code == 200
    assert len(SendMessageResponse.parse(first.content).failed_submissions) == 1
    for retry_body in (body, _request((uuid.uuid4().bytes, recipient.id.bytes, b"z")), b"\x00\x01"):
        retry = await post(http, sender, retry_body, key)
        assert retry.status_code == 200
        assert retry.content == first.content
    assert await pending(db, recipient) == 1


async def test_key_spellings_name_the_same_key(http: httpx.AsyncClient, db: Database) -> None:
    sender, recipient = await new_device(http), await new_device(http)
    key = uuid.uuid4()
    body = _request((uuid.uuid4().bytes, recipient.id.bytes, b"x"))
    await post(http, sender, body, str(key))
    other = _request((uuid.uuid4().bytes, recipient.id.bytes, b"y"))
    for spelling in (key.hex, str(key).upper(), f"urn:uuid:{key}"):
        assert (await post(http, sender, other, spelling)).status_code == 200
    assert await pending(db, recipient) == 1


@pytest.mark.settings(messaging_send_batch_limit=1)
async def test_errors_are_not_replayed(http: httpx.AsyncClient, db: Database) -> None:
    sender, recipient = await new_device(http), await new_device(http)
    key = str(uuid.uuid4())
    too_many = _request(*[(uuid.uuid4().bytes, recipient.id.bytes, b"x")] * 2)
    assert (await post(http, sender, too_many, key)).status_code == 413
    assert (await post(http, sender, b"\x00\x01", key)).status_code == 400
    fine = _request((uuid.uuid4().bytes, recipient.id.bytes, b"x"))
    assert (await post(http, sender, fine, key)).status_code == 200
    assert await pending(db, recipient) == 1


async def test_keys_are_scoped_per_sending_device(http: httpx.AsyncClient, db: Database) -> None:
    first, second, recipient = [await new_device(http) for _ in range(3)]
    key = str(uuid.uuid4())
    await post(http, first, _request((uuid.uuid4().bytes, recipient.id.bytes, b"a")), key)
    await post(http, second, _request((uuid.uuid4().bytes, recipient.id.bytes, b"b")), key)
    assert await pending(db, recipient) == 2


@pytest.mark.settings(messaging_idempotency_ttl_secs=1)
async def test_keys_expire(http: httpx.AsyncClient, db: Database) -> None:
    sender, recipient = await new_device(http), await new_device(http)
    key = str(uuid.uuid4())
    await post(http, sender, _request((uuid.uuid4().bytes, recipient.id.bytes, b"a")), key)
    await trio.sleep(1.1)
    await post(http, sender, _request((uuid.uuid4().bytes, recipient.id.bytes, b"b")), key)
    assert await pending(db, recipient) == 2


async def test_deleted_sender_device_is_401(http: httpx.AsyncClient) -> None:
    sender, recipient = await new_device(http), await new_device(http)
    await sender.client.delete_device(sender.id)
    body = _request((uuid.uuid4().bytes, recipient.id.bytes, b"x"))
    assert (await post(http, sender, body, str(uuid.uuid4()))).status_code == 401


async def test_messages_to_a_deleted_device_fail(http: httpx.AsyncClient) -> None:
    sender, recipient = await new_device(http), await new_device(http)
    await recipient.client.delete_device(recipient.id)
    failed = await sender.client.send_messages([Outgoing(recipient.id, b"x")])
    assert [f.error_code for f in failed] == [Code.INVALID_DEVICE]


async def test_concurrent_sends_share_a_batch_without_mixing_up_outcomes(
    http: httpx.AsyncClient, db: Database
) -> None:
    # Sent together, these land in shared write batches: a key repeated within one batch
    # is still a replay, and a deleted sender fails only its own request.
    senders = [await new_device(http) for _ in range(6)]
    recipient, gone = await new_device(http), await new_device(http)
    await gone.client.delete_device(gone.id)
    key = str(uuid.uuid4())
    statuses: dict[str, list[int]] = {"repeated": [], "own": [], "gone": []}
    repeated_bodies: list[bytes] = []

    async def send(kind: str, sender: Device, key: str) -> None:
        body = _request((uuid.uuid4().bytes, recipient.id.bytes, kind.encode()))
        response = await post(http, sender, body, key)
        statuses[kind].append(response.status_code)
        if kind == "repeated":
            repeated_bodies.append(response.content)

    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(send, "repeated", senders[0], key)
        for sender in senders[1:]:
            nursery.start_soon(send, "own", sender, str(uuid.uuid4()))
        nursery.start_soon(send, "gone", gone, str(uuid.uuid4()))
    assert statuses == {"repeated": [200] * 5, "own": [200] * 5, "gone": [401]}
    assert set(repeated_bodies) == {b""}
    assert await pending(db, recipient) == 1 + 5


async def test_a_send_is_answered_alike_on_the_lean_path(
    relay: Listening, http: httpx.AsyncClient, db: Database
) -> None:
    """A connection that starts with a send is served by the lean HTTP path; one that
    started with another request by hypercorn. Both answer every case the same."""
    sender, recipient = await new_device(http), await new_device(http)
    valid = _request((uuid.uuid4().bytes, recipient.id.bytes, b"x"))
    cases = [
        (sender.headers, valid),
        (sender.headers, b"\x00\x01\x02"),
        ({}, valid),
        ({"Authorization": "Bearer not-a-token"}, valid),
    ]
    for headers, body in cases:
        key = str(uuid.uuid4())
        answers = []
        async with httpx.AsyncClient(base_url=relay.api_url) as fresh:
            for client in (fresh, http):
                answers.append(
                    await client.post(
                        "/v1/messages", content=body, headers={**headers, "Idempotency-Key": key}
                    )
                )
        lean, hypercorn = answers
        assert (lean.status_code, lean.content) == (hypercorn.status_code, hypercorn.content)
        assert list(lean.headers) == list(hypercorn.headers)
        assert lean.headers["x-request-id"] != hypercorn.headers["x-request-id"]
    # The repeat under the same key was answered from the idempotency record.
    assert await pending(db, recipient) == 1


@pytest.mark.settings(server_request_timeout_secs=1)
async def test_a_slow_send_body_gets_an_empty_408_on_the_lean_path(
    relay: Listening, http: httpx.AsyncClient
) -> None:
    # The connection starts with the send, so the lean path reads the body, within the
    # request timeout as hypercorn would.
    sender = await new_device(http)
    headers = {**sender.headers, "Content-Length": "60", "x-request-id": "slow-send"}
    head = upload_head("/v1/messages", headers)
    response = await raw_request(relay.api_url, head, [(0.0, b"\x0a"), (5.0, b"x")])
    status_line, _, rest = response.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 408")
    assert b"x-request-id: slow-send" in rest.lower()


@pytest.mark.parametrize("fresh_connection", [True, False])
async def test_a_body_cut_off_by_a_disconnect_does_nothing_under_its_key(
    relay: Listening, http: httpx.AsyncClient, db: Database, fresh_connection: bool
) -> None:
    """A send whose client goes away mid-body is not a (shorter) send: a retry under the
    same idempotency key is queued, not answered from a record of the cut-off one. Both
    the lean path (a fresh connection) and hypercorn (after another request) are checked."""
    sender, recipient = await new_device(http), await new_device(http)
    key = str(uuid.uuid4())
    body = _request((uuid.uuid4().bytes, recipient.id.bytes, b"x" * 200))
    head = upload_head(
        "/v1/messages",
        {**sender.headers, "Idempotency-Key": key, "Content-Length": str(len(body))},
    )
    url = httpx.URL(relay.api_url)
    assert url.port is not None
    stream = await trio.open_tcp_stream(url.host, url.port)
    async with stream:
        if not fresh_connection:
            await stream.send_all(b"GET /v1/nothing HTTP/1.1\r\nHost: relay\r\n\r\n")
            assert (await stream.receive_some()).startswith(b"HTTP/1.1 404")
        await stream.send_all(head + body[:-20])
        await trio.sleep(0.2)
    await trio.sleep(0.3)  # the server sees the disconnect
    response = await post(http, sender, body, key)
    assert response.status_code == 200
    assert await pending(db, recipient) == 1
