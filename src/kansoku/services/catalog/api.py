"""The catalog's HTTP routes (internal: the gateway's public API fronts them)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from kansoku.kit.auth import AdminUser
from kansoku.kit.db import DbSession
from kansoku.kit.errors import Problem
from kansoku.services.catalog import service
from kansoku.services.catalog.schemas import (
    CategoryOut,
    ProductIn,
    ProductOut,
    ProductPage,
    ProductSort,
)

router = APIRouter(tags=["catalog"])


async def _invalidate_after_commit(request: Request, session: AsyncSession) -> None:
    """Drop cached reads once the change is committed: invalidating before the commit
    would let a read in between cache the old data again."""
    await session.commit()
    await request.app.state.cache.invalidate()


@router.get("/products")
async def list_products(
    session: DbSession,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
    category: Annotated[str | None, Query(max_length=64)] = None,
    q: Annotated[str | None, Query(max_length=100, description="Words in name or text")] = None,
    sort: Annotated[ProductSort, Query()] = "id",
    ids: Annotated[str | None, Query(max_length=800,
                                     description="Only these ids, comma-separated")] = None,
) -> ProductPage:
    """A page of products, optionally of one category (by slug), matching a search, or
    with the given ids (what carts and orders use to price their lines in one call)."""
    try:
        id_list = [int(part) for part in ids.split(",") if part.strip()] if ids else None
    except ValueError as exc:
        raise Problem(422, "validation-error", "ids must be whole numbers separated by "
                      "commas.", field="ids") from exc
    return await service.browse_products(session, request.app.state.cache, limit=limit,
                                         offset=offset, category=category, search=q,
                                         sort=sort, ids=id_list)


@router.get("/products/{product_id}")
async def get_product(product_id: int, session: DbSession, request: Request) -> ProductOut:
    """One product with its category."""
    return await service.product_detail(session, request.app.state.cache, product_id)


@router.post("/products", status_code=201)
async def create_product(data: ProductIn, admin: AdminUser, session: DbSession,
                         request: Request) -> ProductOut:
    """Add a product (admin)."""
    created = await service.create_product(session, data)
    await _invalidate_after_commit(request, session)
    return created


@router.put("/products/{product_id}")
async def replace_product(product_id: int, data: ProductIn, admin: AdminUser,
                          session: DbSession, request: Request) -> ProductOut:
    """Replace a product's details (admin)."""
    replaced = await service.replace_product(session, product_id, data)
    await _invalidate_after_commit(request, session)
    return replaced


@router.delete("/products/{product_id}", status_code=204)
async def delete_product(product_id: int, admin: AdminUser, session: DbSession,
                         request: Request) -> None:
    """Remove a product (admin)."""
    await service.delete_product(session, product_id)
    await _invalidate_after_commit(request, session)


@router.get("/categories")
async def list_categories(session: DbSession) -> list[CategoryOut]:
    """Every category, by name."""
    return await service.categories(session)
