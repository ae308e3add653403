"""HPACK encoding without the dynamic table, so that encoded header fields can be reused.

h2's encoder spent most of a push request's client CPU (README, Performance): it
searches its tables and Huffman-codes every header of every request. Push requests
repeat the same headers (the provider token, the topic, the content type) thousands of
times, so this encoder never inserts into the dynamic table: a field then encodes to the
same bytes every time and is encoded once. Fields matching the static table exactly are
one indexed byte; everything else is a literal "without indexing" (``authorization``
"never indexed", RFC 7541 §6.2.3), Huffman-coded when that is shorter.

Nothing it sends refers to the dynamic table, so the peer's decoder state stays valid
whatever else is sent. The protocol (:mod:`providers.h2pool.protocol`) starts the first
block, and the first after each ``SETTINGS_HEADER_TABLE_SIZE`` from the peer, with a
table size update to 0, which every limit the peer can set allows.
"""

from __future__ import annotations

from collections.abc import Iterable

from hpack.hpack import encode_integer
from hpack.huffman import HuffmanEncoder
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH
from hpack.table import HeaderTable

_STATIC_FIELDS = {field: index for index, field in enumerate(HeaderTable.STATIC_TABLE, 1)}
_STATIC_NAMES: dict[bytes, int] = {}
for _index, (_name, _) in enumerate(HeaderTable.STATIC_TABLE, 1):
    _STATIC_NAMES.setdefault(_name, _index)
_NEVER_INDEXED = {b"authorization", b"proxy-authorization", b"cookie", b"set-cookie"}
_CACHE_LIMIT = 4096


def _string(data: bytes, huffman: HuffmanEncoder | None) -> bytes:
    if huffman is None:
        return bytes(encode_integer(len(data), 7)) + data
    coded = huffman.encode(data)
    if len(coded) < len(data):
        length = encode_integer(len(coded), 7)
        length[0] |= 0x80
        return bytes(length) + coded
    return bytes(encode_integer(len(data), 7)) + data


def encode_field(name: bytes, value: bytes, huffman: HuffmanEncoder | None) -> bytes:
    """One field, referring to the static table at most (``huffman=None``: raw strings)."""
    index = _STATIC_FIELDS.get((name, value))
    if index is not None:
        prefix = encode_integer(index, 7)
        prefix[0] |= 0x80
        return bytes(prefix)
    flag = 0x10 if name in _NEVER_INDEXED else 0x00
    name_index = _STATIC_NAMES.get(name, 0)
    prefix = encode_integer(name_index, 4)
    prefix[0] |= flag
    encoded_name = b"" if name_index else _string(name, huffman)
    return bytes(prefix) + encoded_name + _string(value, huffman)


class HeaderBlockEncoder:
    """Header blocks from cached field encodings (see the module docstring)."""

    def __init__(self) -> None:
        self._huffman = HuffmanEncoder(REQUEST_CODES, REQUEST_CODES_LENGTH)
        self._fields: dict[tuple[bytes, bytes], bytes] = {}

    def encode(self, headers: Iterable[tuple[bytes, bytes]]) -> bytes:
        """The header block of ``headers``."""
        fields = self._fields
        parts = []
        for name, value in headers:
            block = fields.get((name, value))
            if block is None:
                block = encode_field(name, value, self._huffman)
                if len(fields) < _CACHE_LIMIT:
                    fields[(name, value)] = block
            parts.append(block)
        return b"".join(parts)

    @staticmethod
    def path(path: bytes) -> bytes:
        """The ``:path`` field: unique per device token, so neither cached nor Huffman-coded
        (pure-Python Huffman coding would cost more than it saves)."""
        return encode_field(b":path", path, None)
