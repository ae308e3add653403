"""The caching HPACK encoder: what it encodes decodes to the same headers with a stock
decoder, whatever came before on the connection, and it never touches the dynamic table."""

from __future__ import annotations

from hpack import Decoder
from hypothesis import given
from hypothesis import strategies as st

from providers.h2pool.hpack_cache import HeaderBlockEncoder

_names = st.sampled_from(
    [
        b":method",
        b":path",
        b":scheme",
        b":authority",
        b"authorization",
        b"apns-topic",
        b"apns-push-type",
        b"content-type",
        b"x-custom",
        b"apns-expiration",
    ]
)
_values = st.binary(min_size=0, max_size=300).filter(lambda v: b"\x00" not in v)
_blocks = st.lists(
    st.lists(st.tuples(_names, _values), min_size=1, max_size=12), min_size=1, max_size=8
)


@given(_blocks)
def test_blocks_decode_to_the_headers_sent(blocks: list[list[tuple[bytes, bytes]]]) -> None:
    encoder, decoder = HeaderBlockEncoder(), Decoder()
    for headers in blocks:
        assert decoder.decode(encoder.encode(headers), raw=True) == headers
    assert len(decoder.header_table.dynamic_entries) == 0


def test_repeated_fields_are_encoded_once_and_reused() -> None:
    encoder = HeaderBlockEncoder()
    token = b"bearer " + b"x" * 200
    first = encoder.encode([(b":method", b"POST"), (b"authorization", token)])
    second = encoder.encode([(b":method", b"POST"), (b"authorization", token)])
    assert first == second
    assert first[0] == 0x83  # :method POST is static-table entry 3
    assert first[1] & 0xF0 == 0x10  # authorization: never indexed


def test_paths_are_raw_literals_on_the_static_name() -> None:
    block = HeaderBlockEncoder.path(b"/3/device/" + b"ab" * 32)
    assert block[0] == 0x04  # literal without indexing, name = static entry 4 (:path)
    assert Decoder().decode(block, raw=True) == [(b":path", b"/3/device/" + b"ab" * 32)]
