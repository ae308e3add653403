"""``relay serve`` and ``relay migrate``."""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path

from relay.cli.command import Command, add_setting_flags, required
from relay.config import Settings


def _serve(args: argparse.Namespace, settings: Settings | None) -> int:
    del args  # everything is a setting
    import trio

    from relay.process.runtime import prepare, run_with_services
    from relay.process.server import run_server

    settings = required(settings)
    if settings.server_workers > 1:
        from relay.process.supervisor import serve_workers

        return serve_workers(settings)
    serve = partial(run_server, settings, shutdown=trio.Event(), handle_signals=True)
    run_with_services(settings, prepare(settings), serve)
    return 0


def _migrate(args: argparse.Namespace, settings: Settings | None) -> int:
    del args
    from relay.process.runtime import database_url
    from storage.db import create_engine
    from storage.migrate import current_revision, head_revision, upgrade

    settings = required(settings)
    data_dir = Path(settings.data_dir).expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(database_url(settings, data_dir))
    try:
        before = current_revision(engine)
        upgrade(engine)
        print(f"database at revision {head_revision()} (was {before or 'empty'})")
    finally:
        engine.dispose()
    return 0


SERVE = Command("serve", "run the server", add_setting_flags, _serve)
MIGRATE = Command("migrate", "apply database migrations and exit", add_setting_flags, _migrate)
