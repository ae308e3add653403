"""The processes a scenario starts (``relay serve``, ``relay emulator``) and what is read
off them: listening addresses, CPU time and resident memory from ``/proc``.

CPU is read from ``/proc/<pid>/stat`` (user + system time of the whole process): on a
shared machine it is the measure that holds up against a noisy neighbour.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")
_LISTENING = re.compile(r"relay listening: API (http://[^\s\",]+), management (http://[^\s\",]+)")
_EMULATOR = re.compile(r"on (https://\S+)")
# Settings every benchmarked server gets: no per-IP limits (one client IP drives all the
# load) and cheap password hashes (accounts are set-up, not what is measured).
UNTHROTTLED = {
    "rate_limit_per_second": "1000000",
    "rate_limit_burst": "1000000",
    "rate_limit_auth_per_second": "1000000",
    "rate_limit_auth_burst": "1000000",
    "auth_password_hash_memory_kib": "64",
    "auth_password_hash_iterations": "1",
    "auth_jwt_secret": "bench-secret-0123456789abcdef0123456789abcdef",
    "log_level": "warning",
}


class StartError(RuntimeError):
    """A process did not come up."""


def add_database_option(parser: argparse.ArgumentParser) -> None:
    """``--database-url``: the database server a scenario measures."""
    parser.add_argument(
        "--database-url",
        default=None,
        help="a PostgreSQL server to measure (postgresql://user@host/db): the scenario "
        "creates a scratch database there and drops it afterwards; default SQLite",
    )


def database_kind(url: str) -> str:
    """``PostgreSQL`` or ``SQLite``, for reports."""
    return "PostgreSQL" if url.startswith("postgres") else "SQLite"


@contextlib.contextmanager
def scratch_run(server_url: str | None) -> Iterator[tuple[Path, str]]:
    """A temporary directory for one run and the URL of an empty database: a SQLite file
    in that directory, or a database created on the PostgreSQL server of ``server_url``
    and dropped afterwards (so that every run starts from the same empty tables)."""
    with tempfile.TemporaryDirectory() as temporary:
        directory = Path(temporary)
        if server_url is None:
            yield directory, f"sqlite:///{directory / 'relay.db'}"
            return
        import psycopg
        from sqlalchemy.engine import make_url

        given = make_url(server_url)
        if not given.get_backend_name().startswith("postgres"):
            raise StartError(f"--database-url must be a PostgreSQL URL, not {given.drivername}")
        admin = given.set(drivername="postgresql").render_as_string(hide_password=False)
        name = f"relay_bench_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            yield directory, given.set(database=name).render_as_string(hide_password=False)
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of ``pid`` so far, every thread included (also threads
    that have exited, such as idle worker threads: per-thread counters would lose those)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def child_pids(pid: int) -> list[int]:
    """The live children of ``pid`` (whichever of its threads started them)."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it has exited meanwhile
        if int(fields[1]) == pid:
            children.append(int(entry.name))
    return sorted(children)


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def server_cpu_seconds(pid: int) -> float:
    """CPU seconds of a server: ``pid`` and its worker processes."""
    return sum(cpu_seconds(each) for each in (pid, *child_pids(pid)))


def server_rss_bytes(pid: int) -> int:
    """Resident memory of a server: ``pid`` and its worker processes."""
    return sum(rss_bytes(each) for each in (pid, *child_pids(pid)))


def environment(settings: dict[str, str]) -> dict[str, str]:
    """This environment without relay settings, plus ``RELAY_<NAME>`` for ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELAY_", "OBSCURA_"))}
    env.update({f"RELAY_{name.upper()}": value for name, value in settings.items()})
    return env


def run_module(module: str, *args: str, settings: dict[str, str], timeout: float = 300) -> str:
    """Run ``python -m MODULE ARGS`` to completion; its standard output."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        env=environment(settings),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        raise StartError(f"{module} {' '.join(args)} failed: {done.stderr.strip()[-2000:]}")
    return done.stdout


def run_relay(*args: str, settings: dict[str, str]) -> str:
    """Run ``relay ARGS`` to completion; its standard output."""
    return run_module("relay", *args, settings=settings)


@dataclass
class Server:
    """A running ``relay serve``."""

    api: str
    management: str
    process: subprocess.Popen[str]
    log: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        """The server's process id."""
        return self.process.pid


@contextlib.contextmanager
def relay_server(settings: dict[str, str]) -> Iterator[Server]:
    """``relay serve`` on free loopback ports with ``settings`` (plus :data:`UNTHROTTLED`)."""
    values = {**UNTHROTTLED, "server_port": "0", "server_mgmt_port": "0", **settings}
    process = subprocess.Popen(
        [sys.executable, "-m", "relay", "serve", "--log-level", "info"],
        env=environment(values),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert process.stderr is not None
    log: list[str] = []
    try:
        for line in process.stderr:
            log.append(line)
            match = _LISTENING.search(line)
            if match:
                break
        else:
            raise StartError("relay serve exited before listening:\n" + "".join(log[-20:]))
        stderr = process.stderr
        threading.Thread(target=lambda: log.extend(stderr), daemon=True).start()
        try:
            yield Server(match.group(1), match.group(2), process, log)
        except BaseException:
            # What the server said is the first thing to read when a scenario fails.
            sys.stderr.write("relay serve's last log lines:\n" + "".join(log[-40:]))
            raise
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)


@dataclass(frozen=True)
class Emulator:
    """A running ``relay emulator``: its URL, CA file and state directory."""

    url: str
    ca_file: str
    state: Path
    pid: int

    def credentials(self, name: str) -> dict[str, str]:
        """The trusted-credential description the emulator wrote (``apns.json`` etc.)."""
        loaded: dict[str, str] = json.loads((self.state / f"{name}.json").read_text())
        return loaded


@contextlib.contextmanager
def emulator(kind: str, state: Path, *, record: bool = False) -> Iterator[Emulator]:
    """``relay emulator KIND`` on a free port, in a process of its own."""
    args = [sys.executable, "-m", "relay", "emulator", kind, "--port", "0"]
    args += ["--state-dir", str(state)]
    if not record:
        args.append("--no-record")
    # The emulator's own header checks would make it the limit of every push scenario.
    args.append("--no-header-checks")
    process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        assert process.stdout is not None
        match = _EMULATOR.search(process.stdout.readline())
        if match is None:
            raise StartError(f"the {kind} emulator did not start")
        yield Emulator(match.group(1), str(state / "emulator-cert.pem"), state, process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)
