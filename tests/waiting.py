"""Waiting for state that no event announces (rows in a database, a socket closing)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio


async def until(condition: Callable[[], Awaitable[bool]], *, seconds: float = 5.0) -> None:
    """Poll ``condition`` until it holds; fail after ``seconds``."""
    with trio.fail_after(seconds):
        while not await condition():  # noqa: ASYNC110 (the state lives outside trio)
            await trio.sleep(0.02)


async def until_true(condition: Callable[[], bool], *, seconds: float = 5.0) -> None:
    """Poll a synchronous ``condition`` until it holds; fail after ``seconds``."""

    async def check() -> bool:
        return condition()

    await until(check, seconds=seconds)
