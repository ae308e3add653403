"""``relay serve`` that cannot start says why in one line naming the setting to change,
exits non-zero and prints no traceback: a port in use (one process or several workers),
an unusable data directory, a database that is not there."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.process import environment, run_relay


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port something else listens on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def _serve(env: dict[str, str], *args: str) -> tuple[int, list[str]]:
    done = run_relay("serve", *args, env=env, timeout=60)
    lines = [line for line in done.stderr.splitlines() if line.startswith("relay: ")]
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, lines


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_port_in_use_names_the_port_settings(
    tmp_path: Path, database_url: str, taken_port: int, workers: str
) -> None:
    env = environment(
        RELAY_DATA_DIR=str(tmp_path / "data"),
        RELAY_DATABASE_URL=database_url,
        RELAY_SERVER_WORKERS=workers,
    )
    code, [line] = _serve(env, "--server-port", str(taken_port), "--mgmt-port", "0")
    assert code == 1
    assert "address already in use" in line
    assert f"RELAY_SERVER_PORT={taken_port}" in line
    assert "choose another with RELAY_SERVER_PORT" in line


def test_an_unusable_data_directory_names_the_setting(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    env = environment(RELAY_DATA_DIR=str(blocker / "data"))
    code, [line] = _serve(env, "--server-port", "0", "--mgmt-port", "0")
    assert code == 2
    assert line.startswith("relay: configuration error: RELAY_DATA_DIR: cannot use")
    assert "Not a directory" in line


def test_a_database_that_is_not_there_names_the_setting(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    env = environment(
        RELAY_DATA_DIR=str(tmp_path / "data"),
        RELAY_DATABASE_URL=f"postgresql://relay:secret-password@127.0.0.1:{closed_port}/relay",
        RELAY_DATABASE_ACQUIRE_TIMEOUT_SECS="2",
    )
    done = run_relay("serve", "--server-port", "0", "--mgmt-port", "0", env=env, timeout=60)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    [line] = [line for line in done.stderr.splitlines() if line.startswith("relay: ")]
    assert line.startswith("relay: cannot reach the database:")
    assert "correct RELAY_DATABASE_URL" in line
    assert "secret-password" not in done.stderr
