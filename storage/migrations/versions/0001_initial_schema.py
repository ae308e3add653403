"""Initial relay schema: accounts, devices, keys, messages, blobs, tokens, tickets.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.types import UUIDType

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _device_fk(table: str, column: str = "device_id") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], ["devices.id"], name=f"fk_{table}_{column}_devices", ondelete="CASCADE"
    )


def _user_fk(table: str, column: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], ["users.id"], name=f"fk_{table}_{column}_users", ondelete="CASCADE"
    )


def upgrade() -> None:
    is_postgresql = op.get_bind().dialect.name == "postgresql"
    user_checks = [
        sa.CheckConstraint("length(username) BETWEEN 3 AND 50", name="ck_users_username_length")
    ]
    if is_postgresql:
        user_checks.append(
            sa.CheckConstraint("username ~ '^[a-z0-9_]{3,50}$'", name="ck_users_username_format")
        )
    op.create_table(
        "users",
        sa.Column("id", UUIDType(), nullable=False),
        sa.Column("username", sa.String(50), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("username", name="uq_users_username"),
        *user_checks,
    )
    op.create_table(
        "devices",
        sa.Column("id", UUIDType(), nullable=False),
        sa.Column("user_id", UUIDType(), nullable=False),
        sa.Column("name", sa.String(100), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_devices"),
        _user_fk("devices", "user_id"),
    )
    op.create_index("ix_devices_user_id_created_at", "devices", ["user_id", "created_at"])

    op.create_table(
        "refresh_tokens",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("user_id", UUIDType(), nullable=False),
        sa.Column("device_id", UUIDType(), nullable=True),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name="pk_refresh_tokens"),
        _user_fk("refresh_tokens", "user_id"),
        _device_fk("refresh_tokens"),
    )
    op.create_index("ix_refresh_tokens_user_id", "refresh_tokens", ["user_id"])
    op.create_index("ix_refresh_tokens_device_id", "refresh_tokens", ["device_id"])
    op.create_index("ix_refresh_tokens_expires_at", "refresh_tokens", ["expires_at"])

    op.create_table(
        "identity_keys",
        sa.Column("device_id", UUIDType(), nullable=False),
        sa.Column("identity_key", sa.LargeBinary(33), nullable=False),
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", name="pk_identity_keys"),
        _device_fk("identity_keys"),
    )
    op.create_table(
        "signed_pre_keys",
        sa.Column("device_id", UUIDType(), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("public_key", sa.LargeBinary(33), nullable=False),
        sa.Column("signature", sa.LargeBinary(64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", "key_id", name="pk_signed_pre_keys"),
        _device_fk("signed_pre_keys"),
    )
    op.create_table(
        "one_time_pre_keys",
        sa.Column("device_id", UUIDType(), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("public_key", sa.LargeBinary(33), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", "key_id", name="pk_one_time_pre_keys"),
        _device_fk("one_time_pre_keys"),
    )

    op.create_table(
        "messages",
        sa.Column("id", UUIDType(), nullable=False),
        sa.Column("sender_id", UUIDType(), nullable=False),
        sa.Column("sender_device_id", UUIDType(), nullable=False),
        sa.Column("device_id", UUIDType(), nullable=False),
        sa.Column("submission_id", UUIDType(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_messages"),
        sa.UniqueConstraint(
            "sender_device_id", "submission_id", name="uq_messages_sender_device_id_submission_id"
        ),
        _user_fk("messages", "sender_id"),
        _device_fk("messages", "sender_device_id"),
        _device_fk("messages"),
    )
    op.create_index(
        "ix_messages_device_id_created_at_id", "messages", ["device_id", "created_at", "id"]
    )
    op.create_index("ix_messages_expires_at", "messages", ["expires_at"])

    op.create_table(
        "attachments",
        sa.Column("id", UUIDType(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_attachments"),
    )
    op.create_index("ix_attachments_expires_at", "attachments", ["expires_at"])

    op.create_table(
        "backups",
        sa.Column("device_id", UUIDType(), nullable=False),
        sa.Column("current_version", sa.Integer(), server_default="0", nullable=False),
        sa.Column("pending_version", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(16), server_default="ACTIVE", nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("pending_at", sa.BigInteger(), nullable=True),
        sa.Column("current_object", sa.String(255), nullable=True),
        sa.Column("pending_object", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("device_id", name="pk_backups"),
        sa.CheckConstraint("state IN ('ACTIVE', 'UPLOADING')", name="ck_backups_state"),
        _device_fk("backups"),
    )
    op.create_index("ix_backups_state_pending_at", "backups", ["state", "pending_at"])

    op.create_table(
        "push_tokens",
        sa.Column("device_id", UUIDType(), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", name="pk_push_tokens"),
        _device_fk("push_tokens"),
    )
    op.create_index("ix_push_tokens_token", "push_tokens", ["token"])

    op.create_table(
        "gateway_tickets",
        sa.Column("ticket_hash", sa.String(64), nullable=False),
        sa.Column("device_id", UUIDType(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("ticket_hash", name="pk_gateway_tickets"),
        _device_fk("gateway_tickets"),
    )
    op.create_index("ix_gateway_tickets_expires_at", "gateway_tickets", ["expires_at"])

    op.create_table(
        "idempotency_records",
        sa.Column("device_id", UUIDType(), nullable=False),
        sa.Column("idempotency_key", UUIDType(), nullable=False),
        sa.Column("response", sa.LargeBinary(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", "idempotency_key", name="pk_idempotency_records"),
        _device_fk("idempotency_records"),
    )
    op.create_index("ix_idempotency_records_expires_at", "idempotency_records", ["expires_at"])


def downgrade() -> None:
    for table in (
        "idempotency_records",
        "gateway_tickets",
        "push_tokens",
        "backups",
        "attachments",
        "messages",
        "one_time_pre_keys",
        "signed_pre_keys",
        "identity_keys",
        "refresh_tokens",
        "devices",
        "users",
    ):
        op.drop_table(table)
