"""Whom each order is for, as their e-mail and name were when they placed it: the
`order.paid` event of an order settled by `payment.succeeded` (no customer request in
sight) still tells the worker whom to write to.

Revision ID: orders_0003
Revises: orders_0002
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "orders_0003"
down_revision = "orders_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("customer_email", sa.String(320), nullable=True))
    op.add_column("orders", sa.Column("customer_name", sa.String(200), nullable=True))


def downgrade() -> None:
    op.drop_column("orders", "customer_name")
    op.drop_column("orders", "customer_email")
