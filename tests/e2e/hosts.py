"""Several hosts on one machine: network namespaces on a bridge, haproxy in front.

Each host is a network namespace with one veth on a test-owned bridge (10.231.77.0/24,
no route out). The infrastructure listens on the bridge address: our own redis-server
and moto S3; PostgreSQL (which listens on loopback only) through socat. haproxy
(:func:`bench.backing.haproxy`) listens on 127.0.0.1 and balances over the hosts.
Everything here needs root, as CI has.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from bench.backing import wait_for_port

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
        wait_for_port(BRIDGE_ADDRESS, port)
        yield
    finally:
        # socat's forked children outlive their parent: stop the whole group.
        os.killpg(process.pid, 15)
        process.wait(timeout=10)
