"""The lab's own table: favourites, for the constraint-violation scenario.

Revision ID: lab_0001
Revises:
Create Date: 2027-01-18
"""

import sqlalchemy as sa
from alembic import op

revision = "lab_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "favourites",
        # The user and product ids of the shop, not foreign keys: those tables belong
        # to other services (and other schemas).
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("product_id", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False, server_default=sa.func.now()),
        # A product is a user's favourite once: the constraint the broken scenario hits.
        sa.PrimaryKeyConstraint("user_id", "product_id", name="favourites_pkey"),
    )


def downgrade() -> None:
    op.drop_table("favourites")
