"""Fixtures for the provider tests: a client of the emulators."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from providers.client import PushClient
from providers.h2pool import PoolConfig
from tests.pushkit import Emulators, Keys


@pytest.fixture
async def client(keys: Keys, emulators: Emulators) -> AsyncIterator[PushClient]:
    async with trio.open_nursery() as nursery:
        push = PushClient(
            nursery,
            endpoints=emulators.endpoints,
            pool_config=PoolConfig(connections=2, response_timeout=5.0),
            ssl_context=keys.client_ssl(),
        )
        yield push
        await push.aclose()
