"""Product images, their thumbnails, and the catalog's transactional outbox.

Revision ID: catalog_0002
Revises: catalog_0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "catalog_0002"
down_revision = "catalog_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("products", sa.Column("image_version", sa.Integer, nullable=True))
    op.add_column("products", sa.Column("thumbnail_ready", sa.Boolean, nullable=False,
                                        server_default=sa.false()))
    op.create_table(
        "product_images",
        sa.Column("product_id", sa.Integer,
                  sa.ForeignKey("products.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("content_type", sa.String(40), nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("thumbnail", sa.LargeBinary, nullable=True),
        sa.Column("thumbnail_content_type", sa.String(40), nullable=True),
        sa.Column("uploaded_at", sa.DateTime, nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("subject", sa.String(100), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("headers", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False, server_default=sa.func.now()),
        sa.Column("published_at", sa.DateTime, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_index("outbox_unpublished_idx", "outbox", ["created_at"],
                    postgresql_where=sa.text("published_at IS NULL"))


def downgrade() -> None:
    op.drop_table("outbox")
    op.drop_table("product_images")
    op.drop_column("products", "thumbnail_ready")
    op.drop_column("products", "image_version")
