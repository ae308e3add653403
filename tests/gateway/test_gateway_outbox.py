"""The per-connection outbox: bounded in frames and in bytes, never dropping."""

from __future__ import annotations

import trio

from relay.gateway.outbox import Outbox


async def _fills(outbox: Outbox, frame: bytes) -> bool:
    """True if ``put(frame)`` completes at once (there was room)."""
    with trio.move_on_after(0.05) as scope:
        await outbox.put(frame)
    return not scope.cancelled_caught


async def test_the_frame_count_bounds_the_outbox() -> None:
    outbox = Outbox(max_frames=2, max_bytes=1000)
    assert await _fills(outbox, b"a")
    assert await _fills(outbox, b"b")
    assert not await _fills(outbox, b"c")
    frame = await outbox.take()
    assert frame == b"a"
    outbox.written(frame)
    assert await _fills(outbox, b"c")
    assert [await outbox.take() for _ in range(2)] == [b"b", b"c"]


async def test_bytes_bound_the_outbox_counting_the_frame_being_written() -> None:
    outbox = Outbox(max_frames=10, max_bytes=10)
    assert await _fills(outbox, b"x" * 6)
    writing = await outbox.take()
    assert not await _fills(outbox, b"y" * 6)  # 6 in flight + 6 > 10
    assert await _fills(outbox, b"y" * 4)
    assert outbox.buffered_bytes == 10
    outbox.written(writing)
    assert outbox.buffered_bytes == 4


async def test_a_frame_over_the_byte_bound_goes_alone() -> None:
    outbox = Outbox(max_frames=10, max_bytes=10)
    assert await _fills(outbox, b"z" * 50)
    assert not await _fills(outbox, b"a")
    outbox.written(await outbox.take())
    assert await _fills(outbox, b"a")


async def test_a_waiting_producer_resumes_when_room_appears() -> None:
    outbox = Outbox(max_frames=1, max_bytes=100)
    await outbox.put(b"first")
    delivered: list[bytes] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(outbox.put, b"second")

        async def writer() -> None:
            for _ in range(2):
                frame = await outbox.take()
                delivered.append(frame)
                outbox.written(frame)

        nursery.start_soon(writer)
    assert delivered == [b"first", b"second"]
