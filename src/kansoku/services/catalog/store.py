"""Every SQL statement of the catalog. Functions take the request's session."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, delete, func, or_, select, true, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value

from kansoku.kit import outbox
from kansoku.services.catalog.models import Category, OutboxMessage, Product, ProductImage

#: The orders a product list can be sorted in; each ends with the id so paging is stable.
PRODUCT_ORDERS = {
    "id": (Product.id,),
    "name": (Product.name, Product.id),
    "price": (Product.price, Product.id),
    "-price": (Product.price.desc(), Product.id),
    "newest": (Product.created_at.desc(), Product.id.desc()),
}


def _filtered(query: Select[Any], category: str | None, search: str | None,
              ids: Sequence[int] | None = None) -> Select[Any]:
    if ids is not None:
        query = query.where(Product.id.in_(ids))
    if category is not None:
        query = query.join(Product.category).where(Category.slug == category)
    if search:
        # Escape LIKE's wildcards: a search for "50%" means the characters "50%".
        escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        query = query.where(or_(Product.name.ilike(pattern), Product.description.ilike(pattern),
                                Product.name_ja.ilike(pattern),
                                Product.description_ja.ilike(pattern)))
    return query


async def list_products(
    session: AsyncSession, *, limit: int, offset: int, category: str | None,
    search: str | None = None, sort: str = "id", ids: Sequence[int] | None = None,
    delay_seconds: float = 0.0,
) -> Sequence[Product]:
    """A page of products with their categories, in one statement. `delay_seconds` (the
    catalogSlowQuery fault) makes that statement itself slow: it joins a one-row CTE
    that sleeps, evaluated once (MATERIALIZED), not once per row."""
    query = (
        select(Product)
        .options(joinedload(Product.category))
        .order_by(*PRODUCT_ORDERS[sort])
        .limit(limit)
        .offset(offset)
    )
    if delay_seconds > 0:
        pause = (select(func.pg_sleep(delay_seconds).label("slept"))
                 .cte("pause").prefix_with("MATERIALIZED"))
        query = query.join(pause, true())
    return (await session.scalars(_filtered(query, category, search, ids))).all()


async def list_products_one_by_one(
    session: AsyncSession, *, limit: int, offset: int, category: str | None,
    search: str | None = None, sort: str = "id", ids: Sequence[int] | None = None,
) -> Sequence[Product]:
    """The same page as `list_products`, loaded the N+1 way (the catalogNPlusOne fault):
    the products alone, then one SELECT per product for its category."""
    query = select(Product).order_by(*PRODUCT_ORDERS[sort]).limit(limit).offset(offset)
    products = (await session.scalars(_filtered(query, category, search, ids))).all()
    for product in products:
        found = (await session.scalars(
            select(Category).where(Category.id == product.category_id))).one()
        set_committed_value(product, "category", found)
    return products


async def count_products(session: AsyncSession, *, category: str | None,
                         search: str | None = None, ids: Sequence[int] | None = None) -> int:
    query = _filtered(select(func.count()).select_from(Product), category, search, ids)
    return int(await session.scalar(query) or 0)


async def get_product(session: AsyncSession, product_id: int) -> Product | None:
    query = select(Product).options(joinedload(Product.category)).where(Product.id == product_id)
    return (await session.scalars(query)).first()


async def category_by_slug(session: AsyncSession, slug: str) -> Category | None:
    return (await session.scalars(select(Category).where(Category.slug == slug))).first()


async def add_category(session: AsyncSession, slug: str, name: str) -> Category:
    """Insert a category, or return the one another request inserted at the same time."""
    await session.execute(insert(Category).values(slug=slug, name=name)
                          .on_conflict_do_nothing(index_elements=[Category.slug]))
    category = await category_by_slug(session, slug)
    assert category is not None
    return category


async def add_product(session: AsyncSession, product: Product) -> Product:
    session.add(product)
    await session.flush()
    fresh = await get_product(session, product.id)
    assert fresh is not None
    return fresh


async def sku_taken(session: AsyncSession, sku: str, *, other_than: int | None = None) -> bool:
    query = select(Product.id).where(Product.sku == sku)
    if other_than is not None:
        query = query.where(Product.id != other_than)
    return (await session.scalar(query)) is not None


async def delete_product(session: AsyncSession, product_id: int) -> bool:
    deleted = await session.scalar(delete(Product).where(Product.id == product_id)
                                   .returning(Product.id))
    return deleted is not None


async def list_categories(session: AsyncSession) -> Sequence[Category]:
    return (await session.scalars(select(Category).order_by(Category.name))).all()


async def has_products(session: AsyncSession) -> bool:
    return (await session.scalar(select(Product.id).limit(1))) is not None


async def add_categories(session: AsyncSession, categories: Sequence[Category]) -> None:
    session.add_all(categories)
    await session.flush()


async def add_products(session: AsyncSession, products: Sequence[Product]) -> None:
    session.add_all(products)
    await session.flush()


async def product_for_update(session: AsyncSession, product_id: int) -> Product | None:
    """The product, locked until the transaction ends: two uploads at once get
    consecutive image versions, not the same one."""
    query = (select(Product).options(joinedload(Product.category))
             .where(Product.id == product_id).with_for_update(of=Product))
    return (await session.scalars(query)).first()


async def save_image(session: AsyncSession, image: ProductImage) -> None:
    """Store the product's image, replacing any earlier one and its thumbnail. (The
    caller moves the product's `image_version` on in the same transaction.)"""
    values = {"version": image.version, "content_type": image.content_type,
              "width": image.width, "height": image.height, "data": image.data,
              "thumbnail": None, "thumbnail_content_type": None, "uploaded_at": func.now()}
    await session.execute(
        insert(ProductImage).values(product_id=image.product_id, **values)
        .on_conflict_do_update(index_elements=[ProductImage.product_id], set_=values))


async def image_bytes(session: AsyncSession, product_id: int, *, thumbnail: bool
                      ) -> tuple[int, str, bytes] | None:
    """(version, content type, bytes) of the uploaded image or of its thumbnail; None
    if there is none (yet). Reads only the column asked for, never both."""
    data = ProductImage.thumbnail if thumbnail else ProductImage.data
    content_type = (ProductImage.thumbnail_content_type if thumbnail
                    else ProductImage.content_type)
    row = (await session.execute(
        select(ProductImage.version, content_type, data)
        .where(ProductImage.product_id == product_id))).first()
    if row is None or row[2] is None:
        return None
    return int(row[0]), str(row[1]), bytes(row[2])


async def save_thumbnail(session: AsyncSession, product_id: int, version: int, data: bytes,
                         content_type: str) -> bool:
    """Store the thumbnail of image `version`; False if that is no longer the current
    image (a newer upload arrived while the worker was busy)."""
    stored = await session.scalar(
        update(ProductImage)
        .where(ProductImage.product_id == product_id, ProductImage.version == version)
        .values(thumbnail=data, thumbnail_content_type=content_type)
        .returning(ProductImage.product_id))
    if stored is None:
        return False
    await session.execute(update(Product).where(Product.id == product_id)
                          .values(thumbnail_ready=True))
    return True


async def add_event(session: AsyncSession, subject: str, payload: dict[str, Any]) -> None:
    await outbox.add_event(session, OutboxMessage, subject, payload)


async def unpublished(session: AsyncSession, limit: int) -> Sequence[OutboxMessage]:
    return await outbox.unpublished(session, OutboxMessage, limit)


async def mark_published(session: AsyncSession, message_id: uuid.UUID) -> None:
    await outbox.mark_published(session, OutboxMessage, message_id)
