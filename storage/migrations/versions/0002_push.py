"""Push core: provider apps and credentials, the durable push queue, push-token platform,
environment and push key.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.types import UUIDType

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("push_tokens") as batch:
        batch.add_column(sa.Column("platform", sa.String(8), nullable=False, server_default="fcm"))
        batch.add_column(
            sa.Column("environment", sa.String(16), nullable=False, server_default="production")
        )
        batch.add_column(sa.Column("push_key", sa.LargeBinary(), nullable=True))
        batch.create_check_constraint(
            "ck_push_tokens_platform", "platform IN ('apns', 'fcm', 'hms')"
        )
        batch.create_check_constraint(
            "ck_push_tokens_environment", "environment IN ('production', 'development')"
        )

    op.create_table(
        "push_apps",
        sa.Column("id", UUIDType(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_push_apps"),
        sa.UniqueConstraint("name", name="uq_push_apps_name"),
    )
    op.create_table(
        "push_app_credentials",
        sa.Column("app_id", UUIDType(), nullable=False),
        sa.Column("platform", sa.String(8), nullable=False),
        sa.Column("settings", sa.Text(), nullable=False),
        sa.Column("secret", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("app_id", "platform", name="pk_push_app_credentials"),
        sa.ForeignKeyConstraint(
            ["app_id"],
            ["push_apps.id"],
            name="fk_push_app_credentials_app_id_push_apps",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            "platform IN ('apns', 'fcm', 'hms')", name="ck_push_app_credentials_platform"
        ),
    )
    op.create_table(
        "push_jobs",
        sa.Column("id", UUIDType(), nullable=False),
        sa.Column("app_id", UUIDType(), nullable=True),
        sa.Column("device_id", UUIDType(), nullable=True),
        sa.Column("platform", sa.String(8), nullable=True),
        sa.Column("environment", sa.String(16), nullable=True),
        sa.Column("token", sa.Text(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("coalesce_key", sa.String(100), nullable=True),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger(), nullable=False),
        sa.Column("lease", sa.BigInteger(), nullable=True),
        sa.Column("expires_at", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_push_jobs"),
        sa.ForeignKeyConstraint(
            ["app_id"], ["push_apps.id"], name="fk_push_jobs_app_id_push_apps", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name="fk_push_jobs_device_id_devices", ondelete="CASCADE"
        ),
        sa.CheckConstraint("state IN ('pending', 'sent', 'failed')", name="ck_push_jobs_state"),
    )
    op.create_index("ix_push_jobs_state_next_attempt_at", "push_jobs", ["state", "next_attempt_at"])
    op.create_index("ix_push_jobs_state_updated_at", "push_jobs", ["state", "updated_at"])
    op.create_index(
        "uq_push_jobs_pending_coalesce_key",
        "push_jobs",
        ["coalesce_key"],
        unique=True,
        sqlite_where=sa.text("state = 'pending'"),
        postgresql_where=sa.text("state = 'pending'"),
    )


def downgrade() -> None:
    op.drop_table("push_jobs")
    op.drop_table("push_app_credentials")
    op.drop_table("push_apps")
    with op.batch_alter_table("push_tokens") as batch:
        batch.drop_constraint("ck_push_tokens_environment", type_="check")
        batch.drop_constraint("ck_push_tokens_platform", type_="check")
        batch.drop_column("push_key")
        batch.drop_column("environment")
        batch.drop_column("platform")
