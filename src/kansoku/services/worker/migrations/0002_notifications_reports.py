"""Simulated SMS and push notifications, and reports.

Revision ID: worker_0002
Revises: worker_0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "worker_0002"
down_revision = "worker_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("event_id", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.CheckConstraint("channel IN ('sms', 'push')", name="notifications_channel"),
    )
    # The admin list: one channel, newest first.
    op.create_index("notifications_channel_created", "notifications",
                    ["channel", "created_at"])
    op.create_table(
        "reports",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.Column("row_count", sa.Integer, nullable=False),
        sa.Column("low_stock_count", sa.Integer, nullable=False),
        sa.Column("csv", sa.Text, nullable=False),
        sa.Column("document", sa.JSON, nullable=False),
    )
    op.create_index("reports_created", "reports", ["created_at"])


def downgrade() -> None:
    op.drop_index("reports_created", table_name="reports")
    op.drop_table("reports")
    op.drop_index("notifications_channel_created", table_name="notifications")
    op.drop_table("notifications")
