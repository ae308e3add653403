"""A private ``redis-server`` for tests that stop, restart or break Redis (never the
machine's shared one): a free port on loopback, nothing kept on disk."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    """One redis-server process that can be stopped and started again on its port."""

    def __init__(self, directory: Path, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = _free_port()
        self._directory = directory
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Its ``redis://`` URL."""
        return f"redis://{self.host}:{self.port}/0"

    def start(self) -> None:
        """Start it and wait until it accepts connections."""
        command = [
            "redis-server",
            *("--port", str(self.port), "--bind", self.host, "--protected-mode", "no"),
            *("--save", "", "--appendonly", "no", "--dir", str(self._directory)),
        ]
        self._process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        """Stop it (its clients see their connections close)."""
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None


def running_redis(directory: Path, host: str = "127.0.0.1") -> Iterator[RedisServer]:
    """A private, running redis-server (on ``host``), stopped afterwards."""
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (.ci/run installs it)")
    directory.mkdir(parents=True, exist_ok=True)
    server = RedisServer(directory, host)
    server.start()
    try:
        yield server
    finally:
        server.stop()
