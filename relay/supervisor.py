"""``relay serve`` with ``RELAY_SERVER_WORKERS`` above 1: worker processes sharing the port.

One Python process holds one core and one open-file limit. The supervisor prepares what
must happen once (data directory, secrets, migrations), binds the API and management
sockets and one hub inbox per worker, then starts the workers
(``python -m relay.supervisor``, the plan on standard input). Every worker accepts on the
same inherited API socket and runs :func:`relay.server.run_server` as that worker: its
own group-commit writer, ack batcher and gateway sessions; events for sessions in other
workers go through the :class:`~relay.gateway.peer_hub.PeerHub`. The first worker also
serves the management port and runs the periodic background work.

The supervisor logs ``relay listening`` once every worker is ready. On SIGINT or SIGTERM
it sends SIGTERM to every worker, which shuts down as a single server does (sessions
closed with 1001, ack batches and pushes flushed); a worker that exits on its own stops
the others and the supervisor exits with status 1. A worker whose supervisor is gone
(its standard input ends) shuts down too.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pickle
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import partial

import trio

from relay.config import Settings
from relay.gateway.hub import LocalHub
from relay.gateway.peer_hub import PeerHub, bind_inbox, inbox_address
from relay.logs import configure_logging
from relay.runtime import Runtime, open_database, prepare, run_with_services
from relay.server import WorkerSlot, hypercorn_config, run_server
from relay.services.registry import Services

log = logging.getLogger("relay")

READY = b"ready\n"
# Beyond a worker's own shutdown grace period, for its process to exit.
EXIT_GRACE_SECS = 15.0


@dataclass(frozen=True)
class WorkerPlan:
    """What one worker is told at start-up (pickled on its standard input)."""

    settings: Settings
    runtime: Runtime
    index: int
    count: int
    api_fd: int
    management_fd: int
    inbox_fd: int
    peers: tuple[bytes, ...]


def _listening_socket(settings: Settings, port: int) -> socket.socket:
    sockets = hypercorn_config(settings, port).create_sockets()
    return sockets.insecure_sockets[0]


def serve_workers(settings: Settings) -> int:
    """Prepare once, then run ``settings.server_workers`` workers until a signal; the
    exit status (0 after an orderly shutdown)."""
    runtime = prepare(settings)
    open_database(settings, runtime).dispose()
    api = _listening_socket(settings, settings.server_port)
    management = _listening_socket(settings, settings.server_mgmt_port)
    group = str(os.getpid())
    inboxes = [bind_inbox(group, index) for index in range(settings.server_workers)]
    plans = [
        WorkerPlan(
            settings=settings,
            runtime=runtime,
            index=index,
            count=len(inboxes),
            api_fd=api.fileno(),
            management_fd=management.fileno(),
            inbox_fd=inbox.fileno(),
            peers=tuple(inbox_address(group, j) for j in range(len(inboxes)) if j != index),
        )
        for index, inbox in enumerate(inboxes)
    ]
    try:
        return trio.run(partial(_supervise, settings, plans, inboxes, api, management))
    finally:
        api.close()
        management.close()


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def _start(plan: WorkerPlan) -> trio.Process:
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "relay.supervisor"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        pass_fds=(plan.api_fd, plan.management_fd, plan.inbox_fd),
        # Its own session: a terminal's Ctrl-C reaches the supervisor only, which then
        # stops every worker exactly once.
        start_new_session=True,
    )
    assert process.stdin is not None
    # Standard input stays open: its end of file tells the worker the supervisor is gone.
    await process.stdin.send_all(pickle.dumps(plan))
    return process


async def _ready(process: trio.Process) -> bool:
    assert process.stdout is not None
    said = b""
    while len(said) < len(READY):
        chunk = await process.stdout.receive_some(len(READY) - len(said))
        if not chunk:
            return False
        said += chunk
    return said == READY


async def _supervise(
    settings: Settings,
    plans: list[WorkerPlan],
    inboxes: list[socket.socket],
    api: socket.socket,
    management: socket.socket,
) -> int:
    processes: list[trio.Process] = []
    stopping = trio.Event()
    failed = False

    def stop_all() -> None:
        if not stopping.is_set():
            stopping.set()
            for process in processes:
                if process.returncode is None:
                    process.send_signal(signal.SIGTERM)

    async def watch(process: trio.Process, index: int) -> None:
        nonlocal failed
        code = await process.wait()
        if not stopping.is_set() or code != 0:
            failed = True
            log.error("worker %d exited with status %d", index + 1, code)
        stop_all()

    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            try:
                for plan in plans:
                    processes.append(await _start(plan))
                # Peers' sends fail fast once a worker has exited only if the worker
                # held the last copy of its inbox.
                for inbox in inboxes:
                    inbox.close()
                for index, process in enumerate(processes):
                    nursery.start_soon(watch, process, index)
                ready = [await _ready(process) for process in processes]
            except BaseException:
                stop_all()
                raise
            if all(ready):
                log.info("relay listening: API %s, management %s", _url(api), _url(management))
                log.info(
                    "%d worker processes: %s",
                    len(processes),
                    ", ".join(str(process.pid) for process in processes),
                )
                nursery.start_soon(_stop_on_signal, signals, stop_all)
            else:
                log.error("a worker exited before it was ready")
                stop_all()
            await stopping.wait()
            with trio.move_on_after(settings.server_shutdown_timeout_secs + EXIT_GRACE_SECS):
                for process in processes:
                    await process.wait()
            nursery.cancel_scope.cancel()
        for process in processes:
            failed = failed or process.returncode != 0
            if process.returncode is None:
                log.error("worker pid %d did not exit in time; killed", process.pid)
                process.kill()
                await process.wait()
            assert process.stdin is not None
            await process.stdin.aclose()
    log.info("relay stopped")
    return 1 if failed else 0


async def _stop_on_signal(signals: AsyncIterator[int], stop_all: Callable[[], None]) -> None:
    async for signum in signals:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stop_all()
        return


def worker_main() -> int:
    """One worker process: read the plan, then serve as :func:`relay.server.run_server`."""
    plan: WorkerPlan = pickle.load(sys.stdin.buffer)  # noqa: S301 (our own parent wrote it)
    # The supervisor has brought the schema up to date.
    settings = dataclasses.replace(plan.settings, auto_migrate=False)
    configure_logging(settings)
    hub = PeerHub(LocalHub(), socket.socket(fileno=plan.inbox_fd), plan.peers)
    slot = WorkerSlot(plan.index, plan.count, plan.api_fd, plan.management_fd, hub)
    run_with_services(settings, plan.runtime, partial(_serve_worker, settings, slot), hub=hub)
    return 0


async def _serve_worker(settings: Settings, slot: WorkerSlot, services: Services) -> None:
    shutdown = trio.Event()

    async def serve(task_status: trio.TaskStatus[object] = trio.TASK_STATUS_IGNORED) -> None:
        await run_server(
            settings,
            services,
            shutdown=shutdown,
            handle_signals=True,
            worker=slot,
            task_status=task_status,
        )
        nursery.cancel_scope.cancel()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(_shut_down_when_orphaned, shutdown)
        await nursery.start(serve)
        os.write(sys.stdout.fileno(), READY)


async def _shut_down_when_orphaned(shutdown: trio.Event) -> None:
    # Not PR_SET_PDEATHSIG: that fires when the parent's spawning *thread* exits, and
    # trio spawns processes from worker threads that come and go.
    async with trio.lowlevel.FdStream(os.dup(sys.stdin.fileno())) as lifeline:
        while await lifeline.receive_some():
            pass
    if not shutdown.is_set():
        log.warning("the supervisor is gone; shutting down")
        shutdown.set()


if __name__ == "__main__":
    sys.exit(worker_main())
