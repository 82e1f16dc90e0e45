"""Cancelled orders payments has heard of, and why and when a payment was refunded.

Revision ID: payments_0002
Revises: payments_0001
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "payments_0002"
down_revision = "payments_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One row per cancelled order (from the `order.cancelled` event): a repeat of the
    # event finds its row and does nothing, and a charge that arrives afterwards is
    # refused.
    op.create_table(
        "cancelled_orders",
        sa.Column("order_id", sa.Uuid, primary_key=True),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("event_id", sa.String(100), nullable=False),
        sa.Column("cancelled_at", sa.DateTime, nullable=False, server_default=sa.func.now()),
    )
    op.add_column("payments", sa.Column("refund_reason", sa.String(40), nullable=True))
    op.add_column("payments", sa.Column("refunded_at", sa.DateTime, nullable=True))


def downgrade() -> None:
    op.drop_column("payments", "refunded_at")
    op.drop_column("payments", "refund_reason")
    op.drop_table("cancelled_orders")
