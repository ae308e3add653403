"""The ``relay`` command.

``relay serve``     run the API and management listeners (embedded SQLite by default)
``relay migrate``   bring the database schema up to date and exit
``relay apps``      manage push apps and their provider credentials
``relay keys``      integrator keys (PowerAuth API) and Zulip bouncer key pairs
``relay push``      recent push jobs; one test notification and the provider's verdict
``relay backup``    copy the data (SQLite database, blobs, generated secrets) while serving
``relay restore``   restore a backup into a new data directory
``relay emulator``  run a local APNs, FCM or HMS emulator (tests, benchmarks)
``relay bench``     run a benchmark scenario and write its report to bench-results/

Every setting is a flag of the commands that take settings (``relay serve --help`` lists
them with their environment variables); see :mod:`relay.config`. Each command group is a
module here declaring a :class:`~relay.cli.command.Command`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from relay import __version__
from relay.cli.apps import APPS
from relay.cli.backup import BACKUP, RESTORE
from relay.cli.bench import BENCH
from relay.cli.command import Command, setting_values
from relay.cli.emulator import EMULATOR
from relay.cli.failures import explain
from relay.cli.keys import KEYS
from relay.cli.push import PUSH
from relay.cli.server import MIGRATE, SERVE
from relay.config import SettingError, load_settings, unknown_variables
from relay.process.logs import configure_logging

# The server stack (trio, Quart, SQLAlchemy, Alembic) is imported by the commands that
# need it, so that `--help`, `--version` and configuration errors answer at once.

log = logging.getLogger("relay")

COMMANDS: tuple[Command, ...] = (
    SERVE,
    MIGRATE,
    APPS,
    KEYS,
    PUSH,
    BACKUP,
    RESTORE,
    BENCH,
    EMULATOR,
)


def parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    top = argparse.ArgumentParser(
        prog="relay", description="A zero-knowledge message relay and push gateway."
    )
    top.add_argument("--version", action="version", version=f"relay {__version__}")
    commands = top.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        sub = commands.add_parser(command.name, help=command.help)
        command.add_arguments(sub)
        sub.set_defaults(chosen=command)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``relay`` console script."""
    args = parser().parse_args(argv)
    command: Command = args.chosen
    if not command.takes_settings:
        return command.run(args, None)
    try:
        settings = load_settings(os.environ, setting_values(args))
    except SettingError as error:
        print(f"relay: configuration error: {error}", file=sys.stderr)
        return 2
    configure_logging(settings)
    for name in unknown_variables(os.environ):
        log.warning("ignoring %s: not a setting of this server", name)
    from storage.errors import StorageError

    try:
        return command.run(args, settings)
    except (SettingError, StorageError, OSError, ExceptionGroup) as error:
        explained = explain(error, settings)
        if explained is None:
            raise
        log.debug("%s", explained.message, exc_info=error)
        print(f"relay: {explained.message}", file=sys.stderr)
        return explained.status
