"""The trace of the request that placed each order, for the order's pages to link to.

Revision ID: orders_0002
Revises: orders_0001
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "orders_0002"
down_revision = "orders_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("trace_id", sa.String(32), nullable=True))


def downgrade() -> None:
    op.drop_column("orders", "trace_id")
