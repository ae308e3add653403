"""The ``relay`` command.

``relay serve``    run the API and management listeners (embedded SQLite by default)
``relay migrate``  bring the database schema up to date and exit

Every setting is a flag of both commands (``relay serve --help`` lists them with their
environment variables); see :mod:`relay.config`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from relay import __version__
from relay.config import SETTINGS, SettingError, Settings, load_settings, unknown_variables

# The server stack (trio, Quart, SQLAlchemy, Alembic) is imported by the commands that
# need it, so that `--help`, `--version` and configuration errors answer at once.

log = logging.getLogger("relay")


def _add_setting_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("settings (flag, then RELAY_*, then OBSCURA_*)")
    for spec in SETTINGS:
        default = "hidden" if spec.secret else spec.default
        if isinstance(default, tuple):
            default = ",".join(str(item) for item in default)
        help_text = f"{spec.help} [env {spec.env_names[0]}; default: {default}]"
        is_bool = spec.default is True or spec.default is False
        group.add_argument(
            *spec.flags,
            dest=spec.name,
            metavar="VALUE",
            help=help_text.replace("%", "%%"),
            default=argparse.SUPPRESS,
            nargs="?" if is_bool else None,
            const="true" if is_bool else None,
        )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="relay", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"relay {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the server")
    _add_setting_flags(serve)
    migrate = commands.add_parser("migrate", help="apply database migrations and exit")
    _add_setting_flags(migrate)
    return parser


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Alembic narrates every migration step at INFO; we log one summary line instead.
    logging.getLogger("alembic").setLevel(
        max(logging.WARNING, logging.getLevelName(settings.log_level))
    )


def _serve(settings: Settings) -> int:
    import trio

    from relay.runtime import open_database, prepare
    from relay.server import run_server
    from relay.services.registry import build_services

    runtime = prepare(settings)
    db = open_database(settings, runtime)
    try:
        services = build_services(
            settings, db, runtime.jwt_secret, runtime.blob_root, push_key=runtime.push_key
        )
        shutdown = trio.Event()
        trio.run(partial(run_server, settings, services, shutdown=shutdown, handle_signals=True))
    finally:
        db.dispose()
    return 0


def _migrate(settings: Settings) -> int:
    from relay.runtime import database_url
    from storage.db import create_engine
    from storage.migrate import current_revision, head_revision, upgrade

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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``relay`` console script."""
    args = vars(_parser().parse_args(argv))
    command = args.pop("command")
    try:
        settings = load_settings(os.environ, args)
    except SettingError as error:
        print(f"relay: configuration error: {error}", file=sys.stderr)
        return 2
    _configure_logging(settings)
    for name in unknown_variables(os.environ):
        log.warning("ignoring unknown setting %s", name)
    from storage.errors import StorageError

    try:
        if command == "serve":
            return _serve(settings)
        return _migrate(settings)
    except SettingError as error:
        print(f"relay: configuration error: {error}", file=sys.stderr)
        return 2
    except StorageError as error:
        print(f"relay: database error: {error}", file=sys.stderr)
        return 1
