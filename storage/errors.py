"""Errors raised by the storage package.

Driver exceptions (sqlite3, psycopg, SQLAlchemy) never leave this package: they are
translated at the boundary, in :meth:`storage.db.Database.write` and
:meth:`storage.db.Database.read`, into this tree::

    StorageError
    ├── IntegrityViolation      a constraint rejected the change
    │   └── UniqueViolation     a unique / primary key already holds the value
    ├── StorageUnavailable      the database could not be reached or timed out
    └── BlobStoreError          the blob store failed (I/O error, invalid key)

Blob-store I/O errors are translated the same way, in :mod:`storage.blobs`.
"""

from __future__ import annotations


class StorageError(Exception):
    """Base class of every error raised by the storage layer."""


class IntegrityViolation(StorageError):
    """A constraint (foreign key, check, not-null) rejected the statement."""


class UniqueViolation(IntegrityViolation):
    """A unique or primary-key constraint already holds the value."""


class StorageUnavailable(StorageError):
    """The database is down, unreachable or did not answer in time.

    ``connection_lost``: the pooled connection the work ran on had died (the server
    restarted or killed it); it has been discarded, and a new one may well work.
    """

    def __init__(self, message: str, *, connection_lost: bool = False) -> None:
        super().__init__(message)
        self.connection_lost = connection_lost


class BlobStoreError(StorageError):
    """The blob store could not read, write or delete an object."""


class BlobStoreUnavailable(BlobStoreError, StorageUnavailable):
    """The blob store (S3) is unreachable or failing for now: 503 and retry shortly."""
