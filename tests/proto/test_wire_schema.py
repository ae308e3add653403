"""The generated obscura.v1 code encodes the exact field numbers and types of the contract."""

from __future__ import annotations

import uuid

import betterproto2
import pytest

from obscura_proto.obscura.v1 import (
    AckMessage,
    Envelope,
    EnvelopeBatch,
    PreKeyStatus,
    SendMessageRequest,
    SendMessageRequestSubmission,
    SendMessageResponse,
    SendMessageResponseErrorCode,
    SendMessageResponseFailedSubmission,
    WebSocketFrame,
)

ID = uuid.UUID("67e55044-10b1-426f-9247-bb680e5fe0c8").bytes


def _tag(field: int, wire_type: int) -> bytes:
    return bytes([field << 3 | wire_type])


def test_websocket_frame_oneof_numbers() -> None:
    ack = bytes(WebSocketFrame(ack=AckMessage(message_ids=[ID])))
    assert ack == _tag(11, 2) + bytes([18]) + _tag(1, 2) + bytes([16]) + ID
    status = bytes(
        WebSocketFrame(pre_key_status=PreKeyStatus(one_time_pre_key_count=3, min_threshold=20))
    )
    assert status == _tag(12, 2) + bytes([4]) + _tag(1, 0) + b"\x03" + _tag(2, 0) + b"\x14"
    batch = bytes(WebSocketFrame(envelope_batch=EnvelopeBatch(envelopes=[Envelope(id=ID)])))
    assert batch.startswith(_tag(13, 2))


def test_envelope_field_numbers_and_types() -> None:
    envelope = Envelope(
        id=ID, sender_id=ID, timestamp=1_700_000_000_000, message=b"m", sender_device_id=ID
    )
    encoded = bytes(envelope)
    timestamp = betterproto2.encode_varint(1_700_000_000_000)  # uint64 varint
    expected = (
        _tag(1, 2) + b"\x10" + ID
        + _tag(2, 2) + b"\x10" + ID
        + _tag(3, 0) + timestamp
        + _tag(4, 2) + b"\x01m"
        + _tag(5, 2) + b"\x10" + ID
    )  # fmt: skip
    assert encoded == expected
    assert Envelope.parse(encoded) == envelope


def test_send_message_request_and_response() -> None:
    request = SendMessageRequest(
        messages=[SendMessageRequestSubmission(submission_id=ID, device_id=ID, message=b"x")]
    )
    inner = _tag(1, 2) + b"\x10" + ID + _tag(2, 2) + b"\x10" + ID + _tag(3, 2) + b"\x01x"
    assert bytes(request) == _tag(1, 2) + bytes([len(inner)]) + inner
    response = SendMessageResponse(
        failed_submissions=[
            SendMessageResponseFailedSubmission(
                submission_id=ID,
                error_code=SendMessageResponseErrorCode.MESSAGE_MISSING,
                error_message="Missing message payload",
            )
        ]
    )
    parsed = SendMessageResponse.parse(bytes(response))
    assert parsed.failed_submissions[0].error_code == SendMessageResponseErrorCode.MESSAGE_MISSING
    assert bytes(response)[2:4] == _tag(1, 2) + b"\x10"


@pytest.mark.parametrize(
    ("code", "value"),
    [
        (SendMessageResponseErrorCode.UNSPECIFIED, 0),
        (SendMessageResponseErrorCode.INVALID_DEVICE, 1),
        (SendMessageResponseErrorCode.MALFORMED_DEVICE_ID, 2),
        (SendMessageResponseErrorCode.MALFORMED_SUBMISSION_ID, 3),
        (SendMessageResponseErrorCode.MESSAGE_MISSING, 4),
    ],
)
def test_error_codes(code: SendMessageResponseErrorCode, value: int) -> None:
    assert int(code) == value


def test_empty_response_is_empty_bytes() -> None:
    assert bytes(SendMessageResponse()) == b""
