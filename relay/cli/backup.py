"""``relay backup DEST`` and ``relay restore SRC`` (see :mod:`relay.process.backup`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from relay.cli.command import Command, add_store_flags, required
from relay.config import Settings


def _add_backup_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("destination", help="a new (or empty) directory for the backup")
    add_store_flags(parser)


def _add_restore_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="a directory written by relay backup")
    add_store_flags(parser)


def _describe(verb: str, report: object) -> str:
    from relay.process.backup import BackupReport

    assert isinstance(report, BackupReport)
    secrets = ", ".join(report.secrets) or "none (set in the environment)"
    return (
        f"{verb} {report.directory}: database {report.database}; {report.blobs} blobs "
        f"({report.blob_bytes} bytes); secrets: {secrets}"
    )


def _backup(args: argparse.Namespace, settings: Settings | None) -> int:
    from relay.process.backup import backup

    report = backup(required(settings), Path(args.destination).expanduser().resolve())
    print(_describe("backed up into", report))
    return 0


def _restore(args: argparse.Namespace, settings: Settings | None) -> int:
    from relay.process.backup import restore

    report = restore(required(settings), Path(args.source).expanduser().resolve())
    print(_describe("restored into", report))
    return 0


BACKUP = Command(
    "backup",
    "copy the database (SQLite), blobs and generated secrets while the server runs",
    _add_backup_arguments,
    _backup,
)
RESTORE = Command(
    "restore",
    "restore a backup into a new data directory (then relay serve)",
    _add_restore_arguments,
    _restore,
)
