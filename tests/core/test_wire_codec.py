"""The hand-written hot-path codec produces and reads exactly what betterproto2 does."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from obscura_proto.obscura.v1 import (
    AckMessage,
    Envelope,
    EnvelopeBatch,
    PreKeyStatus,
    SendMessageRequest,
    SendMessageRequestSubmission,
    WebSocketFrame,
)
from relay import wire

envelopes = st.builds(
    wire.EnvelopeRecord,
    id=st.binary(max_size=20),
    sender_id=st.binary(max_size=20),
    timestamp=st.integers(min_value=0, max_value=2**64 - 1),
    message=st.binary(max_size=300),
    sender_device_id=st.binary(max_size=20),
)
_ids = st.binary(min_size=16, max_size=16)
# What the delivery path encodes: 16-byte ids, a real timestamp, a non-empty message
# (sizes on both sides of the one-, two- and three-byte length prefixes).
delivered = st.builds(
    wire.EnvelopeRecord,
    id=_ids,
    sender_id=_ids,
    timestamp=st.integers(min_value=1, max_value=2**64 - 1),
    message=st.one_of(
        st.binary(min_size=1, max_size=300),
        st.integers(0x3F00, 0x4100).map(lambda size: b"m" * size),
    ),
    sender_device_id=_ids,
)


def _betterproto(record: wire.EnvelopeRecord) -> Envelope:
    return Envelope(
        id=record.id,
        sender_id=record.sender_id,
        timestamp=record.timestamp,
        message=record.message,
        sender_device_id=record.sender_device_id,
    )


@given(st.lists(envelopes, max_size=20))
def test_envelope_batch_frames_are_identical(records: list[wire.EnvelopeRecord]) -> None:
    ours = wire.encode_envelope_batch_frame([wire.encode_envelope(r) for r in records])
    theirs = WebSocketFrame(
        envelope_batch=EnvelopeBatch(envelopes=[_betterproto(r) for r in records])
    )
    assert ours == bytes(theirs)


@given(st.lists(envelopes, min_size=1, max_size=20))
def test_frames_of_envelope_parts_are_identical(records: list[wire.EnvelopeRecord]) -> None:
    parts = [
        wire.envelope_parts(r.id, r.sender_id, r.timestamp, r.message, r.sender_device_id)
        for r in records
    ]
    [ours] = wire.split_into_frames(parts, max_batch_bytes=1 << 30)
    theirs = WebSocketFrame(
        envelope_batch=EnvelopeBatch(envelopes=[_betterproto(r) for r in records])
    )
    assert ours == bytes(theirs)
    assert WebSocketFrame.parse(ours) == theirs


@given(st.lists(delivered, min_size=1, max_size=20))
def test_delivered_envelopes_are_identical(records: list[wire.EnvelopeRecord]) -> None:
    for record in records:
        assert wire.encode_envelope(record) == bytes(_betterproto(record))


@given(st.integers(1, 2**64 - 1))
def test_varints_are_identical(value: int) -> None:
    # A non-zero uint64 field is its key (one byte) and the value's varint.
    assert wire.encode_varint(value) == bytes(Envelope(timestamp=value))[1:]


@given(st.integers(0, 2**31 - 1), st.integers(-(2**31), 2**31 - 1))
def test_pre_key_status_frames_are_identical(count: int, threshold: int) -> None:
    theirs = WebSocketFrame(
        pre_key_status=PreKeyStatus(one_time_pre_key_count=count, min_threshold=threshold)
    )
    assert wire.encode_pre_key_status_frame(count, threshold) == bytes(theirs)


@given(st.lists(st.binary(max_size=24), max_size=60))
def test_ack_frames_decode_identically(ids: list[bytes]) -> None:
    encoded = bytes(WebSocketFrame(ack=AckMessage(message_ids=ids)))
    assert wire.decode_ack_frame(encoded) == ids


@given(
    st.lists(
        st.tuples(st.binary(max_size=20), st.binary(max_size=20), st.binary(max_size=200)),
        max_size=30,
    )
)
def test_send_message_requests_decode_identically(items: list[tuple[bytes, bytes, bytes]]) -> None:
    request = SendMessageRequest(
        messages=[
            SendMessageRequestSubmission(submission_id=s, device_id=d, message=m)
            for s, d, m in items
        ]
    )
    assert wire.decode_send_message_request(bytes(request)) == [
        wire.Submission(s, d, m) for s, d, m in items
    ]


def test_other_frames_are_not_acks() -> None:
    batch = bytes(WebSocketFrame(envelope_batch=EnvelopeBatch()))
    status = bytes(WebSocketFrame(pre_key_status=PreKeyStatus(min_threshold=3)))
    assert wire.decode_ack_frame(batch) is None
    assert wire.decode_ack_frame(status) is None
    assert wire.decode_ack_frame(b"") is None
    assert wire.decode_ack_frame(bytes(WebSocketFrame(ack=AckMessage()))) == []


def test_last_oneof_member_wins() -> None:
    ack = bytes(WebSocketFrame(ack=AckMessage(message_ids=[b"x" * 16])))
    status = bytes(WebSocketFrame(pre_key_status=PreKeyStatus(min_threshold=1)))
    assert wire.decode_ack_frame(ack + status) is None
    assert wire.decode_ack_frame(status + ack) == [b"x" * 16]
    assert wire.decode_ack_frame(ack + ack) == [b"x" * 16, b"x" * 16]


def test_unknown_fields_are_skipped() -> None:
    unknown = b"\x08\x96\x01" + b"\x19" + bytes(8) + b"\x25" + bytes(4) + b"\x7a\x02ab"
    ack = bytes(WebSocketFrame(ack=AckMessage(message_ids=[b"1"])))
    assert wire.decode_ack_frame(unknown + ack) == [b"1"]
    assert wire.decode_send_message_request(unknown) == []


@pytest.mark.parametrize(
    "data",
    [
        b"\x0a",  # key without length
        b"\x0a\x05ab",  # length past the end
        b"\x08",  # varint missing
        b"\x08" + b"\xff" * 11,  # varint too long
        b"\x0b\x00",  # wire type 3 (groups)
        b"\x00\x00",  # field 0
        b"\x19\x00",  # truncated fixed64
    ],
)
def test_malformed_input_raises_decode_error(data: bytes) -> None:
    with pytest.raises(wire.DecodeError):
        wire.decode_send_message_request(data)
    with pytest.raises(wire.DecodeError):
        wire.decode_ack_frame(b"\x5a" + wire.encode_varint(len(data)) + data)


@given(st.binary(max_size=200))
def test_garbage_never_raises_anything_else(data: bytes) -> None:
    for decode in (wire.decode_ack_frame, wire.decode_send_message_request):
        with contextlib.suppress(wire.DecodeError):
            decode(data)


def test_frames_split_under_the_byte_limit() -> None:
    small = [wire.envelope_parts(b"i" * 16, b"", 1, b"m" * 10, b"") for _ in range(5)]
    size = sum(map(len, small[0]))
    frames = wire.split_into_frames(small, max_batch_bytes=size * 2)
    assert [len(WebSocketFrame.parse(f).envelope_batch.envelopes) for f in frames] == [2, 2, 1]
    huge = wire.envelope_parts(b"i" * 16, b"", 1, b"m" * 1000, b"")
    frames = wire.split_into_frames([small[0], huge, small[1]], max_batch_bytes=size * 2)
    assert [len(WebSocketFrame.parse(f).envelope_batch.envelopes) for f in frames] == [1, 1, 1]
    assert wire.split_into_frames([], max_batch_bytes=10) == []


def test_decoding_a_send_stops_at_one_submission_over_the_limit() -> None:
    # A million empty submissions, then bytes that would not decode: the decoder must
    # stop at the limit, long before it reaches them.
    body = b"\x0a\x00" * 1_000_000 + b"\x0a\xff"
    with pytest.raises(wire.TooManySubmissions):
        wire.decode_send_message_request(body, max_submissions=1000)
    assert len(wire.decode_send_message_request(b"\x0a\x00" * 1000, max_submissions=1000)) == 1000
