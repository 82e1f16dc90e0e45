"""Stock levels, reservations and adjustments.

Revision ID: inventory_0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "inventory_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stock",
        sa.Column("product_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("on_hand", sa.Integer, nullable=False, server_default="0"),
        sa.Column("reserved", sa.Integer, nullable=False, server_default="0"),
        sa.Column("low_stock_threshold", sa.Integer, nullable=False, server_default="5"),
        sa.Column("updated_at", sa.DateTime, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("on_hand >= 0", name="stock_on_hand_not_negative"),
        sa.CheckConstraint("reserved >= 0 AND reserved <= on_hand",
                           name="stock_reserved_held"),
    )
    op.create_table(
        "reservations",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("order_id", sa.Uuid, nullable=False, index=True),
        sa.Column("product_id", sa.Integer, nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="active"),
        sa.Column("expires_at", sa.DateTime, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("quantity > 0", name="reservations_quantity_positive"),
        sa.CheckConstraint("status IN ('active', 'committed', 'released', 'expired')",
                           name="reservations_status_known"),
    )
    # The expiry sweep looks only at active reservations past their time.
    op.create_index("reservations_active_expiry_idx", "reservations", ["expires_at"],
                    postgresql_where=sa.text("status = 'active'"))
    op.create_table(
        "adjustments",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("product_id", sa.Integer, nullable=False, index=True),
        sa.Column("delta", sa.Integer, nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    op.drop_table("adjustments")
    op.drop_table("reservations")
    op.drop_table("stock")
