"""Push feedback events waiting for delivery to the operator's webhook.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.types import UUIDType

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "push_feedback",
        sa.Column("id", UUIDType(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_push_feedback")),
    )
    op.create_index(
        op.f("ix_push_feedback_next_attempt_at"), "push_feedback", ["next_attempt_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_push_feedback_next_attempt_at", table_name="push_feedback")
    op.drop_table("push_feedback")
