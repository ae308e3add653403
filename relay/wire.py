"""Hand-written protobuf codec for the relay's hot paths. Sans-IO.

betterproto2 (``obscura_proto``) is the schema and the typed API everywhere, but it is
pure Python and costs ~19 µs per envelope; delivery encodes every envelope and the API
decodes every submission and acknowledgement. This module encodes ``WebSocketFrame``s
carrying an ``EnvelopeBatch`` or a ``PreKeyStatus``, and decodes acknowledgement frames
and ``SendMessageRequest``s, directly on the wire format. The tests check on random
messages that the bytes are identical to betterproto2's in both directions.

Wire rules used (proto3): fields holding their default value (empty bytes, 0) are not
written; a ``oneof`` member is written even when empty; on decode, unknown fields are
skipped, repeated embedded messages concatenate, and the last ``oneof`` member wins.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

_VARINT = 0
_FIXED64 = 1
_LENGTH_DELIMITED = 2
_FIXED32 = 5

# Keys (field number << 3 | wire type) of the fields this module writes.
_ENVELOPE_ID = b"\x0a"
_ENVELOPE_SENDER_ID = b"\x12"
_ENVELOPE_TIMESTAMP = b"\x18"
_ENVELOPE_MESSAGE = b"\x22"
_ENVELOPE_SENDER_DEVICE_ID = b"\x2a"
# Key and length of a 16-byte id field: every id the relay issues.
_ENVELOPE_ID_16 = _ENVELOPE_ID + b"\x10"
_ENVELOPE_SENDER_ID_16 = _ENVELOPE_SENDER_ID + b"\x10"
_ENVELOPE_SENDER_DEVICE_ID_16 = _ENVELOPE_SENDER_DEVICE_ID + b"\x10"
_BATCH_ENVELOPE = b"\x0a"
_FRAME_PRE_KEY_STATUS = b"\x62"
_FRAME_ENVELOPE_BATCH = b"\x6a"
_EMPTY_BATCH_FRAME = _FRAME_ENVELOPE_BATCH + b"\x00"  # a oneof member is written even empty

# WebSocketFrame oneof members (field numbers).
_FRAME_ACK = 11
_FRAME_ONEOF = frozenset({11, 12, 13})


class DecodeError(ValueError):
    """The bytes are not a valid encoding of the expected message."""


@dataclass(frozen=True, slots=True)
class EnvelopeRecord:
    """The fields of one ``Envelope``."""

    id: bytes
    sender_id: bytes
    timestamp: int
    message: bytes
    sender_device_id: bytes


@dataclass(frozen=True, slots=True)
class Submission:
    """One ``SendMessageRequest.Submission``."""

    submission_id: bytes
    device_id: bytes
    message: bytes


_ONE_BYTE = [bytes((value,)) for value in range(0x80)]


def encode_varint(value: int) -> bytes:
    """Base-128 varint of a non-negative integer below 2**64."""
    if value < 0x80:
        return _ONE_BYTE[value]
    if value < 0x4000:  # the length of most messages
        return bytes(((value & 0x7F) | 0x80, value >> 7))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _length_delimited(key: bytes, payload: bytes) -> bytes:
    return key + encode_varint(len(payload)) + payload


def _bytes_field(key: bytes, value: bytes) -> bytes:
    return _length_delimited(key, value) if value else b""


def encode_envelope(envelope: EnvelopeRecord) -> bytes:
    """One ``Envelope`` message."""
    return b"".join(
        envelope_parts(
            envelope.id,
            envelope.sender_id,
            envelope.timestamp,
            envelope.message,
            envelope.sender_device_id,
        )
    )


def envelope_parts(
    message_id: bytes, sender_id: bytes, timestamp: int, message: bytes, sender_device_id: bytes
) -> Sequence[bytes]:
    """One ``Envelope`` from its fields, as pieces whose concatenation is its encoding.

    The delivery path joins the pieces of a whole page straight into its frame, so each
    message (up to megabytes) is copied once, not once per level of nesting.
    """
    if timestamp and message and len(message_id) == len(sender_id) == len(sender_device_id) == 16:
        # Every delivered envelope: ids are 16 bytes, so their length prefixes are constant.
        # The small fields before and after the message are joined: fewer pieces to walk.
        head = b"".join(
            (
                _ENVELOPE_ID_16,
                message_id,
                _ENVELOPE_SENDER_ID_16,
                sender_id,
                _ENVELOPE_TIMESTAMP,
                encode_varint(timestamp),
                _ENVELOPE_MESSAGE,
                encode_varint(len(message)),
            )
        )
        return (head, message, _ENVELOPE_SENDER_DEVICE_ID_16 + sender_device_id)
    parts = [
        _id_field(_ENVELOPE_ID, message_id),
        _id_field(_ENVELOPE_SENDER_ID, sender_id),
    ]
    if timestamp:
        parts.append(_ENVELOPE_TIMESTAMP + encode_varint(timestamp))
    if message:
        parts.append(_ENVELOPE_MESSAGE + encode_varint(len(message)))
        parts.append(message)
    parts.append(_id_field(_ENVELOPE_SENDER_DEVICE_ID, sender_device_id))
    return tuple(parts)


def _id_field(key: bytes, value: bytes) -> bytes:
    # Ids are 16 bytes: their length prefix is one constant byte.
    if len(value) == 16:
        return key + b"\x10" + value
    return _bytes_field(key, value)


def encode_envelope_batch_frame(encoded_envelopes: Iterable[bytes]) -> bytes:
    """A ``WebSocketFrame{envelope_batch}`` from already-encoded envelopes."""
    frames = split_into_frames(((e,) for e in encoded_envelopes), sys.maxsize)
    return frames[0] if frames else _EMPTY_BATCH_FRAME


def split_into_frames(envelopes: Iterable[Sequence[bytes]], max_batch_bytes: int) -> list[bytes]:
    """Group envelopes, each given as the pieces of its encoding (:func:`envelope_parts`),
    into frames whose summed envelope sizes stay within the limit.

    An envelope is added to the current frame unless that would exceed the limit; an
    envelope larger than the limit on its own travels alone, never dropped. Each frame is
    one join of every piece: the messages are copied once.
    """
    frames: list[bytes] = []
    parts = [_FRAME_ENVELOPE_BATCH, b""]  # the batch's length goes second, once known
    count = size = batch_size = 0
    for pieces in envelopes:
        envelope_size = sum(map(len, pieces))
        if count and size + envelope_size > max_batch_bytes:
            parts[1] = encode_varint(batch_size)
            frames.append(b"".join(parts))
            parts = [_FRAME_ENVELOPE_BATCH, b""]
            count = size = batch_size = 0
        prefix = encode_varint(envelope_size)
        parts.append(_BATCH_ENVELOPE)
        parts.append(prefix)
        parts.extend(pieces)
        count += 1
        size += envelope_size
        batch_size += 1 + len(prefix) + envelope_size
    if count:
        parts[1] = encode_varint(batch_size)
        frames.append(b"".join(parts))
    return frames


def encode_pre_key_status_frame(one_time_pre_key_count: int, min_threshold: int) -> bytes:
    """A ``WebSocketFrame{pre_key_status}``."""
    status = b""
    if one_time_pre_key_count:
        status += b"\x08" + _encode_int32(one_time_pre_key_count)
    if min_threshold:
        status += b"\x10" + _encode_int32(min_threshold)
    return _length_delimited(_FRAME_PRE_KEY_STATUS, status)


def _encode_int32(value: int) -> bytes:
    # Negative int32 values are sign-extended to 64 bits on the wire.
    return encode_varint(value if value >= 0 else value + (1 << 64))


def _decode_varint(data: bytes, position: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if position >= len(data):
            raise DecodeError("truncated varint")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if result >> 64:
                raise DecodeError("varint exceeds 64 bits")
            return result, position
        shift += 7
        if shift >= 70:
            raise DecodeError("varint longer than 10 bytes")


def _fields(data: bytes) -> Iterable[tuple[int, int, bytes | int]]:
    """Yield (field number, wire type, value) for every field of a message."""
    position = 0
    end = len(data)
    while position < end:
        key, position = _decode_varint(data, position)
        field, wire_type = key >> 3, key & 7
        if field == 0:
            raise DecodeError("field number 0")
        if wire_type == _VARINT:
            value, position = _decode_varint(data, position)
            yield field, wire_type, value
        elif wire_type == _LENGTH_DELIMITED:
            length, position = _decode_varint(data, position)
            if position + length > end:
                raise DecodeError("length-delimited field runs past the end")
            yield field, wire_type, data[position : position + length]
            position += length
        elif wire_type == _FIXED64:
            if position + 8 > end:
                raise DecodeError("truncated fixed64")
            position += 8
        elif wire_type == _FIXED32:
            if position + 4 > end:
                raise DecodeError("truncated fixed32")
            position += 4
        else:
            raise DecodeError(f"unsupported wire type {wire_type}")


def decode_ack_frame(data: bytes) -> list[bytes] | None:
    """The message ids of a ``WebSocketFrame{ack}``; None for any other frame."""
    ids: list[bytes] | None = None
    for field, wire_type, value in _fields(data):
        if field not in _FRAME_ONEOF:
            continue
        if field != _FRAME_ACK or wire_type != _LENGTH_DELIMITED:
            ids = None  # another oneof member set later wins
            continue
        assert isinstance(value, bytes)
        if ids is None:
            ids = []
        for inner_field, inner_type, inner in _fields(value):
            if inner_field == 1 and inner_type == _LENGTH_DELIMITED:
                assert isinstance(inner, bytes)
                ids.append(inner)
    return ids


class TooManySubmissions(Exception):
    """A ``SendMessageRequest`` holds more submissions than allowed (decoding stopped)."""


def decode_send_message_request(
    data: bytes, *, max_submissions: int | None = None
) -> list[Submission]:
    """The submissions of a ``SendMessageRequest``; stops with
    :class:`TooManySubmissions` at submission ``max_submissions + 1``."""
    submissions: list[Submission] = []
    for field, wire_type, value in _fields(data):
        if field != 1 or wire_type != _LENGTH_DELIMITED:
            continue
        assert isinstance(value, bytes)
        if max_submissions is not None and len(submissions) >= max_submissions:
            raise TooManySubmissions
        parts = [b"", b"", b""]
        for inner_field, inner_type, inner in _fields(value):
            if 1 <= inner_field <= 3 and inner_type == _LENGTH_DELIMITED:
                assert isinstance(inner, bytes)
                parts[inner_field - 1] = inner
        submissions.append(Submission(parts[0], parts[1], parts[2]))
    return submissions


@dataclass(frozen=True, slots=True)
class PreKeyStatusRecord:
    """The fields of a ``PreKeyStatus``."""

    one_time_pre_key_count: int
    min_threshold: int


def _int32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def _decode_envelope(data: bytes) -> EnvelopeRecord:
    parts: dict[int, bytes] = {}
    timestamp = 0
    for field, wire_type, value in _fields(data):
        if field == 3 and wire_type == _VARINT:
            assert isinstance(value, int)
            timestamp = value
        elif field in (1, 2, 4, 5) and wire_type == _LENGTH_DELIMITED:
            assert isinstance(value, bytes)
            parts[field] = value
    return EnvelopeRecord(
        id=parts.get(1, b""),
        sender_id=parts.get(2, b""),
        timestamp=timestamp,
        message=parts.get(4, b""),
        sender_device_id=parts.get(5, b""),
    )


def decode_server_frame(data: bytes) -> list[EnvelopeRecord] | PreKeyStatusRecord | None:
    """A frame the server sends: its envelopes, its pre-key status, or None for others."""
    result: list[EnvelopeRecord] | PreKeyStatusRecord | None = None
    for field, wire_type, value in _fields(data):
        if field not in _FRAME_ONEOF:
            continue
        if wire_type != _LENGTH_DELIMITED or field == _FRAME_ACK:
            result = None
            continue
        assert isinstance(value, bytes)
        if field == 13:
            envelopes = result if isinstance(result, list) else []
            for inner_field, inner_type, inner in _fields(value):
                if inner_field == 1 and inner_type == _LENGTH_DELIMITED:
                    assert isinstance(inner, bytes)
                    envelopes.append(_decode_envelope(inner))
            result = envelopes
        else:
            count = threshold = 0
            for inner_field, inner_type, inner in _fields(value):
                if inner_type == _VARINT and isinstance(inner, int):
                    if inner_field == 1:
                        count = _int32(inner)
                    elif inner_field == 2:
                        threshold = _int32(inner)
            result = PreKeyStatusRecord(count, threshold)
    return result


def encode_ack_frame(message_ids: Iterable[bytes]) -> bytes:
    """A ``WebSocketFrame{ack}`` acknowledging ``message_ids``."""
    ack = b"".join(_length_delimited(b"\x0a", message_id) for message_id in message_ids)
    return _length_delimited(b"\x5a", ack)
