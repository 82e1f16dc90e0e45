"""Products and categories in Japanese too: a name and a description in Japanese next
to the English ones (empty: Japanese readers see the English). A catalog that holds the
demo products gets their Japanese words, matched by SKU and English name (a product an
admin renamed keeps only what they wrote).

Revision ID: catalog_0003
Revises: catalog_0002
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

from kansoku.services.catalog.demo import demo_catalog

revision = "catalog_0003"
down_revision = "catalog_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("categories", sa.Column("name_ja", sa.String(120), nullable=True))
    op.add_column("products", sa.Column("name_ja", sa.String(200), nullable=True))
    op.add_column("products", sa.Column("description_ja", sa.Text, nullable=True))
    categories, products = demo_catalog()
    for category in categories:
        op.execute(sa.text("UPDATE categories SET name_ja = :name_ja "
                           "WHERE slug = :slug AND name = :name"
                           ).bindparams(name_ja=category.name_ja, slug=category.slug,
                                        name=category.name))
    for product in products:
        op.execute(sa.text("UPDATE products SET name_ja = :name_ja, "
                           "description_ja = :description_ja "
                           "WHERE sku = :sku AND name = :name"
                           ).bindparams(name_ja=product.name_ja,
                                        description_ja=product.description_ja,
                                        sku=product.sku, name=product.name))


def downgrade() -> None:
    op.drop_column("products", "description_ja")
    op.drop_column("products", "name_ja")
    op.drop_column("categories", "name_ja")
