"""``relay serve`` with ``RELAY_SERVER_WORKERS`` above 1: worker processes sharing the port.

One Python process holds one core and one open-file limit. The supervisor prepares what
must happen once (data directory, secrets, migrations), binds the API and management
sockets and one hub inbox per worker, then starts the workers
(``python -m relay.process.supervisor``, the plan on standard input). Every worker accepts on the
same inherited API socket and runs :func:`relay.process.server.run_server` as that worker: its
own group-commit writer, ack batcher and gateway sessions; events for sessions in other
workers go through the :class:`~relay.events.peer_hub.PeerHub`. The first worker also
serves the management port and runs the periodic background work.

The supervisor logs ``relay listening`` once every worker is ready. On SIGINT or SIGTERM
it sends SIGTERM to every worker, which shuts down as a single server does (sessions
closed with 1001, ack batches and pushes flushed). A worker that exits on its own is
restarted, as gunicorn and hypercorn do, while the others keep serving: after
:data:`RESTART_DELAY_SECS`, doubling with each recent crash up to
:data:`RESTART_MAX_DELAY_SECS`; a worker that crashes more than :data:`CRASH_LOOP_LIMIT`
times within :data:`CRASH_LOOP_WINDOW_SECS` stops the server with status 1. A worker
whose supervisor is gone (its standard input ends) stops accepting at once and shuts
down.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import partial

import trio
from prometheus_client.multiprocess import mark_process_dead

from relay.config import Settings
from relay.events.hub import Hub, LocalHub
from relay.events.peer_hub import PeerHub, bind_inbox, inbox_address
from relay.observability.exposition import MULTIPROCESS_DIR
from relay.process.logs import configure_logging
from relay.process.runtime import Runtime, event_hub, open_database, prepare, run_with_services
from relay.process.server import WorkerSlot, hypercorn_config, run_server
from relay.registry import Services

log = logging.getLogger("relay")

READY = b"ready\n"
# Beyond a worker's own shutdown grace period, for its process to exit.
EXIT_GRACE_SECS = 15.0
# A worker that dies is restarted after this, doubled for each crash in the window.
RESTART_DELAY_SECS = 0.5
RESTART_MAX_DELAY_SECS = 10.0
# More crashes than this in the window (of one worker) stop the server.
CRASH_LOOP_LIMIT = 5
CRASH_LOOP_WINDOW_SECS = 60

Status = trio.TaskStatus[bool]


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
    # Each worker writes its metrics into this directory; /metrics sums them.
    metrics_directory = tempfile.mkdtemp(prefix="relay-metrics-")
    os.environ[MULTIPROCESS_DIR] = metrics_directory
    try:
        return trio.run(partial(_supervise, settings, plans, inboxes, api, management, group))
    finally:
        api.close()
        management.close()
        shutil.rmtree(metrics_directory, ignore_errors=True)


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def _start(plan: WorkerPlan) -> trio.Process:
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "relay.process.supervisor"],
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


@dataclass
class CrashHistory:
    """One worker's recent crashes, and the restart policy they imply (sans-IO)."""

    times: list[float] = dataclasses.field(default_factory=list)

    def crashed(self, now: float) -> float | None:
        """Note a crash; the delay before the restart, or None in a crash loop."""
        self.times = [at for at in self.times if now - at < CRASH_LOOP_WINDOW_SECS]
        self.times.append(now)
        if len(self.times) > CRASH_LOOP_LIMIT:
            return None
        return min(RESTART_MAX_DELAY_SECS, RESTART_DELAY_SECS * 2.0 ** (len(self.times) - 1))


@dataclass
class _Slot:
    """One worker's place: its plan and the process that fills it now."""

    plan: WorkerPlan
    group: str
    process: trio.Process | None = None
    crashes: CrashHistory = dataclasses.field(default_factory=CrashHistory)


