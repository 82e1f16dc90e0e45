"""The catalog's logic: what the routes ask for, in the shop's words."""

from __future__ import annotations

from opentelemetry import metrics
from sqlalchemy.ext.asyncio import AsyncSession

from kansoku.kit import semconv
from kansoku.kit.errors import Problem
from kansoku.services.catalog import store
from kansoku.services.catalog.schemas import CategoryOut, ProductOut, ProductPage

_meter = metrics.get_meter("kansoku.catalog")
_products_listed = _meter.create_counter(
    semconv.METRIC_CATALOG_PRODUCTS_LISTED, unit="{product}",
    description="Products returned by catalog listings",
)


async def browse_products(
    session: AsyncSession, *, limit: int, offset: int, category: str | None,
    search: str | None = None, sort: str = "id",
) -> ProductPage:
    products = await store.list_products(session, limit=limit, offset=offset,
                                         category=category, search=search, sort=sort)
    total = await store.count_products(session, category=category, search=search)
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


async def categories(session: AsyncSession) -> list[CategoryOut]:
    rows = await store.list_categories(session)
    return [CategoryOut.model_validate(category) for category in rows]
