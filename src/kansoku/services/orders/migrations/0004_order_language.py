"""The language the customer shopped in (ja or en), kept with the order: the e-mails
about it (confirmation, cancellation) are written in that language, even when the
worker sends them long after the customer's request.

Revision ID: orders_0004
Revises: orders_0003
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "orders_0004"
down_revision = "orders_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("language", sa.String(8), nullable=True))


def downgrade() -> None:
    op.drop_column("orders", "language")
