"""Several hosts on one machine: network namespaces on a bridge, haproxy in front.

Each host is a network namespace with one veth on a test-owned bridge (10.231.77.0/24,
no route out). The infrastructure listens on the bridge address: our own redis-server
and moto S3; PostgreSQL (which listens on loopback only) through socat. haproxy
listens on 127.0.0.1 and balances over the hosts (``leastconn``: sockets live long).
Everything here needs root, as CI has.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

BRIDGE_ADDRESS = "10.231.77.1"


def _run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True)


@dataclass(frozen=True)
class Network:
    """The bridge and the hosts' namespaces."""

    bridge: str
    namespaces: tuple[str, ...]

    def address(self, index: int) -> str:
        """The bridge-side address of host ``index`` (0-based)."""
        return f"10.231.77.{11 + index}"

    def prefix(self, index: int) -> tuple[str, ...]:
        """The command prefix that runs a program on host ``index``."""
        return ("ip", "netns", "exec", self.namespaces[index])


@contextmanager
def network(hosts: int) -> Iterator[Network]:
    """Create the bridge and ``hosts`` namespaces; remove them afterwards."""
    tag = f"rl{os.getpid() % 100000}"
    bridge = f"{tag}br"
    namespaces = tuple(f"{tag}h{i}" for i in range(hosts))
    _run("ip", "link", "add", bridge, "type", "bridge")
    try:
        _run("ip", "addr", "add", f"{BRIDGE_ADDRESS}/24", "dev", bridge)
        _run("ip", "link", "set", bridge, "up")
        made = Network(bridge, namespaces)
        for index, namespace in enumerate(namespaces):
            _run("ip", "netns", "add", namespace)
            veth = f"{namespace}v"
            _run(
                "ip",
                "link",
                "add",
                veth,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                namespace,
            )
            _run("ip", "link", "set", veth, "master", bridge, "up")
            _run("ip", "-n", namespace, "addr", "add", f"{made.address(index)}/24", "dev", "eth0")
            _run("ip", "-n", namespace, "link", "set", "eth0", "up")
            _run("ip", "-n", namespace, "link", "set", "lo", "up")
        yield made
    finally:
        for namespace in namespaces:
            subprocess.run(("ip", "netns", "del", namespace), check=False, capture_output=True)
        subprocess.run(("ip", "link", "del", bridge), check=False, capture_output=True)


def _wait_for_port(host: str, port: int, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@contextmanager
def forward(port: int, target: str) -> Iterator[None]:
    """socat: ``BRIDGE_ADDRESS:port`` to ``target`` (``host:port``) in the root namespace."""
    process = subprocess.Popen(
        [
            "socat",
            f"TCP-LISTEN:{port},bind={BRIDGE_ADDRESS},fork,reuseaddr",
            f"TCP:{target}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_for_port(BRIDGE_ADDRESS, port)
        yield
    finally:
        # socat's forked children outlive their parent: stop the whole group.
        os.killpg(process.pid, 15)
        process.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def haproxy(directory: Path, backends: list[tuple[str, int, int]]) -> Iterator[str]:
    """haproxy on 127.0.0.1 over ``backends`` (host, API port, management port); yields
    its URL. Health-checked on the management port's ``/livez``."""
    port = _free_port()
    servers = "\n".join(
        f"    server h{i} {host}:{api} check port {mgmt} inter 300ms fall 2 rise 1"
        for i, (host, api, mgmt) in enumerate(backends)
    )
    config = directory / "haproxy.cfg"
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
{servers}
"""
    )
    binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
    process = subprocess.Popen(
        [binary, "-f", str(config), "-db"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_for_port("127.0.0.1", port)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
