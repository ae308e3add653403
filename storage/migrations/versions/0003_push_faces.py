"""Compatible push APIs: one registration table under the PowerAuth, Zulip and
Rocket.Chat faces; activations, campaigns, inbox, integrator keys, face tokens and
bouncer keys; push jobs remember their campaign.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.types import UUIDType

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key_hash", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("name", name=op.f("uq_api_keys_name")),
    )
    op.create_table(
        "bouncer_keys",
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("private_key", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("public_key", name=op.f("pk_bouncer_keys")),
    )
    op.create_table(
        "powerauth_activations",
        sa.Column("activation_id", sa.String(length=255), nullable=False),
        sa.Column("user_name", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("activation_id", name=op.f("pk_powerauth_activations")),
    )
    op.create_table(
        "push_inbox",
        sa.Column("id", UUIDType(), nullable=False),
        sa.Column("user_name", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=8), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("read", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("read_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_push_inbox")),
    )
    op.create_index(
        op.f("ix_push_inbox_user_name_created_at"),
        "push_inbox",
        ["user_name", "created_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_push_inbox_user_name_read"), "push_inbox", ["user_name", "read"], unique=False
    )
    op.create_table(
        "face_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", UUIDType(), nullable=False),
        sa.Column("face", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "face IN ('powerauth', 'zulip', 'rocketchat')", name=op.f("ck_face_tokens_face")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_face_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_face_tokens")),
    )
    op.create_index(
        op.f("ix_face_tokens_user_id_face_created_at"),
        "face_tokens",
        ["user_id", "face", "created_at"],
        unique=False,
    )
    op.create_table(
        "push_campaigns",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("app_id", UUIDType(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("sent", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("devices", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("sent_at", sa.BigInteger(), nullable=True),
        sa.Column("completed_at", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "state IN ('new', 'sending', 'sent')", name=op.f("ck_push_campaigns_state")
        ),
        sa.ForeignKeyConstraint(
            ["app_id"],
            ["push_apps.id"],
            name=op.f("fk_push_campaigns_app_id_push_apps"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_push_campaigns")),
    )
    op.create_index(op.f("ix_push_campaigns_state"), "push_campaigns", ["state"], unique=False)
    op.create_table(
        "push_inbox_apps",
        sa.Column("inbox_id", UUIDType(), nullable=False),
        sa.Column("app_id", UUIDType(), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"],
            ["push_apps.id"],
            name=op.f("fk_push_inbox_apps_app_id_push_apps"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["inbox_id"],
            ["push_inbox.id"],
            name=op.f("fk_push_inbox_apps_inbox_id_push_inbox"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("inbox_id", "app_id", name=op.f("pk_push_inbox_apps")),
    )
    op.create_index(op.f("ix_push_inbox_apps_app_id"), "push_inbox_apps", ["app_id"], unique=False)
    op.create_table(
        "push_registrations",
        sa.Column("id", UUIDType(), nullable=False),
        sa.Column("app_id", UUIDType(), nullable=False),
        sa.Column("user_name", sa.String(length=255), nullable=False),
        sa.Column("face", sa.String(length=16), nullable=False),
        sa.Column("face_ref", sa.String(length=255), nullable=False),
        sa.Column("platform", sa.String(length=8), nullable=False),
        sa.Column("environment", sa.String(length=16), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("push_key", sa.LargeBinary(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "environment IN ('production', 'development')",
            name=op.f("ck_push_registrations_environment"),
        ),
        sa.CheckConstraint(
            "face IN ('powerauth', 'zulip', 'rocketchat')", name=op.f("ck_push_registrations_face")
        ),
        sa.CheckConstraint(
            "platform IN ('apns', 'fcm', 'hms')", name=op.f("ck_push_registrations_platform")
        ),
        sa.ForeignKeyConstraint(
            ["app_id"],
            ["push_apps.id"],
            name=op.f("fk_push_registrations_app_id_push_apps"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_push_registrations")),
        sa.UniqueConstraint(
            "face",
            "user_name",
            "face_ref",
            name=op.f("uq_push_registrations_face_user_name_face_ref"),
        ),
    )
    op.create_index(
        op.f("ix_push_registrations_app_id_token"),
        "push_registrations",
        ["app_id", "token"],
        unique=False,
    )
    op.create_index(
        op.f("ix_push_registrations_app_id_user_name"),
        "push_registrations",
        ["app_id", "user_name"],
        unique=False,
    )
    op.create_index(
        op.f("ix_push_registrations_face_face_ref"),
        "push_registrations",
        ["face", "face_ref"],
        unique=False,
    )
    op.create_index(
        op.f("ix_push_registrations_token"), "push_registrations", ["token"], unique=False
    )
    op.create_table(
        "push_campaign_users",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("user_name", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["push_campaigns.id"],
            name=op.f("fk_push_campaign_users_campaign_id_push_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", "user_name", name=op.f("pk_push_campaign_users")),
    )
    op.create_index(
        op.f("ix_push_campaign_users_user_name"), "push_campaign_users", ["user_name"], unique=False
    )
    with op.batch_alter_table("push_jobs") as batch:
        batch.add_column(sa.Column("campaign_id", sa.Integer(), nullable=True))
    op.create_index(op.f("ix_push_jobs_campaign_id"), "push_jobs", ["campaign_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_push_jobs_campaign_id", table_name="push_jobs")
    with op.batch_alter_table("push_jobs") as batch:
        batch.drop_column("campaign_id")
    for table in (
        "push_campaign_users",
        "push_registrations",
        "push_inbox_apps",
        "push_campaigns",
        "face_tokens",
        "push_inbox",
        "powerauth_activations",
        "bouncer_keys",
        "api_keys",
    ):
        op.drop_table(table)
