"""Payments (never card numbers).

Revision ID: payments_0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "payments_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "payments",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("order_id", sa.Uuid, nullable=False, index=True),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("amount", sa.Numeric(12, 2), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("method", sa.String(20), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("brand", sa.String(20), nullable=True),
        sa.Column("last4", sa.String(4), nullable=True),
        sa.Column("token", sa.String(40), nullable=False),
        sa.Column("decline_reason", sa.String(40), nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("amount > 0", name="payments_amount_positive"),
        sa.CheckConstraint("status IN ('succeeded', 'declined', 'refunded')",
                           name="payments_status_known"),
    )
    # One successful charge per order, enforced by the database: a retried or duplicated
    # request can never charge twice.
    op.create_index("payments_one_success_per_order", "payments", ["order_id"], unique=True,
                    postgresql_where=sa.text("status IN ('succeeded', 'refunded')"))


def downgrade() -> None:
    op.drop_table("payments")
