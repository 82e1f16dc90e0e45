"""The catalog's logic: what the routes ask for, in the shop's words."""

from __future__ import annotations

import uuid

from opentelemetry import metrics
from sqlalchemy.ext.asyncio import AsyncSession

from kansoku.kit import semconv
from kansoku.kit.errors import Problem
from kansoku.services.catalog import store
from kansoku.services.catalog.models import Category, Product
from kansoku.services.catalog.schemas import CategoryOut, ProductIn, ProductOut, ProductPage

_meter = metrics.get_meter("kansoku.catalog")
_products_listed = _meter.create_counter(
    semconv.METRIC_CATALOG_PRODUCTS_LISTED, unit="{product}",
    description="Products returned by catalog listings",
)


async def browse_products(
    session: AsyncSession, *, limit: int, offset: int, category: str | None,
    search: str | None = None, sort: str = "id", ids: list[int] | None = None,
) -> ProductPage:
    products = await store.list_products(session, limit=limit, offset=offset,
                                         category=category, search=search, sort=sort, ids=ids)
    total = await store.count_products(session, category=category, search=search, ids=ids)
    _products_listed.add(len(products))
    return ProductPage(
        items=[ProductOut.model_validate(product) for product in products],
        total=total, limit=limit, offset=offset,
    )


async def product_detail(session: AsyncSession, product_id: int) -> ProductOut:
    product = await store.get_product(session, product_id)
    if product is None:
        raise Problem(404, "product-not-found", f"There is no product with id {product_id}.")
    return ProductOut.model_validate(product)


UNCATEGORIZED = ("uncategorized", "Uncategorized")


async def _category_for(session: AsyncSession, slug: str | None) -> Category:
    if slug is None:
        return await store.add_category(session, *UNCATEGORIZED)
    category = await store.category_by_slug(session, slug)
    if category is None:
        known = ", ".join(c.slug for c in await store.list_categories(session))
        raise Problem(422, "unknown-category",
                      f"There is no category '{slug}'. Choose one of: {known}.",
                      field="category")
    return category


async def create_product(session: AsyncSession, data: ProductIn) -> ProductOut:
    category = await _category_for(session, data.category)
    sku = data.sku or f"KS-{uuid.uuid4().hex[:8].upper()}"
    if await store.sku_taken(session, sku):
        raise Problem(409, "sku-taken", f"Another product has the SKU {sku}.", field="sku")
    product = await store.add_product(session, Product(
        sku=sku, name=data.name.strip(), description=data.description, price=data.price,
        currency=data.currency, category=category))
    return ProductOut.model_validate(product)


async def replace_product(session: AsyncSession, product_id: int, data: ProductIn
                          ) -> ProductOut:
    product = await store.get_product(session, product_id)
    if product is None:
        raise Problem(404, "product-not-found", f"There is no product with id {product_id}.")
    if data.sku and await store.sku_taken(session, data.sku, other_than=product_id):
        raise Problem(409, "sku-taken", f"Another product has the SKU {data.sku}.",
                      field="sku")
    product.category = await _category_for(session, data.category)
    product.name, product.description = data.name.strip(), data.description
    product.price, product.currency = data.price, data.currency
    product.sku = data.sku or product.sku
    await session.flush()
    return ProductOut.model_validate(product)


async def delete_product(session: AsyncSession, product_id: int) -> None:
    if not await store.delete_product(session, product_id):
        raise Problem(404, "product-not-found", f"There is no product with id {product_id}.")


async def categories(session: AsyncSession) -> list[CategoryOut]:
    rows = await store.list_categories(session)
    return [CategoryOut.model_validate(category) for category in rows]
