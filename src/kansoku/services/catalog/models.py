"""The catalog's tables, in the `catalog` schema."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, LargeBinary, MetaData, Numeric, String, Text, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from kansoku.kit.outbox import OutboxColumns

SCHEMA = "catalog"


class Base(DeclarativeBase):
    metadata = MetaData(schema=SCHEMA)


class Category(Base):
    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    #: The name in Japanese (None: shown in English to Japanese readers too).
    name_ja: Mapped[str | None] = mapped_column(String(120), default=None)


class Product(Base):
    __tablename__ = "products"

    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    #: The name and description in Japanese; None: Japanese readers see the English.
    name_ja: Mapped[str | None] = mapped_column(String(200), default=None)
    description_ja: Mapped[str | None] = mapped_column(Text, default=None)
    #: Money is Decimal with a currency, never float.
    price: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    #: Which uploaded image is current (None: the generated picture). Counts up with
    #: every upload, so image URLs change when the image does and can be cached forever.
    image_version: Mapped[int | None] = mapped_column(default=None)
    #: Whether the worker has made the thumbnail of the current upload.
    thumbnail_ready: Mapped[bool] = mapped_column(default=False)

    category: Mapped[Category] = relationship(lazy="raise")

    @property
    def texts(self) -> dict[str, dict[str, str]]:
        """The name and description in each language the product has them in."""
        texts = {"en": {"name": self.name, "description": self.description}}
        if self.name_ja:
            texts["ja"] = {"name": self.name_ja, "description": self.description_ja or ""}
        return texts


class ProductImage(Base):
    """A product's uploaded image and, once the worker has made it, its thumbnail.
    Kept apart from `products` so listing products never reads image bytes."""

    __tablename__ = "product_images"

    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int]
    content_type: Mapped[str] = mapped_column(String(40))
    width: Mapped[int]
    height: Mapped[int]
    data: Mapped[bytes] = mapped_column(LargeBinary)
    thumbnail: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    thumbnail_content_type: Mapped[str | None] = mapped_column(String(40), default=None)
    uploaded_at: Mapped[datetime] = mapped_column(server_default=func.now())


class OutboxMessage(OutboxColumns, Base):
    """An event written in the same transaction as the change it reports
    (`product.image_uploaded`), and relayed to NATS afterwards."""

    __tablename__ = "outbox"
