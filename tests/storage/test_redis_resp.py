"""RESP2, the Redis protocol: commands encoded, replies parsed from arbitrary chunks."""

from __future__ import annotations

import pytest

from storage.redis.resp import ErrorReply, ProtocolError, ReplyParser, encode_command


def test_a_command_is_an_array_of_bulk_strings() -> None:
    assert encode_command("PUBLISH", "ch", b"\x00\r\n", 7) == (
        b"*4\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$3\r\n\x00\r\n\r\n$1\r\n7\r\n"
    )


REPLIES = (
    b"+OK\r\n-ERR wrong\r\n:42\r\n$5\r\nhe\r\nl\r\n$-1\r\n"
    b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n*2\r\n:1\r\n$0\r\n\r\n*-1\r\n"
)
EXPECTED = [
    b"OK",
    ErrorReply("ERR wrong"),
    42,
    b"he\r\nl",
    None,
    [b"message", b"ch", [1, b""]],
    None,
]


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, len(REPLIES)])
def test_replies_parse_whatever_the_chunks(chunk: int) -> None:
    parser = ReplyParser()
    parsed = []
    for start in range(0, len(REPLIES), chunk):
        parser.feed(REPLIES[start : start + chunk])
        parsed.extend(parser.replies())
    assert parsed == EXPECTED


@pytest.mark.parametrize("data", [b"?what\r\n", b":x\r\n", b"\r\n", b"*1\r\n-ERR in array\r\n"])
def test_what_is_not_resp_is_refused(data: bytes) -> None:
    parser = ReplyParser()
    parser.feed(data)
    with pytest.raises(ProtocolError):
        list(parser.replies())
