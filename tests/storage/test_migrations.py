"""The Alembic migrations produce exactly the schema the code declares."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Engine

from storage import migrate
from storage.schema import metadata


def test_database_is_at_head(engine: Engine) -> None:
    assert migrate.current_revision(engine) == migrate.head_revision()


def test_migrated_schema_matches_metadata(engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []


def test_every_device_child_cascades(engine: Engine) -> None:
    inspector = inspect(engine)
    for table in metadata.sorted_tables:
        for foreign_key in inspector.get_foreign_keys(table.name):
            if foreign_key["referred_table"] in ("devices", "users"):
                assert foreign_key["options"].get("ondelete") == "CASCADE", (
                    table.name,
                    foreign_key["constrained_columns"],
                )


def test_downgrade_and_upgrade_round_trip(tmp_path: object) -> None:
    from storage.db import create_engine

    scratch = create_engine(f"sqlite:///{tmp_path}/scratch.db")
    try:
        migrate.upgrade(scratch)
        assert set(inspect(scratch).get_table_names()) >= {t.name for t in metadata.sorted_tables}
        migrate.downgrade(scratch, "base")
        assert set(inspect(scratch).get_table_names()) == {"alembic_version"}
        assert migrate.current_revision(scratch) is None
        migrate.upgrade(scratch)
        assert migrate.current_revision(scratch) == migrate.head_revision()
    finally:
        scratch.dispose()
