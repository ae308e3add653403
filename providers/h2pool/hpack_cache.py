"""HPACK encoding without the dynamic table, so that encoded header fields can be reused.

h2's encoder spends most of a push request's client CPU (performance-notes §3): it
searches its tables and Huffman-codes every header of every request. Push requests
repeat the same headers (the provider token, the topic, the content type) thousands of
times, so this encoder never inserts into the dynamic table: a field then encodes to the
same bytes every time and is encoded once. Fields matching the static table exactly are
one indexed byte; everything else is a literal "without indexing" (``authorization``
"never indexed", RFC 7541 §6.2.3), Huffman-coded when that is shorter.

Nothing it sends refers to the dynamic table, so the peer's decoder state stays valid
whatever else is sent. When the peer changes ``SETTINGS_HEADER_TABLE_SIZE``, the next
block goes through the ordinary encoder, which emits the required size update.
"""

from __future__ import annotations

from collections.abc import Iterable

from hpack import Encoder
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
_UNCACHED = {b":path"}  # unique per device token: neither cached nor Huffman-coded


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


class CachingEncoder:
    """A drop-in for h2's ``Encoder`` (``encode``, ``header_table_size``)."""

    def __init__(self) -> None:
        self._ordinary = Encoder()
        self._huffman = HuffmanEncoder(REQUEST_CODES, REQUEST_CODES_LENGTH)
        self._fields: dict[tuple[bytes, bytes], bytes] = {}
        self._size_changed = False

    @property
    def header_table_size(self) -> int:
        """The peer's dynamic table size limit."""
        return self._ordinary.header_table_size

    @header_table_size.setter
    def header_table_size(self, value: int) -> None:
        self._ordinary.header_table_size = value
        self._size_changed = True

    def encode(self, headers: Iterable[tuple[bytes, bytes]], huffman: bool = True) -> bytes:
        """The header block of ``headers``."""
        if self._size_changed:
            self._size_changed = False
            return self._ordinary.encode(headers, huffman)
        fields = self._fields
        parts = []
        for name, value in headers:
            block = fields.get((name, value))
            if block is None:
                if name in _UNCACHED:
                    # Used once: Huffman coding (pure Python) would cost more than it saves.
                    block = encode_field(name, value, None)
                else:
                    block = encode_field(name, value, self._huffman)
                    if len(fields) < _CACHE_LIMIT:
                        fields[(name, value)] = block
            parts.append(block)
        return b"".join(parts)
