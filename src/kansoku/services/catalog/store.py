"""Every SQL statement of the catalog. Functions take the request's session."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from kansoku.services.catalog.models import Category, Product


async def list_products(
    session: AsyncSession, *, limit: int, offset: int, category: str | None
) -> Sequence[Product]:
    query = (
        select(Product)
        .options(joinedload(Product.category))
        .order_by(Product.id)
        .limit(limit)
        .offset(offset)
    )
    if category is not None:
        query = query.join(Product.category).where(Category.slug == category)
    return (await session.scalars(query)).all()


async def count_products(session: AsyncSession, *, category: str | None) -> int:
    query = select(func.count()).select_from(Product)
    if category is not None:
        query = query.join(Product.category).where(Category.slug == category)
    return int(await session.scalar(query) or 0)


async def get_product(session: AsyncSession, product_id: int) -> Product | None:
    query = select(Product).options(joinedload(Product.category)).where(Product.id == product_id)
    return (await session.scalars(query)).first()


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
