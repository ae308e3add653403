"""The process: one root nursery holding both HTTP listeners and every background task.

Hypercorn's trio stack is driven from our own listeners (:mod:`relay.transport.listener`, not
hypercorn's CLI) so that shutdown is ours: on SIGINT/SIGTERM gateway sessions close with
1001, the listeners stop accepting and finish in-flight requests within
``SERVER_SHUTDOWN_TIMEOUT_SECS`` (then abort what is left), background workers are told
to stop and get the same grace period to finish, and only then is anything cancelled.

The same function runs each worker of a multi-process server (:mod:`relay.process.supervisor`):
there the listening sockets are inherited, events reach peer workers through the
:class:`~relay.events.peer_hub.PeerHub`, and only the first worker serves the
management port and runs the periodic background work.
"""

from __future__ import annotations

import json
import logging
import signal
from dataclasses import dataclass
from functools import partial

import trio
from hypercorn.config import Config as HypercornConfig

from relay.api.ops import ManagementApp
from relay.app import create_api_app
from relay.config import SettingError, Settings
from relay.errors import InvalidInput
from relay.process.workers import Worker, background_workers, process_metrics
from relay.registry import Services
from relay.transport.listener import OpenConnections, serve_http

log = logging.getLogger("relay")


@dataclass(frozen=True)
class Listening:
    """Where the server ended up listening (ports may have been picked by the OS)."""

    api_url: str
    management_url: str | None


@dataclass(frozen=True)
class WorkerSlot:
    """This process's place among the workers of a multi-process server."""

    index: int
    count: int
    api_fd: int
    management_fd: int

    @property
    def primary(self) -> bool:
        """The first worker: management port, background work, start-up tasks."""
        return self.index == 0


def _bind(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def hypercorn_config(settings: Settings, port: int) -> HypercornConfig:
    """The hypercorn configuration of one listener (the benchmark's bare route uses it
    too, so that both are served alike)."""
    config = HypercornConfig()
    config.bind = [_bind(settings.server_host, port)]
    config.graceful_timeout = float(settings.server_shutdown_timeout_secs)
    config.accesslog = None  # the edge writes the access log (relay.access), once
    config.errorlog = logging.getLogger("hypercorn.error")
    config.include_server_header = False
    return config


async def install_obscura_fcm(settings: Settings, services: Services) -> None:
    """Obscura compatibility: ``FCM_CREDENTIALS_FILE`` (with ``FCM_PROJECT_ID``) becomes
    the FCM credentials of the wake-up app."""
    path = settings.fcm_credentials_file
    if not path:
        return
    try:
        text = await trio.Path(path).read_text()
    except OSError as error:
        raise SettingError(f"RELAY_FCM_CREDENTIALS_FILE: cannot read {path}: {error}") from None
    try:
        project = json.loads(text).get("project_id")
    except (ValueError, AttributeError):
        project = None
    if settings.fcm_project_id and project != settings.fcm_project_id:
        raise SettingError(
            f"RELAY_FCM_PROJECT_ID is {settings.fcm_project_id!r} but the credentials file "
            f"belongs to {project!r}"
        )
    await services.push_apps.ensure(settings.push_wakeup_app)
    try:
        await services.push_apps.set_fcm(settings.push_wakeup_app, text)
    except InvalidInput as error:
        raise SettingError(f"RELAY_FCM_CREDENTIALS_FILE: {error.message}") from None
    log.info("FCM credentials of push app %r set from %s", settings.push_wakeup_app, path)


async def _close_gateway_on(shutdown: trio.Event, services: Services) -> None:
    await shutdown.wait()
    services.gateway.shut_down()


async def _watch_signals(shutdown: trio.Event) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            log.info("received %s, shutting down", signal.Signals(signum).name)
            shutdown.set()
            return


async def run_server(
    settings: Settings,
    services: Services,
    *,
    shutdown: trio.Event,
    handle_signals: bool = False,
    worker: WorkerSlot | None = None,
    task_status: trio.TaskStatus[Listening] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until ``shutdown`` is set (or a signal arrives), then stop gracefully
    (``worker``: as that worker of a multi-process server)."""
    stopping = trio.Event()
    primary = worker is None or worker.primary
    if primary:
        await install_obscura_fcm(settings, services)
    if settings.powerauth_open and primary:
        log.warning(
            "RELAY_POWERAUTH_OPEN: the PowerAuth push API accepts requests without an "
            "integrator key; expose it to trusted networks only"
        )
    async with trio.open_nursery() as root:
        if handle_signals:
            root.start_soon(_watch_signals, shutdown)
        root.start_soon(_close_gateway_on, shutdown, services)
        async with trio.open_nursery() as workers:
            # Campaign pages and push jobs are claimed compare-and-set and leased: every
            # worker may take them. The periodic clean-ups run once, in the first.
            tasks: list[Worker] = [
                services.acks.run,
                services.writes.run,
                services.reads.run,
                services.powerauth.campaigns.run,
                process_metrics(services),
            ]
            if primary:
                tasks += background_workers(settings, services)
            tasks.append(services.hub.run)
            for task in tasks:
                workers.start_soon(task, stopping)
            await workers.start(partial(services.push.run, stopping))
            async with trio.open_nursery() as listeners:
                api = create_api_app(settings, services)
                api_config = hypercorn_config(settings, settings.server_port)
                management_config = hypercorn_config(settings, settings.server_mgmt_port)
                if worker is not None:
                    api_config.bind = [f"fd://{worker.api_fd}"]
                    management_config.bind = [f"fd://{worker.management_fd}"]
                api_binds = await listeners.start(
                    partial(
                        serve_http,
                        api.asgi,
                        api_config,
                        OpenConnections(),
                        shutdown_trigger=shutdown.wait,
                        interceptor=api.gateway,
                        lean_routes=api.lean_routes,
                    )
                )
                management_url = None
                if primary:
                    management_binds = await listeners.start(
                        partial(
                            serve_http,
                            ManagementApp(services.health),
                            management_config,
                            OpenConnections(),
                            shutdown_trigger=shutdown.wait,
                        )
                    )
                    management_url = management_binds[0]
                listening = Listening(api_binds[0], management_url)
                if worker is None:
                    log.info("relay listening: API %s, management %s", api_binds[0], management_url)
                else:
                    log.debug("worker %d of %d listening", worker.index + 1, worker.count)
                task_status.started(listening)
            # Listeners are closed and in-flight requests done: let workers finish.
            stopping.set()
            workers.cancel_scope.deadline = (
                trio.current_time() + settings.server_shutdown_timeout_secs
            )
        if services.shared_limits is not None:
            await services.shared_limits.aclose()
        await services.blobs.aclose()
        root.cancel_scope.cancel()
    log.info("relay stopped")
