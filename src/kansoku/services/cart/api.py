"""The cart's routes: always the caller's own cart (the token says whose)."""

from __future__ import annotations

import redis.asyncio as redis
from fastapi import APIRouter, Request

from kansoku.kit.auth import CurrentUser
from kansoku.kit.fields import DbId
from kansoku.kit.flags import FaultFlags, Faults
from kansoku.kit.openapi import PROBLEM
from kansoku.services.cart import service
from kansoku.services.cart.schemas import Cart, CartItem, QuantityChange

router = APIRouter(tags=["cart"])


def _valkey(request: Request, faults: FaultFlags) -> redis.Redis:
    """Valkey — or, with cartCacheOutage on, an address that refuses connections, so
    the cart fails as it would with Valkey down."""
    fault = faults.active("cartCacheOutage")
    if fault:
        fault.mark()
        unreachable: redis.Redis = request.app.state.unreachable_valkey
        return unreachable
    valkey: redis.Redis = request.app.state.valkey
    return valkey


@router.get("/cart")
async def get_cart(user: CurrentUser, request: Request, faults: Faults) -> Cart:
    """Your cart."""
    return await service.cart(_valkey(request, faults), user.user_id)


@router.post("/cart/items")
async def add_item(item: CartItem, user: CurrentUser, request: Request, faults: Faults
                   ) -> Cart:
    """Add units of a product (up to 99 a line)."""
    return await service.add(_valkey(request, faults), user.user_id, item)


@router.patch("/cart/items/{product_id}", responses={404: PROBLEM})
async def change_item(product_id: DbId, change: QuantityChange, user: CurrentUser,
                      request: Request, faults: Faults) -> Cart:
    """Set a line's quantity (0 removes it)."""
    return await service.change(_valkey(request, faults), user.user_id, product_id,
                                change.quantity)


@router.delete("/cart/items/{product_id}", responses={404: PROBLEM})
async def remove_item(product_id: DbId, user: CurrentUser, request: Request,
                      faults: Faults) -> Cart:
    """Remove a product from your cart."""
    return await service.remove(_valkey(request, faults), user.user_id, product_id)


@router.delete("/cart", status_code=204)
async def clear_cart(user: CurrentUser, request: Request, faults: Faults) -> None:
    """Empty your cart (checkout does this when the order is placed)."""
    await service.clear(_valkey(request, faults), user.user_id)
