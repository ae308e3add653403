"""Push wake-ups end to end with real processes: ``relay emulator fcm`` over TLS,
``relay apps`` configuring the wake-up app from the emulator's credentials, and
``relay serve`` delivering — including across a restart of the server."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import trio

from relay.client import Outgoing
from storage.db import Database
from tests.e2e.process import emulator_process, relay_process
from tests.e2e.pushing import configure_wakeup_app, push_settings, received_by
from tests.factories import new_device
from tests.waiting import until


async def test_an_offline_device_is_woken_once_and_a_restart_loses_no_wake_up(
    tmp_path: Path, database_url: str, db: Database
) -> None:
    with emulator_process("fcm", tmp_path / "fcm") as emulator:
        configure_wakeup_app(tmp_path, database_url, emulator)
        with relay_process(tmp_path, database_url, **push_settings(emulator)) as server:
            async with httpx.AsyncClient(base_url=server.api, timeout=30) as http:
                sender, recipient = await new_device(http), await new_device(http)
                await recipient.client.put_push_token("token-of-the-phone")
                for index in range(5):
                    batch = [Outgoing(recipient.id, b"%d" % index)]
                    assert await sender.client.send_messages(batch) == []

                async def one_wake_up() -> bool:
                    return len(await received_by(emulator)) == 1

                await until(one_wake_up, seconds=20)
                await trio.sleep(2)
                [wake_up] = await received_by(emulator)
                assert wake_up["token"] == "token-of-the-phone"
                assert wake_up["payload"]["data"] == {"action": "check"}  # type: ignore[index]

                # The next wake-up is queued, then the server stops before it is due.
                assert await sender.client.send_messages([Outgoing(recipient.id, b"x")]) == []
            log, _ = server.stop(signal.SIGTERM)
        assert "Traceback" not in log
        assert len(await received_by(emulator)) == 1
        with relay_process(tmp_path, database_url, **push_settings(emulator)):

            async def second_wake_up() -> bool:
                return len(await received_by(emulator)) == 2

            await until(second_wake_up, seconds=20)
