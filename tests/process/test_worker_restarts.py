"""The supervisor's restart policy: backoff per worker, and a crash loop ends the server."""

from __future__ import annotations

from relay.process.supervisor import (
    CRASH_LOOP_LIMIT,
    CRASH_LOOP_WINDOW_SECS,
    RESTART_DELAY_SECS,
    RESTART_MAX_DELAY_SECS,
    CrashHistory,
)


def test_restarts_back_off_and_a_crash_loop_gives_up() -> None:
    history = CrashHistory()
    delays = [history.crashed(float(second)) for second in range(CRASH_LOOP_LIMIT + 1)]
    assert delays[0] == RESTART_DELAY_SECS
    assert delays[1] == 2 * RESTART_DELAY_SECS
    assert all(delay is not None and delay <= RESTART_MAX_DELAY_SECS for delay in delays[:-1])
    assert delays[-1] is None


def test_crashes_outside_the_window_are_forgotten() -> None:
    history = CrashHistory()
    for crash in range(CRASH_LOOP_LIMIT * 3):
        assert history.crashed(float(crash * CRASH_LOOP_WINDOW_SECS)) == RESTART_DELAY_SECS
