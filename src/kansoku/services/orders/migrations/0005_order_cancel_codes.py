"""Why an order was cancelled, as codes kept on the order: `cancel_reason_code` (a
`CancelReason`) and, for a declined payment, payments' `decline_reason`. The storefront
and the admin dashboard word them in their reader's language; `cancel_reason` keeps the
English sentence, which orders cancelled before this still show as it is.

Revision ID: orders_0005
Revises: orders_0004
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "orders_0005"
down_revision = "orders_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("cancel_reason_code", sa.String(40), nullable=True))
    op.add_column("orders", sa.Column("decline_reason", sa.String(40), nullable=True))


def downgrade() -> None:
    op.drop_column("orders", "decline_reason")
    op.drop_column("orders", "cancel_reason_code")