async def _supervise(
    settings: Settings,
    plans: list[WorkerPlan],
    inboxes: list[socket.socket],
    api: socket.socket,
    management: socket.socket,
    group: str,
) -> int:
    slots = [_Slot(plan, group) for plan in plans]
    stopping = trio.Event()
    failed = False

    def stop_all() -> None:
        if not stopping.is_set():
            stopping.set()
            for slot in slots:
                if slot.process is not None and slot.process.returncode is None:
                    slot.process.send_signal(signal.SIGTERM)

    async def keep_running(slot: _Slot, inbox: socket.socket, task_status: Status) -> None:
        nonlocal failed
        first = True
        while True:
            slot.process = process = await _start(slot.plan)
            if stopping.is_set():
                process.send_signal(signal.SIGTERM)  # stop_all ran while it was starting
            # Peers' sends fail fast once the worker has exited only if it held the last
            # copy of its inbox.
            inbox.close()
            ready = await _ready(process)
            if first:
                task_status.started(ready)
                first = False
            elif ready:
                log.info("worker %d restarted (pid %d)", slot.plan.index + 1, process.pid)
            code = await process.wait()
            # Its gauges of live things (sessions, connections) no longer count.
            mark_process_dead(process.pid, os.environ[MULTIPROCESS_DIR])  # type: ignore[no-untyped-call]
            assert process.stdin is not None
            await process.stdin.aclose()
            if stopping.is_set():
                failed = failed or code != 0
                return
            delay = slot.crashes.crashed(trio.current_time())
            index = slot.plan.index + 1
            if delay is None:
                log.error(
                    "worker %d exited with status %d, %d times in %d s: giving up",
                    index,
                    code,
                    len(slot.crashes.times),
                    CRASH_LOOP_WINDOW_SECS,
                )
                failed = True
                stop_all()
                return
            log.error(
                "worker %d (pid %d) exited with status %d; restarting in %.1f s",
                index,
                process.pid,
                code,
                delay,
            )
            with trio.move_on_after(delay):
                await stopping.wait()
            if stopping.is_set():
                return
            inbox = bind_inbox(slot.group, slot.plan.index)
            slot.plan = dataclasses.replace(slot.plan, inbox_fd=inbox.fileno())

    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            try:
                ready = [
                    await nursery.start(keep_running, slot, inbox)
                    for slot, inbox in zip(slots, inboxes, strict=True)
                ]
            except BaseException:
                stop_all()
                raise
            if all(ready):
                # "relay listening" last: whoever waits for it has the lines before it.
                log.info(
                    "%d worker processes: %s",
                    len(slots),
                    ", ".join(str(slot.process.pid) for slot in slots if slot.process),
                )
                log.info("relay listening: API %s, management %s", _url(api), _url(management))
                nursery.start_soon(_stop_on_signal, signals, stop_all)
            else:
                log.error("a worker exited before it was ready")
                failed = True
                stop_all()
            await stopping.wait()
            with trio.move_on_after(settings.server_shutdown_timeout_secs + EXIT_GRACE_SECS):
                for slot in slots:
                    if slot.process is not None:
                        await slot.process.wait()
            nursery.cancel_scope.cancel()
        for slot in slots:
            process = slot.process
            if process is not None and process.returncode is None:
                log.error("worker pid %d did not exit in time; killed", process.pid)
                failed = True
                process.kill()
                await process.wait()
    log.info("relay stopped")
    return 1 if failed else 0


async def _stop_on_signal(signals: AsyncIterator[int], stop_all: Callable[[], None]) -> None:
    async for signum in signals:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stop_all()
        return


def worker_main() -> int:
    """One worker process: read the plan, then serve as :func:`relay.process.server.run_server`."""
    plan: WorkerPlan = pickle.load(sys.stdin.buffer)  # noqa: S301 (our own parent wrote it)
    # The supervisor has brought the schema up to date.
    settings = dataclasses.replace(plan.settings, auto_migrate=False)
    configure_logging(settings, worker=plan.index + 1)
    inbox = socket.socket(fileno=plan.inbox_fd)
    hub: Hub
    if settings.pubsub_url:
        inbox.close()  # on the event bus every worker is a node of its own
        hub = event_hub(settings)
    else:
        hub = PeerHub(LocalHub(), inbox, plan.peers)
    slot = WorkerSlot(plan.index, plan.count, plan.api_fd, plan.management_fd)
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
