"""The filesystem blob store: keys, atomic uploads, streaming reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.blobs import CHUNK_BYTES, FilesystemBlobStore, check_key
from storage.errors import BlobStoreError


@pytest.mark.parametrize(
    "key", ["", "/abs", "a//b", "../escape", "a/../b", "a/./b", "sp ace", ".uploads/x", "a\\b"]
)
def test_unsafe_keys_are_refused(key: str) -> None:
    with pytest.raises(BlobStoreError):
        check_key(key)


def test_plain_keys_are_accepted() -> None:
    assert check_key("backups/0190-ab/v3.1f2e") == "backups/0190-ab/v3.1f2e"


async def test_an_upload_is_invisible_until_committed(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    async with store.upload("a/b") as upload:
        await upload.write(b"x" * (CHUNK_BYTES + 10))
        assert await store.size("a/b") is None
        await upload.commit()
    assert await store.size("a/b") == CHUNK_BYTES + 10
    async with store.open("a/b") as blob:
        assert blob is not None
        chunks = [chunk async for chunk in blob.chunks()]
    assert [len(c) for c in chunks] == [CHUNK_BYTES, 10]


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


async def _abandon(store: FilesystemBlobStore, key: str) -> None:
    async with store.upload(key) as upload:
        await upload.write(b"partial")
        raise RuntimeError("client went away")


async def test_an_abandoned_upload_leaves_nothing(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    with pytest.raises(RuntimeError):
        await _abandon(store, "a/b")
    assert _files(tmp_path) == []
    async with store.open("a/b") as blob:
        assert blob is None


async def test_commit_replaces_and_delete_removes(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    for content in (b"first", b"second"):
        async with store.upload("k") as upload:
            await upload.write(content)
            await upload.commit()
    async with store.open("k") as blob:
        assert blob is not None
        assert b"".join([c async for c in blob.chunks()]) == b"second"
    assert await store.delete("k")
    assert not await store.delete("k")


async def test_health_needs_a_writable_root(tmp_path: Path) -> None:
    assert await FilesystemBlobStore(tmp_path).healthy()
    assert not await FilesystemBlobStore(tmp_path / "missing").healthy()


def _a_file(folder: Path) -> Path:
    path = folder / "file"
    path.write_bytes(b"")
    return path


async def test_io_errors_become_blob_store_errors(tmp_path: Path) -> None:
    store = FilesystemBlobStore(_a_file(tmp_path))  # a root that is not a directory
    with pytest.raises(BlobStoreError):
        await _abandon(store, "k")
