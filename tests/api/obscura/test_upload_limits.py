"""Upload size limits: from the declared length, and again while the body streams."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from relay.errors import InvalidInput, LengthRequired, PayloadTooLarge, RelayError
from relay.services.uploads import SizeLimits
from storage.blobs import FilesystemBlobStore

LIMITS = SizeLimits(minimum=4, maximum=10, too_small="Too small")


@pytest.mark.parametrize(
    ("declared", "error"),
    [(None, LengthRequired), (3, InvalidInput), (11, PayloadTooLarge)],
)
def test_the_declared_length_is_checked_first(
    declared: int | None, error: type[RelayError]
) -> None:
    with pytest.raises(error):
        LIMITS.check_declared(declared)


def test_an_acceptable_declaration_passes() -> None:
    assert LIMITS.check_declared(4) == 4
    assert LIMITS.check_declared(10) == 10


async def _body(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def _copy(root: Path, declared: int, *chunks: bytes) -> None:
    store = FilesystemBlobStore(root)
    async with store.upload("k", declared) as upload:
        await LIMITS.copy(_body(*chunks), upload, declared)
        await upload.commit()


@pytest.mark.parametrize(
    ("declared", "chunks", "error"),
    [
        (10, (b"12345", b"678901"), PayloadTooLarge),  # more than the maximum arrives
        (5, (b"123",), InvalidInput),  # less than the minimum
        (8, (b"123456",), InvalidInput),  # less than declared
        (6, (b"12345678",), InvalidInput),  # more than declared
    ],
)
async def test_the_stream_is_checked_again_and_nothing_is_kept(
    tmp_path: Path, declared: int, chunks: tuple[bytes, ...], error: type[RelayError]
) -> None:
    with pytest.raises(error):
        await _copy(tmp_path, declared, *chunks)
    assert _files(tmp_path) == []


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


async def test_a_matching_stream_is_stored(tmp_path: Path) -> None:
    await _copy(tmp_path, 7, b"abc", b"defg")
    assert (tmp_path / "k").read_bytes() == b"abcdefg"
