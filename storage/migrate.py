"""Alembic migrations, run programmatically (``relay migrate`` and embedded start-up).

The scripts live in ``storage/migrations`` and ship inside the package, so a wheel or an
editable install can migrate without an ``alembic.ini``.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import exc
from sqlalchemy.engine import Engine

from storage.db import translate_errors

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    """The newest revision shipped with this code."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except exc.SQLAlchemyError as error:
        raise translate_errors(error) from error


def _run(engine: Engine, command_name: str, revision: str) -> None:
    config = _config()
    try:
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            getattr(command, command_name)(config, revision)
    except exc.SQLAlchemyError as error:
        raise translate_errors(error) from error


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply every pending migration up to ``revision`` in one transaction."""
    _run(engine, "upgrade", revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Revert migrations down to ``revision`` (``"base"`` empties the database)."""
    _run(engine, "downgrade", revision)
