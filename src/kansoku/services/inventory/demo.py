"""Demo stock for the demo catalog's 200 products (ids 1 to 200, as the catalog's demo
data creates them): mostly plenty, some low, a few sold out."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from kansoku.services.inventory import store

DEMO_PRODUCTS = range(1, 201)


def demo_units(product_id: int) -> int:
    if product_id % 23 == 0:
        return 0  # sold out
    if product_id % 7 == 0:
        return 3  # low
    return 20 + (product_id * 37) % 80


async def seed(session: AsyncSession) -> int:
    """Stock the demo products if nothing is stocked yet. Returns how many were stocked."""
    if await store.count_levels(session, low_only=False):
        return 0
    for product_id in DEMO_PRODUCTS:
        await store.add_stock(session, product_id, demo_units(product_id))
    return len(DEMO_PRODUCTS)
