"""The blob stores, filesystem and S3 (moto's server), under one contract: keys, atomic
uploads, streaming reads; and what only one of them does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import trio

from bench.backing import S3_ACCESS_KEY, S3_SECRET_KEY, boto3_client, moto_server, new_bucket
from storage.blobs import CHUNK_BYTES, BlobStore, FilesystemBlobStore, check_key
from storage.errors import BlobStoreError
from storage.s3.store import S3BlobStore, S3Config


@pytest.fixture(params=["fs", "s3"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, s3_endpoint: str
) -> AsyncIterator[BlobStore]:
    """Each kind of store, empty."""
    if request.param == "fs":
        yield FilesystemBlobStore(tmp_path)
        return
    s3 = S3BlobStore(request.getfixturevalue("s3_bucket"))
    try:
        yield s3
    finally:
        await s3.aclose()


@pytest.mark.parametrize(
    "key", ["", "/abs", "a//b", "../escape", "a/../b", "a/./b", "sp ace", ".uploads/x", "a\\b"]
)
def test_unsafe_keys_are_refused(key: str) -> None:
    with pytest.raises(BlobStoreError):
        check_key(key)


def test_plain_keys_are_accepted() -> None:
    assert check_key("backups/0190-ab/v3.1f2e") == "backups/0190-ab/v3.1f2e"


async def test_an_upload_is_invisible_until_committed(store: BlobStore) -> None:
    async with store.upload("a/b", CHUNK_BYTES + 10) as upload:
        await upload.write(b"x" * CHUNK_BYTES)
        await upload.write(b"y" * 10)
        # Every declared byte is written: S3 would store the object now if it had them.
        await trio.sleep(0.3)
        assert await store.size("a/b") is None
        await upload.commit()
    assert await store.size("a/b") == CHUNK_BYTES + 10
    async with store.open("a/b") as blob:
        assert blob is not None
        chunks = [chunk async for chunk in blob.chunks()]
    assert sum(len(c) for c in chunks) == CHUNK_BYTES + 10
    assert max(len(c) for c in chunks) <= CHUNK_BYTES


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


async def _abandon(store: BlobStore, key: str) -> None:
    async with store.upload(key, 100) as upload:
        await upload.write(b"partial")
        raise RuntimeError("client went away")


async def test_an_abandoned_upload_leaves_nothing(store: BlobStore, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        await _abandon(store, "a/b")
    if isinstance(store, FilesystemBlobStore):
        assert _files(tmp_path) == []
    assert await store.size("a/b") is None
    async with store.open("a/b") as blob:
        assert blob is None


async def test_commit_replaces_and_delete_removes(store: BlobStore) -> None:
    for content in (b"first", b"second"):
        async with store.upload("k", len(content)) as upload:
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


# --- S3 only ----------------------------------------------------------------------------


@pytest.fixture
async def s3(s3_bucket: S3Config) -> AsyncIterator[S3BlobStore]:
    """The S3 store on a fresh bucket."""
    store = S3BlobStore(s3_bucket)
    try:
        yield store
    finally:
        await store.aclose()


async def _put(store: BlobStore, key: str, size: int, *chunks: bytes) -> None:
    async with store.upload(key, size) as upload:
        for chunk in chunks:
            await upload.write(chunk)
        await upload.commit()


async def test_an_upload_short_of_its_size_stores_nothing(s3: S3BlobStore) -> None:
    with pytest.raises(BlobStoreError, match="5 of the declared 10"):
        await _put(s3, "k", 10, b"12345")
    assert await s3.size("k") is None


async def test_more_than_the_declared_size_is_refused(s3: S3BlobStore) -> None:
    with pytest.raises(BlobStoreError, match="more than the declared 4"):
        await _put(s3, "k", 4, b"12345")
    assert await s3.size("k") is None


async def test_a_big_object_streams_in_both_directions(s3: S3BlobStore) -> None:
    size = 8 * CHUNK_BYTES + 3
    async with s3.upload("big", size) as upload:
        for index in range(size // 4096 + 1):
            await upload.write(bytes([index % 251]) * min(4096, size - index * 4096))
        await upload.commit()
    async with s3.open("big") as blob:
        assert blob is not None
        assert blob.size == size
        received = 0
        async for chunk in blob.chunks():
            assert len(chunk) <= CHUNK_BYTES
            received += len(chunk)
    assert received == size


async def test_objects_are_plain_s3_objects(s3: S3BlobStore, s3_bucket: S3Config) -> None:
    # What the store writes, another S3 client reads under the same key.
    async with s3.upload("attachments/0190-ab", 5) as upload:
        await upload.write(b"hello")
        await upload.commit()
    assert s3_bucket.endpoint is not None
    client = boto3_client("s3", s3_bucket.endpoint)
    got = await trio.to_thread.run_sync(
        lambda: client.get_object(Bucket=s3_bucket.bucket, Key="attachments/0190-ab")
    )
    assert got["Body"].read() == b"hello"


async def test_an_unreachable_s3_is_unhealthy_and_an_error(s3_bucket: S3Config) -> None:
    gone = S3Config(
        s3_bucket.bucket, "us-east-1", S3_ACCESS_KEY, S3_SECRET_KEY, endpoint="http://127.0.0.1:9"
    )
    store = S3BlobStore(gone, httpx.AsyncClient(timeout=2))
    try:
        assert not await store.healthy()
        with pytest.raises(BlobStoreError, match="S3 HEAD failed"):
            await store.size("k")
        with pytest.raises(BlobStoreError, match="S3 PUT failed"):
            await _put(store, "k", 3, b"abc")
    finally:
        await store.aclose()


async def test_the_bucket_answers_health_checks(s3: S3BlobStore) -> None:
    assert await s3.healthy()


async def test_a_verifying_s3_accepts_our_signatures_and_refuses_wrong_ones() -> None:
    with moto_server(verify_signatures=True) as endpoint:
        access_key, secret_key = await trio.to_thread.run_sync(iam_user_keys, endpoint)
        bucket = await trio.to_thread.run_sync(
            lambda: new_bucket(endpoint, access_key, secret_key).bucket
        )
        config = S3Config(
            bucket, "us-east-1", access_key, secret_key, endpoint=endpoint, force_path_style=True
        )
        store = S3BlobStore(config)
        try:
            await _put(store, "attachments/signed", 3, b"abc")
            assert await store.size("attachments/signed") == 3
            assert await store.delete("attachments/signed")
        finally:
            await store.aclose()
        forged = S3BlobStore(
            S3Config(
                bucket, "us-east-1", access_key, "wrong", endpoint=endpoint, force_path_style=True
            )
        )
        try:
            with pytest.raises(BlobStoreError, match="S3 HEAD answered 403"):
                await forged.size("attachments/signed")
            with pytest.raises(BlobStoreError, match="S3 PUT answered 403"):
                await _put(forged, "attachments/forged", 3, b"abc")
        finally:
            await forged.aclose()


def iam_user_keys(endpoint: str) -> tuple[str, str]:
    """A user allowed everything on S3, and its access key pair (the three calls moto
    takes unauthenticated in signature-verifying mode)."""
    iam = boto3_client("iam", endpoint)
    iam.create_user(UserName="relay")
    policy = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*",'
    policy += '"Resource":"*"}]}'
    iam.put_user_policy(UserName="relay", PolicyName="s3", PolicyDocument=policy)
    key = iam.create_access_key(UserName="relay")["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]
