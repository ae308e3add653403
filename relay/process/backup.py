"""``relay backup`` and ``relay restore``: a server's data directory copied while it runs.

A backup is a directory: ``relay.db`` (SQLite's online backup API: a consistent copy
while the server writes), ``blobs/`` (attachments and backups on the filesystem store,
copied after the database, so every blob the copied rows name is there), the generated
secrets of the data directory (``jwt-secret``, ``push-credentials-key``) and
``manifest.json`` (what is in it, with each file's size and SHA-256). On PostgreSQL the
database is not copied (``pg_dump`` does that, see the README) and with the S3 store the
blobs stay in the bucket: the manifest says so.

Restore checks the manifest and every file, then copies them into an empty data
directory (and the SQLite database to where the settings put it).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from relay import __version__
from relay.config import SettingError, Settings
from relay.process.runtime import DEV_SECRET_FILE, PUSH_KEY_FILE, database_url
from storage.db import normalize_url

MANIFEST = "manifest.json"
DATABASE_FILE = "relay.db"
BLOBS = "blobs"
FORMAT = 1


class BackupError(SettingError):
    """A backup or restore that cannot proceed (printed as one line)."""


@dataclass(frozen=True)
class BackupReport:
    """What a backup or restore copied."""

    directory: Path
    database: str
    blobs: int
    blob_bytes: int
    secrets: tuple[str, ...]


def _sqlite_path(url: str) -> Path | None:
    parsed = normalize_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    assert parsed.database is not None
    return Path(parsed.database)


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            sha.update(chunk)
    return sha.hexdigest()


def _private_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    target.chmod(0o600)


def backup(settings: Settings, destination: Path) -> BackupReport:
    """Copy the running (or stopped) server's data into ``destination`` (new or empty)."""
    data_dir = Path(settings.data_dir).expanduser().resolve()
    if destination.exists() and any(destination.iterdir()):
        raise BackupError(f"{destination} is not empty: back up into a new directory")
    destination.mkdir(parents=True, exist_ok=True)
    destination.chmod(0o700)  # it holds the secrets
    url = database_url(settings, data_dir)
    sqlite_file = _sqlite_path(url)
    if sqlite_file is not None:
        if not sqlite_file.exists():
            raise BackupError(f"no database at {sqlite_file}: check RELAY_DATA_DIR")
        with (
            sqlite3.connect(f"file:{sqlite_file}?mode=ro", uri=True) as live,
            sqlite3.connect(destination / DATABASE_FILE) as copy,
        ):
            live.backup(copy)
        (destination / DATABASE_FILE).chmod(0o600)
        database = "sqlite"
    else:
        database = "postgresql (not included: back it up with pg_dump)"
    blob_root = data_dir / BLOBS
    blobs, blob_bytes = 0, 0
    if settings.blob_store == "fs" and blob_root.is_dir():
        for blob in sorted(blob_root.rglob("*")):
            relative = blob.relative_to(blob_root)
            # Uploads in progress are temporary files (under a dot directory): not blobs.
            if not blob.is_file() or any(part.startswith(".") for part in relative.parts):
                continue
            _private_copy(blob, destination / BLOBS / relative)
            blobs += 1
            blob_bytes += blob.stat().st_size
    secrets = tuple(
        name for name in (DEV_SECRET_FILE, PUSH_KEY_FILE) if (data_dir / name).is_file()
    )
    for name in secrets:
        _private_copy(data_dir / name, destination / name)
    files = {
        str(path.relative_to(destination)): {"bytes": path.stat().st_size, "sha256": _digest(path)}
        for path in sorted(destination.rglob("*"))
        if path.is_file()
    }
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "relay": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "database": database,
        "blob_store": settings.blob_store
        + ("" if settings.blob_store == "fs" else " (not included: the bucket holds them)"),
        "secrets": list(secrets),
        "files": files,
    }
    (destination / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return BackupReport(destination, database, blobs, blob_bytes, secrets)


def restore(settings: Settings, source: Path) -> BackupReport:
    """Check the backup in ``source`` and copy it into the (empty) data directory."""
    manifest_file = source / MANIFEST
    if not manifest_file.is_file():
        raise BackupError(f"{source} is not a relay backup (no {MANIFEST})")
    manifest = json.loads(manifest_file.read_text())
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{source}: unknown backup format {manifest.get('format')!r}")
    for name, expected in manifest["files"].items():
        path = source / name
        if not path.is_file() or _digest(path) != expected["sha256"]:
            raise BackupError(f"{source}: {name} is missing or damaged (checksum)")
    data_dir = Path(settings.data_dir).expanduser().resolve()
    if data_dir.exists() and any(data_dir.iterdir()):
        raise BackupError(f"RELAY_DATA_DIR {data_dir} is not empty: restore into a new one")
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    url = database_url(settings, data_dir)
    sqlite_file = _sqlite_path(url)
    has_database = (source / DATABASE_FILE).is_file()
    if has_database:
        if sqlite_file is None:
            raise BackupError(
                "the backup holds a SQLite database but RELAY_DATABASE_URL is PostgreSQL"
            )
        if sqlite_file.exists():
            raise BackupError(f"{sqlite_file} exists: restore into a new database")
        _private_copy(source / DATABASE_FILE, sqlite_file)
    blobs, blob_bytes = 0, 0
    for name in manifest["files"]:
        if name.startswith(BLOBS + "/"):
            _private_copy(source / name, data_dir / name)
            blobs += 1
            blob_bytes += (source / name).stat().st_size
    secrets = tuple(manifest["secrets"])
    for name in secrets:
        _private_copy(source / name, data_dir / name)
    os.sync()
    database = "sqlite" if has_database else str(manifest["database"])
    return BackupReport(data_dir, database, blobs, blob_bytes, secrets)
