"""Processed events and the embedded mailbox.

Revision ID: worker_0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "worker_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "processed_events",
        sa.Column("function", sa.String(64), primary_key=True),
        sa.Column("event_id", sa.String(100), primary_key=True),
        sa.Column("processed_at", sa.DateTime, nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "mailbox",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("sender", sa.String(320), nullable=False),
        sa.Column("recipients", sa.JSON, nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("received_at", sa.DateTime, nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    op.drop_table("mailbox")
    op.drop_table("processed_events")
