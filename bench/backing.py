"""The backing services a scenario (or a test) starts for itself: a private
``redis-server``, moto's S3 server and ``haproxy``, each on a free port, stopped
afterwards. Never the machine's shared Redis: these are stopped and restarted at will."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storage.s3.store import S3Config

S3_ACCESS_KEY = "relay-test"
S3_SECRET_KEY = "relay-test-secret"  # noqa: S105 (moto's throw-away credentials)


class BackingError(RuntimeError):
    """A backing service is not installed or did not start."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for_port(host: str, port: int, seconds: float = 10) -> None:
    """Until ``host:port`` accepts connections; :class:`BackingError` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise BackingError(f"nothing listens on {host}:{port}") from None
            time.sleep(0.05)


class RedisServer:
    """One redis-server process that can be stopped and started again on its port."""

    def __init__(self, directory: Path, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = free_port()
        self._directory = directory
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Its ``redis://`` URL."""
        return f"redis://{self.host}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """Its process id while it runs."""
        return None if self._process is None else self._process.pid

    def start(self) -> None:
        """Start it and wait until it answers PING."""
        if shutil.which("redis-server") is None:
            raise BackingError("redis-server is not installed (apt-get install redis-server)")
        self._directory.mkdir(parents=True, exist_ok=True)
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
        raise BackingError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        """Stop it (its clients see their connections close)."""
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None


@contextlib.contextmanager
def running_redis(directory: Path, host: str = "127.0.0.1") -> Iterator[RedisServer]:
    """A private, running redis-server (on ``host``), stopped afterwards."""
    server = RedisServer(directory, host)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def moto_server(*, verify_signatures: bool = False, host: str = "127.0.0.1") -> Iterator[str]:
    """moto's S3 server (in memory); yields its endpoint. ``verify_signatures``: after the
    first three (IAM set-up) calls, every request must carry a valid SigV4 signature."""
    binary = Path(sys.executable).with_name("moto_server")
    if not binary.exists():
        raise BackingError("moto's S3 server is not installed (pip install 'moto[server]')")
    port = free_port()
    env = dict(os.environ)
    if verify_signatures:
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = "3"
    process = subprocess.Popen(
        [str(binary), "-H", host, "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        wait_for_port(host, port, seconds=30)
        yield f"http://{host}:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def boto3_client(
    service: str,
    endpoint: str,
    access_key: str = S3_ACCESS_KEY,
    secret_key: str = S3_SECRET_KEY,
) -> Any:
    """A boto3 client of ``service`` (``s3``, ``iam``) on moto's server (boto3 is
    imported here: the scenarios that do not use S3 do not need it)."""
    import boto3

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
    )


def new_bucket(
    endpoint: str, access_key: str = S3_ACCESS_KEY, secret_key: str = S3_SECRET_KEY
) -> S3Config:
    """A fresh bucket on the server (made with boto3), and the configuration that
    reaches it."""
    bucket = f"relay-{uuid.uuid4().hex[:12]}"
    boto3_client("s3", endpoint, access_key, secret_key).create_bucket(Bucket=bucket)
    return S3Config(
        bucket, "us-east-1", access_key, secret_key, endpoint=endpoint, force_path_style=True
    )


@dataclass(frozen=True)
class Backend:
    """A relay host behind the balancer: its API port and the management port whose
    ``/livez`` the balancer checks."""

    host: str
    api_port: int
    management_port: int


@dataclass(frozen=True)
class Balancer:
    """A running haproxy: its URL and process id."""

    url: str
    pid: int


NODE_HEADER = "x-relay-node"
"""The response header in which the balancer names the backend that answered (``h0``…)."""


@contextlib.contextmanager
def haproxy(directory: Path, backends: Sequence[Backend]) -> Iterator[Balancer]:
    """haproxy on 127.0.0.1 over ``backends``, health-checked on each management port's
    ``/livez``; every response (the gateway's 101 included) names its backend in
    :data:`NODE_HEADER`."""
    binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(binary).exists():
        raise BackingError("haproxy is not installed (apt-get install haproxy)")
    port = free_port()
    servers = "\n".join(
        f"    server h{i} {b.host}:{b.api_port} check port {b.management_port} "
        "inter 300ms fall 2 rise 1"
        for i, b in enumerate(backends)
    )
    config = directory / "haproxy.cfg"
    directory.mkdir(parents=True, exist_ok=True)
    config.write_text(
        f"""global
    maxconn 4000
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout tunnel 1h
    option forwardfor
    retries 3
    option redispatch
frontend relay_in
    bind 127.0.0.1:{port}
    default_backend relay_nodes
backend relay_nodes
    balance leastconn
    option httpchk
    http-check send meth GET uri /livez
    http-response set-header {NODE_HEADER} %s
{servers}
"""
    )
    process = subprocess.Popen(
        [binary, "-f", str(config), "-db"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_port("127.0.0.1", port)
        yield Balancer(f"http://127.0.0.1:{port}", process.pid)
    finally:
        process.terminate()
        process.wait(timeout=10)
