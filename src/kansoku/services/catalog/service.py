"""The catalog's logic: what the routes ask for, in the shop's words."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from opentelemetry import metrics
from sqlalchemy.ext.asyncio import AsyncSession

from kansoku.kit import semconv
from kansoku.kit.cache import Cache
from kansoku.kit.errors import Problem
from kansoku.services.catalog import store
from kansoku.services.catalog.models import Category, Product
from kansoku.services.catalog.schemas import CategoryOut, ProductIn, ProductOut, ProductPage

_meter = metrics.get_meter("kansoku.catalog")
_products_listed = _meter.create_counter(
    semconv.METRIC_CATALOG_PRODUCTS_LISTED, unit="{product}",
    description="Products returned by catalog listings",
)


_views = _meter.create_counter(semconv.METRIC_PRODUCT_VIEWS, unit="{view}",
                               description="Product detail reads")
_searches = _meter.create_counter(semconv.METRIC_SEARCHES, unit="{search}",
                                  description="Product searches, by whether they found any")


def _cache_key(kind: str, **params: Any) -> str:
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:24]
    return f"{kind}:{digest}"


async def browse_products(
    session: AsyncSession, cache: Cache, *, limit: int, offset: int, category: str | None,
    search: str | None = None, sort: str = "id", ids: list[int] | None = None,
) -> ProductPage:
    async def load() -> dict[str, Any]:
        products = await store.list_products(session, limit=limit, offset=offset,
                                             category=category, search=search, sort=sort,
                                             ids=ids)
        total = await store.count_products(session, category=category, search=search,
                                           ids=ids)
        return ProductPage(items=[ProductOut.model_validate(product) for product in products],
                           total=total, limit=limit, offset=offset).model_dump(mode="json")

    page = ProductPage.model_validate(await cache.get_or_load(_cache_key(
        "list", limit=limit, offset=offset, category=category, search=search, sort=sort,
        ids=ids), load))
    _products_listed.add(len(page.items))
    if search:
        _searches.add(1, {"found": bool(page.total)})
    return page


async def product_detail(session: AsyncSession, cache: Cache, product_id: int) -> ProductOut:
    async def load() -> dict[str, Any] | None:
        product = await store.get_product(session, product_id)
        return ProductOut.model_validate(product).model_dump(mode="json") if product else None

    found = await cache.get_or_load(f"product:{product_id}", load)
    if found is None:
        raise Problem(404, "product-not-found", f"There is no product with id {product_id}.")
    _views.add(1)
    return ProductOut.model_validate(found)


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
