"""Running the real ``relay`` command in a subprocess, as a user runs it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import TEST_JWT_SECRET, UNLIMITED

LISTENING = re.compile(r"relay listening: API (http://[^\s\",]+), management (http://[^\s\",]+)")
START_TIMEOUT = 120


def environment(**extra: str) -> dict[str, str]:
    """This process's environment without any relay settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELAY_", "OBSCURA_"))}
    # Let the child cache bytecode: restarts are part of these tests.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(extra)
    return env


def run_relay(
    *args: str, env: dict[str, str], timeout: float = START_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """Run ``relay ARGS`` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "relay", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )


@dataclass
class Serving:
    """A running ``relay serve`` process."""

    api: str
    management: str
    process: subprocess.Popen[str]
    log: list[str] = field(default_factory=list)
    _reader: threading.Thread | None = None

    @property
    def startup_log(self) -> str:
        """Everything logged so far."""
        return "".join(self.log)

    def anonymous_bytes(self) -> int:
        """The process's resident anonymous memory (its heap: where buffers live).

        Mapped files (the interpreter, libraries) are left out: the kernel may evict their
        clean pages while the process runs (this machine runs a DAMON page-out scheme) and
        fault them back in later, which moves the whole resident size by megabytes.
        """
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        kib = next(line.split()[1] for line in status.splitlines() if line.startswith("RssAnon:"))
        return int(kib) * 1024

    def stop(self, sig: int = signal.SIGTERM, *, timeout: float = 60) -> tuple[str, float]:
        """Signal the process, require a clean exit; returns its whole log and the time
        it took to exit."""
        started = time.monotonic()
        self.process.send_signal(sig)
        self.process.wait(timeout=timeout)
        elapsed = time.monotonic() - started
        if self._reader is not None:
            self._reader.join(timeout=10)
        assert self.process.returncode == 0, self.startup_log
        return self.startup_log, elapsed


@contextmanager
def serving(env: dict[str, str], *args: str, prefix: Sequence[str] = ()) -> Iterator[Serving]:
    """Start ``relay serve`` on free ports; its log is collected as it is written
    (``prefix``: a command that runs it, such as ``ip netns exec NS``)."""
    process = subprocess.Popen(
        [
            *prefix,
            *(sys.executable, "-m", "relay", "serve", "--server-port", "0", "--mgmt-port", "0"),
            *args,
        ],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert process.stderr is not None
    log: list[str] = []
    reader: threading.Thread | None = None
    try:
        for line in process.stderr:
            log.append(line)
            match = LISTENING.search(line)
            if match:
                break
        else:
            pytest.fail("relay serve exited before listening:\n" + "".join(log))
        stderr = process.stderr
        # Keep draining the log so that a chatty server never blocks on a full pipe.
        reader = threading.Thread(target=lambda: log.extend(stderr), daemon=True)
        reader.start()
        yield Serving(match.group(1), match.group(2), process, log, reader)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
        if reader is not None:
            reader.join(timeout=10)
        process.stderr.close()


@contextmanager
def relay_process(tmp_path: Path, database_url: str, **settings: str) -> Iterator[Serving]:
    """``relay serve`` on the test database, unthrottled, with cheap password hashes
    (``settings`` add to these or replace them)."""
    defaults = {
        "data_dir": str(tmp_path / "data"),
        "database_url": database_url,
        "auth_jwt_secret": TEST_JWT_SECRET,
        "rate_limit_per_second": str(UNLIMITED),
        "rate_limit_burst": str(UNLIMITED),
        "rate_limit_auth_per_second": str(UNLIMITED),
        "rate_limit_auth_burst": str(UNLIMITED),
        "auth_password_hash_memory_kib": "64",
        "auth_password_hash_iterations": "1",
    }
    env = environment(
        **{f"RELAY_{name.upper()}": value for name, value in {**defaults, **settings}.items()}
    )
    with serving(env) as server:
        yield server


@dataclass
class Emulator:
    """A running ``relay emulator`` process."""

    url: str
    state: Path
    process: subprocess.Popen[str]


@contextmanager
def emulator_process(kind: str, state: Path, *args: str) -> Iterator[Emulator]:
    """``relay emulator KIND`` on a free port, its state (certificate, credentials) in
    ``state``."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "relay",
            "emulator",
            kind,
            "--port",
            "0",
            "--state-dir",
            str(state),
            *args,
        ],
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    try:
        line = process.stdout.readline()
        match = re.search(r"on (https://\S+)", line)
        if match is None:
            pytest.fail(f"relay emulator did not start: {line!r}")
        yield Emulator(match.group(1), state, process)
    finally:
        process.terminate()
        process.wait(timeout=30)
        process.stdout.close()
